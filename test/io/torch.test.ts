import { CONFORMANCE } from "../fixtures.js";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { test } from "node:test";
import { HippoError } from "../../src/errors.js";
import { bufferSource } from "../../src/io/byte-source.js";
import { gather, openTorchCheckpoint, readTorchCheckpoint } from "../../src/io/torch/load.js";
import { unpickle } from "../../src/io/torch/unpickle.js";
import { readEntry, readZipDirectory } from "../../src/io/torch/zip.js";
import { buildZip, type ZipFileSpec } from "./zip-builder.js";

const CONF = CONFORMANCE;

// ---- minimal safetensors reader (reference data only) ----

function readSafetensors(path: string): Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }> {
  const buf = new Uint8Array(readFileSync(path));
  const n = Number(new DataView(buf.buffer, buf.byteOffset).getBigUint64(0, true));
  const header = JSON.parse(new TextDecoder().decode(buf.subarray(8, 8 + n))) as Record<string, unknown>;
  const out = new Map<string, { dtype: string; shape: number[]; bytes: Uint8Array }>();
  for (const [k, v] of Object.entries(header)) {
    if (k === "__metadata__") continue;
    const { dtype, shape, data_offsets } = v as { dtype: string; shape: number[]; data_offsets: [number, number] };
    out.set(k, { dtype, shape, bytes: buf.subarray(8 + n + data_offsets[0], 8 + n + data_offsets[1]) });
  }
  return out;
}

// ---- a tiny pickle writer for hand-made data.pkl files ----

class Pickle {
  private b: number[] = [];
  private enc = new TextEncoder();
  raw(...bytes: number[]): this {
    this.b.push(...bytes);
    return this;
  }
  op(c: string): this {
    return this.raw(c.charCodeAt(0));
  }
  proto(n = 2): this {
    return this.raw(0x80, n);
  }
  global(module: string, name: string): this {
    return this.op("c").raw(...this.enc.encode(`${module}\n${name}\n`));
  }
  str(s: string): this {
    const e = this.enc.encode(s);
    if (e.length < 256) return this.raw(0x8c, e.length, ...e);
    return this.raw(0x58, e.length & 0xff, (e.length >> 8) & 0xff, (e.length >> 16) & 0xff, e.length >>> 24, ...e);
  }
  int(n: number): this {
    if (n >= 0 && n < 256) return this.raw(0x4b, n);
    if (n >= 0 && n < 65536) return this.raw(0x4d, n & 0xff, n >> 8);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setInt32(0, n, true);
    return this.raw(0x4a, ...b);
  }
  tuple(items: number[]): this {
    this.op("(");
    for (const i of items) this.int(i);
    return this.op("t");
  }
  /** ('storage', torch.<cls>, key, 'cpu', numel) BINPERSID */
  storage(key: string, numel: number, cls = "FloatStorage"): this {
    return this.op("(").str("storage").global("torch", cls).str(key).str("cpu").int(numel).op("t").op("Q");
  }
  /** _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
  tensor(key: string, numel: number, offset: number, size: number[], stride: number[], cls = "FloatStorage"): this {
    this.global("torch._utils", "_rebuild_tensor_v2").op("(").storage(key, numel, cls).int(offset);
    this.tuple(size).tuple(stride).raw(0x89).global("collections", "OrderedDict").op(")").op("R");
    return this.op("t").op("R");
  }
  bytes(): Uint8Array {
    return new Uint8Array(this.b);
  }
}

const f32 = (...v: number[]) => new Uint8Array(new Float32Array(v).buffer);
const asF32 = (b: Uint8Array) => Array.from(new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)));

/** A state dict {name: tensor} pickle; `body` emits key/value pairs between MARK and SETITEMS. */
function stateDict(body: (p: Pickle) => void): Uint8Array {
  const p = new Pickle().proto().op("}").op("(");
  body(p);
  return p.op("u").op(".").bytes();
}

function archive(pkl: Uint8Array, data: Record<string, Uint8Array>, extra: ZipFileSpec[] = [], opts = {}): Uint8Array {
  return buildZip(
    [
      { name: "archive/data.pkl", data: pkl },
      ...Object.entries(data).map(([k, v]) => ({ name: `archive/data/${k}`, data: v })),
      { name: "archive/version", data: "3\n" },
      ...extra,
    ],
    opts,
  );
}

async function load(bytes: Uint8Array, name = "evil.pt") {
  return readTorchCheckpoint(bufferSource(name, bytes));
}

async function rejectsWith(p: Promise<unknown>, re: RegExp): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HippoError, `expected HippoError, got ${String(e)}`);
    assert.match(e.message, re);
    return true;
  });
}

// ---- conformance checkpoints ----

test("mamba-tiny-ssm pytorch_model.bin matches mamba-tiny model.safetensors", async () => {
  const ref = readSafetensors(join(CONF, "mamba-tiny", "model.safetensors"));
  const ck = await openTorchCheckpoint(join(CONF, "mamba-tiny-ssm", "pytorch_model.bin"));
  try {
    assert.deepEqual(ck.info("backbone.embedding.weight"), { dtype: "F32", shape: [512, 64] });
    assert.deepEqual(ck.info("lm_head.weight"), { dtype: "F32", shape: [512, 64] });
    const expected = [...ref.keys()].map((k) => (k === "backbone.embeddings.weight" ? "backbone.embedding.weight" : k));
    assert.deepEqual([...ck.names()].sort(), [...expected, "lm_head.weight"].sort());
    const emb = await ck.read("backbone.embedding.weight");
    const head = await ck.read("lm_head.weight");
    assert.deepEqual(head.bytes, emb.bytes);
    for (const [k, r] of ref) {
      const name = k === "backbone.embeddings.weight" ? "backbone.embedding.weight" : k;
      const t = await ck.read(name);
      assert.equal(t.dtype, r.dtype, name);
      assert.deepEqual(t.shape, r.shape, name);
      assert.ok(Buffer.from(t.bytes).equals(Buffer.from(r.bytes)), `bytes of ${name}`);
    }
    assert.deepEqual(head.bytes, ref.get("backbone.embeddings.weight")!.bytes);
    assert.match(ck.describe("lm_head.weight"), /pytorch_model\.bin \(pytorch_model\/data\/0\)/);
  } finally {
    await ck.close();
  }
});

test("h3-lm-tiny model.pt matches model.safetensors (in-memory source too)", async () => {
  const ref = readSafetensors(join(CONF, "h3-lm-tiny", "model.safetensors"));
  const path = join(CONF, "h3-lm-tiny", "model.pt");
  for (const ck of [await openTorchCheckpoint(path), await readTorchCheckpoint(bufferSource(path, readFileSync(path)))]) {
    assert.deepEqual([...ck.names()].sort(), [...ref.keys()].sort());
    for (const [k, r] of ref) {
      const t = await ck.read(k);
      assert.equal(t.dtype, r.dtype, k);
      assert.deepEqual(t.shape, r.shape, k);
      assert.ok(Buffer.from(t.bytes).equals(Buffer.from(r.bytes)), `bytes of ${k}`);
      assert.equal(t.bytes.byteOffset % 4, 0);
    }
    assert.ok(ck.has("lm_head.weight") && !ck.has("nope"));
    assert.throws(() => ck.info("nope"), /no tensor named 'nope'/);
    await ck.close();
  }
});

test("zip directory of a real checkpoint; truncated real pickle is refused", async () => {
  const path = join(CONF, "mamba-tiny-ssm", "pytorch_model.bin");
  const src = bufferSource(path, readFileSync(path));
  const entries = await readZipDirectory(src);
  assert.equal(entries.length, 24);
  const pkl = entries.find((e) => e.name === "pytorch_model/data.pkl")!;
  assert.equal(pkl.method, 0);
  const data = await readEntry(src, pkl);
  assert.equal(data.length, pkl.size);
  assert.equal(data[0], 0x80);
  const cut = data.slice(0, Math.floor(data.length / 2));
  const storages: Record<string, Uint8Array> = {};
  for (const e of entries) if (e.name.includes("/data/")) storages[e.name.split("/").pop()!] = await readEntry(src, e);
  await rejectsWith(load(archive(cut, storages), "cut.bin"), /^cut\.bin: pickle data ends .*truncated/);
});

// ---- hand-made archives ----

test("non-contiguous strides, offsets and broadcast strides are materialized", async () => {
  const pkl = stateDict((p) => {
    p.str("t").tensor("0", 6, 0, [3, 2], [1, 3]); // transpose of [[0,1,2],[3,4,5]]
    p.str("col").tensor("0", 6, 1, [2], [3]); // [1, 4]
    p.str("row").tensor("0", 6, 3, [3], [1]); // contiguous with offset: [3, 4, 5]
    p.str("bcast").tensor("0", 6, 2, [2, 3], [0, 1]); // expand of [2,3,4]
    p.str("scalar").tensor("0", 6, 5, [], []);
    p.str("empty").tensor("0", 6, 0, [0, 4], [4, 1]);
    p.str("sub").tensor("1", 24, 1, [2, 2, 2], [12, 4, 2]); // a strided 3-d slice
  });
  const s1 = new Float32Array(24).map((_, i) => i);
  const ck = await load(archive(pkl, { "0": f32(0, 1, 2, 3, 4, 5), "1": new Uint8Array(s1.buffer) }));
  assert.deepEqual(asF32((await ck.read("t")).bytes), [0, 3, 1, 4, 2, 5]);
  assert.deepEqual((await ck.read("t")).shape, [3, 2]);
  assert.deepEqual(asF32((await ck.read("col")).bytes), [1, 4]);
  assert.deepEqual(asF32((await ck.read("row")).bytes), [3, 4, 5]);
  assert.deepEqual(asF32((await ck.read("bcast")).bytes), [2, 3, 4, 2, 3, 4]);
  assert.deepEqual(asF32((await ck.read("scalar")).bytes), [5]);
  assert.equal((await ck.read("empty")).bytes.length, 0);
  assert.deepEqual(asF32((await ck.read("sub")).bytes), [1, 3, 5, 7, 13, 15, 17, 19]);
});

test("gather handles non-unit innermost stride on 2-byte elements", () => {
  const raw = new Uint8Array([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]); // six 2-byte elements
  assert.deepEqual([...gather(raw, [2, 2], [1, 2], 2)], [0, 1, 4, 5, 2, 3, 6, 7]);
});

test("dtypes from storage classes, parameters, nested state_dict, OrderedDict with _metadata", async () => {
  const p = new Pickle().proto();
  p.op("}").str("state_dict");
  p.global("collections", "OrderedDict").op(")").op("R").op("(");
  p.str("h").tensor("0", 2, 0, [2], [1], "HalfStorage");
  p.str("b").tensor("1", 2, 0, [2], [1], "BFloat16Storage");
  p.str("d").tensor("2", 1, 0, [1], [1], "DoubleStorage");
  p.str("l").tensor("3", 1, 0, [1], [1], "LongStorage");
  p.str("i").tensor("4", 1, 0, [1], [1], "IntStorage");
  p.str("s").tensor("5", 1, 0, [1], [1], "ShortStorage");
  p.str("c").tensor("6", 1, 0, [1], [1], "CharStorage");
  p.str("u").tensor("7", 1, 0, [1], [1], "ByteStorage");
  p.str("q").tensor("8", 1, 0, [1], [1], "BoolStorage");
  p.str("w").global("torch._utils", "_rebuild_parameter").op("(").tensor("9", 1, 0, [1], [1]).raw(0x88);
  p.global("collections", "OrderedDict").op(")").op("R").op("t").op("R");
  p.str("note").str("not a tensor");
  p.op("u");
  // OrderedDict state: {'_metadata': OrderedDict({'': {'version': 1}})}
  p.op("}").str("_metadata").global("collections", "OrderedDict").op(")").op("R");
  p.str("").op("}").str("version").int(1).op("s").op("s").op("s").op("b");
  p.op("s"); // root['state_dict'] = ...
  p.str("epoch").int(3).op("s");
  p.str("opt").op("]").op("(").int(1).raw(0x47, 0x3f, 0xf0, 0, 0, 0, 0, 0, 0).raw(0x8a, 0).op("e").op("s");
  p.op(".");
  const data: Record<string, Uint8Array> = {};
  for (let i = 0; i < 10; i++) data[String(i)] = new Uint8Array(8).fill(i + 1);
  const ck = await load(archive(p.bytes(), data, [{ name: "archive/byteorder", data: "little" }]));
  assert.deepEqual(ck.names(), ["h", "b", "d", "l", "i", "s", "c", "u", "q", "w"]);
  const dtypes = ck.names().map((n) => ck.info(n).dtype);
  assert.deepEqual(dtypes, ["F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL", "F32"]);
  assert.deepEqual([...(await ck.read("h")).bytes], [1, 1, 1, 1]);
  assert.deepEqual([...(await ck.read("d")).bytes], new Array(8).fill(3));
  assert.deepEqual([...(await ck.read("w")).bytes], [10, 10, 10, 10]);
});

test("'model' member, protocol 4 opcodes, torch.dtype / UntypedStorage persistent ids, zip64, alignment, comment", async () => {
  const p = new Pickle().proto(4).raw(0x95, 0, 0, 0, 0, 0, 0, 0, 0); // FRAME (length unchecked)
  p.op("}").raw(0x94).str("model").op("}").raw(0x94).op("(");
  // STACK_GLOBAL + MEMOIZE; persistent id names a torch.dtype instead of a storage class
  p.str("a").str("torch._utils").str("_rebuild_tensor_v2").raw(0x93, 0x94).op("(");
  p.op("(").str("storage").str("torch").str("float16").raw(0x93).str("0").str("cpu").int(2).op("t").op("Q");
  p.int(0).tuple([2]).tuple([1]).raw(0x89).op("}").op("t").op("R");
  p.str("b").op("h").raw(2).op("(");
  p.op("(").str("storage").global("torch.storage", "UntypedStorage").str("1").str("cpu").int(3).op("t").op("Q");
  p.int(0).tuple([3]).tuple([1]).raw(0x89).op("}").op("t").op("R");
  p.op("u").op("s").op(".");
  const bytes = archive(p.bytes(), { "0": new Uint8Array([1, 2, 3, 4]), "1": new Uint8Array([7, 8, 9]) }, [], {
    zip64: true,
    align: 64,
    comment: "PK\x05\x06 a fake end record signature inside the archive comment",
  });
  const ck = await load(bytes);
  assert.deepEqual(ck.names(), ["a", "b"]);
  assert.deepEqual(ck.info("a"), { dtype: "F16", shape: [2] });
  assert.deepEqual(ck.info("b"), { dtype: "U8", shape: [3] });
  assert.deepEqual([...(await ck.read("a")).bytes], [1, 2, 3, 4]);
  assert.deepEqual([...(await ck.read("b")).bytes], [7, 8, 9]);
});

test("deflated entries are inflated", async () => {
  const pkl = stateDict((p) => p.str("x").tensor("0", 4, 0, [2, 2], [2, 1]).str("y").tensor("0", 4, 1, [2], [2]));
  const bytes = buildZip([
    { name: "a/data.pkl", data: pkl, method: 8 },
    { name: "a/data/0", data: f32(1, 2, 3, 4), method: 8 },
  ]);
  const src = bufferSource("z.pt", bytes);
  const entries = await readZipDirectory(src);
  assert.deepEqual(entries.map((e) => e.method), [8, 8]);
  const ck = await readTorchCheckpoint(src);
  assert.deepEqual(asF32((await ck.read("x")).bytes), [1, 2, 3, 4]);
  assert.deepEqual(asF32((await ck.read("y")).bytes), [2, 4]);
});

test("zip errors: unsupported method, not a zip, bad inflate", async () => {
  const pkl = stateDict((p) => p.str("x").tensor("0", 1, 0, [1], [1]));
  await rejectsWith(
    load(buildZip([{ name: "a/data.pkl", data: pkl, method: 12 }]), "bz.pt"),
    /^bz\.pt: zip entry 'a\/data\.pkl' uses compression method 12/,
  );
  await rejectsWith(load(new Uint8Array(100), "zeros.pt"), /^zeros\.pt: not a zip archive/);
  await rejectsWith(load(pkl, "old.pt"), /^old\.pt: not a zip archive.*legacy/);
  const bad = buildZip([{ name: "a/data.pkl", data: pkl, method: 8 }]);
  // Corrupt the deflate stream (starts right after the 30-byte header and name).
  bad.fill(0xff, 30 + "a/data.pkl".length, 30 + "a/data.pkl".length + 8);
  await rejectsWith(load(bad, "bad.pt"), /^bad\.pt: corrupt zip archive/);
  await rejectsWith(load(buildZip([{ name: "x.txt", data: "hi" }]), "nopkl.pt"), /no data\.pkl/);
});

test("malicious globals are refused by name", async () => {
  const cases: [string, Uint8Array][] = [
    ["os.system", new Pickle().proto().global("os", "system").str("echo pwned").raw(0x85).op("R").op(".").bytes()],
    ["builtins.eval", new Pickle().proto().global("builtins", "eval").str("1+1").raw(0x85).op("R").op(".").bytes()],
    ["posix.system", new Pickle().proto(4).str("posix").str("system").raw(0x93).str("id").raw(0x85).op("R").op(".").bytes()],
    [
      "subprocess.Popen",
      stateDict((p) => {
        p.str("w").global("torch._utils", "_rebuild_tensor_v2").op("(").storage("0", 1);
        p.global("subprocess", "Popen").op(")").op("R"); // smuggled in as the storage offset
        p.tuple([1]).tuple([1]).raw(0x89).op("}").op("t").op("R");
      }),
    ],
    ["torch.load", stateDict((p) => p.str("x").global("torch", "load").str("other.pt").raw(0x85).op("R"))],
    ["__builtin__.getattr", new Pickle().proto().global("__builtin__", "getattr").op(".").bytes()],
    // Refused as soon as the opcode is read: the garbage after it is never reached.
    ["os.system", new Pickle().proto().global("os", "system").raw(0xff, 0xff).bytes()],
    ["nt.system", new Pickle().proto().global("nt", "system").bytes()],
  ];
  const benign = new Map<string, unknown>([
    ["torch._utils._rebuild_tensor_v2", () => null],
    ["torch.FloatStorage", "marker"],
    ["collections.OrderedDict", () => new Map()],
  ]);
  for (const [name, pkl] of cases) {
    const src = bufferSource("evil.pt", archive(pkl, { "0": f32(1) }));
    await rejectsWith(readTorchCheckpoint(src), new RegExp(`^evil\\.pt: pickle asks for global '${name.replace(".", "\\.")}'; only tensor rebuilding is allowed$`));
    assert.throws(
      () => unpickle(pkl, { name: "x", globals: benign, persistentLoad: () => null }),
      (e: unknown) => e instanceof HippoError && e.message.includes(`'${name}'`),
    );
  }
});

test("unknown opcodes, truncation, bad structure", async () => {
  const u = (b: Uint8Array) => unpickle(b, { name: "f.pkl", globals: new Map() });
  // INST (0x69) and OBJ (0x6f) can call arbitrary classes: not part of the safe subset.
  const inst = new Pickle().proto().op("(").raw(0x69, ...new TextEncoder().encode("os\nsystem\n")).op(".").bytes();
  assert.throws(() => u(inst), /^HippoError: f\.pkl: unsupported pickle opcode 0x69 \('i'\) at offset 3$/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0xff])), /unsupported pickle opcode 0xff \('\\xff'\) at offset 2/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x4e])), /without a STOP opcode/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x58, 10, 0, 0, 0, 0x41])), /ends unexpectedly.*truncated/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x63, 0x6f, 0x73])), /truncated/);
  assert.throws(() => u(new Uint8Array([0x80, 9, 0x4e, 0x2e])), /protocol 9/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x2e])), /stack underflow/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x68, 5, 0x2e])), /memo slot 5/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x4e, 0x51, 0x2e])), /persistent id/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x29, 0x4e, 0x62, 0x2e])), /BUILD/);
  assert.throws(() => u(new Uint8Array([0x80, 2, 0x4e, 0x29, 0x52, 0x2e])), /non-callable/);
  await rejectsWith(load(archive(new Uint8Array([0x80, 2, 0x4e, 0x2e]), {})), /holds no tensors/);
});

test("unpickle values", () => {
  const v = unpickle(
    new Pickle()
      .proto()
      .op("(")
      .raw(0x8a, 2, 0xff, 0x7f) // LONG1 32767
      .raw(0x8a, 1, 0xff) // LONG1 -1
      .raw(0x8a, 9, 0, 0, 0, 0, 0, 0, 0, 0, 1) // 2^64 → bigint
      .int(-5)
      .raw(0x47, 0x40, 0x09, 0x21, 0xfb, 0x54, 0x44, 0x2d, 0x18) // pi
      .raw(0x43, 2, 0xaa, 0xbb) // SHORT_BINBYTES
      .raw(0x55, 2, 0x68, 0x69) // SHORT_BINSTRING
      .raw(0x4e, 0x88, 0x89)
      .raw(0x8f, 0x28).int(7).raw(0x90) // {7}
      .op("(").int(1).int(2).op("d") // {1: 2}
      .op("l")
      .op(".")
      .bytes(),
    { name: "v", globals: new Map() },
  );
  assert.deepEqual(v, [32767, -1, 2n ** 64n, -5, Math.PI, new Uint8Array([0xaa, 0xbb]), "hi", null, true, false, new Set([7]), new Map([[1, 2]])]);
});

test("missing data entry, slice outside its entry, big-endian", async () => {
  const pkl = stateDict((p) => p.str("x").tensor("7", 4, 0, [4], [1]));
  await rejectsWith(load(archive(pkl, { "0": f32(1) })), /^evil\.pt: data\.pkl refers to storage 'archive\/data\/7', which the archive lacks$/);
  const big = stateDict((p) => p.str("x").tensor("0", 4, 2, [2, 2], [2, 1]));
  await rejectsWith(
    load(archive(big, { "0": f32(1, 2, 3, 4) })),
    /^evil\.pt: tensor 'x' F32 \[2, 2\] needs bytes \[8, 24\) of 'archive\/data\/0', which holds only 16 bytes$/,
  );
  const ok = stateDict((p) => p.str("x").tensor("0", 1, 0, [1], [1]));
  await rejectsWith(load(archive(ok, { "0": f32(1) }, [{ name: "archive/byteorder", data: "big" }])), /byte order is 'big'/);
});
