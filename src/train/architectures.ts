import { HippoError } from "../errors.js";
import type { RawTensor } from "../io/raw-tensor.js";
import { ConfigReader } from "../models/config-json.js";
import { parseHybridConfig, PATTERN_LETTERS } from "../models/hybrid/config.js";
import { initHybridWeights } from "../models/hybrid/init.js";
import { initMambaWeights, mambaConfig, mambaHfConfigJson } from "../models/mamba/init.js";

/** Sizes of a model to train from scratch. */
export interface ArchitectureSize {
  dModel: number;
  /** Blocks: Mamba/Mamba-2 mixers, or (mixer + MLP) pairs for h3, s4d and attention. Ignored for explicit patterns. */
  nLayer: number;
  vocabSize: number;
  /** SSM state size (Mamba, Mamba-2; H3/S4D use it as d_state, two per complex mode). */
  dState: number;
  /** Attention heads (and Mamba-2 heads follow from head_dim). */
  heads: number;
}

export interface Architecture {
  /** What --arch named. */
  name: string;
  /** config.json of the model directory training writes (a family loadModel and, for Mamba/Mamba-2, HF transformers read). */
  config: Record<string, unknown>;
  /** Fresh weights, checkpoint key → tensor. */
  init(seed: number): Map<string, RawTensor>;
}

export const NAMED_ARCHITECTURES = ["mamba", "mamba2", "h3", "s4d", "attention"] as const;

/** Block patterns of the named architectures that are Hippo hybrids (mixer then MLP, as in the H3 paper's synthetic models). */
const BLOCK_PATTERNS: Record<string, string> = { h3: "H-", s4d: "S-", attention: "*-" };

/**
 * An architecture from --arch: a name (mamba and mamba2 in the Hugging Face layouts; h3, s4d, attention
 * as mixer+MLP blocks) or a hybrid layer pattern such as "M*M-" (M Mamba-2, m Mamba, H H3, S S4D,
 * * attention, - MLP).
 */
export function makeArchitecture(arch: string, size: ArchitectureSize): Architecture {
  checkSize(size);
  if (arch === "mamba") {
    const config = mambaConfig({ dModel: size.dModel, nLayer: size.nLayer, vocabSize: size.vocabSize, dState: size.dState });
    return { name: arch, config: mambaHfConfigJson(config), init: (seed) => initMambaWeights(config, seed) };
  }
  if (arch === "mamba2") return hfMamba2(size);
  const pattern = BLOCK_PATTERNS[arch] !== undefined ? BLOCK_PATTERNS[arch].repeat(size.nLayer) : arch;
  const bad = [...pattern].find((ch) => PATTERN_LETTERS[ch] === undefined);
  if (bad !== undefined || pattern.length === 0) {
    throw new HippoError(`--arch '${arch}' is neither an architecture (${NAMED_ARCHITECTURES.join(", ")}) nor a layer pattern ` +
      `(letters: M Mamba-2, m Mamba, H H3, S S4D, * attention, - MLP)${bad !== undefined ? `: unknown letter '${bad}'` : ""}`);
  }
  // A pure attention model needs positions (RoPE); hybrids follow NVIDIA's recipe: no positional encoding.
  const config = hybridConfig(pattern, size, arch === "attention");
  const parsed = parseHybridConfig(new ConfigReader(config, `--arch ${arch}`));
  return { name: arch, config, init: (seed) => initHybridWeights(parsed, seed) };
}

function checkSize(s: ArchitectureSize): void {
  for (const [k, v] of Object.entries(s)) {
    if (!Number.isInteger(v) || v <= 0) throw new HippoError(`model size: ${k} must be a positive integer, got ${v}`);
  }
  if (s.dModel % s.heads !== 0) throw new HippoError(`model size: ${s.heads} heads do not divide d_model ${s.dModel}`);
}

/** Mamba-2 heads of 16 channels at these small sizes (the paper's 64 needs d_model ≥ 32·heads). */
function mamba2HeadDim(dModel: number): number {
  return Math.min(64, Math.max(8, (2 * dModel) / 8));
}

function hybridConfig(pattern: string, s: ArchitectureSize, rope: boolean): Record<string, unknown> {
  const headDim = s.dModel / s.heads;
  return {
    model_type: "hippo_hybrid",
    pattern,
    num_hidden_layers: pattern.length,
    hidden_size: s.dModel,
    vocab_size: s.vocabSize,
    norm_eps: 1e-5,
    tie_word_embeddings: true,
    mamba: { state_size: s.dState, conv_kernel: 4, expand: 2 },
    mamba2: { state_size: s.dState, head_dim: mamba2HeadDim(s.dModel), n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: 64 },
    attention: { num_heads: s.heads, num_kv_heads: s.heads, head_dim: headDim, rope_theta: 10000, rotary_dim: rope ? headDim : 0 },
    mlp: { intermediate_size: 4 * s.dModel, activation: "gelu" },
    h3: { mode: "diag", measure: "diag-lin", d_state: Math.max(2, s.dState + (s.dState % 2)), head_dim: 1, use_fast_fftconv: true },
  };
}

/** Hugging Face Mamba2ForCausalLM: the hybrid's Mamba-2 blocks under the same keys, HF's config names. */
function hfMamba2(s: ArchitectureSize): Architecture {
  const headDim = mamba2HeadDim(s.dModel);
  const hybrid = parseHybridConfig(new ConfigReader(hybridConfig("M".repeat(s.nLayer), s, false), "--arch mamba2"));
  const config = {
    architectures: ["Mamba2ForCausalLM"],
    model_type: "mamba2",
    hidden_size: s.dModel,
    num_hidden_layers: s.nLayer,
    vocab_size: s.vocabSize,
    state_size: s.dState,
    expand: 2,
    head_dim: headDim,
    num_heads: (2 * s.dModel) / headDim,
    n_groups: 1,
    conv_kernel: 4,
    chunk_size: 64,
    use_bias: false,
    use_conv_bias: true,
    layer_norm_epsilon: 1e-5,
    rms_norm: true,
    norm_before_gate: false,
    residual_in_fp32: true,
    // time_step_limit left at transformers' default (0.0, inf): JSON cannot say 0.0, and its config class rejects the int 0.
    tie_word_embeddings: true,
    hidden_act: "silu",
  };
  return { name: "mamba2", config, init: (seed) => initHybridWeights(hybrid, seed) };
}
