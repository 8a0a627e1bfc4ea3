import { basename, resolve } from "node:path";
import type { Backend } from "../backends/backend.js";
import { HippoError } from "../errors.js";
import { memoryTensorSource } from "../io/memory-source.js";
import { ConfigReader } from "../models/config-json.js";
import { h3ReleaseConfig, type H3Config } from "../models/h3/config.js";
import { initH3Weights } from "../models/h3/init.js";
import { buildH3LM } from "../models/h3/model.js";
import { parseHybridConfig, PATTERN_LETTERS } from "../models/hybrid/config.js";
import { initHybridWeights } from "../models/hybrid/init.js";
import { buildHybrid } from "../models/hybrid/model.js";
import { loadModel } from "../models/load.js";
import { SequenceLM } from "../models/sequence-lm.js";
import { WeightLoader } from "../models/weights.js";
import { modelKinds } from "./instrument.js";

/**
 * The models `hippo bench` compares. Every built-in model is a stack of residual layers of a few kinds;
 * since a layer's cost depends on its kind and shape, not on its depth, the bench measures a *unit*
 * model holding one layer of each kind (at the full width) and composes the full depth from it
 * (see compose.ts). `depth: "full"` builds every layer instead.
 */

/** Shapes of one size class; families derive their layer counts from `blocks` (Transformer blocks). */
export interface SizePreset {
  name: string;
  dModel: number;
  /** Transformer blocks (attention + MLP); SSM-only models get 2 × blocks mixer layers, as mamba-130m's 24. */
  blocks: number;
  vocabSize: number;
  /** Attention head dim; heads = dModel / headDim. */
  headDim: number;
  mlpHidden: number;
  mamba: { dState: number };
  mamba2: { dState: number; headDim: number; chunkSize: number };
  h3: { dState: number; vocabSize: number };
}

const roundUp = (x: number, m: number) => Math.ceil(x / m) * m;

function preset(name: string, dModel: number, blocks: number): SizePreset {
  return {
    name, dModel, blocks, vocabSize: 50280, headDim: 64, mlpHidden: roundUp((8 / 3) * dModel, 256),
    mamba: { dState: 16 }, mamba2: { dState: 128, headDim: 64, chunkSize: 256 },
    // The released H3 models use the GPT-2 vocabulary padded to a multiple of 8.
    h3: { dState: 64, vocabSize: 50264 },
  };
}

export const SIZES: Record<string, SizePreset> = {
  /** For tests: seconds end to end. */
  tiny: {
    name: "tiny", dModel: 64, blocks: 2, vocabSize: 512, headDim: 16, mlpHidden: 176,
    mamba: { dState: 8 }, mamba2: { dState: 16, headDim: 16, chunkSize: 32 }, h3: { dState: 8, vocabSize: 512 },
  },
  /** mamba-130m / mamba2-130m / H3-125M / GPT-3 Small shapes. */
  "125m": preset("125m", 768, 12),
  "350m": preset("350m", 1024, 24),
  "760m": preset("760m", 1536, 24),
  "1.3b": preset("1.3b", 2048, 24),
};

export function sizePreset(name: string): SizePreset {
  const s = SIZES[name];
  if (!s) throw new HippoError(`unknown --size '${name}' (sizes: ${Object.keys(SIZES).join(", ")})`);
  return s;
}

/** A model the bench can build at unit depth (one layer per kind) and at full depth. */
export interface BenchModelSpec {
  name: string;
  label: string;
  description: string;
  /** Kind of every residual layer of the full model, in order. */
  fullKinds: string[];
  /** Builds the model; "unit" may return the full model when there is nothing to compose (model directories). */
  build(depth: "unit" | "full", backend: Backend): Promise<SequenceLM>;
}

const WEIGHT_SEED = 0;

function hybridJson(size: SizePreset, pattern: string): Record<string, unknown> {
  return {
    model_type: "hippo_hybrid", pattern, hidden_size: size.dModel, vocab_size: size.vocabSize, tie_word_embeddings: true,
    mamba: { state_size: size.mamba.dState, conv_kernel: 4, expand: 2 },
    mamba2: { state_size: size.mamba2.dState, head_dim: size.mamba2.headDim, n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: size.mamba2.chunkSize },
    attention: {
      num_heads: size.dModel / size.headDim, num_kv_heads: size.dModel / size.headDim, head_dim: size.headDim,
      rotary_dim: size.headDim, rope_theta: 10000,
    },
    mlp: { intermediate_size: size.mlpHidden, activation: "silu", gated: true },
    h3: { d_state: size.h3.dState, head_dim: 1 },
  };
}

async function buildHybridModel(size: SizePreset, pattern: string, backend: Backend, name: string): Promise<SequenceLM> {
  const reader = new ConfigReader(hybridJson(size, pattern), `${name} (pattern '${pattern}')`);
  const weights = initHybridWeights(parseHybridConfig(reader), WEIGHT_SEED);
  return buildHybrid(reader, new WeightLoader(memoryTensorSource(weights), backend, `random ${name} weights`));
}

const PATTERN_HELP = "M Mamba-2, m Mamba, H H3, S S4D, * attention, - MLP";

/** One layer of each letter, in order of first appearance: "M-M-*-" → "M-*". */
export function unitPattern(pattern: string): string {
  return [...new Set(pattern)].join("");
}

function patternKinds(pattern: string): string[] {
  return [...pattern].map((ch) => {
    const kind = PATTERN_LETTERS[ch];
    if (!kind) throw new HippoError(`hybrid pattern '${pattern}': unknown letter '${ch}' (${PATTERN_HELP})`);
    return kind;
  });
}

function patternSpec(name: string, label: string, description: string, size: SizePreset, pattern: string): BenchModelSpec {
  return {
    name, label, description, fullKinds: patternKinds(pattern),
    build: (depth, backend) => buildHybridModel(size, depth === "unit" ? unitPattern(pattern) : pattern, backend, name),
  };
}

/** Attention blocks of the default hybrid: every sixth block from the fourth (1:5 attention to Mamba-2), at least one. */
function hybridPattern(blocks: number): string {
  const attn = (i: number) => i % 6 === 3 || (blocks < 4 && i === blocks - 1);
  return Array.from({ length: blocks }, (_, i) => (attn(i) ? "*-" : "M-")).join("");
}

/** H3's attention layers: H3-125M has one at layer 6 of 12; the larger releases at thirds. */
function h3AttentionLayers(blocks: number): number[] {
  return blocks <= 12 ? [Math.floor(blocks / 2)] : [Math.floor(blocks / 3), Math.floor((2 * blocks) / 3)];
}

function h3Config(size: SizePreset, nLayer: number, attnLayerIdx: number[]): H3Config {
  const base = h3ReleaseConfig("H3-125M");
  return {
    ...base, dModel: size.dModel, nLayer, dInner: 4 * size.dModel, vocabSize: size.h3.vocabSize, attnLayerIdx,
    attn: { ...base.attn, numHeads: size.dModel / size.headDim },
    ssm: { ...base.ssm, dState: size.h3.dState },
  };
}

function h3Spec(size: SizePreset): BenchModelSpec {
  const attn = h3AttentionLayers(size.blocks);
  const fullKinds = Array.from({ length: size.blocks }, (_, i) => [attn.includes(i) ? "attention" : "h3", "mlp"]).flat();
  return {
    name: "h3", label: "H3",
    description: `${size.blocks} blocks of (H3 or attention) + GELU MLP ${4 * size.dModel}; attention at blocks [${attn.join(", ")}]; ` +
      `d_state ${size.h3.dState}, head_dim 1, LayerNorm (HazyResearch/H3 SSMLMHeadModel)`,
    fullKinds,
    build: async (depth, backend) => {
      const config = depth === "unit" ? h3Config(size, attn.length > 0 ? 2 : 1, attn.length > 0 ? [1] : []) : h3Config(size, size.blocks, attn);
      const weights = initH3Weights(config, WEIGHT_SEED);
      return buildH3LM(config, new WeightLoader(memoryTensorSource(weights), backend, "random h3 weights"));
    },
  };
}

/** The built-in models at a size, by name. */
function builtinSpec(name: string, size: SizePreset): BenchModelSpec | null {
  const n = 2 * size.blocks;
  const heads = size.dModel / size.headDim;
  const mlp = `SiLU-gated MLP ${size.mlpHidden}`;
  switch (name) {
    case "h3":
      return h3Spec(size);
    case "mamba":
      return patternSpec("mamba", "Mamba", `${n} × Mamba (S6) mixer, d_state ${size.mamba.dState}, expand 2 (mamba-130m layout)`, size, "m".repeat(n));
    case "mamba2":
      return patternSpec("mamba2", "Mamba-2", `${n} × Mamba-2 (SSD) mixer, d_state ${size.mamba2.dState}, head_dim ${size.mamba2.headDim}, expand 2, chunk ${size.mamba2.chunkSize}`,
        size, "M".repeat(n));
    case "transformer":
      return patternSpec("transformer", "Transformer", `${size.blocks} blocks of attention (${heads} heads × ${size.headDim}, RoPE) + ${mlp} (Llama-style)`,
        size, "*-".repeat(size.blocks));
    case "hybrid": {
      const pattern = hybridPattern(size.blocks);
      return patternSpec("hybrid", "Hybrid", `pattern '${pattern}': Mamba-2 and attention mixers (${[...pattern].filter((c) => c === "*").length} of ${size.blocks}), each followed by a ${mlp}`,
        size, pattern);
    }
    default:
      if (name.startsWith("hybrid:")) {
        const pattern = name.slice("hybrid:".length);
        if (pattern.length === 0) throw new HippoError(`model 'hybrid:' needs a layer pattern after the colon, e.g. hybrid:M-M*-`);
        return patternSpec(name, `Hybrid ${pattern}`, `pattern '${pattern}' (${PATTERN_HELP})`, size, pattern);
      }
      return null;
  }
}

export const BUILTIN_MODELS = ["h3", "mamba", "mamba2", "transformer", "hybrid"];

export function modelSpec(name: string, size: SizePreset): BenchModelSpec {
  const spec = builtinSpec(name, size);
  if (!spec) throw new HippoError(`unknown model '${name}' (models: ${BUILTIN_MODELS.join(", ")}, hybrid:<pattern>; or --model <dir>)`);
  return spec;
}

/** A model directory: benchmarked as it is, every layer (nothing to compose). */
export async function directorySpec(dir: string, backend: Backend): Promise<BenchModelSpec> {
  const { model } = await loadModel(dir, { backend });
  if (!(model instanceof SequenceLM)) throw new HippoError(`${dir}: this model family cannot be profiled layer by layer`);
  const desc = model.describe();
  let built = false;
  return {
    name: basename(resolve(dir)),
    label: basename(resolve(dir)),
    description: `${desc.architecture} from ${dir}`,
    fullKinds: modelKinds(model),
    // The first build hands over the model loaded above; later ones load it again.
    build: async () => {
      if (!built) {
        built = true;
        return model;
      }
      return (await loadModel(dir, { backend })).model as SequenceLM;
    },
  };
}
