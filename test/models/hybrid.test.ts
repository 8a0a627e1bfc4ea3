import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { getBackend } from "../../src/backends/registry.js";
import { HippoError } from "../../src/errors.js";
import { generateAll } from "../../src/generate/generate.js";
import { Rng } from "../../src/generate/rng.js";
import { memoryTensorSource } from "../../src/io/memory-source.js";
import { writeSafetensorsFile } from "../../src/io/node-files.js";
import { ConfigReader, parseConfigJson } from "../../src/models/config-json.js";
import { hybridConfigJson, parseHybridConfig } from "../../src/models/hybrid/config.js";
import { initHybridWeights } from "../../src/models/hybrid/init.js";
import { buildHybrid } from "../../src/models/hybrid/model.js";
import { loadModel } from "../../src/models/load.js";
import type { SequenceLM } from "../../src/models/sequence-lm.js";
import { InferenceState } from "../../src/models/state.js";
import { WeightLoader } from "../../src/models/weights.js";
import { tensor } from "../../src/ops/index.js";
import { recurrentLogits } from "./recurrent.js";
import { conformanceDir, readReferenceIo, relativeL2 } from "../fixtures.js";

const tmp = mkdtempSync(join(tmpdir(), "hippo-hybrid-"));
const ids = (data: Int32Array, shape: number[]) => tensor(data, shape, { dtype: "i32" });
const randomIds = (rng: Rng, n: number, vocab: number) => Int32Array.from({ length: n }, () => Math.floor(rng.nextFloat() * vocab));

function hybridConfig(pattern: string, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    model_type: "hippo_hybrid", pattern, hidden_size: 32, vocab_size: 61, tie_word_embeddings: false,
    mamba: { state_size: 6, conv_kernel: 3, expand: 2 },
    mamba2: { state_size: 8, head_dim: 8, n_groups: 2, expand: 2, conv_kernel: 4, chunk_size: 5 },
    attention: { num_heads: 4, num_kv_heads: 2, head_dim: 8, rotary_dim: 6, rope_theta: 1000 },
    mlp: { intermediate_size: 48, activation: "silu", gated: true },
    h3: { d_state: 8, head_dim: 2, chunk_size: 4 },
    ...extra,
  };
}

async function randomHybrid(pattern: string, seed: number, extra: Record<string, unknown> = {}): Promise<SequenceLM> {
  const reader = new ConfigReader(hybridConfig(pattern, extra), "config.json");
  const tensors = initHybridWeights(parseHybridConfig(reader), seed);
  // Larger-than-init weights so every layer visibly shapes the logits.
  for (const t of tensors.values()) {
    const v = new Float32Array(t.bytes.buffer.slice(t.bytes.byteOffset, t.bytes.byteOffset + t.bytes.byteLength));
    for (let i = 0; i < v.length; i++) v[i] *= t.shape.length === 2 ? 3 : 1;
    t.bytes = new Uint8Array(v.buffer);
  }
  return buildHybrid(reader, new WeightLoader(memoryTensorSource(tensors), getBackend("cpu"), "random"));
}

test("a NemotronH checkpoint re-described as a Hippo hybrid 'M*M-' gives the reference logits", async () => {
  const src = conformanceDir("hybrid-tiny");
  const nemo = JSON.parse(readFileSync(join(src, "config.json"), "utf8"));
  const dir = join(tmp, "as-hybrid");
  mkdirSync(dir);
  writeFileSync(join(dir, "config.json"), JSON.stringify(hybridConfig("M*M-", {
    hidden_size: nemo.hidden_size, vocab_size: nemo.vocab_size, norm_eps: nemo.layer_norm_epsilon,
    mamba2: { state_size: nemo.ssm_state_size, head_dim: nemo.mamba_head_dim, n_groups: nemo.n_groups, expand: nemo.expand,
      conv_kernel: nemo.conv_kernel, chunk_size: nemo.chunk_size, time_step_limit: [nemo.time_step_min, { __float__: "Infinity" }] },
    attention: { num_heads: nemo.num_attention_heads, num_kv_heads: nemo.num_key_value_heads, head_dim: nemo.head_dim, rotary_dim: 0 },
    mlp: { intermediate_size: nemo.intermediate_size, activation: "relu2", gated: false },
  })));
  writeFileSync(join(dir, "model.safetensors"), readFileSync(join(src, "model.safetensors")));
  const { model } = await loadModel(dir);
  const io = await readReferenceIo(src);
  const logits = await model.forward(ids(io.inputIds, io.inputShape)).logits!.readFloat32();
  assert.ok(relativeL2(logits, io.logits) < 1e-4);
});

for (const pattern of ["m*M-", "*-*-", "M-m", "MM*", "H*S-", "HmM"]) {
  test(`pattern '${pattern}': parallel prefill and recurrent steps agree on random lengths`, async () => {
    const model = await randomHybrid(pattern, pattern.length * 7);
    const rng = new Rng(pattern.charCodeAt(0));
    for (const L of [1, 4, 5, 6, 23]) {
      const tokens = randomIds(rng, L, model.vocabSize);
      const parallel = await model.forward(ids(tokens, [1, L])).logits!.readFloat32();
      const err = relativeL2(await recurrentLogits(model, tokens), parallel);
      assert.ok(err < 1e-5, `L=${L}: ${err}`);
    }
  });
}

test("attention with a KV cache equals full recomputation, also after prefill in pieces", async () => {
  const model = await randomHybrid("*-*-", 3);
  const tokens = randomIds(new Rng(4), 30, model.vocabSize);
  const full = await model.forward(ids(tokens, [1, 30])).logits!.readFloat32();
  const a = model.forward(ids(tokens.slice(0, 11), [1, 11]), null, { logits: "none" });
  const b = model.forward(ids(tokens.slice(11, 25), [1, 14]), a.state, { logits: "none" });
  assert.deepEqual(b.state.layers[0].k.shape, [1, 25, 2, 8]);
  let state = b.state;
  const V = model.vocabSize;
  for (let t = 25; t < 30; t++) {
    const r = model.step(ids(Int32Array.of(tokens[t]), [1, 1]), state);
    assert.ok(relativeL2(await r.logits.readFloat32(), full.subarray(t * V, (t + 1) * V)) < 1e-5, `token ${t}`);
    state = r.state;
  }
});

test("rows with KV caches of different lengths decode together like separate rows", async () => {
  const model = await randomHybrid("M*-", 5);
  const rng = new Rng(6);
  const prompts = [Array.from(randomIds(rng, 3, 61)), Array.from(randomIds(rng, 11, 61)), Array.from(randomIds(rng, 7, 61))];
  const alone = await Promise.all(prompts.map(async (p) => (await generateAll(model, [p], { maxNewTokens: 6, sampling: { temperature: 0 }, eosTokenId: null }))[0].tokens));
  const together = await generateAll(model, prompts, { maxNewTokens: 6, sampling: { temperature: 0 }, eosTokenId: null });
  assert.deepEqual(together.map((r) => r.tokens), alone);
});

test("a state with a KV cache serializes and restores", async () => {
  const model = await randomHybrid("m*", 8);
  const tokens = randomIds(new Rng(9), 12, model.vocabSize);
  const { state } = model.forward(ids(tokens, [1, 12]), null, { logits: "none" });
  const restored = await InferenceState.deserialize(await state.serialize(), getBackend("cpu"), model.initialState(1));
  assert.deepEqual(restored.layers[1].k.shape, [1, 12, 2, 8]);
  const next = ids(Int32Array.of(5), [1, 1]);
  assert.deepEqual(Array.from(await model.step(next, restored).logits.readFloat32()), Array.from(await model.step(next, state).logits.readFloat32()));
});

function expectConfigError(config: Record<string, unknown>, pattern: RegExp): Promise<void> {
  return assert.rejects(async () => {
    const reader = new ConfigReader(parseConfigJson(JSON.stringify(config), "config.json"), "config.json");
    const h = parseHybridConfig(reader);
    await buildHybrid(reader, new WeightLoader(memoryTensorSource(initHybridWeights(h, 1)), getBackend("cpu"), "random"));
  }, (e: unknown) => e instanceof HippoError && pattern.test(e.message));
}

test("bad hybrid configs: pattern length, unknown letter, heads, KV heads", async () => {
  await expectConfigError({ ...hybridConfig("M*-"), num_hidden_layers: 4 }, /pattern 'M\*-' has 3 layers but num_hidden_layers is 4/);
  await expectConfigError(hybridConfig("M*x-"), /unknown letter 'x' at position 2 of pattern 'M\*x-'/);
  await expectConfigError(hybridConfig("*", { attention: { num_heads: 5, num_kv_heads: 5 } }), /5 heads do not divide hidden_size 32/);
  await expectConfigError(hybridConfig("*", { attention: { num_heads: 4, num_kv_heads: 3, head_dim: 8 } }), /3 key\/value heads do not divide 4 heads/);
  await expectConfigError(hybridConfig("M", { mamba2: { state_size: 8, head_dim: 24, n_groups: 1, expand: 2 } }), /heads × head_dim 24 must equal the inner width 64/);
});

test("a checkpoint whose tensors contradict its pattern is refused, naming the tensor", async () => {
  const dir = join(tmp, "contradict");
  mkdirSync(dir);
  const h = parseHybridConfig(new ConfigReader(hybridConfig("M*"), "config.json"));
  await writeSafetensorsFile(join(dir, "model.safetensors"), initHybridWeights(h, 2));
  writeFileSync(join(dir, "config.json"), JSON.stringify(hybridConfig("*M")));
  await assert.rejects(loadModel(dir), (e: unknown) => e instanceof HippoError && /model\.safetensors.*backbone\.layers\.0\.mixer/.test(e.message));
  writeFileSync(join(dir, "config.json"), JSON.stringify(hybridConfig("M*", { hidden_size: 40 })));
  await assert.rejects(loadModel(dir), (e: unknown) => e instanceof HippoError && /has shape \[61, 32\], expected \[61, 40\]/.test(e.message));
  writeFileSync(join(dir, "config.json"), JSON.stringify(hybridConfig("M")));
  await assert.rejects(loadModel(dir), (e: unknown) => e instanceof HippoError && /not used by the model/.test(e.message));
  writeFileSync(join(dir, "config.json"), JSON.stringify(hybridConfig("M*")));
  const { model } = await loadModel(dir);
  assert.equal(model.describe().architecture, "Hippo hybrid 'M*'");
  assert.deepEqual(JSON.parse(JSON.stringify(hybridConfigJson(h))).pattern, "M*");
});
