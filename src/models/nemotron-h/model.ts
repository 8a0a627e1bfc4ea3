import { HippoError } from "../../errors.js";
import type { ConfigReader } from "../config-json.js";
import { checkHeads, loadAttention, loadMamba2Mixer, loadMlp, loadNorm } from "../layer-loaders.js";
import { mamba2Shape, timeStepLimit } from "../mamba2/model.js";
import { SequenceLM, type ResidualLayer } from "../sequence-lm.js";
import type { WeightLoader } from "../weights.js";
import type { SequenceLayer } from "../../nn/layer.js";

/** NemotronH block kinds, from `hybrid_override_pattern` letters or `layers_block_type` names. */
type BlockKind = "mamba2" | "attention" | "mlp";

const TYPE_NAMES: Record<string, BlockKind | "moe"> = {
  M: "mamba2", "*": "attention", "-": "mlp", E: "moe",
  mamba: "mamba2", linear_attention: "mamba2", attention: "attention", full_attention: "attention", mlp: "mlp", moe: "moe",
};

export function nemotronBlockKinds(c: ConfigReader): BlockKind[] {
  let names: string[];
  if (Array.isArray(c.raw.layers_block_type)) names = c.raw.layers_block_type.map(String);
  else if (typeof c.raw.hybrid_override_pattern === "string") names = [...c.raw.hybrid_override_pattern];
  else throw new HippoError(`${c.file}: NemotronH config needs 'hybrid_override_pattern' or 'layers_block_type'`);
  const kinds = names.map((n, i) => {
    const kind = TYPE_NAMES[n];
    if (!kind) throw new HippoError(`${c.file}: layer ${i} has unknown block type '${n}' (known: ${Object.keys(TYPE_NAMES).join(", ")})`);
    if (kind === "moe") throw new HippoError(`${c.file}: layer ${i} is a mixture-of-experts block, which Hippo does not support yet`);
    return kind;
  });
  if (c.has("num_hidden_layers") && c.int("num_hidden_layers") !== kinds.length) {
    throw new HippoError(`${c.file}: the layer pattern has ${kinds.length} layers but num_hidden_layers is ${c.int("num_hidden_layers")}`);
  }
  return kinds;
}

/**
 * NemotronH (NemotronHForCausalLM): one mixer per pre-norm block — Mamba-2 (gated norm per group),
 * attention (GQA, no positional encoding) or a relu² MLP. dt is clamped to [time_step_min, limit max]
 * in both modes (the reference clamps in prefill only; greedy ids agree either way, see MANIFEST).
 */
export async function buildNemotronH(c: ConfigReader, w: WeightLoader): Promise<SequenceLM> {
  const kinds = nemotronBlockKinds(c);
  const dModel = c.positiveInt("hidden_size");
  const vocab = c.positiveInt("vocab_size");
  const eps = c.number("layer_norm_epsilon", 1e-5);
  const heads = c.positiveInt("num_attention_heads");
  const kvHeads = c.positiveInt("num_key_value_heads", heads);
  const headDim = checkHeads(c.file, dModel, heads, kvHeads, c.has("head_dim") ? c.positiveInt("head_dim") : undefined);
  const mHeads = c.positiveInt("mamba_num_heads");
  const mHeadDim = c.positiveInt("mamba_head_dim");
  const limit = timeStepLimit(c);
  const shape = mamba2Shape(c.file, {
    dModel, expand: c.positiveInt("expand", 2), nHeads: mHeads, headDim: mHeadDim, dInner: mHeads * mHeadDim,
    nGroups: c.positiveInt("n_groups", 1), dState: c.positiveInt("ssm_state_size", 128), dConv: c.positiveInt("conv_kernel", 4),
    chunkSize: c.positiveInt("chunk_size", 256), dtLimit: [Math.max(limit[0], c.number("time_step_min", 0)), limit[1]],
    perGroupNorm: true, normEps: eps,
  });
  const mlpAct = String(c.raw.mlp_hidden_act ?? "relu2");
  if (mlpAct !== "relu2") throw new HippoError(`${c.file}: mlp_hidden_act '${mlpAct}' is not supported (relu2)`);
  const why = `from config: hidden_size=${dModel}, pattern of ${kinds.length} layers`;
  const embeddings = await w.table("backbone.embeddings.weight", [vocab, dModel], why);
  const layers: ResidualLayer[] = [];
  for (let i = 0; i < kinds.length; i++) {
    const p = `backbone.layers.${i}`;
    const m = `${p}.mixer`;
    let layer: SequenceLayer;
    if (kinds[i] === "mamba2") {
      const projBias = c.bool("mamba_proj_bias", c.bool("use_bias", false));
      layer = await loadMamba2Mixer(w, m, dModel, shape, { proj: projBias, conv: c.bool("use_conv_bias", true) }, why);
    } else if (kinds[i] === "attention") {
      const bias = c.bool("attention_bias", false);
      layer = await loadAttention(w, m, dModel, { numHeads: heads, numKvHeads: kvHeads, headDim, scale: headDim ** -0.5, rotary: null },
        { q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj" }, { qkv: bias, o: bias }, why);
    } else {
      layer = await loadMlp(w, m, dModel, c.positiveInt("intermediate_size"), "relu2", "plain",
        { up: "up_proj", down: "down_proj" }, c.bool("mlp_bias", false), why);
    }
    layers.push({ norm: await loadNorm(w, `${p}.norm`, "rms", dModel, eps, why), layer });
  }
  const finalNorm = await loadNorm(w, "backbone.norm_f", "rms", dModel, eps, why);
  const lmHead = c.bool("tie_word_embeddings", false) ? embeddings : await w.table("lm_head.weight", [vocab, dModel], why);
  return new SequenceLM({
    family: "nemotron_h", architecture: `NemotronH hybrid (${kinds.map((k) => ({ mamba2: "M", attention: "*", mlp: "-" })[k]).join("")})`,
    backend: w.backend, embeddings, layers, finalNorm, lmHead, vocabSize: vocab, dModel, nBlocks: kinds.length,
    eosTokenId: c.optionalInt("eos_token_id"), bosTokenId: c.optionalInt("bos_token_id"), config: c.raw,
  });
}
