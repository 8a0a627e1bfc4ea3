import { HippoError } from "../../errors.js";
import type { SequenceLayer } from "../../nn/layer.js";
import type { ConfigReader } from "../config-json.js";
import { checkHeads, loadAttention, loadMamba2Mixer, loadMambaMixer, loadMlp, loadNorm } from "../layer-loaders.js";
import { mamba2Shape, timeStepLimit } from "../mamba2/model.js";
import { SequenceLM, type ResidualLayer } from "../sequence-lm.js";
import type { WeightLoader } from "../weights.js";

/** mamba_ssm configs carry no model_type; ssm_cfg.layer names the mixer (absent means Mamba1). */
export function mambaSsmLayer(c: ConfigReader): string | null {
  if (c.has("model_type") || !c.has("d_model") || !c.has("n_layer")) return null;
  const layer = c.section("ssm_cfg").raw.layer;
  return typeof layer === "string" ? layer : "Mamba1";
}

function dtRankOf(value: unknown, dModel: number, file: string): number {
  if (value === undefined || value === null || value === "auto") return Math.ceil(dModel / 16);
  if (typeof value === "number" && Number.isInteger(value) && value > 0) return value;
  throw new HippoError(`${file}: dt_rank must be "auto" or a positive integer, got ${JSON.stringify(value)}`);
}

function attnLayerIndices(c: ConfigReader, nLayer: number): Set<number> {
  const raw = c.raw.attn_layer_idx ?? [];
  if (!Array.isArray(raw) || raw.some((i) => !Number.isInteger(i) || i < 0 || i >= nLayer)) {
    throw new HippoError(`${c.file}: attn_layer_idx must list layer indices in [0, ${nLayer}), got ${JSON.stringify(raw)}`);
  }
  return new Set(raw as number[]);
}

/**
 * mamba_ssm's MambaLMHeadModel (state-spaces/mamba-*, mamba2-*, mamba2attn-*): per layer a block of
 * norm + mixer (Mamba1 or Mamba2 per ssm_cfg.layer, or MHA at attn_layer_idx), plus norm2 + GatedMLP
 * when d_intermediate > 0; vocabulary padded to pad_vocab_size_multiple; embedding tied by default.
 */
export async function buildMambaSsm(c: ConfigReader, w: WeightLoader): Promise<SequenceLM> {
  const layerType = mambaSsmLayer(c);
  if (layerType !== "Mamba1" && layerType !== "Mamba2") {
    throw new HippoError(`${c.file}: mamba_ssm layer '${layerType}' is not supported (Mamba1, Mamba2)`);
  }
  const dModel = c.positiveInt("d_model");
  const nLayer = c.positiveInt("n_layer");
  const multiple = c.positiveInt("pad_vocab_size_multiple", 8);
  const vocab = Math.ceil(c.positiveInt("vocab_size") / multiple) * multiple;
  const normKind = c.bool("rms_norm", true) ? "rms" : "layer";
  const eps = c.number("norm_epsilon", 1e-5);
  const ssm = c.section("ssm_cfg");
  const attn = c.section("attn_cfg");
  const attnAt = attnLayerIndices(c, nLayer);
  const dIntermediate = c.int("d_intermediate", 0);
  const why = `from config: d_model=${dModel}, n_layer=${nLayer}, vocab=${vocab} (padded), ${layerType}`;
  const bias = { proj: ssm.bool("bias", false), conv: ssm.bool("conv_bias", true) };

  let makeMixer: (m: string) => Promise<SequenceLayer>;
  if (layerType === "Mamba1") {
    const expand = ssm.positiveInt("expand", 2);
    const shape = { dInner: expand * dModel, dState: ssm.positiveInt("d_state", 16), dtRank: dtRankOf(ssm.raw.dt_rank, dModel, ssm.file), dConv: ssm.positiveInt("d_conv", 4) };
    makeMixer = (m) => loadMambaMixer(w, m, dModel, shape, bias, why);
  } else {
    if (ssm.has("d_ssm")) throw new HippoError(`${ssm.file}: d_ssm (a Mamba-2 layer with a fused MLP part) is not supported`);
    if (!ssm.bool("rmsnorm", true) || ssm.bool("norm_before_gate", false)) {
      throw new HippoError(`${ssm.file}: only rmsnorm=true, norm_before_gate=false Mamba-2 layers are supported`);
    }
    const shape = mamba2Shape(ssm.file, {
      dModel, expand: ssm.positiveInt("expand", 2), headDim: ssm.positiveInt("headdim", 64), nGroups: ssm.positiveInt("ngroups", 1),
      dState: ssm.positiveInt("d_state", 128), dConv: ssm.positiveInt("d_conv", 4), chunkSize: ssm.positiveInt("chunk_size", 256),
      dtLimit: timeStepLimit(ssm, "dt_limit"), perGroupNorm: true, normEps: 1e-5,
    });
    makeMixer = (m) => loadMamba2Mixer(w, m, dModel, shape, bias, why);
  }

  const heads = attnAt.size ? attn.positiveInt("num_heads") : 1;
  const kvHeads = attnAt.size ? attn.positiveInt("num_heads_kv", heads) : 1;
  const headDim = attnAt.size ? checkHeads(attn.file, dModel, heads, kvHeads, attn.has("head_dim") ? attn.positiveInt("head_dim") : undefined) : 1;
  if (attnAt.size && attn.int("mlp_dim", 0) > 0) throw new HippoError(`${attn.file}: attention with a fused MLP (mlp_dim) is not supported`);
  if (attnAt.size && !attn.bool("causal", true)) throw new HippoError(`${attn.file}: a language model needs causal attention (causal: true)`);
  const rotaryDim = attnAt.size ? attn.int("rotary_emb_dim", 0) : 0;
  const attnShape = {
    numHeads: heads, numKvHeads: kvHeads, headDim,
    scale: attn.has("softmax_scale") ? attn.number("softmax_scale") : headDim ** -0.5,
    rotary: rotaryDim > 0 ? { dim: rotaryDim, base: attn.number("rotary_emb_base", 10000), interleaved: attn.bool("rotary_emb_interleaved", false), positionScale: 1 } : null,
  };
  const attnConv = attnAt.size ? attn.int("d_conv", 0) : 0;
  // GatedMLP rounds its width up to a multiple of 128.
  const mlpHidden = Math.ceil(dIntermediate / 128) * 128;

  const embeddings = await w.table("backbone.embedding.weight", [vocab, dModel], why);
  const layers: ResidualLayer[] = [];
  for (let i = 0; i < nLayer; i++) {
    const p = `backbone.layers.${i}`;
    const mixer = attnAt.has(i)
      ? await loadAttention(w, `${p}.mixer`, dModel, attnShape,
        { qkv: "in_proj", o: "out_proj", qkvConv: attnConv > 0 ? { name: "conv1d", kernel: attnConv, bias: true } : undefined },
        { qkv: attn.bool("qkv_proj_bias", true), o: attn.bool("out_proj_bias", true) }, why)
      : await makeMixer(`${p}.mixer`);
    layers.push({ norm: await loadNorm(w, `${p}.norm`, normKind, dModel, eps, why), layer: mixer });
    if (dIntermediate > 0) {
      layers.push({
        norm: await loadNorm(w, `${p}.norm2`, normKind, dModel, eps, why),
        layer: await loadMlp(w, `${p}.mlp`, dModel, mlpHidden, "silu", "fused-gated", { up: "fc1", down: "fc2" }, false, why),
      });
    }
  }
  const finalNorm = await loadNorm(w, "backbone.norm_f", normKind, dModel, eps, why);
  const lmHead = c.bool("tie_embeddings", true) ? embeddings : await w.table("lm_head.weight", [vocab, dModel], why);
  const pattern = [...Array(nLayer).keys()].map((i) => (attnAt.has(i) ? "*" : layerType === "Mamba1" ? "m" : "M") + (dIntermediate > 0 ? "-" : "")).join("");
  return new SequenceLM({
    family: layerType === "Mamba1" ? "mamba" : "mamba2",
    architecture: `mamba_ssm MambaLMHeadModel (${layerType}${attnAt.size ? " + attention" : ""}${dIntermediate > 0 ? " + MLP" : ""}: ${pattern})`,
    backend: w.backend, embeddings, layers, finalNorm, lmHead, vocabSize: vocab, dModel, nBlocks: nLayer,
    // GPT-NeoX tokenizer's <|endoftext|>, which the state-spaces checkpoints use.
    eosTokenId: c.optionalInt("eos_token_id") ?? 0, config: c.raw,
  });
}
