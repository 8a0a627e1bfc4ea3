// Random H3 and S4D-only LMs (head_dim > 1, rotary attention, both discretisations): the parallel mode
// (FFT convolution, with and without state passing) and the recurrent mode (one token at a time) give
// the same logits; prefill in pieces equals one prefill; states survive serialisation; and a model
// written in Hippo's H3 layout (config.json + model.safetensors) loads back.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { getBackend } from "../../src/backends/registry.js";
import { Rng } from "../../src/generate/rng.js";
import { memoryTensorSource } from "../../src/io/memory-source.js";
import { writeFileAtomic, writeSafetensorsFile } from "../../src/io/node-files.js";
import type { CausalLM } from "../../src/models/causal-lm.js";
import { ConfigReader } from "../../src/models/config-json.js";
import { h3ConfigJson, parseH3Config, type H3Config } from "../../src/models/h3/config.js";
import { initH3Weights } from "../../src/models/h3/init.js";
import { buildH3LM } from "../../src/models/h3/model.js";
import { loadModel } from "../../src/models/load.js";
import { InferenceState } from "../../src/models/state.js";
import { WeightLoader } from "../../src/models/weights.js";
import { tensor } from "../../src/ops/index.js";
import { relativeL2 } from "../fixtures.js";

function config(overrides: Record<string, unknown> = {}, ssm: Record<string, unknown> = {}): H3Config {
  return parseH3Config(new ConfigReader({
    model_type: "h3", d_model: 16, n_layer: 3, d_inner: 32, vocab_size: 29, attn_layer_idx: [1],
    attn_cfg: { num_heads: 2, rotary_emb_dim: 4 }, ssm_cfg: { d_state: 8, head_dim: 2, ...ssm }, ...overrides,
  }, "test config"));
}

async function build(c: H3Config, seed: number) {
  return buildH3LM(c, new WeightLoader(memoryTensorSource(initH3Weights(c, seed)), getBackend("cpu"), "random"));
}

const ids = (data: Int32Array, shape: number[]) => tensor(data, shape, { dtype: "i32" });

function randomIds(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rng.nextFloat() * vocab));
}

/** Logits of every position: prefill of the first `prefix` tokens (parallel), then one recurrent step per token. */
async function steppedLogits(model: CausalLM, tokens: Int32Array, B: number, prefix: number): Promise<Float32Array> {
  const L = tokens.length / B;
  const V = model.vocabSize;
  const out = new Float32Array(B * L * V);
  const rows = (t0: number, t1: number) => Int32Array.from({ length: B * (t1 - t0) }, (_, i) => tokens[Math.floor(i / (t1 - t0)) * L + t0 + (i % (t1 - t0))]);
  let state = model.initialState(B);
  if (prefix > 0) {
    const r = model.forward(ids(rows(0, prefix), [B, prefix]), null, { logits: "all" });
    const v = await r.logits!.readFloat32();
    for (let b = 0; b < B; b++) out.set(v.subarray(b * prefix * V, (b + 1) * prefix * V), b * L * V);
    state = r.state;
  }
  for (let t = prefix; t < L; t++) {
    const r = model.step(ids(rows(t, t + 1), [B, 1]), state);
    const v = await r.logits.readFloat32();
    for (let b = 0; b < B; b++) out.set(v.subarray(b * V, (b + 1) * V), (b * L + t) * V);
    state = r.state;
  }
  return out;
}

const variants: [string, H3Config][] = [
  ["H3, head_dim 2, bilinear, rotary attention", config()],
  ["H3, head_dim 4, ZOH, S4D-Inv init", config({}, { head_dim: 4, disc: "zoh", measure: "diag-inv" })],
  ["H3, head_dim 1, no attention", config({ attn_layer_idx: [] }, { head_dim: 1 })],
  ["S4D-only mixers", config({ ssm_layer: "s4d" }, { head_dim: 1 })],
];

for (const [name, c] of variants) {
  test(`${name}: recurrent steps (after prefixes of 0, 1, 7 tokens) give the parallel logits`, async () => {
    const model = await build(c, 11);
    const rng = new Rng(5);
    const B = 2, L = 23;
    const tokens = randomIds(rng, B * L, c.vocabSize);
    const parallel = await model.forward(ids(tokens, [B, L]), null, { logits: "all" }).logits!.readFloat32();
    for (const prefix of [0, 1, 7]) {
      const err = relativeL2(await steppedLogits(model, tokens, B, prefix), parallel);
      assert.ok(err < 1e-5, `prefix ${prefix}: relative L2 ${err}`);
    }
  });
}

test("state passing inside the model: chunk_size 3 gives the logits and states of one FFT block", async () => {
  const whole = await build(config(), 3);
  const chunked = await build(config({}, { chunk_size: 3 }), 3);
  const tokens = randomIds(new Rng(8), 2 * 40, whole.vocabSize);
  const a = whole.forward(ids(tokens, [2, 40]), null, { logits: "all" });
  const b = chunked.forward(ids(tokens, [2, 40]), null, { logits: "all" });
  assert.ok(relativeL2(await b.logits!.readFloat32(), await a.logits!.readFloat32()) < 1e-5);
  for (const i of [0, 4]) {
    for (const key of ["shift", "ssm"]) {
      const err = relativeL2(await b.state.layers[i][key].readFloat32(), await a.state.layers[i][key].readFloat32());
      assert.ok(err < 1e-5, `layer ${i} ${key}: ${err}`);
    }
  }
});

test("prefill in pieces (state carried) equals one prefill; a serialized state continues identically", async () => {
  const model = await build(config(), 4);
  const tokens = randomIds(new Rng(9), 30, model.vocabSize);
  const V = model.vocabSize;
  const whole = await model.forward(ids(tokens, [1, 30]), null, { logits: "all" }).logits!.readFloat32();
  const first = model.forward(ids(tokens.slice(0, 12), [1, 12]), null, { logits: "none" });
  const restored = await InferenceState.deserialize(await first.state.serialize(), model.backend, model.initialState(1));
  for (const state of [first.state, restored]) {
    const rest = await model.forward(ids(tokens.slice(12), [1, 18]), state, { logits: "all" }).logits!.readFloat32();
    const err = relativeL2(rest, whole.subarray(12 * V));
    assert.ok(err < 1e-5, `relative L2 ${err}`);
  }
  // An SSM layer's state does not grow with the context; the attention layer's KV cache does.
  const desc = model.describe();
  assert.deepEqual(desc.layers[0].state, { shift: [16, 8], ssm: [8, 2, 2, 4, 2] });
  assert.deepEqual(desc.layers[2].cachePerToken, { k: [2, 8], v: [2, 8] });
});

test("a model saved in Hippo's H3 layout (config.json + model.safetensors) loads back through loadModel", async () => {
  const c = config({ ssm_layer: "s4d" }, { head_dim: 1, chunk_size: 5 });
  const dir = mkdtempSync(join(tmpdir(), "hippo-h3-save-"));
  await writeFileAtomic(join(dir, "config.json"), JSON.stringify(h3ConfigJson(c), null, 2));
  await writeSafetensorsFile(join(dir, "model.safetensors"), Object.fromEntries(initH3Weights(c, 21)));
  const { model } = await loadModel(dir);
  const direct = await build(c, 21);
  const tokens = randomIds(new Rng(1), 9, c.vocabSize);
  const a = await model.forward(ids(tokens, [1, 9]), null).logits!.readFloat32();
  const b = await direct.forward(ids(tokens, [1, 9]), null).logits!.readFloat32();
  assert.deepEqual(a, b);
  assert.equal(model.describe().layers[0].kind, "s4d");
});
