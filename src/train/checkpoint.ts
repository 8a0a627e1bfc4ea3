import { mkdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { HippoError, shapeString } from "../errors.js";
import { fromFloat32, toFloat32 } from "../io/convert.js";
import { bufferSource } from "../io/byte-source.js";
import type { RawTensor } from "../io/raw-tensor.js";
import { readSafetensors } from "../io/safetensors.js";
import { writeFileAtomic, writeSafetensorsFile } from "../io/node-files.js";
import type { OptimizerState } from "./optim/index.js";

/**
 * A training run's directory: a loadable model directory (config.json, model.safetensors,
 * tokenizer.json) plus checkpoint.safetensors, everything --resume needs in one atomically written
 * file (parameters, optimizer moments, step, settings, the log so far).
 */
export const CHECKPOINT_FILE = "checkpoint.safetensors";
const FORMAT = "hippo-train-checkpoint-1";

export interface Checkpoint {
  step: number;
  /** Settings of the run, as JSON (resuming takes them from here). */
  settings: Record<string, unknown>;
  params: Map<string, Float32Array>;
  optimizer: OptimizerState;
  /** Metric records so far (one object per logged step or evaluation). */
  log: Record<string, unknown>[];
}

/** Writes the model directory files, then the checkpoint (each atomic; the checkpoint last, so it is never ahead of them). */
export async function saveRun(
  dir: string, ckpt: Checkpoint, shapes: ReadonlyMap<string, readonly number[]>, config: Record<string, unknown>, tokenizerJson?: object,
): Promise<void> {
  await mkdir(dir, { recursive: true });
  const weights = new Map<string, RawTensor>();
  for (const [name, value] of ckpt.params) weights.set(name, fromFloat32(value, [...shapes.get(name)!], "F32"));
  await writeFileAtomic(join(dir, "config.json"), JSON.stringify(config, null, 2) + "\n");
  if (tokenizerJson) await writeFileAtomic(join(dir, "tokenizer.json"), JSON.stringify(tokenizerJson));
  await writeSafetensorsFile(join(dir, "model.safetensors"), weights, { format: "pt" });
  const tensors = new Map<string, RawTensor>();
  for (const [name, value] of ckpt.params) tensors.set(`param.${name}`, fromFloat32(value, [...shapes.get(name)!], "F32"));
  for (const [name, value] of ckpt.optimizer.tensors) tensors.set(`optim.${name}`, fromFloat32(value, [value.length], "F32"));
  await writeSafetensorsFile(join(dir, CHECKPOINT_FILE), tensors, {
    format: FORMAT,
    step: String(ckpt.step),
    optimizer_step: String(ckpt.optimizer.step),
    settings: JSON.stringify(ckpt.settings),
    log: JSON.stringify(ckpt.log),
  });
}

/**
 * Reads a run's checkpoint, checking it against the parameters the run's settings imply (names,
 * shapes, finite values); any mismatch is an error naming the file and tensor.
 */
export async function loadCheckpoint(dir: string): Promise<Checkpoint> {
  const path = join(dir, CHECKPOINT_FILE);
  if (!(await stat(path).catch(() => null))) throw new HippoError(`${dir}: no ${CHECKPOINT_FILE} to resume from (was the run started with --out ${dir}?)`);
  const bytes = await readFile(path);
  let parsed;
  try {
    parsed = await readSafetensors(bufferSource(path, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)));
  } catch (e) {
    throw new HippoError(`${path}: not a readable checkpoint (${(e as Error).message})`);
  }
  const md = parsed.metadata;
  if (md.format !== FORMAT) throw new HippoError(`${path}: not a Hippo training checkpoint (format '${md.format ?? "missing"}', expected '${FORMAT}')`);
  const step = Number(md.step);
  const optimizerStep = Number(md.optimizer_step);
  if (!Number.isInteger(step) || step < 0 || !Number.isInteger(optimizerStep)) throw new HippoError(`${path}: bad step '${md.step}' in the checkpoint metadata`);
  let settings: Record<string, unknown>, log: Record<string, unknown>[];
  try {
    settings = JSON.parse(md.settings ?? "null");
    log = JSON.parse(md.log ?? "[]");
  } catch {
    throw new HippoError(`${path}: the checkpoint's settings or log metadata is not valid JSON`);
  }
  if (!settings || typeof settings !== "object") throw new HippoError(`${path}: the checkpoint has no run settings`);
  const params = new Map<string, Float32Array>();
  const moments = new Map<string, Float32Array>();
  for (const [name, raw] of parsed.tensors) {
    const values = toFloat32(raw, `${path}: ${name}`);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) throw new HippoError(`${path}: tensor '${name}' holds a non-finite value (${values[bad]}) at index ${bad}`);
    if (name.startsWith("param.")) params.set(name.slice(6), values);
    else if (name.startsWith("optim.")) moments.set(name.slice(6), values);
    else throw new HippoError(`${path}: unexpected tensor '${name}' (expected param.* and optim.*)`);
  }
  return { step, settings, params, optimizer: { step: optimizerStep, tensors: moments }, log };
}

/** Checks checkpoint parameters against the model's (same names, same sizes). */
export function checkCheckpointParams(path: string, saved: ReadonlyMap<string, Float32Array>, shapes: ReadonlyMap<string, readonly number[]>): void {
  for (const [name, shape] of shapes) {
    const v = saved.get(name);
    const n = shape.reduce((a, b) => a * b, 1);
    if (!v) throw new HippoError(`${path}: missing parameter '${name}' ${shapeString(shape)} (the checkpoint does not match this architecture)`);
    if (v.length !== n) throw new HippoError(`${path}: parameter '${name}' has ${v.length} values, the model needs ${shapeString(shape)} = ${n}`);
  }
  for (const name of saved.keys()) {
    if (!shapes.has(name)) throw new HippoError(`${path}: parameter '${name}' is not part of this architecture`);
  }
}
