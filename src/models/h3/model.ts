import type { AttentionShape } from "../../nn/attention.js";
import type { SequenceLayer } from "../../nn/layer.js";
import { loadAttention, loadMlp, loadNorm } from "../layer-loaders.js";
import { SequenceLM, type ResidualLayer } from "../sequence-lm.js";
import type { WeightLoader } from "../weights.js";
import type { H3Config } from "./config.js";
import { H3_KEYS, legacyH3Names } from "./keys.js";
import { loadH3Mixer, loadS4DMixer, type KeyResolver } from "./layers.js";

function attentionShape(config: H3Config): AttentionShape {
  const { numHeads, rotaryDim, softmaxScale } = config.attn;
  const headDim = config.dModel / numHeads;
  return {
    numHeads, numKvHeads: numHeads, headDim,
    scale: softmaxScale ?? 1 / Math.sqrt(headDim),
    // flash_attn's RotaryEmbedding: base 10000, rotate_half over the first rotary_emb_dim dims.
    rotary: rotaryDim > 0 ? { dim: rotaryDim, base: 10000, interleaved: false, positionScale: 1 } : null,
  };
}

/**
 * An H3 language model as SSMLMHeadModel builds it: word embeddings (no position embeddings) → per layer
 * a flash_attn Block, i.e. two pre-norm residual steps, LayerNorm + mixer (H3, or MHA with fused Wqkv
 * at attn_layer_idx) and LayerNorm + MLP (fc1 → GELU (tanh) → fc2) → ln_f → LM head tied to the embedding.
 */
export async function buildH3LM(config: H3Config, weights: WeightLoader): Promise<SequenceLM> {
  const { dModel: D, dInner, vocabSize: V, nLayer, ssm } = config;
  const why = `from config: d_model=${D}, n_layer=${nLayer}, d_inner=${dInner}, vocab=${V}, d_state=${ssm.dState}, head_dim=${ssm.headDim}`;
  const legacy = legacyH3Names(weights.source.names(), nLayer);
  const name: KeyResolver = (k) => legacy.get(k) ?? k;
  // Mixers and MLPs keep their inner names in legacy checkpoints; only their prefix changes.
  const storedPrefix = (prefix: string, probe: string) => name(`${prefix}.${probe}`).slice(0, -(probe.length + 1));

  const embeddings = await weights.table(name(H3_KEYS.embedding), [V, D], why);
  const attnAt = new Set(config.attnLayerIdx);
  const layers: ResidualLayer[] = [];
  for (let i = 0; i < nLayer; i++) {
    const p = H3_KEYS.layer(i);
    let mixer: SequenceLayer;
    if (attnAt.has(i)) {
      const bias = { qkv: config.attn.bias, o: config.attn.bias };
      mixer = await loadAttention(weights, storedPrefix(`${p}.mixer`, "Wqkv.weight"), D, attentionShape(config), { qkv: "Wqkv", o: "out_proj" }, bias, why);
    } else if (config.ssmLayer === "s4d") {
      mixer = await loadS4DMixer(weights, `${p}.mixer`, D, ssm, why, name);
    } else {
      mixer = await loadH3Mixer(weights, `${p}.mixer`, D, ssm, why, name);
    }
    const mlp = await loadMlp(weights, storedPrefix(`${p}.mlp`, "fc1.weight"), D, dInner, "gelu_tanh", "plain", { up: "fc1", down: "fc2" }, true, why);
    layers.push({ norm: await loadNorm(weights, storedPrefix(`${p}.norm1`, "weight"), "layer", D, config.normEps, why), layer: mixer });
    layers.push({ norm: await loadNorm(weights, storedPrefix(`${p}.norm2`, "weight"), "layer", D, config.normEps, why), layer: mlp });
  }
  const finalNorm = await loadNorm(weights, storedPrefix(H3_KEYS.lnF, "weight"), "layer", D, config.normEps, why);
  const lmHead = config.tieEmbeddings ? embeddings : await weights.table(name(H3_KEYS.lmHead), [V, D], why);
  const mixerName = config.ssmLayer === "s4d" ? "S4D" : "H3";
  return new SequenceLM({
    family: "h3",
    architecture: `${mixerName} LM (HazyResearch/H3 SSMLMHeadModel layout; attention at layers [${config.attnLayerIdx.join(", ")}])`,
    backend: weights.backend, embeddings, layers, finalNorm, lmHead, vocabSize: V, dModel: D, nBlocks: nLayer,
    eosTokenId: config.eosTokenId, bosTokenId: config.bosTokenId, config: { ...config },
  });
}
