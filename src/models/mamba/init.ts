import type { RawTensor } from "../../io/raw-tensor.js";
import { WeightInit } from "../init-weights.js";
import type { MambaConfig } from "./config.js";
import { MAMBA_KEYS } from "./keys.js";

/** Fresh Mamba weights in the Hugging Face layout (see WeightInit for the scheme). */
export function initMambaWeights(config: MambaConfig, seed: number, dtype: "F32" | "F16" | "BF16" = "F32"): Map<string, RawTensor> {
  const init = new WeightInit(seed, dtype);
  const { dModel: D, vocabSize: V } = config;
  init.put(MAMBA_KEYS.embedding[0], [V, D], init.normal(0.02), true);
  for (let l = 0; l < config.nLayer; l++) {
    init.mambaMixer(`${MAMBA_KEYS.layer(l)}.mixer`, D, { ...config, bias: config.projBias, convBias: config.convBias });
    init.ones(`${MAMBA_KEYS.layer(l)}.norm.weight`, D);
  }
  init.ones(`${MAMBA_KEYS.normF}.weight`, D);
  if (!config.tieEmbeddings) init.put(MAMBA_KEYS.lmHead, [V, D], init.normal(0.02), true);
  return init.tensors;
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
