// Loading a model from its files' bytes, without a file system: what a browser has after fetch() or a
// file input. Imports nothing of Node's, so it runs wherever the backends run.
import type { Backend } from "../backends/backend.js";
import { HippoError } from "../errors.js";
import { bufferSource } from "../io/byte-source.js";
import { memoryTensorSource } from "../io/memory-source.js";
import { readSafetensors } from "../io/safetensors.js";
import { buildModel, checkModelConfig, withGenerationConfig, type BuildOptions, type BuiltModel } from "./build.js";
import { parseConfigJson } from "./config-json.js";

/** A model directory's files by name: config.json, model.safetensors, optionally generation_config.json. */
export type ModelFiles = ReadonlyMap<string, Uint8Array> | Readonly<Record<string, Uint8Array>>;

/**
 * Loads a model from the bytes of its files (`config.json`, `model.safetensors`, and
 * `generation_config.json` when there is one) onto `backend`. Single-file safetensors only: sharded or
 * torch checkpoints need loadModel (Node) or converting first.
 */
export async function loadModelFromFiles(files: ModelFiles, backend: Backend, options: BuildOptions = {}): Promise<BuiltModel> {
  const get = (name: string): Uint8Array | undefined => (files instanceof Map ? files.get(name) : (files as Record<string, Uint8Array>)[name]);
  const text = (name: string, bytes: Uint8Array) => parseConfigJson(new TextDecoder().decode(bytes), name);
  const configBytes = get("config.json");
  if (!configBytes) throw new HippoError("loadModelFromFiles: no config.json among the files");
  const generation = get("generation_config.json");
  const config = withGenerationConfig(text("config.json", configBytes), generation ? text("generation_config.json", generation) : null);
  checkModelConfig(config, "config.json", options);
  const weights = get("model.safetensors");
  if (!weights) {
    const names = files instanceof Map ? [...files.keys()] : Object.keys(files);
    throw new HippoError(`loadModelFromFiles: no model.safetensors among the files (${names.join(", ")}); sharded and torch checkpoints load with loadModel`);
  }
  const { tensors } = await readSafetensors(bufferSource("model.safetensors", weights));
  return buildModel(config, "config.json", memoryTensorSource(tensors, "model.safetensors"), "model.safetensors", backend, options);
}
