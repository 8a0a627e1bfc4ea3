import { fromFloat32 } from "../../io/convert.js";
import type { RawTensor } from "../../io/raw-tensor.js";
import { Rng } from "../../generate/rng.js";
import type { MambaConfig } from "./config.js";
import { MAMBA_KEYS } from "./keys.js";

/**
 * Fresh Mamba weights in the Hugging Face layout, initialised as mamba_ssm does: linear layers
 * uniform(±1/√fan_in), A_log = log(1..N), D = 1, dt_proj bias = softplus⁻¹(dt) with dt log-uniform in
 * [0.001, 0.1], embeddings N(0, 0.02²), norms 1. Deterministic for a seed.
 */
export function initMambaWeights(config: MambaConfig, seed: number, dtype: "F32" | "F16" | "BF16" = "F32"): Map<string, RawTensor> {
  const rng = new Rng(seed);
  const { dModel: Dm, dInner: E, dState: N, dConv: K, dtRank: R, vocabSize: V } = config;
  const out = new Map<string, RawTensor>();
  const put = (name: string, shape: number[], fill: (i: number) => number, keepF32 = false) => {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = fill(i);
    out.set(name, fromFloat32(data, shape, keepF32 ? "F32" : dtype));
  };
  const uniform = (bound: number) => () => (rng.nextFloat() * 2 - 1) * bound;
  const normal = (std: number) => () => std * Math.sqrt(-2 * Math.log(1 - rng.nextFloat())) * Math.cos(2 * Math.PI * rng.nextFloat());

  put(MAMBA_KEYS.embedding[0], [V, Dm], normal(0.02));
  for (let l = 0; l < config.nLayer; l++) {
    const m = `${MAMBA_KEYS.layer(l)}.mixer`;
    put(`${m}.in_proj.weight`, [2 * E, Dm], uniform(1 / Math.sqrt(Dm)));
    if (config.projBias) put(`${m}.in_proj.bias`, [2 * E], () => 0, true);
    put(`${m}.conv1d.weight`, [E, 1, K], uniform(1 / Math.sqrt(K)), true);
    if (config.convBias) put(`${m}.conv1d.bias`, [E], uniform(1 / Math.sqrt(K)), true);
    put(`${m}.x_proj.weight`, [R + 2 * N, E], uniform(1 / Math.sqrt(E)));
    put(`${m}.dt_proj.weight`, [E, R], uniform(1 / Math.sqrt(R)));
    put(`${m}.dt_proj.bias`, [E], () => {
      const dt = Math.exp(rng.nextFloat() * (Math.log(0.1) - Math.log(0.001)) + Math.log(0.001));
      return dt + Math.log(-Math.expm1(-dt)); // inverse softplus
    }, true);
    put(`${m}.A_log`, [E, N], (i) => Math.log((i % N) + 1), true);
    put(`${m}.D`, [E], () => 1, true);
    put(`${m}.out_proj.weight`, [Dm, E], uniform(1 / Math.sqrt(E)));
    if (config.projBias) put(`${m}.out_proj.bias`, [Dm], () => 0, true);
    put(`${MAMBA_KEYS.layer(l)}.norm.weight`, [Dm], () => 1, true);
  }
  put(`${MAMBA_KEYS.normF}.weight`, [Dm], () => 1, true);
  if (!config.tieEmbeddings) put(MAMBA_KEYS.lmHead, [V, Dm], normal(0.02));
  return out;
}

/** config.json for a MambaConfig in the Hugging Face layout (what MambaForCausalLM reads). */
export function mambaHfConfigJson(config: MambaConfig): Record<string, unknown> {
  return {
    architectures: ["MambaForCausalLM"],
    model_type: "mamba",
    hidden_size: config.dModel,
    num_hidden_layers: config.nLayer,
    vocab_size: config.vocabSize,
    state_size: config.dState,
    conv_kernel: config.dConv,
    intermediate_size: config.dInner,
    expand: config.dInner / config.dModel,
    time_step_rank: config.dtRank,
    use_bias: config.projBias,
    use_conv_bias: config.convBias,
    layer_norm_epsilon: config.normEps,
    tie_word_embeddings: config.tieEmbeddings,
    residual_in_fp32: true,
    hidden_act: "silu",
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId, pad_token_id: config.eosTokenId } : {}),
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
  };
}

/** A MambaConfig from the few numbers that define a size; the rest as mamba_ssm defaults them. */
export function mambaConfig(shape: { dModel: number; nLayer: number; vocabSize: number; dState?: number; expand?: number; dConv?: number }): MambaConfig {
  return {
    family: "mamba", layout: "hf",
    dModel: shape.dModel, nLayer: shape.nLayer, vocabSize: shape.vocabSize,
    dState: shape.dState ?? 16, dConv: shape.dConv ?? 4, dInner: (shape.expand ?? 2) * shape.dModel,
    dtRank: Math.ceil(shape.dModel / 16), convBias: true, projBias: false, rmsNorm: true, normEps: 1e-5,
    tieEmbeddings: true,
  };
}
