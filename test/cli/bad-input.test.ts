import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fromFloat32, fromInt } from "../../src/io/convert.js";
import { writeSafetensorsFile } from "../../src/io/node-files.js";
import { openFileSource } from "../../src/io/node-file-source.js";
import { encodeSafetensors, readSafetensors } from "../../src/io/safetensors.js";
import type { RawTensor } from "../../src/io/raw-tensor.js";
import { buildZip } from "../io/zip-builder.js";
import { conformanceDir } from "../fixtures.js";
import { hippo } from "./run-cli.js";

const tmp = mkdtempSync(join(tmpdir(), "hippo-bad-"));
const TINY = conformanceDir("mamba-tiny");
const DEMO = "models/hippo-demo";

/** Every user error: exit code 1, one line on stderr naming the problem, no stack trace. */
function expectError(args: string[], pattern: RegExp): void {
  const r = hippo(...args);
  assert.equal(r.code, 1, `expected exit 1 for ${args.join(" ")}, got ${r.code}\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^hippo: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.match(lines[0], pattern);
}

let counter = 0;
/** A model directory with mamba-tiny's config (optionally edited) and the given weights file bytes. */
function modelDir(config: Record<string, unknown> | null, weights: { name: string; bytes: Uint8Array } | null): string {
  const dir = join(tmp, `m${counter++}`);
  mkdirSync(dir);
  if (config) writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  if (weights) writeFileSync(join(dir, weights.name), weights.bytes);
  return dir;
}

const tinyConfig = (): Record<string, unknown> => JSON.parse(readFileSync(join(TINY, "config.json"), "utf8"));

async function tinyTensors(): Promise<Map<string, RawTensor>> {
  const src = await openFileSource(join(TINY, "model.safetensors"));
  const { tensors } = await readSafetensors(src);
  await src.close();
  return tensors;
}

/** A safetensors file whose header is `header` (JSON text) and whose data section is `dataBytes` long. */
function rawSafetensors(header: string, dataBytes: number, declaredLength?: number): Uint8Array {
  const h = new TextEncoder().encode(header);
  const out = new Uint8Array(8 + h.length + dataBytes);
  new DataView(out.buffer).setBigUint64(0, BigInt(declaredLength ?? h.length), true);
  out.set(h, 8);
  return out;
}

test("missing model directory, config and weights", () => {
  expectError(["generate", "--model", join(tmp, "nope"), "--prompt-ids", "1"], /nope.*does not exist/);
  expectError(["info", "--model", modelDir(null, null)], /missing config\.json/);
  expectError(["info", "--model", modelDir(tinyConfig(), null)], /no weights found/);
});

test("unknown model_type, bad config JSON, config contradicting the weights", async () => {
  expectError(["info", "--model", modelDir({ ...tinyConfig(), model_type: "gpt9" }, null)], /unknown model_type 'gpt9'/);
  const dir = modelDir(null, null);
  writeFileSync(join(dir, "config.json"), "{ not json");
  expectError(["info", "--model", dir], /config\.json: not valid JSON/);
  const bytes = encodeSafetensors(await tinyTensors());
  expectError(["info", "--model", modelDir({ ...tinyConfig(), hidden_size: 96 }, { name: "model.safetensors", bytes })],
    /backbone\.embeddings\.weight' has shape \[512, 64\], expected \[512, 96\]/);
});

test("a missing or mis-shaped tensor", async () => {
  const tensors = await tinyTensors();
  tensors.delete("backbone.layers.1.mixer.x_proj.weight");
  expectError(["info", "--model", modelDir(tinyConfig(), { name: "model.safetensors", bytes: encodeSafetensors(tensors) })],
    /missing tensor 'backbone\.layers\.1\.mixer\.x_proj\.weight'.*\[36, 128\]/);
  const reshaped = await tinyTensors();
  reshaped.set("backbone.layers.0.mixer.D", fromFloat32(new Float32Array(127), [127], "F32"));
  expectError(["info", "--model", modelDir(tinyConfig(), { name: "model.safetensors", bytes: encodeSafetensors(reshaped) })],
    /model\.safetensors: tensor 'backbone\.layers\.0\.mixer\.D' has shape \[127\], expected \[128\]/);
});

test("truncated and corrupt safetensors files", () => {
  const cases: [Uint8Array, RegExp][] = [
    [new Uint8Array(5), /model\.safetensors.*5 bytes, need at least 8/],
    [rawSafetensors("{}", 0, 4096), /model\.safetensors.*header/i],
    [rawSafetensors('{"a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}', 8), /model\.safetensors.*'?a'?.*(outside|beyond|past)/i],
    [rawSafetensors('{"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}, "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}', 12), /model\.safetensors.*overlap/i],
    [rawSafetensors("{ this is not json", 0), /model\.safetensors.*JSON/i],
    [rawSafetensors('{"a": {"dtype": "Q4", "shape": [2], "data_offsets": [0, 2]}}', 2), /model\.safetensors.*Q4/],
  ];
  for (const [bytes, pattern] of cases) {
    expectError(["info", "--model", modelDir(tinyConfig(), { name: "model.safetensors", bytes })], pattern);
  }
});

test("a pickle that asks for anything but tensor rebuilding is refused", () => {
  // PROTO 2; GLOBAL 'os system'; SHORT_BINUNICODE 'echo pwned'; TUPLE1; REDUCE; STOP
  const evil = Uint8Array.from([0x80, 2, ...Buffer.from("cos\nsystem\n"), 0x8c, 10, ...Buffer.from("echo pwned"), 0x85, 0x52, 0x2e]);
  const zip = buildZip([{ name: "archive/data.pkl", data: evil }, { name: "archive/version", data: "3\n" }]);
  const ssmConfig = JSON.parse(readFileSync(join(conformanceDir("mamba-tiny-ssm"), "config.json"), "utf8"));
  expectError(["generate", "--model", modelDir(ssmConfig, { name: "pytorch_model.bin", bytes: zip }), "--prompt-ids", "1"],
    /pytorch_model\.bin.*'os\.system'.*only tensor rebuilding/);
});

test("token ids outside the vocabulary, empty prompts, bad --max-new-tokens, unknown flags", async () => {
  expectError(["generate", "--model", TINY, "--prompt-ids", "1,512"], /token id 512 is outside the vocabulary \[0, 512\)/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1,x"], /'x' is not a token id/);
  expectError(["generate", "--model", TINY, "--prompt-ids", ""], /prompt-ids is empty/);
  expectError(["generate", "--model", DEMO, "--prompt", ""], /prompt 1 is empty/);
  expectError(["generate", "--model", TINY], /give --prompt/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--max-new-tokens", "0"], /max-new-tokens must be at least 1, got 0/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--max-new-tokens", "-3"], /max-new-tokens must be at least 1/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--max-new-tokens", "ten"], /max-new-tokens must be an integer/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--temperature", "-1"], /temperature/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--top-p", "1.5"], /top-p/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--frobnicate"], /Unknown option '--frobnicate'/);
  expectError(["info", "--model", TINY, "--verbose"], /Unknown option '--verbose'/);
  expectError(["generate", "--model", TINY, "--prompt", "hi"], /no tokenizer\.json; pass --tokenizer/);
  expectError(["generate", "--model", TINY, "--prompt", "hi", "--tokenizer", join(tmp, "none.json")], /none\.json/);
  expectError(["frobnicate"], /unknown command 'frobnicate'/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--stop", "x"], /stop strings need a tokenizer/);
});

test("forward: missing input_ids, wrong rank, float ids, ids out of range, missing flags", async () => {
  const out = join(tmp, "out.safetensors");
  const write = async (name: string, tensors: Record<string, RawTensor>) => {
    const path = join(tmp, name);
    await writeSafetensorsFile(path, tensors);
    return path;
  };
  expectError(["forward", "--model", TINY, "--input", await write("a.safetensors", { ids: fromInt([1, 2], [1, 2], "I64") }), "--output", out],
    /a\.safetensors: no tensor 'input_ids' \(found: ids\)/);
  expectError(["forward", "--model", TINY, "--input", await write("b.safetensors", { input_ids: fromInt([1, 2], [2], "I64") }), "--output", out],
    /input_ids has shape \[2\], expected \[batch, length\]/);
  expectError(["forward", "--model", TINY, "--input", await write("c.safetensors", { input_ids: fromFloat32(Float32Array.of(1, 2), [1, 2], "F32") }), "--output", out],
    /input_ids.*integer/);
  expectError(["forward", "--model", TINY, "--input", await write("d.safetensors", { input_ids: fromInt([1, 2, 3, 999], [2, 2], "I64") }), "--output", out],
    /input_ids\[1, 1\] = 999 is outside the vocabulary \[0, 512\)/);
  expectError(["forward", "--model", TINY, "--input", join(tmp, "missing.safetensors"), "--output", out], /missing\.safetensors/);
  expectError(["forward", "--model", TINY, "--output", out], /--input is required/);
});
