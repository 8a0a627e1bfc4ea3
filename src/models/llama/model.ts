import { HippoError } from "../../errors.js";
import type { RotaryConfig } from "../../nn/attention.js";
import type { ConfigReader } from "../config-json.js";
import { checkHeads, loadAttention, loadMlp, loadNorm } from "../layer-loaders.js";
import { SequenceLM, type ResidualLayer } from "../sequence-lm.js";
import type { WeightLoader } from "../weights.js";

/**
 * RoPE settings from a Llama-style config: `rope_theta` / `rope_scaling` (transformers 4.x) or
 * `rope_parameters` (5.x); partial rotary through `partial_rotary_factor`.
 */
export function llamaRotary(c: ConfigReader, headDim: number): RotaryConfig {
  const params = (c.raw.rope_parameters ?? c.raw.rope_scaling ?? {}) as Record<string, unknown>;
  const type = String(params.rope_type ?? params.type ?? "default");
  const base = Number(params.rope_theta ?? c.raw.rope_theta ?? 10000);
  let positionScale = 1;
  if (type === "linear") positionScale = Number(params.factor);
  else if (type !== "default") throw new HippoError(`${c.file}: RoPE type '${type}' is not supported (default, linear)`);
  if (!(base > 0) || !(positionScale > 0)) throw new HippoError(`${c.file}: bad RoPE parameters ${JSON.stringify(params)}`);
  const factor = c.number("partial_rotary_factor", 1);
  const dim = Math.floor((headDim * factor) / 2) * 2;
  return { dim, base, interleaved: false, positionScale };
}

/** Llama (LlamaForCausalLM): RMSNorm, RoPE, grouped-query attention, SiLU-gated MLP — the Transformer baseline. */
export async function buildLlama(c: ConfigReader, w: WeightLoader): Promise<SequenceLM> {
  const dModel = c.positiveInt("hidden_size");
  const nLayer = c.positiveInt("num_hidden_layers");
  const vocab = c.positiveInt("vocab_size");
  const eps = c.number("rms_norm_eps", 1e-6);
  const heads = c.positiveInt("num_attention_heads");
  const kvHeads = c.positiveInt("num_key_value_heads", heads);
  const headDim = checkHeads(c.file, dModel, heads, kvHeads, c.has("head_dim") ? c.positiveInt("head_dim") : undefined);
  const act = String(c.raw.hidden_act ?? "silu");
  if (act !== "silu") throw new HippoError(`${c.file}: hidden_act '${act}' is not supported (silu)`);
  const attnBias = c.bool("attention_bias", false);
  const why = `from config: hidden_size=${dModel}, heads=${heads} (kv ${kvHeads}) × ${headDim}, intermediate=${c.raw.intermediate_size}`;
  const shape = { numHeads: heads, numKvHeads: kvHeads, headDim, scale: headDim ** -0.5, rotary: llamaRotary(c, headDim) };
  const embeddings = await w.table("model.embed_tokens.weight", [vocab, dModel], why);
  const layers: ResidualLayer[] = [];
  for (let i = 0; i < nLayer; i++) {
    const p = `model.layers.${i}`;
    layers.push({
      norm: await loadNorm(w, `${p}.input_layernorm`, "rms", dModel, eps, why),
      layer: await loadAttention(w, `${p}.self_attn`, dModel, shape, { q: "q_proj", k: "k_proj", v: "v_proj", o: "o_proj" }, { qkv: attnBias, o: attnBias }, why),
    });
    layers.push({
      norm: await loadNorm(w, `${p}.post_attention_layernorm`, "rms", dModel, eps, why),
      layer: await loadMlp(w, `${p}.mlp`, dModel, c.positiveInt("intermediate_size"), "silu", "gated",
        { up: "up_proj", gate: "gate_proj", down: "down_proj" }, c.bool("mlp_bias", false), why),
    });
  }
  const finalNorm = await loadNorm(w, "model.norm", "rms", dModel, eps, why);
  const lmHead = c.bool("tie_word_embeddings", false) ? embeddings : await w.table("lm_head.weight", [vocab, dModel], why);
  return new SequenceLM({
    family: "llama", architecture: "Llama Transformer (Hugging Face LlamaForCausalLM layout)", backend: w.backend,
    embeddings, layers, finalNorm, lmHead, vocabSize: vocab, dModel, nBlocks: nLayer,
    eosTokenId: c.optionalInt("eos_token_id"), bosTokenId: c.optionalInt("bos_token_id"), config: c.raw,
  });
}
