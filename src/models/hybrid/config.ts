import { HippoError } from "../../errors.js";
import type { ConfigReader } from "../config-json.js";
import type { MlpActivation } from "../../nn/mlp.js";
import { mamba2Shape } from "../mamba2/model.js";
import { h3SsmConfigJson, parseH3SsmConfig, type H3SsmConfig } from "../h3/config.js";

/**
 * Hippo's own hybrid format: a layer pattern, one letter per pre-norm residual layer —
 *   M  Mamba-2 mixer   m  Mamba (v1) mixer   H  H3 mixer   S  S4D mixer   *  attention   -  MLP
 * plus one settings section per layer kind. Checkpoint keys follow NemotronH
 * (backbone.layers.<i>.norm / .mixer.*), so a NemotronH checkpoint is also a valid Hippo hybrid.
 */
export const PATTERN_LETTERS: Record<string, HybridLayerKind> = { M: "mamba2", m: "mamba", H: "h3", S: "s4d", "*": "attention", "-": "mlp" };

export type HybridLayerKind = "mamba2" | "mamba" | "h3" | "s4d" | "attention" | "mlp";

export interface HybridConfig {
  pattern: string;
  kinds: HybridLayerKind[];
  dModel: number;
  vocabSize: number;
  normEps: number;
  tieEmbeddings: boolean;
  eosTokenId?: number;
  bosTokenId?: number;
  mamba: { dState: number; dConv: number; expand: number; dtRank: number; bias: boolean; convBias: boolean };
  mamba2: { dState: number; headDim: number; nGroups: number; expand: number; dConv: number; chunkSize: number; dtMin: number; dtMax: number; bias: boolean; convBias: boolean; perGroupNorm: boolean };
  attention: { numHeads: number; numKvHeads: number; headDim: number; ropeTheta: number; rotaryDim: number; bias: boolean };
  mlp: { intermediateSize: number; activation: MlpActivation; gated: boolean; bias: boolean };
  /** H3 and S4D mixers: H3's ssm_cfg settings (d_state, head_dim, measure, disc, …). */
  h3: H3SsmConfig | null;
}

export function parsePattern(pattern: string, file: string): HybridLayerKind[] {
  if (pattern.length === 0) throw new HippoError(`${file}: 'pattern' is empty; give one letter per layer (${letterList()})`);
  return [...pattern].map((ch, i) => {
    const kind = PATTERN_LETTERS[ch];
    if (!kind) throw new HippoError(`${file}: unknown letter '${ch}' at position ${i} of pattern '${pattern}' (${letterList()})`);
    return kind;
  });
}

function letterList(): string {
  return "M Mamba-2, m Mamba, H H3, S S4D, * attention, - MLP";
}

export function parseHybridConfig(c: ConfigReader): HybridConfig {
  if (typeof c.raw.pattern !== "string") throw new HippoError(`${c.file}: 'pattern' must be a string of layer letters (${letterList()})`);
  const pattern = c.raw.pattern;
  const kinds = parsePattern(pattern, c.file);
  if (c.has("num_hidden_layers") && c.int("num_hidden_layers") !== kinds.length) {
    throw new HippoError(`${c.file}: pattern '${pattern}' has ${kinds.length} layers but num_hidden_layers is ${c.int("num_hidden_layers")}`);
  }
  const dModel = c.positiveInt("hidden_size");
  const m1 = c.section("mamba");
  const m2 = c.section("mamba2");
  const at = c.section("attention");
  const mlp = c.section("mlp");
  const heads = at.positiveInt("num_heads", 1);
  const kvHeads = at.positiveInt("num_kv_heads", heads);
  const uses = (k: HybridLayerKind) => kinds.includes(k);
  if (uses("attention")) {
    if (!at.has("head_dim") && dModel % heads !== 0) throw new HippoError(`${at.file}: ${heads} heads do not divide hidden_size ${dModel}`);
    if (heads % kvHeads !== 0) throw new HippoError(`${at.file}: ${kvHeads} key/value heads do not divide ${heads} heads`);
  }
  const headDim = at.has("head_dim") ? at.positiveInt("head_dim") : Math.floor(dModel / heads);
  const limit = m2.raw.time_step_limit;
  const [dtMin, dtMax] = Array.isArray(limit) ? [Number(limit[0]), Number(limit[1])] : [0, Infinity];
  const activation = String(mlp.raw.activation ?? "relu2");
  if (!["relu2", "gelu", "silu"].includes(activation)) throw new HippoError(`${mlp.file}: activation '${activation}' is not one of relu2, gelu, silu`);
  const rank = m1.raw.time_step_rank;
  const config: HybridConfig = {
    pattern, kinds, dModel,
    vocabSize: c.positiveInt("vocab_size"),
    normEps: c.number("norm_eps", 1e-5),
    tieEmbeddings: c.bool("tie_word_embeddings", false),
    eosTokenId: c.optionalInt("eos_token_id"),
    bosTokenId: c.optionalInt("bos_token_id"),
    mamba: {
      dState: m1.positiveInt("state_size", 16), dConv: m1.positiveInt("conv_kernel", 4), expand: m1.positiveInt("expand", 2),
      dtRank: typeof rank === "number" ? rank : Math.ceil(dModel / 16), bias: m1.bool("use_bias", false), convBias: m1.bool("use_conv_bias", true),
    },
    mamba2: {
      dState: m2.positiveInt("state_size", 128), headDim: m2.positiveInt("head_dim", 64), nGroups: m2.positiveInt("n_groups", 1),
      expand: m2.positiveInt("expand", 2), dConv: m2.positiveInt("conv_kernel", 4), chunkSize: m2.positiveInt("chunk_size", 256),
      dtMin, dtMax, bias: m2.bool("use_bias", false), convBias: m2.bool("use_conv_bias", true),
      perGroupNorm: (m2.raw.norm ?? "group") === "group",
    },
    attention: {
      numHeads: heads, numKvHeads: kvHeads, headDim, ropeTheta: at.number("rope_theta", 10000),
      rotaryDim: at.int("rotary_dim", 0), bias: at.bool("bias", false),
    },
    mlp: {
      intermediateSize: mlp.positiveInt("intermediate_size", 4 * dModel), activation: activation as MlpActivation,
      gated: mlp.bool("gated", false), bias: mlp.bool("bias", false),
    },
    h3: null,
  };
  if (uses("mamba2")) hybridMamba2Shape(config, m2.file);
  if (uses("h3") || uses("s4d")) config.h3 = parseH3SsmConfig(c.section("h3"), dModel);
  return config;
}

/** The Mamba-2 mixer shape of a hybrid (throws when heads and groups do not fit the width). */
export function hybridMamba2Shape(h: HybridConfig, file: string) {
  const m2 = h.mamba2;
  return mamba2Shape(file, {
    dModel: h.dModel, expand: m2.expand, headDim: m2.headDim, nGroups: m2.nGroups, dState: m2.dState, dConv: m2.dConv,
    chunkSize: m2.chunkSize, dtLimit: [m2.dtMin, m2.dtMax], perGroupNorm: m2.perGroupNorm, normEps: h.normEps,
  });
}

/** config.json of a HybridConfig (what parseHybridConfig reads back). */
export function hybridConfigJson(h: HybridConfig): Record<string, unknown> {
  return {
    model_type: "hippo_hybrid",
    pattern: h.pattern,
    num_hidden_layers: h.kinds.length,
    hidden_size: h.dModel,
    vocab_size: h.vocabSize,
    norm_eps: h.normEps,
    tie_word_embeddings: h.tieEmbeddings,
    ...(h.eosTokenId !== undefined ? { eos_token_id: h.eosTokenId } : {}),
    ...(h.bosTokenId !== undefined ? { bos_token_id: h.bosTokenId } : {}),
    mamba: { state_size: h.mamba.dState, conv_kernel: h.mamba.dConv, expand: h.mamba.expand, time_step_rank: h.mamba.dtRank, use_bias: h.mamba.bias, use_conv_bias: h.mamba.convBias },
    mamba2: {
      state_size: h.mamba2.dState, head_dim: h.mamba2.headDim, n_groups: h.mamba2.nGroups, expand: h.mamba2.expand,
      conv_kernel: h.mamba2.dConv, chunk_size: h.mamba2.chunkSize, time_step_limit: [h.mamba2.dtMin, Number.isFinite(h.mamba2.dtMax) ? h.mamba2.dtMax : { __float__: "Infinity" }],
      use_bias: h.mamba2.bias, use_conv_bias: h.mamba2.convBias, norm: h.mamba2.perGroupNorm ? "group" : "full",
    },
    attention: { num_heads: h.attention.numHeads, num_kv_heads: h.attention.numKvHeads, head_dim: h.attention.headDim, rope_theta: h.attention.ropeTheta, rotary_dim: h.attention.rotaryDim, bias: h.attention.bias },
    mlp: { intermediate_size: h.mlp.intermediateSize, activation: h.mlp.activation, gated: h.mlp.gated, bias: h.mlp.bias },
    ...(h.h3 ? { h3: h3SsmConfigJson(h.h3) } : {}),
  };
}
