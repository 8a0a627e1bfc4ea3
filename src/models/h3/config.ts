import { HippoError } from "../../errors.js";
import { DEFAULT_SSM_CHUNK } from "../../nn/s4d.js";
import type { ConfigReader } from "../config-json.js";

/**
 * Configs of H3 language models, as HazyResearch/H3's SSMLMHeadModel takes them (src/models/ssm_seq.py):
 * d_model, n_layer, d_inner, vocab_size, ssm_cfg (H3 / SSKernel arguments), attn_layer_idx, attn_cfg
 * (flash_attn MHA arguments), pad_vocab_size_multiple, layer_norm_epsilon, max_position_embeddings.
 * Hippo writes `model_type: "h3"`; the H3 repo's own configs have no model_type and are recognised by
 * fields Mamba configs lack (ssm_cfg.mode / ssm_cfg.measure, d_inner).
 *
 * Hippo extensions: `ssm_layer: "s4d"` builds the S4D-only baseline mixer in place of H3, and
 * `ssm_cfg.chunk_size` sets the parallel mode's FFT block (state passing beyond it).
 */

export type RealType = "exp" | "none" | "relu" | "sigmoid" | "softplus";

export interface H3SsmConfig {
  /** Shift-SSM state size N, and 2 × the diagonal SSM's complex modes. */
  dState: number;
  headDim: number;
  /** Initialisation of A: 'diag-lin', 'diag-inv' or 'diag' (half each). Checkpoints carry A; this matters for init only. */
  measure: string;
  discretization: "bilinear" | "zoh";
  /** How inv_A_real maps to Re(A) (SSKernelDiag real_type). */
  realType: RealType;
  /** Modes whose frequency dt·|Im A|/2π reaches bandlimit/2 are zeroed in C (SSKernelDiag bandlimit). */
  bandlimit: number | null;
  forceReal: boolean;
  /**
   * Output channel order for head_dim > 1: the torch FFT path (use_fast_fftconv false, the reference
   * here) flattens (d2 h); the fused fftconv extension (use_fast_fftconv true) flattens (h d2).
   */
  outputOrder: "d2 h" | "h d2";
  dtMin: number;
  dtMax: number;
  chunkSize: number;
}

export interface H3AttnConfig {
  numHeads: number;
  bias: boolean;
  softmaxScale: number | null;
  /** Rotated dims per head (GPT-NeoX halves, base 10000), 0 = none. */
  rotaryDim: number;
}

export interface H3Config {
  family: "h3";
  ssmLayer: "h3" | "s4d";
  dModel: number;
  nLayer: number;
  dInner: number;
  /** After padding to pad_vocab_size_multiple. */
  vocabSize: number;
  attnLayerIdx: number[];
  attn: H3AttnConfig;
  ssm: H3SsmConfig;
  normEps: number;
  tieEmbeddings: boolean;
  eosTokenId?: number;
  bosTokenId?: number;
}

/** ssm_cfg keys of H3 / SSKernel / SSKernelDiag that Hippo understands (the rest are refused). */
const SSM_KEYS = new Set([
  "mode", "measure", "d_state", "head_dim", "l_max", "use_fast_fftconv", "dropout", "lr", "rank", "n_ssm", "channels",
  "dt_min", "dt_max", "deterministic", "verbose", "measure_args", "disc", "real_type", "bandlimit", "force_real", "chunk_size",
]);
const ATTN_KEYS = new Set([
  "num_heads", "bias", "dropout", "softmax_scale", "causal", "rotary_emb_dim", "rotary_emb_scale_base", "dwconv",
  "cross_attn", "fused_bias_fc", "use_flash_attn", "checkpointing", "return_residual",
]);
const REAL_TYPES: RealType[] = ["exp", "none", "relu", "sigmoid", "softplus"];

/** An H3 config: model_type 'h3', or the H3 repo's fields (no model_type, d_model + n_layer, and H3-only fields). */
export function isH3Config(c: ConfigReader): boolean {
  if (c.raw.model_type === "h3") return true;
  if (c.has("model_type") || !c.has("d_model") || !c.has("n_layer")) return false;
  const ssm = c.raw.ssm_cfg;
  const ssmCfg = ssm && typeof ssm === "object" && !Array.isArray(ssm) ? (ssm as Record<string, unknown>) : {};
  if (ssmCfg.layer !== undefined) return false; // mamba_ssm names its mixer there
  return ssmCfg.mode !== undefined || ssmCfg.measure !== undefined || c.has("d_inner");
}

function refuseUnknown(section: ConfigReader, known: Set<string>, what: string): void {
  for (const key of Object.keys(section.raw)) {
    if (!known.has(key)) throw new HippoError(`${section.file}: unknown ${what} key '${key}' (known: ${[...known].join(", ")})`);
  }
}

function optionalNumber(c: ConfigReader, key: string): number | null {
  return c.raw[key] === undefined || c.raw[key] === null ? null : c.number(key);
}

/** An H3 layer's SSM settings from its ssm_cfg section (H3's constructor arguments), defaults as H3's. */
export function parseH3SsmConfig(s: ConfigReader, dModel: number): H3SsmConfig {
  refuseUnknown(s, SSM_KEYS, "ssm_cfg");
  const mode = s.raw.mode ?? "diag";
  if (mode !== "diag") {
    throw new HippoError(`${s.file}: SSM kernel mode '${String(mode)}' is not supported (only 'diag', the S4D kernel H3 uses)`);
  }
  const dState = s.raw.d_state ?? 64;
  if (typeof dState !== "number" || !Number.isInteger(dState) || dState < 2 || dState % 2 !== 0) {
    throw new HippoError(`${s.file}: d_state ${JSON.stringify(dState)} is not supported: it must be an even integer ≥ 2 ` +
      `(the diagonal SSM keeps d_state/2 complex-conjugate pairs of modes)`);
  }
  const headDim = s.positiveInt("head_dim", 1);
  if (dModel % headDim !== 0) throw new HippoError(`${s.file}: head_dim ${headDim} does not divide d_model ${dModel}`);
  const measure = typeof s.raw.measure === "string" ? s.raw.measure : "diag-lin";
  if (!["diag-lin", "diag-inv", "diag"].includes(measure)) {
    throw new HippoError(`${s.file}: measure '${measure}' is not supported (diag-lin, diag-inv, diag)`);
  }
  const disc = s.raw.disc ?? "bilinear";
  if (disc !== "bilinear" && disc !== "zoh") throw new HippoError(`${s.file}: disc '${String(disc)}' is not supported (bilinear, zoh)`);
  const realType = (s.raw.real_type ?? "exp") as RealType;
  if (!REAL_TYPES.includes(realType)) throw new HippoError(`${s.file}: real_type '${String(realType)}' is not supported (${REAL_TYPES.join(", ")})`);
  if ((s.raw.channels ?? 1) !== 1) throw new HippoError(`${s.file}: channels ${JSON.stringify(s.raw.channels)} is not supported (only 1, as H3 uses)`);
  return {
    dState, headDim, measure, discretization: disc, realType,
    bandlimit: optionalNumber(s, "bandlimit"),
    forceReal: s.bool("force_real", false),
    outputOrder: s.bool("use_fast_fftconv", false) ? "h d2" : "d2 h",
    dtMin: s.number("dt_min", 0.001),
    dtMax: s.number("dt_max", 0.1),
    // l_max only truncates the reference's parallel-mode kernel (never its recurrence); Hippo computes the
    // untruncated SSM in both modes, so sequences longer than l_max follow the recurrent semantics.
    chunkSize: s.positiveInt("chunk_size", DEFAULT_SSM_CHUNK),
  };
}

function parseAttn(c: ConfigReader, dModel: number): H3AttnConfig {
  const a = c.section("attn_cfg");
  refuseUnknown(a, ATTN_KEYS, "attn_cfg");
  // flash_attn MHA's own default is one head.
  const numHeads = a.positiveInt("num_heads", 1);
  if (dModel % numHeads !== 0) throw new HippoError(`${a.file}: ${numHeads} attention heads do not divide d_model ${dModel}`);
  if (!a.bool("causal", true)) throw new HippoError(`${a.file}: non-causal attention cannot run a language model`);
  for (const key of ["dwconv", "cross_attn", "return_residual"]) {
    if (a.bool(key, false)) throw new HippoError(`${a.file}: attn_cfg.${key} is not supported`);
  }
  if ((a.raw.rotary_emb_scale_base ?? 0) !== 0) throw new HippoError(`${a.file}: rotary_emb_scale_base (XPos) is not supported`);
  const rotaryDim = a.int("rotary_emb_dim", 0);
  const headDim = dModel / numHeads;
  if (rotaryDim % 2 !== 0 || rotaryDim > headDim) {
    throw new HippoError(`${a.file}: rotary_emb_dim ${rotaryDim} must be even and at most the head dim ${headDim}`);
  }
  return { numHeads, bias: a.bool("bias", true), softmaxScale: optionalNumber(a, "softmax_scale"), rotaryDim };
}

function parseAttnLayers(c: ConfigReader, nLayer: number): number[] {
  const raw = c.raw.attn_layer_idx ?? [];
  if (!Array.isArray(raw) || raw.some((i) => !Number.isInteger(i) || i < 0 || i >= nLayer)) {
    throw new HippoError(`${c.file}: attn_layer_idx must list layer indices in [0, ${nLayer}), got ${JSON.stringify(raw)}`);
  }
  return [...new Set(raw as number[])].sort((a, b) => a - b);
}

/** GPT-2's <|endoftext|>: the H3 checkpoints were trained with the GPT-2 tokenizer (50257 tokens). */
const GPT2_VOCAB = 50257;
const GPT2_EOS = 50256;

export function parseH3Config(c: ConfigReader): H3Config {
  const dModel = c.positiveInt("d_model");
  const nLayer = c.positiveInt("n_layer");
  const rawVocab = c.positiveInt("vocab_size");
  const multiple = c.positiveInt("pad_vocab_size_multiple", 1);
  if (c.int("max_position_embeddings", 0) !== 0) {
    throw new HippoError(`${c.file}: max_position_embeddings > 0 (learned position embeddings) is not supported; H3 models use none`);
  }
  const ssmLayer = c.raw.ssm_layer ?? "h3";
  if (ssmLayer !== "h3" && ssmLayer !== "s4d") throw new HippoError(`${c.file}: ssm_layer '${String(ssmLayer)}' is not supported (h3, s4d)`);
  return {
    family: "h3",
    ssmLayer,
    dModel,
    nLayer,
    dInner: c.has("d_inner") ? c.positiveInt("d_inner") : 4 * dModel,
    vocabSize: Math.ceil(rawVocab / multiple) * multiple,
    attnLayerIdx: parseAttnLayers(c, nLayer),
    attn: parseAttn(c, dModel),
    ssm: parseH3SsmConfig(c.section("ssm_cfg"), dModel),
    normEps: c.number("layer_norm_epsilon", 1e-5),
    // SSMLMHeadModel always ties the LM head to the embedding.
    tieEmbeddings: c.bool("tie_word_embeddings", true),
    eosTokenId: c.optionalInt("eos_token_id") ?? (rawVocab === GPT2_VOCAB ? GPT2_EOS : undefined),
    bosTokenId: c.optionalInt("bos_token_id"),
  };
}

/** config.json for an H3Config, in the H3 repo's layout plus model_type (what Hippo writes). */
/** The ssm_cfg section of an H3SsmConfig (what parseH3SsmConfig reads back). */
export function h3SsmConfigJson(s: H3SsmConfig): Record<string, unknown> {
  return {
    mode: "diag", measure: s.measure, d_state: s.dState, head_dim: s.headDim, disc: s.discretization, real_type: s.realType,
    dt_min: s.dtMin, dt_max: s.dtMax, use_fast_fftconv: s.outputOrder === "h d2",
    ...(s.bandlimit !== null ? { bandlimit: s.bandlimit } : {}), ...(s.forceReal ? { force_real: true } : {}),
    ...(s.chunkSize !== DEFAULT_SSM_CHUNK ? { chunk_size: s.chunkSize } : {}),
  };
}

export function h3ConfigJson(config: H3Config): Record<string, unknown> {
  const s = config.ssm;
  return {
    model_type: "h3",
    architectures: ["SSMLMHeadModel"],
    d_model: config.dModel,
    n_layer: config.nLayer,
    d_inner: config.dInner,
    vocab_size: config.vocabSize,
    ...(config.ssmLayer === "s4d" ? { ssm_layer: "s4d" } : {}),
    ssm_cfg: h3SsmConfigJson(s),
    attn_layer_idx: config.attnLayerIdx,
    attn_cfg: {
      num_heads: config.attn.numHeads, bias: config.attn.bias,
      ...(config.attn.rotaryDim ? { rotary_emb_dim: config.attn.rotaryDim } : {}),
      ...(config.attn.softmaxScale !== null ? { softmax_scale: config.attn.softmaxScale } : {}),
    },
    max_position_embeddings: 0,
    layer_norm_epsilon: config.normEps,
    pad_vocab_size_multiple: 1,
    tie_word_embeddings: config.tieEmbeddings,
    ...(config.eosTokenId !== undefined ? { eos_token_id: config.eosTokenId } : {}),
    ...(config.bosTokenId !== undefined ? { bos_token_id: config.bosTokenId } : {}),
  };
}

/** The released H3 checkpoints' shapes (HazyResearch/H3 examples/README.md): d_model, layers, attention layers, heads. */
export const H3_RELEASES = {
  "H3-125M": { dModel: 768, nLayer: 12, attnLayerIdx: [6], numHeads: 12 },
  "H3-355M": { dModel: 1024, nLayer: 24, attnLayerIdx: [8, 16], numHeads: 16 },
  "H3-1.3B": { dModel: 2048, nLayer: 24, attnLayerIdx: [8, 16], numHeads: 16 },
  "H3-2.7B": { dModel: 2560, nLayer: 32, attnLayerIdx: [8, 16, 24], numHeads: 20 },
} as const;

/** The config of a released H3 model (GPT-2 vocabulary padded to a multiple of 8, d_inner 4·d_model, S4D-Lin). */
export function h3ReleaseConfig(name: keyof typeof H3_RELEASES): H3Config {
  const r = H3_RELEASES[name];
  return {
    family: "h3", ssmLayer: "h3", dModel: r.dModel, nLayer: r.nLayer, dInner: 4 * r.dModel,
    vocabSize: Math.ceil(GPT2_VOCAB / 8) * 8, attnLayerIdx: [...r.attnLayerIdx],
    attn: { numHeads: r.numHeads, bias: true, softmaxScale: null, rotaryDim: 0 },
    ssm: {
      dState: 64, headDim: 1, measure: "diag-lin", discretization: "bilinear", realType: "exp", bandlimit: null, forceReal: false,
      outputOrder: "d2 h", dtMin: 0.001, dtMax: 0.1, chunkSize: DEFAULT_SSM_CHUNK,
    },
    normEps: 1e-5, tieEmbeddings: true, eosTokenId: GPT2_EOS,
  };
}
