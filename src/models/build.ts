// Building a model from a parsed config.json and a source of its tensors: the part of loading that needs
// no file system, shared by loadModel (a directory) and loadModelFromFiles (bytes, e.g. in a browser).
import type { Backend } from "../backends/backend.js";
import { HippoError } from "../errors.js";
import type { TensorSource } from "../io/tensor-source.js";
import { ConfigReader } from "./config-json.js";
import type { CausalLM } from "./causal-lm.js";
import { findFamily, type ModelFamily } from "./registry.js";
import { checkQuantizationType, WeightLoader, type QuantizationType } from "./weights.js";

export interface BuildOptions {
  /** Quantize weight matrices as they load (see LoadOptions.quantize). */
  quantize?: QuantizationType;
  /** With `quantize`, quantize the embedding table and LM head too (default true). */
  quantizeEmbeddings?: boolean;
}

export interface BuiltModel {
  model: CausalLM;
  /** Stored dtypes of the weights: dtype → tensor count. */
  weightDtypes: Record<string, number>;
  /** Checkpoint tensors the model did not use. */
  unusedTensors: string[];
  /** Tensors quantized as they loaded (`quantize`), by checkpoint name. */
  quantizedTensors: string[];
}

/** Tensors checkpoints carry that no model reads: tied LM heads saved anyway, rotary caches, masks. */
const IGNORABLE_TENSORS = /(^lm_head\.weight$)|(\.inv_freq$)|(\.masked_bias$)|(\.attn\.bias$)/;

/** generation_config.json (HF) may name the end-of-sequence token when config.json does not. */
export function withGenerationConfig(config: Record<string, unknown>, generation: Record<string, unknown> | null): Record<string, unknown> {
  if (!generation) return config;
  const merged = { ...config };
  for (const key of ["eos_token_id", "bos_token_id"]) if (merged[key] === undefined && generation[key] !== undefined) merged[key] = generation[key];
  return merged;
}

/** The family a config describes, with the config and options checked: the errors loading can give before any weights are read. */
export function checkModelConfig(config: Record<string, unknown>, configName: string, options: BuildOptions = {}): { reader: ConfigReader; family: ModelFamily } {
  if (options.quantize !== undefined) checkQuantizationType(options.quantize, "loadModel: quantize");
  const reader = new ConfigReader(config, configName);
  const family = findFamily(reader);
  family.check?.(reader);
  return { reader, family };
}

/**
 * The model `config` (config.json, parsed; `configName` names it in errors) describes, with its weights
 * read from `source` (`weightsName` names it in errors) onto `backend`. A checkpoint with tensors the
 * model does not use is refused: the checkpoint and its config disagree.
 */
export async function buildModel(
  config: Record<string, unknown>, configName: string, source: TensorSource, weightsName: string, backend: Backend, options: BuildOptions = {},
): Promise<BuiltModel> {
  const { reader, family } = checkModelConfig(config, configName, options);
  const weights = new WeightLoader(source, backend, weightsName, { quantize: options.quantize, quantizeEmbeddings: options.quantizeEmbeddings });
  const model = await family.load(reader, weights);
  const unused = weights.unused().filter((n) => !IGNORABLE_TENSORS.test(n));
  if (unused.length > 0) {
    throw new HippoError(`${weightsName}: ${unused.length} tensor(s) not used by the model config.json describes ` +
      `(${unused.slice(0, 4).join(", ")}${unused.length > 4 ? ", …" : ""}); the checkpoint and its config disagree`);
  }
  return { model, weightDtypes: weights.dtypes(), unusedTensors: weights.unused(), quantizedTensors: weights.quantized() };
}
