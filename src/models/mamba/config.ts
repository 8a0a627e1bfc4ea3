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
