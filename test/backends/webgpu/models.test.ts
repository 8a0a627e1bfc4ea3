// Every language-model conformance fixture on WebGPU: full-forward logits within 1e-4 relative L2 of the
// reference, and greedy generation (prefill, then recurrent steps with the token chosen on the GPU)
// reproducing the reference ids exactly. H3 (h3-lm-tiny) included.
import assert from "node:assert/strict";
import { basename } from "node:path";
import { test } from "node:test";
import { generateAll } from "../../../src/generate/generate.js";
import { loadModel } from "../../../src/models/load.js";
import { tensor } from "../../../src/ops/index.js";
import { conformanceDir, modelFixtureDirs, readReferenceIo, relativeL2 } from "../../fixtures.js";
import { gpu, skip } from "./setup.js";

const dirs = [...modelFixtureDirs(), conformanceDir("h3-lm-tiny")];

for (const dir of dirs) {
  test(`${basename(dir)} on WebGPU: logits within 1e-4 and greedy ids exact`, { skip }, async () => {
    const { model } = await loadModel(dir, { backend: gpu! });
    const io = await readReferenceIo(dir);
    const out = model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32", backend: gpu! }), null, { logits: "all" });
    assert.deepEqual(out.logits!.shape, [...io.inputShape, model.vocabSize]);
    const err = relativeL2(await out.logits!.readFloat32(), io.logits);
    assert.ok(err < 1e-4, `relative L2 error ${err}`);
    out.logits!.dispose();
    out.hidden.dispose();
    out.state.dispose();
    const expected = io.greedyIds.slice(io.promptIds.length);
    const [result] = await generateAll(model, [io.promptIds], { maxNewTokens: expected.length, sampling: { temperature: 0 }, eosTokenId: null });
    assert.deepEqual(result.tokens, expected);
    model.dispose();
  });
}

test("batched generation on WebGPU (pipelined, ids sampled on the GPU): rows ending at different steps", { skip }, async () => {
  const dir = conformanceDir("mamba-tiny");
  const cpuModel = (await loadModel(dir)).model;
  const gpuModel = (await loadModel(dir, { backend: gpu! })).model;
  const prompts = [[5, 6, 7, 8, 9, 10, 11], [300], [42, 43, 44]];
  const greedy = { maxNewTokens: 12, sampling: { temperature: 0 } };
  const free = await generateAll(cpuModel, prompts, { ...greedy, eosTokenId: null });
  // An end-of-sequence token that some rows produce early: they leave the batch mid-way.
  const eos = free[1].tokens[3];
  for (const eosTokenId of [null, eos]) {
    const want = await generateAll(cpuModel, prompts, { ...greedy, eosTokenId });
    const got = await generateAll(gpuModel, prompts, { ...greedy, eosTokenId });
    assert.deepEqual(got.map((r) => r.tokens), want.map((r) => r.tokens), `eos ${eosTokenId}`);
    assert.deepEqual(got.map((r) => r.finishReason), want.map((r) => r.finishReason));
  }
  // Sampling: the same seed gives the same tokens (the redone step after a row ends reuses its random numbers).
  const sampled = { maxNewTokens: 10, sampling: { temperature: 1.5, topK: 50, topP: 0.9 }, seed: 3, eosTokenId: eos };
  const a = await generateAll(gpuModel, prompts, sampled);
  const b = await generateAll(gpuModel, prompts, sampled);
  assert.deepEqual(a, b);
  cpuModel.dispose();
  gpuModel.dispose();
});
