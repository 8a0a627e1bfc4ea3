import type { SequenceLayer } from "../../nn/layer.js";
import type { ConfigReader } from "../config-json.js";
import { loadH3Mixer, loadS4DMixer } from "../h3/layers.js";
import { loadAttention, loadMamba2Mixer, loadMambaMixer, loadMlp, loadNorm } from "../layer-loaders.js";
import { SequenceLM, type ResidualLayer } from "../sequence-lm.js";
import type { WeightLoader } from "../weights.js";
import { hybridMamba2Shape, parseHybridConfig, type HybridLayerKind } from "./config.js";

/** Builds a Hippo hybrid (model_type "hippo_hybrid") from its pattern: one pre-norm residual layer per letter. */
export async function buildHybrid(c: ConfigReader, w: WeightLoader): Promise<SequenceLM> {
  const h = parseHybridConfig(c);
  const D = h.dModel;
  const why = `from config: pattern '${h.pattern}', hidden_size=${D}`;
  const m2 = h.mamba2;
  const m2Shape = h.kinds.includes("mamba2") ? hybridMamba2Shape(h, c.file) : null;
  const at = h.attention;
  const load = (kind: HybridLayerKind, m: string): Promise<SequenceLayer> => {
    switch (kind) {
      case "mamba2":
        return loadMamba2Mixer(w, m, D, m2Shape!, { proj: m2.bias, conv: m2.convBias }, why);
      case "mamba":
        return loadMambaMixer(w, m, D, { dInner: h.mamba.expand * D, dState: h.mamba.dState, dtRank: h.mamba.dtRank, dConv: h.mamba.dConv },
          { proj: h.mamba.bias, conv: h.mamba.convBias }, why);
      case "attention":
        return loadAttention(w, m, D, {
          numHeads: at.numHeads, numKvHeads: at.numKvHeads, headDim: at.headDim, scale: at.headDim ** -0.5,
          rotary: at.rotaryDim > 0 ? { dim: at.rotaryDim, base: at.ropeTheta, interleaved: false, positionScale: 1 } : null,
        }, { q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj" }, { qkv: at.bias, o: at.bias }, why);
      case "h3":
        return loadH3Mixer(w, m, D, h.h3!, why);
      case "s4d":
        return loadS4DMixer(w, m, D, h.h3!, why);
      case "mlp":
        return loadMlp(w, m, D, h.mlp.intermediateSize, h.mlp.activation, h.mlp.gated ? "gated" : "plain",
          { up: "up_proj", gate: "gate_proj", down: "down_proj" }, h.mlp.bias, why);
    }
  };
  const embeddings = await w.table("backbone.embeddings.weight", [h.vocabSize, D], why);
  const layers: ResidualLayer[] = [];
  for (let i = 0; i < h.kinds.length; i++) {
    const p = `backbone.layers.${i}`;
    layers.push({ norm: await loadNorm(w, `${p}.norm`, "rms", D, h.normEps, why), layer: await load(h.kinds[i], `${p}.mixer`) });
  }
  const finalNorm = await loadNorm(w, "backbone.norm_f", "rms", D, h.normEps, why);
  const lmHead = h.tieEmbeddings ? embeddings : await w.table("lm_head.weight", [h.vocabSize, D], why);
  return new SequenceLM({
    family: "hippo_hybrid", architecture: `Hippo hybrid '${h.pattern}'`, backend: w.backend, embeddings, layers, finalNorm, lmHead,
    vocabSize: h.vocabSize, dModel: D, nBlocks: h.kinds.length, eosTokenId: h.eosTokenId, bosTokenId: h.bosTokenId, config: c.raw,
  });
}

