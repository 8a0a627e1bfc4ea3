import type { RawTensor } from "../../io/raw-tensor.js";
import { WeightInit } from "../init-weights.js";
import type { HybridConfig } from "./config.js";
import { initH3Mixer, initS4DMixer } from "../h3/init.js";

/** Fresh weights for a Hippo hybrid, layer by layer as its pattern says (see WeightInit for the scheme). */
export function initHybridWeights(h: HybridConfig, seed: number, dtype: "F32" | "F16" | "BF16" = "F32"): Map<string, RawTensor> {
  const init = new WeightInit(seed, dtype);
  const D = h.dModel;
  init.put("backbone.embeddings.weight", [h.vocabSize, D], init.normal(0.02), true);
  h.kinds.forEach((kind, i) => {
    const m = `backbone.layers.${i}.mixer`;
    init.ones(`backbone.layers.${i}.norm.weight`, D);
    if (kind === "mamba") {
      const s = h.mamba;
      init.mambaMixer(m, D, { dInner: s.expand * D, dState: s.dState, dtRank: s.dtRank, dConv: s.dConv, bias: s.bias, convBias: s.convBias });
    } else if (kind === "mamba2") {
      const s = h.mamba2;
      const dInner = s.expand * D;
      init.mamba2Mixer(m, D, { dInner, nHeads: dInner / s.headDim, nGroups: s.nGroups, dState: s.dState, dConv: s.dConv, bias: s.bias, convBias: s.convBias });
    } else if (kind === "h3") initH3Mixer(init, m, D, h.h3!);
    else if (kind === "s4d") initS4DMixer(init, m, D, h.h3!);
    else if (kind === "attention") init.attention(m, D, h.attention);
    else init.mlp(m, D, h.mlp);
  });
  init.ones("backbone.norm_f.weight", D);
  if (!h.tieEmbeddings) init.put("lm_head.weight", [h.vocabSize, D], init.normal(0.02), true);
  return init.tensors;
}
