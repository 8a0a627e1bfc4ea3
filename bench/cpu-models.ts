// The CPU benchmarks' models and runs (bench/cpu-fast.ts, bench/op-profile-cpu.ts): 130M-class shapes
// with random weights built through WeightLoader as a checkpoint would be, and llama-bench's pp and tg.
import type { Backend } from "../src/backends/backend.js";
import type { Rng } from "../src/generate/rng.js";
import { memoryTensorSource } from "../src/io/memory-source.js";
import { ConfigReader } from "../src/models/config-json.js";
import { parseHybridConfig } from "../src/models/hybrid/config.js";
import { initHybridWeights } from "../src/models/hybrid/init.js";
import { buildHybrid } from "../src/models/hybrid/model.js";
import type { SequenceLM } from "../src/models/sequence-lm.js";
import { WeightLoader } from "../src/models/weights.js";
import { tensor } from "../src/ops/index.js";
import { randomIds } from "./common.js";

export interface ModelShape { name: string; reference: string; layers: number; config: (layers: number) => Record<string, unknown> }

const MAMBA = { state_size: 16, conv_kernel: 4, expand: 2 };
const MAMBA2 = { state_size: 128, head_dim: 64, n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: 256 };

export const MODELS: Record<string, ModelShape> = {
  mamba: {
    name: "mamba-130m", reference: "state-spaces/mamba-130m-hf", layers: 24,
    config: (n) => ({ model_type: "hippo_hybrid", hidden_size: 768, vocab_size: 50280, tie_word_embeddings: true, mamba: MAMBA, pattern: "m".repeat(n) }),
  },
  mamba2: {
    name: "mamba2-130m", reference: "state-spaces/mamba2-130m", layers: 24,
    config: (n) => ({ model_type: "hippo_hybrid", hidden_size: 768, vocab_size: 50288, tie_word_embeddings: true, mamba2: MAMBA2, pattern: "M".repeat(n) }),
  },
  gpt2: {
    name: "gpt2-124m", reference: "openai-community/gpt2 shapes (RMSNorm + RoPE in place of LayerNorm + learned positions)", layers: 12,
    config: (n) => ({
      model_type: "hippo_hybrid", hidden_size: 768, vocab_size: 50257, tie_word_embeddings: true, pattern: "*-".repeat(n),
      attention: { num_heads: 12, num_kv_heads: 12, head_dim: 64, rotary_dim: 64, rope_theta: 10000 },
      mlp: { intermediate_size: 3072, activation: "gelu", gated: false },
    }),
  },
};

/** The model of `shape` with `layers` layers and random weights stored as `dtype` (q8: f32 quantized at load). */
export async function build(shape: ModelShape, layers: number, dtype: string, backend: Backend): Promise<SequenceLM> {
  const reader = new ConfigReader(shape.config(layers), `${shape.name} config`);
  const fileDType = dtype === "f16" ? "F16" : dtype === "bf16" ? "BF16" : "F32";
  const weights = initHybridWeights(parseHybridConfig(reader), 0, fileDType);
  return buildHybrid(reader, new WeightLoader(memoryTensorSource(weights), backend, "random", { quantize: dtype === "q8" ? "q8" : null }));
}

/** pp: one forward pass over L random tokens, logits at the last position; seconds. */
export async function promptProcessing(model: SequenceLM, L: number, vocab: number, rng: Rng, backend: Backend): Promise<number> {
  const ids = tensor(randomIds(rng, L, vocab), [1, L], { dtype: "i32", backend });
  const t0 = performance.now();
  const out = model.forward(ids, null, { logits: "last" });
  await out.logits!.readFloat32();
  const s = (performance.now() - t0) / 1000;
  out.state.dispose();
  return s;
}

/** tg: n recurrent steps at batch 1 after a 1-token prompt, logits read every step; seconds of the steps. */
export async function generation(model: SequenceLM, n: number, vocab: number, rng: Rng, backend: Backend): Promise<number> {
  let state = model.forward(tensor(randomIds(rng, 1, vocab), [1, 1], { dtype: "i32", backend }), null, { logits: "none" }).state;
  const t0 = performance.now();
  for (let i = 0; i < n; i++) {
    const r = model.step(tensor(randomIds(rng, 1, vocab), [1, 1], { dtype: "i32", backend }), state);
    await r.logits.readFloat32();
    state.dispose();
    state = r.state;
  }
  const s = (performance.now() - t0) / 1000;
  state.dispose();
  return s;
}
