import { HippoError, shapeString } from "../errors.js";
import type { Backend } from "../backends/backend.js";
import { rawToUint16, toFloat32 } from "../io/convert.js";
import type { TensorSource } from "../io/tensor-source.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * Reads a checkpoint's tensors onto a backend, checking each against the shape the config implies.
 * Matrices keep f16/bf16 packed (widened where kernels read them); small parameters become f32.
 */
export class WeightLoader {
  private readonly used = new Set<string>();

  constructor(readonly source: TensorSource, readonly backend: Backend, readonly where: string) {}

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

  /** A weight matrix or embedding table, kept in its stored precision when that is f16/bf16. */
  async matrix(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    const name = this.info(typeof names === "string" ? [names] : names, shape, why);
    const raw = await this.source.read(name);
    if (raw.dtype === "F16" || raw.dtype === "BF16") {
      return this.backend.upload(rawToUint16(raw), shape, raw.dtype === "F16" ? "f16" : "bf16");
    }
    return this.backend.upload(toFloat32(raw, `${this.source.describe(name)}: ${name}`), shape, "f32");
  }

  /** A parameter used in f32 (norm weights, biases, SSM parameters). */
  async vector(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.backend.upload(await this.floats(names, shape, why), shape, "f32");
  }

  /** Raw f32 values, for parameters transformed at load time (e.g. A = -exp(A_log)). */
  async floats(names: string | readonly string[], shape: readonly number[], why: string): Promise<Float32Array> {
    const name = this.info(typeof names === "string" ? [names] : names, shape, why);
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

  /** Storage dtypes of the tensors read, with counts, for `hippo info`. */
  dtypes(): Record<string, number> {
    const counts: Record<string, number> = {};
    for (const n of this.used) {
      const d = this.source.info(n).dtype;
      counts[d] = (counts[d] ?? 0) + 1;
    }
    return counts;
  }
}
