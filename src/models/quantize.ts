import { copyFile, mkdir, readdir, rename, rm, stat } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { basename, dirname, join, resolve } from "node:path";
import { getBackend } from "../backends/registry.js";
import { HippoError } from "../errors.js";
import { toFloat32 } from "../io/convert.js";
import { fsError } from "../io/node-file-source.js";
import { writeSafetensorsFile } from "../io/node-files.js";
import type { RawTensor } from "../io/raw-tensor.js";
import { quantizeQ8 } from "../tensor/q8.js";
import { loadModel, openWeights } from "./load.js";
import { checkQuantizationType, Q8_SCALE_SUFFIX, QUANTIZATION_METADATA } from "./weights.js";

export interface QuantizeOptions {
  /** Quantization type; "q8" (the default) is the only one. */
  type?: string;
  /** Quantize the embedding table and LM head too (default true). */
  quantizeEmbeddings?: boolean;
}

export interface QuantizeResult {
  /** The model.safetensors written. */
  weightsFile: string;
  /** Tensors stored quantized. */
  quantized: string[];
  /** Tensors stored as they were (vectors, SSM parameters, norms, ...). */
  kept: string[];
  /** Tensors of the input the model does not read (a tied LM head saved anyway, ...), left out. */
  dropped: string[];
  /** Files copied beside the weights (config.json, tokenizer files). */
  copied: string[];
  bytesOut: number;
}

/** Files of a model directory besides its weights that a quantized copy keeps. */
const COPIED_FILES = [
  "generation_config.json", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
  "vocab.json", "merges.txt", "config.json",
];

async function exists(path: string): Promise<boolean> {
  return stat(path).then(() => true, () => false);
}

/**
 * Writes a quantized copy of model directory `dir` to `outDir`: config.json and tokenizer files copied,
 * model.safetensors with every weight matrix the model reads as q8 (I8 values `<name>` + F32 scales
 * `<name>.q8_scale`, "quantization" in the __metadata__; docs/quantization.md) and the other tensors as
 * stored. The directory is assembled under a temporary name beside `outDir` and renamed into place, so
 * `outDir` never holds a partial model; an existing `outDir` must be empty.
 */
export async function quantizeModelDir(dir: string, outDir: string, options: QuantizeOptions = {}): Promise<QuantizeResult> {
  const type = checkQuantizationType(options.type ?? "q8", "quantize");
  if (resolve(dir) === resolve(outDir)) throw new HippoError(`quantize: --out ${outDir} is the model directory itself; choose another directory`);
  const outInfo = await stat(outDir).catch(() => null);
  if (outInfo && !outInfo.isDirectory()) throw new HippoError(`quantize: --out ${outDir} exists and is not a directory`);
  if (outInfo && (await readdir(outDir)).length > 0) throw new HippoError(`quantize: --out ${outDir} exists and is not empty; remove it or choose another directory`);

  // A checkpoint that is already quantized is refused before anything is loaded.
  if ((await stat(dir).catch(() => null))?.isDirectory()) {
    const { source, file } = await openWeights(dir);
    try {
      const scales = source.names().filter((n) => n.endsWith(Q8_SCALE_SUFFIX));
      if (scales.length > 0) {
        throw new HippoError(`${file}: already quantized (${scales.length} q8 scale tensors such as '${scales[0]}'); quantize the original checkpoint instead`);
      }
    } finally {
      await source.close();
    }
  }

  // Loading the model checks the checkpoint against its config and names the matrices to quantize.
  const loaded = await loadModel(dir, { backend: getBackend("cpu"), quantize: type, quantizeEmbeddings: options.quantizeEmbeddings });
  loaded.model.dispose();
  const quantized = new Set(loaded.quantizedTensors);
  const dropped = new Set(loaded.unusedTensors);

  const { source } = await openWeights(dir);
  const tensors = new Map<string, RawTensor>();
  const kept: string[] = [];
  try {
    for (const name of source.names()) {
      if (dropped.has(name)) continue;
      const raw = await source.read(name);
      if (!quantized.has(name)) {
        tensors.set(name, raw);
        kept.push(name);
        continue;
      }
      const [N, K] = raw.shape;
      const q = quantizeQ8(toFloat32(raw, `${source.describe(name)}: ${name}`), N, K, `${source.describe(name)}: ${name}`);
      tensors.set(name, { dtype: "I8", shape: [N, K], bytes: new Uint8Array(q.values.buffer, q.values.byteOffset, q.values.byteLength) });
      tensors.set(name + Q8_SCALE_SUFFIX, { dtype: "F32", shape: [N, q.blocks], bytes: new Uint8Array(q.scales.buffer, q.scales.byteOffset, q.scales.byteLength) });
    }
  } finally {
    await source.close();
  }

  const parent = dirname(resolve(outDir));
  await mkdir(parent, { recursive: true }).catch((e: unknown) => { throw fsError(parent, e); });
  const tmp = join(parent, `.${basename(resolve(outDir))}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
  await mkdir(tmp).catch((e: unknown) => { throw fsError(tmp, e); });
  try {
    const weightsFile = join(tmp, "model.safetensors");
    await writeSafetensorsFile(weightsFile, tensors, { format: "pt", quantization: JSON.stringify(QUANTIZATION_METADATA) });
    const bytesOut = (await stat(weightsFile)).size;
    const copied: string[] = [];
    for (const f of COPIED_FILES) {
      if (!(await exists(join(dir, f)))) continue;
      await copyFile(join(dir, f), join(tmp, f)).catch((e: unknown) => { throw fsError(join(dir, f), e); });
      copied.push(f);
    }
    // rename(2) replaces an empty directory; anything else at outDir was refused above.
    await rename(tmp, outDir).catch((e: unknown) => { throw fsError(outDir, e); });
    return {
      weightsFile: join(outDir, "model.safetensors"), quantized: [...quantized], kept, dropped: [...dropped], copied, bytesOut,
    };
  } catch (e) {
    await rm(tmp, { recursive: true, force: true }).catch(() => {});
    throw e;
  }
}
