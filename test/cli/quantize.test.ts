// hippo quantize, and --quantize q8 on generate / forward: the stored and the load-time q8 models agree,
// and bad input is one clear line with exit status 1.
import assert from "node:assert/strict";
import { mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fromInt, toFloat32 } from "../../src/io/convert.js";
import { openFileSource } from "../../src/io/node-file-source.js";
import { writeSafetensorsFile } from "../../src/io/node-files.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { conformanceDir } from "../fixtures.js";
import { hippo } from "./run-cli.js";

const tmp = mkdtempSync(join(tmpdir(), "hippo-quantize-cli-"));
const TINY = conformanceDir("mamba-tiny");

function expectError(args: string[], pattern: RegExp): void {
  const r = hippo(...args);
  assert.equal(r.code, 1, `expected exit 1 for ${args.join(" ")}, got ${r.code}\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n");
  assert.equal(lines.length, 1, `expected one line, got:\n${r.stderr}`);
  assert.match(lines[0], /^hippo: /);
  assert.match(lines[0], pattern);
}

async function readLogits(path: string): Promise<Float32Array> {
  const src = await openFileSource(path);
  const { tensors } = await readSafetensors(src);
  await src.close();
  return toFloat32(tensors.get("logits")!, "logits");
}

test("hippo quantize writes a model directory that generate and forward run like --quantize q8", async () => {
  const out = join(tmp, "tiny-q8");
  const q = hippo("quantize", TINY, "--out", out);
  assert.equal(q.code, 0, q.stderr);
  assert.match(q.stderr, /9 matrices quantized to q8/);
  assert.deepEqual(readdirSync(out).sort(), ["config.json", "generation_config.json", "model.safetensors"]);

  const gen = (model: string, ...extra: string[]) => {
    const r = hippo("generate", "--model", model, "--prompt-ids", "1,2,3", "--temperature", "0", "--max-new-tokens", "6", "--json", ...extra);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).tokens as number[];
  };
  assert.deepEqual(gen(out), gen(TINY, "--quantize", "q8"));

  const input = join(tmp, "ids.safetensors");
  await writeSafetensorsFile(input, { input_ids: fromInt([1, 5, 9, 2, 7, 3], [2, 3], "I64") });
  const f1 = hippo("forward", "--model", out, "--input", input, "--output", join(tmp, "a.safetensors"));
  const f2 = hippo("forward", "--model", TINY, "--quantize", "q8", "--input", input, "--output", join(tmp, "b.safetensors"));
  assert.equal(f1.code, 0, f1.stderr);
  assert.equal(f2.code, 0, f2.stderr);
  assert.deepEqual(await readLogits(join(tmp, "a.safetensors")), await readLogits(join(tmp, "b.safetensors")));

  const info = hippo("info", "--model", out, "--backend", "cpu");
  assert.match(info.stdout, /9 × Q8_0/);

  expectError(["quantize", out, "--out", join(tmp, "again")], /already quantized/);
  expectError(["quantize", TINY, "--out", out], /not empty/);
});

test("hippo quantize / --quantize: bad input is one line", () => {
  expectError(["quantize", TINY, "--out", join(tmp, "x"), "--type", "q4"], /unknown quantization type 'q4' \(supported: q8\)/);
  expectError(["quantize", TINY], /--out is required/);
  expectError(["quantize", "--out", join(tmp, "y")], /exactly one model directory/);
  expectError(["quantize", join(tmp, "missing"), "--out", join(tmp, "z")], /does not exist/);
  expectError(["generate", "--model", TINY, "--prompt-ids", "1", "--quantize", "int8"], /--quantize: unknown quantization type 'int8'/);
  expectError(["forward", "--model", TINY, "--quantize", "q2", "--input", "a", "--output", "b"], /unknown quantization type 'q2'/);
});
