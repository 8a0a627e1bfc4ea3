import { HippoError } from "../../errors.js";
import type { Mamba2Shape } from "../../nn/mamba2-mixer.js";
import type { ConfigReader } from "../config-json.js";
import { loadMamba2Mixer, loadNorm } from "../layer-loaders.js";
import { SequenceLM, type ResidualLayer } from "../sequence-lm.js";
import type { WeightLoader } from "../weights.js";

/** time_step_limit as [min, max] (transformers writes inf as {"__float__": "Infinity"}, parsed to a number). */
export function timeStepLimit(c: ConfigReader, key = "time_step_limit", fallback: [number, number] = [0, Infinity]): [number, number] {
  const v = c.raw[key];
  if (v === undefined || v === null) return fallback;
  if (!Array.isArray(v) || v.length !== 2 || v.some((x) => typeof x !== "number")) {
    throw new HippoError(`${c.file}: '${key}' must be [min, max], got ${JSON.stringify(v)}`);
  }
  return [v[0], v[1]];
}

/**
 * Mamba-2 mixer shape from the sizes every family names differently; checks that heads × head_dim
 * fill the inner width and that heads split into groups.
 */
export function mamba2Shape(file: string, s: {
  dModel: number; expand: number; nHeads?: number; headDim: number; dInner?: number; nGroups: number; dState: number; dConv: number;
  chunkSize: number; dtLimit: [number, number]; perGroupNorm: boolean; normEps: number;
}): Mamba2Shape {
  const dInner = s.dInner ?? s.expand * s.dModel;
  const nHeads = s.nHeads ?? dInner / s.headDim;
  if (!Number.isInteger(nHeads) || nHeads * s.headDim !== dInner) {
    throw new HippoError(`${file}: ${s.nHeads ?? "?"} heads × head_dim ${s.headDim} must equal the inner width ${dInner}`);
  }
  if (s.nGroups <= 0 || nHeads % s.nGroups !== 0) throw new HippoError(`${file}: ${s.nGroups} groups do not divide ${nHeads} heads`);
  return {
    dInner, nHeads, headDim: s.headDim, nGroups: s.nGroups, dState: s.dState, dConv: s.dConv, chunkSize: s.chunkSize,
    dtMin: s.dtLimit[0], dtMax: s.dtLimit[1], normGroupSize: s.perGroupNorm ? dInner / s.nGroups : dInner, normEps: s.normEps,
  };
}

/** Hugging Face Mamba2ForCausalLM: pre-norm Mamba-2 blocks; its gated norm spans the whole inner width. */
export async function buildHfMamba2(c: ConfigReader, w: WeightLoader): Promise<SequenceLM> {
  const dModel = c.positiveInt("hidden_size");
  const nLayer = c.positiveInt("num_hidden_layers");
  const vocab = c.positiveInt("vocab_size");
  const eps = c.number("layer_norm_epsilon", 1e-5);
  const shape = mamba2Shape(c.file, {
    dModel, expand: c.positiveInt("expand", 2), nHeads: c.positiveInt("num_heads"), headDim: c.positiveInt("head_dim"),
    nGroups: c.positiveInt("n_groups", 1), dState: c.positiveInt("state_size", 128), dConv: c.positiveInt("conv_kernel", 4),
    chunkSize: c.positiveInt("chunk_size", 256), dtLimit: timeStepLimit(c), perGroupNorm: false, normEps: eps,
  });
  const why = `from config: hidden_size=${dModel}, heads=${shape.nHeads}×${shape.headDim}, n_groups=${shape.nGroups}, state_size=${shape.dState}`;
  const embeddings = await w.table("backbone.embeddings.weight", [vocab, dModel], why);
  const layers: ResidualLayer[] = [];
  for (let i = 0; i < nLayer; i++) {
    const p = `backbone.layers.${i}`;
    const mixer = await loadMamba2Mixer(w, `${p}.mixer`, dModel, shape, { proj: c.bool("use_bias", false), conv: c.bool("use_conv_bias", true) }, why);
    layers.push({ norm: await loadNorm(w, `${p}.norm`, "rms", dModel, eps, why), layer: mixer });
  }
  const finalNorm = await loadNorm(w, "backbone.norm_f", "rms", dModel, eps, why);
  const tied = c.bool("tie_word_embeddings", false);
  const lmHead = tied ? embeddings : await w.table("lm_head.weight", [vocab, dModel], why);
  return new SequenceLM({
    family: "mamba2", architecture: "Mamba-2 LM (Hugging Face Mamba2ForCausalLM layout)", backend: w.backend,
    embeddings, layers, finalNorm, lmHead, vocabSize: vocab, dModel, nBlocks: nLayer,
    eosTokenId: c.optionalInt("eos_token_id"), bosTokenId: c.optionalInt("bos_token_id"), config: c.raw,
  });
}
