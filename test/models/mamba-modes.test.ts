import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../src/generate/rng.js";
import { getBackend } from "../../src/backends/registry.js";
import { memoryTensorSource } from "../../src/io/memory-source.js";
import { initMambaWeights, mambaConfig } from "../../src/models/mamba/init.js";
import { buildMambaLM } from "../../src/models/mamba/model.js";
import type { SequenceLM } from "../../src/models/sequence-lm.js";
import { InferenceState } from "../../src/models/state.js";
import { WeightLoader } from "../../src/models/weights.js";
import { tensor } from "../../src/ops/index.js";
import { relativeL2 } from "../fixtures.js";
import { recurrentLogits } from "./recurrent.js";

async function randomModel(seed: number, shape = { dModel: 24, nLayer: 2, vocabSize: 37, dState: 5, dConv: 3 }): Promise<SequenceLM> {
  const config = mambaConfig(shape);
  const weights = new WeightLoader(memoryTensorSource(initMambaWeights(config, seed)), getBackend("cpu"), "random");
  return buildMambaLM(config, weights);
}

function randomIds(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rng.nextFloat() * vocab));
}

const ids = (data: Int32Array, shape: number[]) => tensor(data, shape, { dtype: "i32" });

test("parallel and recurrent modes agree on random models and lengths 1..60", async () => {
  const rng = new Rng(42);
  for (let trial = 0; trial < 6; trial++) {
    const model = await randomModel(100 + trial);
    const L = trial === 0 ? 1 : 1 + Math.floor(rng.nextFloat() * 60);
    const tokens = randomIds(rng, L, model.vocabSize);
    const parallel = await model.forward(ids(tokens, [1, L]), null, { logits: "all" }).logits!.readFloat32();
    const recurrent = await recurrentLogits(model, tokens);
    const err = relativeL2(recurrent, parallel);
    assert.ok(err < 1e-5, `L=${L}: relative L2 ${err}`);
  }
});

test("prefill in pieces with the state carried equals one prefill, and the final states agree", async () => {
  const model = await randomModel(7);
  const rng = new Rng(3);
  const L = 41;
  const tokens = randomIds(rng, L, model.vocabSize);
  const whole = model.forward(ids(tokens, [1, L]), null, { logits: "all" });
  const a = model.forward(ids(tokens.slice(0, 17), [1, 17]), null, { logits: "all" });
  const b = model.forward(ids(tokens.slice(17), [1, L - 17]), a.state, { logits: "all" });
  const wholeLogits = await whole.logits!.readFloat32();
  const V = model.vocabSize;
  assert.ok(relativeL2(await b.logits!.readFloat32(), wholeLogits.subarray(17 * V)) < 1e-5);
  assert.deepEqual(b.state.positions, [L]);
  for (let i = 0; i < whole.state.layers.length; i++) {
    for (const key of ["conv", "ssm"]) {
      const err = relativeL2(await b.state.layers[i][key].readFloat32(), await whole.state.layers[i][key].readFloat32());
      assert.ok(err < 1e-5, `layer ${i} ${key}: ${err}`);
    }
  }
});

test("'last' logits equal the last row of 'all' logits, per batch row", async () => {
  const model = await randomModel(9);
  const tokens = randomIds(new Rng(1), 2 * 13, model.vocabSize);
  const all = await model.forward(ids(tokens, [2, 13]), null, { logits: "all" }).logits!.readFloat32();
  const last = await model.forward(ids(tokens, [2, 13]), null, { logits: "last" }).logits!.readFloat32();
  const V = model.vocabSize;
  for (let b = 0; b < 2; b++) {
    assert.ok(relativeL2(last.subarray(b * V, (b + 1) * V), all.subarray((b * 13 + 12) * V, (b * 13 + 13) * V)) < 1e-6);
  }
});

test("state clone, serialize and restore: continuing from a restored state equals continuing the original", async () => {
  const model = await randomModel(11);
  const rng = new Rng(5);
  const prompt = randomIds(rng, 23, model.vocabSize);
  const next = randomIds(rng, 9, model.vocabSize);
  const prefill = model.forward(ids(prompt, [1, 23]), null, { logits: "none" });
  const clone = prefill.state.clone();
  const bytes = await prefill.state.serialize();
  const restored = await InferenceState.deserialize(bytes, getBackend("cpu"), model.initialState(1), "cached.state");
  assert.deepEqual(restored.positions, [23]);
  // An SSM's state does not grow with the prompt: it is exactly the per-layer conv + SSM tensors.
  assert.equal(restored.bytesPerSequence, 2 * (2 * 48 + 48 * 5) * 4);
  const original = await model.forward(ids(next, [1, 9]), prefill.state, { logits: "all" }).logits!.readFloat32();
  for (const s of [clone, restored]) {
    const again = await model.forward(ids(next, [1, 9]), s, { logits: "all" }).logits!.readFloat32();
    assert.deepEqual(Array.from(again), Array.from(original));
  }
});

test("restoring a state into a different model is refused", async () => {
  const model = await randomModel(11);
  const other = await randomModel(11, { dModel: 32, nLayer: 2, vocabSize: 37, dState: 5, dConv: 3 });
  const bytes = await model.initialState(1).serialize();
  await assert.rejects(InferenceState.deserialize(bytes, getBackend("cpu"), other.initialState(1), "x.state"), /belongs to model/);
  await assert.rejects(InferenceState.deserialize(new Uint8Array(16), getBackend("cpu"), model.initialState(1), "junk.state"), /junk\.state/);
});

test("stacked states decode like separate rows", async () => {
  const model = await randomModel(13);
  const rng = new Rng(8);
  const p1 = randomIds(rng, 5, model.vocabSize);
  const p2 = randomIds(rng, 12, model.vocabSize);
  const s1 = model.forward(ids(p1, [1, 5]), null, { logits: "none" }).state;
  const s2 = model.forward(ids(p2, [1, 12]), null, { logits: "none" }).state;
  const stacked = InferenceState.stack([s1, s2]);
  assert.deepEqual(stacked.positions, [5, 12]);
  const both = await model.step(ids(Int32Array.of(3, 4), [2, 1]), stacked).logits.readFloat32();
  const one = await model.step(ids(Int32Array.of(3), [1, 1]), s1).logits.readFloat32();
  const two = await model.step(ids(Int32Array.of(4), [1, 1]), s2).logits.readFloat32();
  const V = model.vocabSize;
  assert.ok(relativeL2(both.subarray(0, V), one) < 1e-6);
  assert.ok(relativeL2(both.subarray(V), two) < 1e-6);
});
