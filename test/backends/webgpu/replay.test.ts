// Decoding by replaying a captured step (src/generate/replay.ts): the same tokens as stepping the model —
// the reference fixtures' greedy ids, the CPU backend's batched ids with rows leaving the batch, the same
// sampled ids for a seed — with the replays actually run, attention's included (KV caches appended in
// place, replays stopping where one is full); buffers a replay names are not handed out by the pool.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generateAll } from "../../../src/generate/generate.js";
import { loadModel } from "../../../src/models/load.js";
import { InferenceState } from "../../../src/models/state.js";
import { readSafetensors } from "../../../src/io/safetensors.js";
import { bufferSource } from "../../../src/io/byte-source.js";
import { tensor } from "../../../src/ops/index.js";
import { conformanceDir, readReferenceIo } from "../../fixtures.js";
import { gpu, skip } from "./setup.js";

const greedy = { sampling: { temperature: 0 } };

for (const name of ["mamba-tiny", "mamba2-tiny"]) {
  test(`${name}: replayed decoding gives the reference greedy ids and the same sampled ids as stepping`, { skip }, async () => {
    const dir = conformanceDir(name);
    const { model } = await loadModel(dir, { backend: gpu! });
    const io = await readReferenceIo(dir);
    const expected = io.greedyIds.slice(io.promptIds.length);
    assert.ok(expected.length >= 5, `${name}: the fixture has ${expected.length} greedy ids; replays start at the fourth`);
    const before = gpu!.rt.replayCount;
    const [result] = await generateAll(model, [io.promptIds], { ...greedy, maxNewTokens: expected.length, eosTokenId: null });
    // The first token comes from the prefill, the second and third from captured steps; the last step runs no step ahead.
    assert.equal(gpu!.rt.replayCount - before, expected.length - 3, "replays run");
    assert.deepEqual(result.tokens, expected);

    const prompts = [io.promptIds, [7, 8, 9]];
    const sampled = { maxNewTokens: 20, sampling: { temperature: 1.3, topK: 40, topP: 0.95 }, seed: 11, eosTokenId: null };
    const stepped = await generateAll(model, prompts, { ...sampled, replay: false });
    const mark = gpu!.rt.replayCount;
    const replayed = await generateAll(model, prompts, sampled);
    assert.equal(gpu!.rt.replayCount - mark, 17);
    assert.deepEqual(replayed, stepped);
    model.dispose();
  });
}

test("replayed decoding: rows leaving the batch (back to stepping from the right state), then replaying again", { skip }, async () => {
  const dir = conformanceDir("mamba2-tiny");
  const cpuModel = (await loadModel(dir)).model;
  const gpuModel = (await loadModel(dir, { backend: gpu! })).model;
  const prompts = [[5, 6, 7, 8, 9, 10, 11], [300], [42, 43, 44], [1, 2]];
  const free = await generateAll(cpuModel, prompts, { ...greedy, maxNewTokens: 24, eosTokenId: null });
  // An end-of-sequence token the last row produces mid-way (after replays began); the others run on.
  const eos = free[3].tokens[8];
  const want = await generateAll(cpuModel, prompts, { ...greedy, maxNewTokens: 24, eosTokenId: eos });
  assert.deepEqual(want.map((r) => r.finishReason).filter((f) => f === "length").length >= 2, true, "two rows run to the end");
  const firstEnd = Math.min(...want.filter((r) => r.finishReason === "eos").map((r) => r.tokens.length));
  assert.ok(firstEnd >= 6 && firstEnd <= 12, `the first row ends after ${firstEnd} tokens`);
  const before = gpu!.rt.replayCount;
  const got = await generateAll(gpuModel, prompts, { ...greedy, maxNewTokens: 24, eosTokenId: eos });
  assert.deepEqual(got.map((r) => r.tokens), want.map((r) => r.tokens));
  assert.deepEqual(got.map((r) => r.finishReason), want.map((r) => r.finishReason));
  // Before the first row ends at most firstEnd − 2 replays run (one of them dropped); the rest came after it.
  const replays = gpu!.rt.replayCount - before;
  assert.ok(replays >= firstEnd + 4, `${replays} replays: replaying resumed after the batch shrank`);
  cpuModel.dispose();
  gpuModel.dispose();
});

// Attention (H3's hybrid, Nemotron-H's GQA layer): its KV cache is appended in place with spare capacity,
// so its steps match and replay too, each replay uploading the rows' positions.
for (const name of ["h3-lm-tiny", "hybrid-tiny"]) {
  test(`${name}: attention steps replay (KV cache appended in place): reference greedy ids, CPU batches, sampling`, { skip }, async () => {
    const dir = conformanceDir(name);
    const cpuModel = (await loadModel(dir)).model;
    const { model } = await loadModel(dir, { backend: gpu! });
    const io = await readReferenceIo(dir);
    const expected = io.greedyIds.slice(io.promptIds.length);
    assert.ok(expected.length >= 6, `${name}: the fixture has ${expected.length} greedy ids`);
    let before = gpu!.rt.replayCount;
    const [result] = await generateAll(model, [io.promptIds], { ...greedy, maxNewTokens: expected.length, eosTokenId: null });
    // The first step copies the prefilled cache into one with room; the next two append in place and match.
    assert.equal(gpu!.rt.replayCount - before, expected.length - 4, "replays run");
    assert.deepEqual(result.tokens, expected);

    // Rows of different lengths in one batch, a row leaving it mid-way, against the CPU.
    const prompts = [[5, 6, 7, 8, 9, 10, 11], [300], [42, 43, 44]];
    const free = await generateAll(cpuModel, prompts, { ...greedy, maxNewTokens: 20, eosTokenId: null });
    const eos = free[2].tokens[9];
    const want = await generateAll(cpuModel, prompts, { ...greedy, maxNewTokens: 20, eosTokenId: eos });
    before = gpu!.rt.replayCount;
    const got = await generateAll(model, prompts, { ...greedy, maxNewTokens: 20, eosTokenId: eos });
    assert.deepEqual(got, want);
    assert.ok(gpu!.rt.replayCount - before >= 8, `${gpu!.rt.replayCount - before} replays`);

    // Sampling: the same ids replayed as stepped, with caches so small that replays stop where one is
    // full, the model steps (the cache grows) and replaying starts again.
    const sampled = { maxNewTokens: 30, sampling: { temperature: 1.3, topK: 40, topP: 0.95 }, seed: 5, eosTokenId: null };
    const stepped = await generateAll(model, prompts, { ...sampled, replay: false });
    const reserve = gpu!.kvReserveRows;
    gpu!.kvReserveRows = 6;
    try {
      before = gpu!.rt.replayCount;
      const replayed = await generateAll(model, prompts, sampled);
      const replays = gpu!.rt.replayCount - before;
      // 29 steps from position 7 on: caches of 14, 22 and 34 entries, each taking a copying step and two
      // captured ones before its replays (then the 36th entry needs a fourth copy).
      assert.ok(replays >= 10 && replays <= 29 - 9, `${replays} replays`);
      assert.deepEqual(replayed, stepped);
    } finally {
      gpu!.kvReserveRows = reserve;
    }
    cpuModel.dispose();
    model.dispose();
  });
}

test("buffer pool: a buffer a step graph names is not handed out until the graph is disposed", { skip }, async () => {
  const rt = gpu!.rt;
  rt.trim();
  const a = rt.alloc(4096), b = rt.alloc(4096);
  rt.releaseBuffer(b);
  rt.pin([a, b]); // b was pooled: pinning takes it out
  rt.releaseBuffer(a);
  const c = rt.alloc(4096);
  assert.ok(c !== a && c !== b, "neither pinned buffer is reused");
  rt.unpin([a, b]);
  const reused = new Set([rt.alloc(4096), rt.alloc(4096)]);
  assert.ok(reused.has(a) && reused.has(b), "both are pooled again once unpinned");
  for (const x of [...reused, c]) rt.releaseBuffer(x);
});

test("a decoded state's KV caches (with spare entries) serialize cut to the furthest position and restore", { skip }, async () => {
  const { model } = await loadModel(conformanceDir("hybrid-tiny"), { backend: gpu! });
  const attention = model.initialState(1).caches.findIndex((names) => names.includes("k"));
  assert.ok(attention >= 0, "hybrid-tiny has an attention layer");
  const prompts = tensor(Int32Array.of(5, 6, 7, 8, 9, 1, 2, 3), [2, 4], { backend: gpu!, dtype: "i32" });
  let state = model.forward(prompts, null, { logits: "none" }).state;
  for (const id of [11, 12, 13]) {
    const next = model.step(tensor(Int32Array.of(id, id + 1), [2, 1], { backend: gpu!, dtype: "i32" }), state);
    next.logits.dispose();
    state.dispose();
    state = next.state;
  }
  assert.deepEqual(state.positions, [7, 7]);
  assert.ok(state.layers[attention].k.shape[1] > 7, "the appends left spare entries");
  const bytes = await state.serialize();
  const { tensors } = await readSafetensors(bufferSource("state", bytes));
  assert.deepEqual(tensors.get(`layers.${attention}.k`)!.shape.slice(0, 2), [2, 7]);
  assert.deepEqual(tensors.get(`layers.${attention}.v`)!.shape.slice(0, 2), [2, 7]);
  const restored = await InferenceState.deserialize(bytes, gpu!, model.initialState(1));
  const next = tensor(Int32Array.of(20, 21), [2, 1], { backend: gpu!, dtype: "i32" });
  assert.deepEqual(await model.step(next, restored).logits.readFloat32(), await model.step(next, state).logits.readFloat32());
  // A cache shorter than the positions it claims is refused by name.
  const short = await InferenceState.deserialize(bytes, gpu!, model.initialState(1));
  const cut = new InferenceState(short.layers, [9, 7], short.modelKey, short.caches);
  await assert.rejects(InferenceState.deserialize(await cut.serialize(), gpu!, model.initialState(1), "short.state"),
    new RegExp(`short\\.state: tensor 'layers\\.${attention}\\.k' has shape \\[2, 7,`));
  model.dispose();
});
