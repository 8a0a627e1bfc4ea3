import { HippoError } from "../../errors.js";
import { ConfigReader } from "../config-json.js";

/** Mamba (v1) hyperparameters, whichever layout the checkpoint came in. */
export interface MambaConfig {
  family: "mamba";
  /** Where the config came from: Hugging Face MambaConfig or mamba_ssm's MambaLMHeadModel config. */
  layout: "hf" | "mamba_ssm";
  dModel: number;
  nLayer: number;
  vocabSize: number;
  dState: number;
  dConv: number;
  dInner: number;
  dtRank: number;
  convBias: boolean;
  projBias: boolean;
  rmsNorm: boolean;
  normEps: number;
  tieEmbeddings: boolean;
  eosTokenId?: number;
  bosTokenId?: number;
}

function dtRankOf(value: unknown, dModel: number, file: string): number {
  if (value === undefined || value === null || value === "auto") return Math.ceil(dModel / 16);
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  throw new HippoError(`${file}: time step rank must be "auto" or a positive integer, got ${JSON.stringify(value)}`);
}

/** HF MambaConfig fields (state-spaces/mamba-*-hf). */
export function parseHfMambaConfig(c: ConfigReader): MambaConfig {
  const dModel = c.positiveInt("hidden_size");
  const expand = c.positiveInt("expand", 2);
  return {
    family: "mamba",
    layout: "hf",
    dModel,
    nLayer: c.positiveInt("num_hidden_layers"),
    vocabSize: c.positiveInt("vocab_size"),
    dState: c.positiveInt("state_size", 16),
    dConv: c.positiveInt("conv_kernel", 4),
    dInner: c.has("intermediate_size") ? c.positiveInt("intermediate_size") : expand * dModel,
    dtRank: dtRankOf(c.raw.time_step_rank, dModel, c.file),
    convBias: c.bool("use_conv_bias", true),
    projBias: c.bool("use_bias", false),
    rmsNorm: true,
    normEps: c.number("layer_norm_epsilon", 1e-5),
    tieEmbeddings: c.bool("tie_word_embeddings", true),
    eosTokenId: c.optionalInt("eos_token_id"),
    bosTokenId: c.optionalInt("bos_token_id"),
  };
}

/** mamba_ssm MambaConfig (state-spaces/mamba-*): d_model, n_layer, ssm_cfg, pad_vocab_size_multiple. */
export function parseMambaSsmConfig(c: ConfigReader): MambaConfig {
  const dModel = c.positiveInt("d_model");
  const ssm = c.section("ssm_cfg");
  const multiple = c.positiveInt("pad_vocab_size_multiple", 8);
  const vocab = c.positiveInt("vocab_size");
  const expand = ssm.positiveInt("expand", 2);
  return {
    family: "mamba",
    layout: "mamba_ssm",
    dModel,
    nLayer: c.positiveInt("n_layer"),
    // mamba_ssm pads the embedding (and LM head) up to a multiple, e.g. 50277 -> 50280.
    vocabSize: Math.ceil(vocab / multiple) * multiple,
    dState: ssm.positiveInt("d_state", 16),
    dConv: ssm.positiveInt("d_conv", 4),
    dInner: expand * dModel,
    dtRank: dtRankOf(ssm.raw.dt_rank, dModel, ssm.file),
    convBias: ssm.bool("conv_bias", true),
    projBias: ssm.bool("bias", false),
    rmsNorm: c.bool("rms_norm", true),
    normEps: c.number("norm_epsilon", 1e-5),
    tieEmbeddings: c.bool("tie_embeddings", true),
    // GPT-NeoX tokenizer's <|endoftext|>, which the state-spaces checkpoints use.
    eosTokenId: c.optionalInt("eos_token_id") ?? 0,
  };
}
