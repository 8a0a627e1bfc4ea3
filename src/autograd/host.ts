import { widenBf16, widenF16 } from "../tensor/half.js";
import type { Tensor } from "../tensor/tensor.js";

/** Host-side helpers for backward rules (training runs its backward passes on the CPU). */

/** A tensor's values as f32 (f16/bf16 widened into a copy); shares storage for f32. */
export function hostF32(t: Tensor): Float32Array {
  const data = t.storage;
  if (data instanceof Float32Array) return data;
  if (data instanceof Uint16Array) {
    const out = new Float32Array(t.size);
    (t.dtype === "f16" ? widenF16 : widenBf16)(data, 0, out, 0, t.size);
    return out;
  }
  throw new Error(`backward needs host float data, got ${t.dtype} storage of ${t.toString()}`);
}

export function hostOptional(t: Tensor | null): Float32Array | null {
  return t ? hostF32(t) : null;
}

export function hostI32(t: Tensor): Int32Array {
  if (!(t.storage instanceof Int32Array)) throw new Error(`expected i32 host data, got ${t.toString()}`);
  return t.storage;
}

/** [R, C] → [C, R]. */
export function transpose(a: Float32Array, rows: number, cols: number): Float32Array {
  const out = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    for (let c = 0; c < cols; c++) out[c * rows + r] = a[o + c];
  }
  return out;
}

/** Sums [R, W] over rows into [W] (the gradient of a broadcast suffix operand). */
export function sumRows(a: Float32Array, width: number): Float32Array {
  const out = new Float32Array(width);
  for (let i = 0; i < a.length; i += width) for (let j = 0; j < width; j++) out[j] += a[i + j];
  return out;
}

export function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}
