// The WebGPU backend has no q8 kernels yet: q8 weights, quantized at load or stored so, are refused with
// an error naming the tensor and the dtype (and a direct upload names the dtype and shape).
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { HippoError } from "../../../src/errors.js";
import { loadModel } from "../../../src/models/load.js";
import { quantizeModelDir } from "../../../src/models/quantize.js";
import { quantizeQ8 } from "../../../src/tensor/q8.js";
import { conformanceDir } from "../../fixtures.js";
import { gpu, skip } from "./setup.js";

const refusal = (...fragments: string[]) => (e: unknown) => {
  assert.ok(e instanceof HippoError, `expected a HippoError, got ${e}`);
  for (const f of fragments) assert.ok(e.message.includes(f), `'${e.message}' lacks '${f}'`);
  return true;
};

test("webgpu refuses q8 weights, naming the tensor and dtype", { skip }, async () => {
  assert.throws(() => gpu!.upload(quantizeQ8(new Float32Array(64), 2, 32), [2, 32], "q8"), refusal("webgpu", "q8", "[2, 32]", "--backend cpu"));
  const dir = conformanceDir("mamba-tiny");
  await assert.rejects(loadModel(dir, { backend: gpu!, quantize: "q8" }), refusal("backbone.embeddings.weight", "q8 [512, 64]", "not supported"));
  const q = join(mkdtempSync(join(tmpdir(), "hippo-q8-gpu-")), "q8");
  await quantizeModelDir(dir, q);
  await assert.rejects(loadModel(q, { backend: gpu! }), refusal("model.safetensors", "backbone.embeddings.weight", "q8"));
});
