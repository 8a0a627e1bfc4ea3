import { access, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { HippoError } from "../errors.js";
import type { Backend } from "../backends/backend.js";
import { getBackend } from "../backends/registry.js";
import { openSafetensorsCheckpoint } from "../io/sharded.js";
import type { TensorSource } from "../io/tensor-source.js";
import { openTorchCheckpoint } from "../io/torch/load.js";
import { loadTokenizer, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { parseConfigJson } from "./config-json.js";
import type { CausalLM } from "./causal-lm.js";
import type { QuantizationType } from "./weights.js";
import { buildModel, checkModelConfig, withGenerationConfig } from "./build.js";

export interface LoadOptions {
  /** A backend or its name; default 'cpu'. */
  backend?: Backend | string;
  /** tokenizer.json (or a directory holding one) when the model directory has none. */
  tokenizer?: string;
  /**
   * Quantize weight matrices as they load: "q8" stores linear weights (and, see below, the embedding
   * table and LM head) as int8 blocks of 32 with an f32 scale each (docs/quantization.md). Checkpoints
   * written by `hippo quantize` load quantized without this. The CPU backend runs q8; WebGPU refuses it.
   */
  quantize?: QuantizationType;
  /** With `quantize`, quantize the embedding table and LM head too (default true). */
  quantizeEmbeddings?: boolean;
}

export interface LoadedModel {
  model: CausalLM;
  tokenizer: TextTokenizer | null;
  /** The weights file(s) read. */
  weightsFile: string;
  /** Stored dtypes of the weights: dtype → tensor count. */
  weightDtypes: Record<string, number>;
  /** Checkpoint tensors the model did not use. */
  unusedTensors: string[];
  /** Tensors quantized as they loaded (`quantize`), by checkpoint name. */
  quantizedTensors: string[];
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

const WEIGHT_FILES = ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "model.pt"];

/** The weights of a model directory, as the first of WEIGHT_FILES it has. */
export async function openWeights(dir: string): Promise<{ source: TensorSource; file: string }> {
  for (const file of WEIGHT_FILES) {
    if (!(await exists(join(dir, file)))) continue;
    const source = file.endsWith(".bin") || file.endsWith(".pt")
      ? await openTorchCheckpoint(join(dir, file))
      : await openSafetensorsCheckpoint(dir);
    return { source, file: join(dir, file) };
  }
  throw new HippoError(`${dir}: no weights found (expected one of ${WEIGHT_FILES.join(", ")})`);
}

async function readJson(path: string): Promise<Record<string, unknown>> {
  return parseConfigJson(await readFile(path, "utf8"), path);
}

/** Loads a model directory as published on model hubs (config.json + weights [+ tokenizer.json]). */
export async function loadModel(dir: string, options: LoadOptions = {}): Promise<LoadedModel> {
  const info = await stat(dir).catch(() => null);
  if (!info) throw new HippoError(`${dir}: model directory does not exist`);
  if (!info.isDirectory()) throw new HippoError(`${dir}: not a directory (pass the model directory holding config.json)`);
  const configPath = join(dir, "config.json");
  if (!(await exists(configPath))) throw new HippoError(`${dir}: missing config.json`);
  const genPath = join(dir, "generation_config.json");
  const raw = withGenerationConfig(await readJson(configPath), (await exists(genPath)) ? await readJson(genPath) : null);
  checkModelConfig(raw, configPath, options); // config errors before any weights are opened
  const backend = typeof options.backend === "object" ? options.backend : getBackend(options.backend);
  const { source, file } = await openWeights(dir);
  try {
    const built = await buildModel(raw, configPath, source, file, backend, options);
    const hasTokenizer = (await exists(join(dir, "tokenizer.json"))) || (await exists(join(dir, "vocab.json")));
    const tokenizerPath = options.tokenizer ?? (hasTokenizer ? dir : null);
    const tokenizer = tokenizerPath ? await loadTokenizer(tokenizerPath) : null;
    return { ...built, tokenizer, weightsFile: file };
  } finally {
    await source.close();
  }
}
