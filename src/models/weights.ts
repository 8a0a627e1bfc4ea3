import { HippoError, shapeString } from "../errors.js";
import type { Backend } from "../backends/backend.js";
import { copyBuffer, rawToUint16, toFloat32 } from "../io/convert.js";
import type { RawTensor } from "../io/raw-tensor.js";
import type { TensorSource } from "../io/tensor-source.js";
import { dequantizeQ8, Q8_BLOCK, Q8Matrix, q8Blocks, quantizeQ8 } from "../tensor/q8.js";
import type { Tensor } from "../tensor/tensor.js";

/** Weight quantizations Hippo can apply at load time (and store ahead of time, `hippo quantize`). */
export const QUANTIZATION_TYPES = ["q8"] as const;
export type QuantizationType = (typeof QUANTIZATION_TYPES)[number];

/**
 * How a quantized matrix is stored in safetensors: the int8 values as an I8 tensor under the weight's own
 * name, [N, K], and the per-block scales as an F32 tensor `<name>` + Q8_SCALE_SUFFIX, [N, ceil(K / 32)]
 * (layout: src/tensor/q8.ts). The file's __metadata__ records QUANTIZATION_METADATA under "quantization".
 */
export const Q8_SCALE_SUFFIX = ".q8_scale";
export const QUANTIZATION_METADATA = { type: "q8_0", block: Q8_BLOCK, scale_dtype: "F32" } as const;

export function checkQuantizationType(type: string, where: string): QuantizationType {
  if (!(QUANTIZATION_TYPES as readonly string[]).includes(type)) {
    throw new HippoError(`${where}: unknown quantization type '${type}' (supported: ${QUANTIZATION_TYPES.join(", ")})`);
  }
  return type as QuantizationType;
}

export interface WeightLoaderOptions {
  /** Quantize weight matrices as they are read (stored-quantized ones load as they are). */
  quantize?: QuantizationType | null;
  /** With `quantize`, also quantize embedding tables and LM heads (`table()`); default true. */
  quantizeEmbeddings?: boolean;
}

/**
 * Reads a checkpoint's tensors onto a backend, checking each against the shape the config implies.
 * Matrices keep f16/bf16 packed (widened where kernels read them); small parameters become f32. Matrices
 * stored as q8 (I8 values + `.q8_scale`) load as q8, and with `quantize: "q8"` f32/f16/bf16 matrices are
 * quantized as they are read; vectors and other parameters always load as f32.
 */
export class WeightLoader {
  private readonly used = new Set<string>();
  /** Tensors quantized at load time, by name (so `hippo quantize` knows what to store quantized). */
  private readonly quantizedAtLoad = new Set<string>();
  private readonly quantize: QuantizationType | null;
  private readonly quantizeEmbeddings: boolean;

  constructor(readonly source: TensorSource, readonly backend: Backend, readonly where: string, options: WeightLoaderOptions = {}) {
    this.quantize = options.quantize ? checkQuantizationType(options.quantize, where) : null;
    this.quantizeEmbeddings = options.quantizeEmbeddings ?? true;
  }

  /** The first of `names` the checkpoint has (checkpoints in the wild spell some keys differently). */
  resolve(names: readonly string[]): string | null {
    return names.find((n) => this.source.has(n)) ?? null;
  }

  has(name: string): boolean {
    return this.source.has(name);
  }

  protected info(names: readonly string[], shape: readonly number[], why: string): string {
    const name = this.resolve(names);
    if (!name) {
      const alt = names.length > 1 ? ` (or ${names.slice(1).map((n) => `'${n}'`).join(", ")})` : "";
      throw new HippoError(`${this.where}: missing tensor '${names[0]}'${alt}, expected shape ${shapeString(shape)} (${why})`);
    }
    const got = this.source.info(name).shape;
    if (got.length !== shape.length || got.some((d, i) => d !== shape[i])) {
      throw new HippoError(`${this.source.describe(name)}: tensor '${name}' has shape ${shapeString(got)}, expected ${shapeString(shape)} (${why})`);
    }
    this.used.add(name);
    return name;
  }

  /** A weight matrix [N, K] of a linear layer: kept in its stored precision, or quantized under `quantize`. */
  async matrix(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.loadMatrix(typeof names === "string" ? [names] : names, shape, why, this.quantize !== null);
  }

  /** An embedding table or LM head [V, D]: as `matrix`, quantized at load only when `quantizeEmbeddings` is on. */
  async table(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.loadMatrix(typeof names === "string" ? [names] : names, shape, why, this.quantize !== null && this.quantizeEmbeddings);
  }

  private async loadMatrix(names: readonly string[], shape: readonly number[], why: string, quantize: boolean): Promise<Tensor> {
    const name = this.info(names, shape, why);
    const stored = await this.storedQ8(name, shape);
    if (stored) return this.upload(name, stored, shape, "q8");
    const raw = await this.source.read(name);
    if (quantize && shape.length === 2) {
      const q = quantizeQ8(toFloat32(raw, `${this.source.describe(name)}: ${name}`), shape[0], shape[1], `${this.source.describe(name)}: ${name}`);
      this.quantizedAtLoad.add(name);
      return this.upload(name, q, shape, "q8");
    }
    if (raw.dtype === "F16" || raw.dtype === "BF16") {
      return this.upload(name, rawToUint16(raw), shape, raw.dtype === "F16" ? "f16" : "bf16");
    }
    return this.upload(name, toFloat32(raw, `${this.source.describe(name)}: ${name}`), shape, "f32");
  }

  /**
   * A matrix computed at load time (e.g. columns reordered) from stored tensor `name`: uploaded in f32, or
   * quantized when the loader quantizes or the stored tensor was quantized.
   */
  uploadMatrix(name: string, data: Float32Array, shape: readonly number[]): Tensor {
    const storedQ8 = this.source.has(name + Q8_SCALE_SUFFIX);
    if ((this.quantize || storedQ8) && shape.length === 2) {
      return this.upload(name, quantizeQ8(data, shape[0], shape[1], `${this.where}: ${name}`), shape, "q8");
    }
    return this.upload(name, data, shape, "f32");
  }

  /** Uploads, naming the tensor in a backend's refusal (a backend without q8 kernels, say). */
  private upload(name: string, data: Float32Array | Uint16Array | Q8Matrix, shape: readonly number[], dtype: "f32" | "f16" | "bf16" | "q8"): Tensor {
    try {
      return this.backend.upload(data, shape, dtype);
    } catch (e) {
      if (e instanceof HippoError) throw new HippoError(`${this.source.describe(name)}: tensor '${name}' (${dtype} ${shapeString(shape)}): ${e.message}`);
      throw e;
    }
  }

  /**
   * The q8 matrix stored under `name` (I8 values + F32/F16 scales `<name>.q8_scale`), or null when the
   * tensor is stored unquantized. Checks the scales' shape and the values' dtype.
   */
  private async storedQ8(name: string, shape: readonly number[]): Promise<Q8Matrix | null> {
    const scaleName = name + Q8_SCALE_SUFFIX;
    const dtype = this.source.info(name).dtype;
    if (!this.source.has(scaleName)) {
      if (dtype === "I8") {
        throw new HippoError(`${this.source.describe(name)}: tensor '${name}' is I8 but has no '${scaleName}' scales (q8 weights need both)`);
      }
      return null;
    }
    const where = this.source.describe(scaleName);
    if (shape.length !== 2) throw new HippoError(`${where}: '${scaleName}' quantizes '${name}' ${shapeString(shape)}, but only matrices [N, K] are stored as q8`);
    const [N, K] = shape;
    const scaleShape = [N, q8Blocks(K)];
    const got = this.source.info(scaleName);
    if (got.shape.length !== 2 || got.shape[0] !== scaleShape[0] || got.shape[1] !== scaleShape[1]) {
      throw new HippoError(`${where}: tensor '${scaleName}' has shape ${shapeString(got.shape)}, expected ${shapeString(scaleShape)} ` +
        `(one scale per block of ${Q8_BLOCK} along K of '${name}' ${shapeString(shape)})`);
    }
    if (got.dtype !== "F32" && got.dtype !== "F16") throw new HippoError(`${where}: tensor '${scaleName}' is ${got.dtype}, expected F32 (or F16) q8 scales`);
    if (dtype !== "I8") throw new HippoError(`${this.source.describe(name)}: tensor '${name}' is ${dtype}, but '${scaleName}' marks it as q8 (expected I8 values)`);
    this.used.add(scaleName);
    const raw: RawTensor = await this.source.read(name);
    const values = new Int8Array(copyBuffer(raw.bytes));
    // The layout (src/tensor/q8.ts) has values in −127..127, as llama.cpp's Q8_0: a file with −128 was not made by it.
    const bad = values.indexOf(-128);
    if (bad >= 0) throw new HippoError(`${this.source.describe(name)}: tensor '${name}' holds the q8 value −128 at flat index ${bad} (q8 values are −127..127)`);
    const scales = toFloat32(await this.source.read(scaleName), `${where}: ${scaleName}`);
    for (let i = 0; i < scales.length; i++) {
      if (!(Math.abs(scales[i]) <= Number.MAX_VALUE)) throw new HippoError(`${where}: tensor '${scaleName}' holds a non-finite scale (${scales[i]} at flat index ${i})`);
    }
    return new Q8Matrix(values, scales, N, K);
  }

  /** A parameter used in f32 (norm weights, biases, SSM parameters). */
  async vector(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.backend.upload(await this.floats(names, shape, why), shape, "f32");
  }

  /** Raw f32 values, for parameters transformed at load time (e.g. A = -exp(A_log)); q8-stored matrices are dequantized. */
  async floats(names: string | readonly string[], shape: readonly number[], why: string): Promise<Float32Array> {
    const name = this.info(typeof names === "string" ? [names] : names, shape, why);
    const stored = await this.storedQ8(name, shape);
    if (stored) return dequantizeQ8(stored);
    return toFloat32(await this.source.read(name), `${this.source.describe(name)}: ${name}`);
  }

  /** A stored tensor read in f32 under another shape of the same size (e.g. conv filters [C, 1, K] → [C, K]). */
  async reshaped(name: string, stored: readonly number[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.backend.upload(await this.floats(name, stored, why), shape, "f32");
  }

  /** -exp(p) of a stored log-parameter (SSM decay rates A = -exp(A_log)). */
  async negExp(name: string, shape: readonly number[], why: string): Promise<Tensor> {
    return this.backend.upload((await this.floats(name, shape, why)).map((v) => -Math.exp(v)), shape, "f32");
  }

  /**
   * True when the loaded tensors are trainable parameters: loaders must then derive tensors with ops
   * (which autograd records) instead of host arithmetic on `floats`.
   */
  get differentiable(): boolean {
    return false;
  }

  /** Names of the checkpoint no loader asked for (reported, since they may mean a config mismatch). */
  unused(): string[] {
    return this.source.names().filter((n) => !this.used.has(n));
  }

  /** Names of the tensors quantized as they were read (not those stored quantized). */
  quantized(): string[] {
    return [...this.quantizedAtLoad];
  }

  /** Storage dtypes of the tensors read, with counts, for `hippo info` (q8: "Q8_0", scales not counted). */
  dtypes(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const n of this.used) {
      if (n.endsWith(Q8_SCALE_SUFFIX) && this.used.has(n.slice(0, -Q8_SCALE_SUFFIX.length))) continue;
      const d = this.quantizedAtLoad.has(n) || this.source.has(n + Q8_SCALE_SUFFIX) ? "Q8_0" : this.source.info(n).dtype;
      counts[d] = (counts[d] ?? 0) + 1;
    }
    return counts;
  }
}
