import { loadMambaMixer, loadNorm } from "../layer-loaders.js";
import { SequenceLM, type ResidualLayer } from "../sequence-lm.js";
import type { WeightLoader } from "../weights.js";
import type { MambaConfig } from "./config.js";
import { MAMBA_KEYS } from "./keys.js";

/** A Mamba LM: embedding → pre-norm residual Mamba mixers → final norm → LM head (tied unless configured). */
export async function buildMambaLM(config: MambaConfig, weights: WeightLoader): Promise<SequenceLM> {
  const { dModel: Dm, dInner: E, dState: N, dConv: K, dtRank: R, vocabSize: V } = config;
  const why = `from config: d_model=${Dm}, d_inner=${E}, d_state=${N}, d_conv=${K}, dt_rank=${R}, vocab=${V}`;
  const normKind = config.rmsNorm ? "rms" : "layer";
  const embeddings = await weights.table(MAMBA_KEYS.embedding, [V, Dm], why);
  const layers: ResidualLayer[] = [];
  for (let i = 0; i < config.nLayer; i++) {
    const p = MAMBA_KEYS.layer(i);
    const mixer = await loadMambaMixer(weights, `${p}.mixer`, Dm, { dInner: E, dState: N, dtRank: R, dConv: K },
      { proj: config.projBias, conv: config.convBias }, why);
    layers.push({ norm: await loadNorm(weights, `${p}.norm`, normKind, Dm, config.normEps, why), layer: mixer });
  }
  const finalNorm = await loadNorm(weights, MAMBA_KEYS.normF, normKind, Dm, config.normEps, why);
  const lmHead = config.tieEmbeddings ? embeddings : await weights.table(MAMBA_KEYS.lmHead, [V, Dm], why);
  return new SequenceLM({
    family: "mamba",
    architecture: `Mamba LM (${config.layout === "hf" ? "Hugging Face MambaForCausalLM" : "mamba_ssm MambaLMHeadModel"} layout)`,
    backend: weights.backend, embeddings, layers, finalNorm, lmHead, vocabSize: V, dModel: Dm, nBlocks: config.nLayer,
    eosTokenId: config.eosTokenId, bosTokenId: config.bosTokenId, config: { ...config },
  });
}
