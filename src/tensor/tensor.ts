import { HippoError, shapeString } from "../errors.js";
import type { Backend } from "../backends/backend.js";
import type { DType } from "./dtype.js";
import { trackInScope } from "./scope.js";

let nextTensorId = 1;

/**
 * An n-dimensional array whose storage lives on a backend. Tensors are immutable values: ops make new
 * ones. Reading values back is the only async operation (a GPU backend must wait for its queue).
 */
export class Tensor {
  readonly id = nextTensorId++;
  readonly size: number;
  private disposed = false;

  constructor(
    readonly backend: Backend,
    readonly shape: readonly number[],
    readonly dtype: DType,
    /** Backend-private storage handle; only the owning backend looks inside. */
    readonly storage: unknown,
  ) {
    let n = 1;
    for (const d of shape) {
      if (!Number.isInteger(d) || d < 0) throw new HippoError(`invalid tensor shape ${shapeString(shape)}`);
      n *= d;
    }
    this.size = n;
    trackInScope(this);
  }

  get rank(): number {
    return this.shape.length;
  }

  get isDisposed(): boolean {
    return this.disposed;
  }

  /** Values as f32 (f16/bf16 widened) or i32, in row-major order. */
  async read(): Promise<Float32Array | Int32Array> {
    this.assertAlive();
    return this.backend.read(this);
  }

  async readFloat32(): Promise<Float32Array> {
    const values = await this.read();
    return values instanceof Float32Array ? values : Float32Array.from(values);
  }

  /** Frees backend memory now instead of waiting for the garbage collector (which never sees GPU memory). */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.backend.release(this);
  }

  assertAlive(): void {
    if (this.disposed) throw new Error(`tensor #${this.id} ${shapeString(this.shape)} used after dispose()`);
  }

  toString(): string {
    return `Tensor(${this.dtype} ${shapeString(this.shape)} on ${this.backend.name})`;
  }
}
