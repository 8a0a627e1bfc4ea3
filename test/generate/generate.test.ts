import assert from "node:assert/strict";
import { test } from "node:test";
import { generate, generateAll, PREFILL_GROUP_TOKENS, prefillGroups } from "../../src/generate/generate.js";
import { getBackend } from "../../src/backends/registry.js";
import { HippoError } from "../../src/errors.js";
import { memoryTensorSource } from "../../src/io/memory-source.js";
import { initMambaWeights, mambaConfig } from "../../src/models/mamba/init.js";
import { buildMambaLM } from "../../src/models/mamba/model.js";
import type { SequenceLM } from "../../src/models/sequence-lm.js";
import { WeightLoader } from "../../src/models/weights.js";
import { tensor } from "../../src/ops/index.js";
import { tokenizerFromJson } from "../../src/tokenizer/tokenizer.js";
import { byteLevelTokenizerJson, BYTE_EOS_ID } from "../../src/tokenizer/byte-level.js";

async function byteModel(seed = 3): Promise<SequenceLM> {
  const config = { ...mambaConfig({ dModel: 32, nLayer: 2, vocabSize: 257 }), eosTokenId: BYTE_EOS_ID };
  return buildMambaLM(config, new WeightLoader(memoryTensorSource(initMambaWeights(config, seed)), getBackend("cpu"), "random"));
}

const greedy = { temperature: 0 };

test("a row ends at the end-of-sequence token, which is returned but not decoded", async () => {
  const model = await byteModel();
  const tokenizer = tokenizerFromJson(byteLevelTokenizerJson());
  const [free] = await generateAll(model, [[65, 66]], { maxNewTokens: 6, sampling: greedy, eosTokenId: null, tokenizer });
  assert.equal(free.finishReason, "length");
  assert.equal(free.tokens.length, 6);
  // Declare the third greedy token the end-of-sequence token: generation stops right there.
  const [stopped] = await generateAll(model, [[65, 66]], { maxNewTokens: 6, sampling: greedy, eosTokenId: free.tokens[2], tokenizer });
  assert.deepEqual(stopped.tokens, free.tokens.slice(0, 3));
  assert.equal(stopped.finishReason, "eos");
  assert.equal(stopped.text, tokenizer.decode(free.tokens.slice(0, 2)));
});

test("rows that finish leave the batch; the others go on unchanged", async () => {
  const model = await byteModel(4);
  const prompts = [[1, 2, 3], [40, 41], [100, 101, 102, 103, 104]];
  const alone = await Promise.all(prompts.map(async (p) => (await generateAll(model, [p], { maxNewTokens: 10, sampling: greedy, eosTokenId: null }))[0]));
  const eos = alone[1].tokens[1]; // row 1 finishes after two tokens
  const together = await generateAll(model, prompts, { maxNewTokens: 10, sampling: greedy, eosTokenId: eos });
  together.forEach((r, i) => {
    const cut = alone[i].tokens.indexOf(eos);
    assert.deepEqual(r.tokens, cut >= 0 ? alone[i].tokens.slice(0, cut + 1) : alone[i].tokens, `row ${i}`);
  });
});

test("prompts of one length are prefilled in one forward (runs of consecutive rows, bounded tokens) and give each prompt's own tokens", async () => {
  const p = (n: number) => Array.from({ length: n }, (_, i) => 1 + i);
  assert.deepEqual(prefillGroups([p(3), p(3), p(2), p(3), p(3), p(3)], false), [[0, 2], [2, 1], [3, 3]]);
  assert.deepEqual(prefillGroups([p(3), p(3)], true), [[0, 1], [1, 1]]);
  const long = PREFILL_GROUP_TOKENS / 2 + 1;
  assert.deepEqual(prefillGroups([p(long), p(long)], false), [[0, 1], [1, 1]]);
  assert.deepEqual(prefillGroups([p(PREFILL_GROUP_TOKENS / 2), p(PREFILL_GROUP_TOKENS / 2), p(PREFILL_GROUP_TOKENS / 2)], false), [[0, 2], [2, 1]]);

  const model = await byteModel(7);
  const prompts = [[5, 6, 7, 8], [9, 10, 11, 12], [13, 14], [15, 16, 17, 18], [19, 20, 21, 22]];
  const alone = await Promise.all(prompts.map(async (q) => (await generateAll(model, [q], { maxNewTokens: 6, sampling: greedy, eosTokenId: null }))[0].tokens));
  let forwards = 0;
  const forward = model.forward.bind(model);
  model.forward = (...args: Parameters<typeof forward>) => { forwards++; return forward(...args); };
  const together = await generateAll(model, prompts, { maxNewTokens: 6, sampling: greedy, eosTokenId: null });
  assert.equal(forwards, 3, "one prefill forward per run of equal-length prompts");
  assert.deepEqual(together.map((r) => r.tokens), alone);
});

test("the streaming iterator yields every token with its row, in order", async () => {
  const model = await byteModel(5);
  const seen: number[][] = [[], []];
  const it = generate(model, [[7, 8], [9]], { maxNewTokens: 4, sampling: { temperature: 0.9, topK: 20 }, seed: 11, eosTokenId: null });
  let next = await it.next();
  while (!next.done) {
    seen[next.value.row].push(next.value.token);
    next = await it.next();
  }
  assert.deepEqual(next.value.map((r) => r.tokens), seen);
});

test("a cached prompt state shared by several prompts equals prefilling each prompt whole", async () => {
  const model = await byteModel(6);
  const prefix = [10, 20, 30, 40, 50, 60, 70];
  const { state } = model.forward(tensor(Int32Array.from(prefix), [1, prefix.length], { dtype: "i32" }), null, { logits: "none" });
  const tails = [[1, 2], [3]];
  const cached = await generateAll(model, tails, { maxNewTokens: 5, sampling: greedy, eosTokenId: null, state });
  const whole = await generateAll(model, tails.map((t) => [...prefix, ...t]), { maxNewTokens: 5, sampling: greedy, eosTokenId: null });
  assert.deepEqual(cached.map((r) => r.tokens), whole.map((r) => r.tokens));
});

test("bad requests are HippoErrors naming the problem", async () => {
  const model = await byteModel();
  const run = (prompts: number[][], maxNewTokens = 3) => generateAll(model, prompts, { maxNewTokens, sampling: greedy });
  await assert.rejects(run([]), (e) => e instanceof HippoError && /no prompt/.test(e.message));
  await assert.rejects(run([[1], []]), (e) => e instanceof HippoError && /prompt 1 is empty/.test(e.message));
  await assert.rejects(run([[1, 257]]), (e) => e instanceof HippoError && /token id 257 is outside the vocabulary \[0, 257\)/.test(e.message));
  await assert.rejects(run([[1]], 0), (e) => e instanceof HippoError && /max new tokens/.test(e.message));
  await assert.rejects(generateAll(model, [[1]], { maxNewTokens: 2, stop: ["x"] }), /stop strings need a tokenizer/);
});
