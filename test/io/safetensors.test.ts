import { conformanceDir } from "../fixtures.js";
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readdir, readFile, rm, mkdir, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { HippoError } from "../../src/errors.js";
import { bufferSource } from "../../src/io/byte-source.js";
import { openFileSource } from "../../src/io/node-file-source.js";
import { writeFileAtomic, writeSafetensorsFile } from "../../src/io/node-files.js";
import { encodeSafetensors, readSafetensors, readSafetensorsHeader, readSafetensorsTensor } from "../../src/io/safetensors.js";
import { openSafetensorsCheckpoint } from "../../src/io/sharded.js";
import { toFloat32 } from "../../src/io/convert.js";
import { FILE_DTYPE_BYTES, numelOf, type FileDType, type RawTensor } from "../../src/io/raw-tensor.js";

const MAMBA_TINY = conformanceDir("mamba-tiny");

function randomTensor(dtype: FileDType, shape: number[], seed: number): RawTensor {
  const bytes = new Uint8Array(numelOf(shape) * FILE_DTYPE_BYTES[dtype]);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 131 + seed * 17 + 7) & 0xff;
  return { dtype, shape, bytes };
}

/** A file from a raw header (object or text) and a data section. */
function fileBytes(header: unknown, data = new Uint8Array(0), lenOverride?: bigint): Uint8Array {
  const h = header instanceof Uint8Array ? header : new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const out = new Uint8Array(8 + h.length + data.length);
  new DataView(out.buffer).setBigUint64(0, lenOverride ?? BigInt(h.length), true);
  out.set(h, 8);
  out.set(data, 8 + h.length);
  return out;
}

async function withTmp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), "hippo-st-"));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function rejectsWith(p: Promise<unknown>, ...parts: (string | RegExp)[]): Promise<void> {
  return assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HippoError, `expected HippoError, got ${String(e)}`);
    assert.ok(!e.message.includes("\n"), `one-line message: ${e.message}`);
    for (const part of parts) {
      if (typeof part === "string") assert.ok(e.message.includes(part), `message ${JSON.stringify(e.message)} lacks ${JSON.stringify(part)}`);
      else assert.match(e.message, part);
    }
    return true;
  });
}

const ALL_DTYPES = Object.keys(FILE_DTYPE_BYTES) as FileDType[];
const SHAPES = [[], [0], [3, 0, 2], [1], [7], [2, 3, 5], [1, 1, 1, 3]];

test("round trip of every dtype and shape (buffer and file)", async () => {
  const tensors = new Map<string, RawTensor>();
  ALL_DTYPES.forEach((dt, i) => SHAPES.forEach((s, j) => tensors.set(`t.${dt}.${j}`, randomTensor(dt, s, i * 10 + j))));
  tensors.set("ünï☃ name", randomTensor("F32", [2], 99));
  const metadata = { format: "pt", note: "héllo \"quoted\"", __proto__x: "x" };
  const bytes = encodeSafetensors(tensors, metadata);

  // Layout: header padded with spaces to 8, data contiguous in sorted-name order.
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal(n % 8, 0);
  const text = new TextDecoder().decode(bytes.subarray(8, 8 + n));
  assert.match(text, /^\{.*\} *$/);
  const header = JSON.parse(text);
  assert.deepEqual(header.__metadata__, metadata);
  const names = Object.keys(header).filter((k) => k !== "__metadata__").sort();
  let off = 0;
  for (const name of names) {
    assert.equal(header[name].data_offsets[0], off);
    off = header[name].data_offsets[1];
  }
  assert.equal(8 + n + off, bytes.length);

  const check = async (got: { metadata: Record<string, string>; tensors: Map<string, RawTensor> }) => {
    assert.deepEqual(got.metadata, metadata);
    assert.equal(got.tensors.size, tensors.size);
    for (const [name, t] of tensors) {
      const g = got.tensors.get(name)!;
      assert.equal(g.dtype, t.dtype, name);
      assert.deepEqual(g.shape, t.shape, name);
      assert.deepEqual(g.bytes, t.bytes, name);
    }
  };
  await check(await readSafetensors(bufferSource("mem.safetensors", bytes)));

  await withTmp(async (dir) => {
    const path = join(dir, "rt.safetensors");
    await writeSafetensorsFile(path, Object.fromEntries(tensors), metadata);
    assert.deepEqual(new Uint8Array(await readFile(path)), bytes);
    const src = await openFileSource(path);
    try {
      await check(await readSafetensors(src));
      const h = await readSafetensorsHeader(src);
      const one = await readSafetensorsTensor(src, h, "t.F64.5");
      assert.deepEqual(one.shape, [2, 3, 5]);
      await rejectsWith(readSafetensorsTensor(src, h, "nope"), path, "nope");
    } finally {
      await src.close();
    }
  });
});

test("empty file set and no metadata", async () => {
  const bytes = encodeSafetensors({});
  const got = await readSafetensors(bufferSource("e.safetensors", bytes));
  assert.equal(got.tensors.size, 0);
  assert.deepEqual(got.metadata, {});
});

test("encoder re-creates the Python-written file byte for byte", async () => {
  const original = new Uint8Array(await readFile(join(MAMBA_TINY, "model.safetensors")));
  const got = await readSafetensors(bufferSource("model.safetensors", original));
  assert.deepEqual(encodeSafetensors(got.tensors, got.metadata), original);
});

test("reads the real mamba-tiny checkpoint", async () => {
  const path = join(MAMBA_TINY, "model.safetensors");
  const src = await openFileSource(path);
  try {
    const h = await readSafetensorsHeader(src);
    assert.equal(h.tensors.size, 22);
    assert.equal(h.metadata.format, "pt");
    const e = h.tensors.get("backbone.embeddings.weight")!;
    assert.equal(e.dtype, "F32");
    assert.deepEqual(e.shape, [512, 64]);
    const w = toFloat32(await readSafetensorsTensor(src, h, "backbone.embeddings.weight"), "emb");
    assert.equal(w.length, 512 * 64);
    assert.ok(w.every(Number.isFinite));
    assert.ok(w.some((x) => x !== 0));
  } finally {
    await src.close();
  }
  const ck = await openSafetensorsCheckpoint(MAMBA_TINY);
  try {
    assert.equal(ck.names().length, 22);
    assert.ok(ck.has("backbone.embeddings.weight"));
    assert.deepEqual(ck.info("backbone.embeddings.weight"), { dtype: "F32", shape: [512, 64] });
    assert.equal(ck.describe("backbone.embeddings.weight"), path);
    assert.equal((await ck.read("backbone.norm_f.weight")).shape[0], 64);
    assert.throws(() => ck.info("missing.weight"), (err: unknown) => err instanceof HippoError && err.message.includes("missing.weight"));
  } finally {
    await ck.close();
  }
});

const F = "bad.safetensors";
const entry = (dtype: unknown, shape: unknown, offs: unknown) => ({ dtype, shape, data_offsets: offs });
const CORRUPT: [string, Uint8Array, (string | RegExp)[]][] = [
  ["short file", new Uint8Array([1, 2, 3]), ["3 bytes", "at least 8"]],
  ["header past end", fileBytes("{}", new Uint8Array(0), 1000n), ["header length 1000", "past the end", "10 bytes"]],
  ["absurd header", fileBytes("{}", new Uint8Array(0), 1n << 40n), ["absurd"]],
  ["bad utf-8", fileBytes(new Uint8Array([0x7b, 0xff, 0x7d])), ["not valid UTF-8"]],
  ["not json", fileBytes("{\"a\": "), ["not valid JSON"]],
  ["not json, multi-line", fileBytes("{\n\"a\":\n x\n}"), ["not valid JSON"]],
  ["not an object", fileBytes("[1, 2]"), ["must be a JSON object", "array"]],
  ["entry not an object", fileBytes({ w: 5 }), ["tensor w", "expected an object"]],
  ["missing dtype", fileBytes({ w: { shape: [1], data_offsets: [0, 4] } }, new Uint8Array(4)), ["tensor w", "missing \"dtype\""]],
  ["missing shape", fileBytes({ w: { dtype: "F32", data_offsets: [0, 4] } }, new Uint8Array(4)), ["tensor w", "missing \"shape\""]],
  ["missing offsets", fileBytes({ w: { dtype: "F32", shape: [1] } }, new Uint8Array(4)), ["tensor w", "missing \"data_offsets\""]],
  ["dtype not string", fileBytes({ w: entry(5, [1], [0, 4]) }, new Uint8Array(4)), ["tensor w", "dtype must be a string", "number 5"]],
  ["unknown dtype", fileBytes({ w: entry("F8_E4M3", [1], [0, 1]) }, new Uint8Array(1)), ["tensor w", "unknown dtype \"F8_E4M3\"", "F64, F32, F16, BF16, I64"]],
  ["shape not array", fileBytes({ w: entry("F32", "2x2", [0, 16]) }, new Uint8Array(16)), ["tensor w", "shape must be an array"]],
  ["negative dim", fileBytes({ w: entry("F32", [2, -1], [0, 0]) }), ["tensor w", "shape dim 1", "non-negative integer", "-1"]],
  ["fractional dim", fileBytes({ w: entry("F32", [1.5], [0, 4]) }, new Uint8Array(4)), ["tensor w", "shape dim 0", "1.5"]],
  ["offsets wrong type", fileBytes({ w: entry("F32", [1], [0]) }, new Uint8Array(4)), ["tensor w", "data_offsets must be [begin, end]"]],
  ["offsets negative", fileBytes({ w: entry("F32", [1], [-4, 0]) }, new Uint8Array(4)), ["tensor w", "data_offsets must be"]],
  ["offsets past data", fileBytes({ w: entry("F32", [2], [0, 8]) }, new Uint8Array(4)), ["tensor w", "data_offsets [0, 8]", "outside the data section", "0..4 bytes"]],
  ["offsets reversed", fileBytes({ w: entry("F32", [1], [4, 0]) }, new Uint8Array(4)), ["tensor w", "outside the data section"]],
  ["size mismatch", fileBytes({ w: entry("F32", [2, 3], [0, 20]) }, new Uint8Array(24)), ["tensor w: shape [2, 3] F32 needs 24 bytes, data_offsets give 20"]],
  ["overlap", fileBytes({ a: entry("F32", [2], [0, 8]), b: entry("F32", [2], [4, 12]) }, new Uint8Array(12)), ["tensors a and b overlap", "[0, 8]", "[4, 12]"]],
  ["metadata not object", fileBytes({ __metadata__: "x" }), ["__metadata__ must be an object"]],
  ["metadata not string", fileBytes({ __metadata__: { format: "pt", n: 1 } }), ["__metadata__ key n", "expected a string", "number 1"]],
];

for (const [what, bytes, parts] of CORRUPT) {
  test(`corrupt file: ${what}`, async () => {
    await rejectsWith(readSafetensorsHeader(bufferSource(F, bytes)), F, ...parts);
  });
}

test("corrupt files on disk name the path", async () => {
  await withTmp(async (dir) => {
    for (const [what, bytes, parts] of CORRUPT.filter((_, i) => i % 3 === 0)) {
      const path = join(dir, `${what.replace(/ /g, "_")}.safetensors`);
      await writeFile(path, bytes);
      const src = await openFileSource(path);
      try {
        await rejectsWith(readSafetensorsHeader(src), path, ...parts);
      } finally {
        await src.close();
      }
    }
  });
});

test("zero-size tensors may share offsets without overlapping", async () => {
  const bytes = fileBytes({ a: entry("F32", [0], [4, 4]), b: entry("F32", [1], [0, 4]), c: entry("I8", [0, 3], [4, 4]) }, new Uint8Array(4));
  const h = await readSafetensorsHeader(bufferSource(F, bytes));
  assert.equal(h.tensors.size, 3);
});

test("openFileSource: missing file and out-of-range reads", async () => {
  await rejectsWith(openFileSource("/nonexistent/dir/model.safetensors"), "/nonexistent/dir/model.safetensors", "no such file");
  await withTmp(async (dir) => {
    const path = join(dir, "f.bin");
    await writeFile(path, new Uint8Array([1, 2, 3, 4]));
    const src = await openFileSource(path);
    try {
      assert.equal(src.size, 4);
      assert.deepEqual(await src.read(1, 2), new Uint8Array([2, 3]));
      await rejectsWith(src.read(3, 2), path, "outside the file");
    } finally {
      await src.close();
    }
    await rejectsWith(openFileSource(dir), dir);
  });
  await assert.rejects(bufferSource("m", new Uint8Array(2)).read(0, 3), HippoError);
});

test("encodeSafetensors rejects inconsistent tensors", () => {
  assert.throws(() => encodeSafetensors({ w: { dtype: "F32", shape: [2], bytes: new Uint8Array(4) } }),
    (e: unknown) => e instanceof HippoError && e.message.includes("tensor w: shape [2] F32 needs 8 bytes, got 4"));
  assert.throws(() => encodeSafetensors({ __metadata__: randomTensor("U8", [1], 0) }), HippoError);
});

test("writeFileAtomic leaves no temp file behind", async () => {
  await withTmp(async (dir) => {
    const path = join(dir, "out.json");
    await writeFileAtomic(path, "first");
    await writeFileAtomic(path, new Uint8Array([104, 105]));
    assert.equal(await readFile(path, "utf8"), "hi");
    assert.deepEqual(await readdir(dir), ["out.json"]);
    // Failure: the target is a directory, so rename fails; the temp must be removed.
    const sub = join(dir, "sub");
    await mkdir(sub);
    await rejectsWith(writeFileAtomic(sub, "x"), sub);
    assert.deepEqual((await readdir(dir)).sort(), ["out.json", "sub"]);
    await rejectsWith(writeFileAtomic(join(dir, "missing", "f"), "x"), "missing");
  });
});

async function makeSharded(dir: string, weightMap?: Record<string, string>): Promise<Record<string, RawTensor>> {
  const a = { "layer.0.w": randomTensor("F32", [3, 4], 1), "layer.0.b": randomTensor("BF16", [4], 2) };
  const b = { "layer.1.w": randomTensor("F16", [2, 2], 3), "embed": randomTensor("F32", [5, 2], 4) };
  await writeSafetensorsFile(join(dir, "model-00001-of-00002.safetensors"), a, { format: "pt" });
  await writeSafetensorsFile(join(dir, "model-00002-of-00002.safetensors"), b, { format: "pt" });
  const map: Record<string, string> = {};
  for (const k of Object.keys(a)) map[k] = "model-00001-of-00002.safetensors";
  for (const k of Object.keys(b)) map[k] = "model-00002-of-00002.safetensors";
  await writeFile(join(dir, "model.safetensors.index.json"), JSON.stringify({ metadata: { total_size: 100 }, weight_map: weightMap ?? map }));
  return { ...a, ...b };
}

test("sharded checkpoint loads", async () => {
  await withTmp(async (dir) => {
    const all = await makeSharded(dir);
    const ck = await openSafetensorsCheckpoint(dir);
    try {
      assert.deepEqual(ck.names().sort(), Object.keys(all).sort());
      for (const [name, t] of Object.entries(all)) {
        assert.deepEqual(ck.info(name), { dtype: t.dtype, shape: t.shape });
        assert.deepEqual((await ck.read(name)).bytes, t.bytes);
      }
      assert.ok(ck.describe("embed").endsWith("model-00002-of-00002.safetensors"));
      assert.ok(ck.describe("layer.0.w").endsWith("model-00001-of-00002.safetensors"));
      assert.equal(ck.has("nope"), false);
      await assert.rejects(ck.read("nope"), HippoError);
    } finally {
      await ck.close();
    }
  });
});

test("broken sharded index errors clearly", async () => {
  await withTmp(async (dir) => {
    const index = join(dir, "model.safetensors.index.json");
    await makeSharded(dir, { "layer.0.w": "model-00001-of-00002.safetensors", "x.y": "model-00003-of-00003.safetensors" });
    await rejectsWith(openSafetensorsCheckpoint(dir), index, "model-00003-of-00003.safetensors", "does not exist", "x.y");

    await makeSharded(dir, { "layer.0.w": "model-00001-of-00002.safetensors", "embed": "model-00001-of-00002.safetensors" });
    await rejectsWith(openSafetensorsCheckpoint(dir), index, "tensor embed", "model-00001-of-00002.safetensors", "does not contain it");

    await makeSharded(dir, { "w": "../outside.safetensors" });
    await rejectsWith(openSafetensorsCheckpoint(dir), index, "outside the checkpoint directory");

    await writeFile(index, "{\"weight_map\": [1]}");
    await rejectsWith(openSafetensorsCheckpoint(dir), index, "weight_map");
    await writeFile(index, "{not json");
    await rejectsWith(openSafetensorsCheckpoint(dir), index, "not valid JSON");

    // A corrupt shard reports the shard's path.
    await makeSharded(dir);
    await writeFile(join(dir, "model-00002-of-00002.safetensors"), new Uint8Array([1, 2]));
    await rejectsWith(openSafetensorsCheckpoint(dir), "model-00002-of-00002.safetensors", "at least 8");
  });
  await withTmp(async (dir) => {
    await rejectsWith(openSafetensorsCheckpoint(dir), dir, "no model.safetensors or model.safetensors.index.json");
  });
});
