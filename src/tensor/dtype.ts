import type { Q8Matrix } from "./q8.js";

/**
 * Storage dtypes of backend tensors. Compute is always f32; f16/bf16 exist so weights can stay packed
 * (two bytes each) and be widened where a kernel reads them. Token ids are i32. q8 is 8-bit weight
 * matrices [N, K] in blocks of 32 along K with one f32 scale each (Q8_0-like; layout in q8.ts).
 */
export type DType = "f32" | "f16" | "bf16" | "i32" | "q8";

/** Bytes per element; q8 counts its scales (4 bytes per 32 values) as 1/8 byte per element. */
export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4, q8: 1.125 };

/** Host-side arrays per storage dtype: f16/bf16 are raw 16-bit patterns. */
export type HostArray = Float32Array | Uint16Array | Int32Array;

/** What `Backend.upload` takes: a host array, or for q8 a Q8Matrix (int8 values + f32 scales). */
export type HostData = HostArray | Q8Matrix;

export function isFloat(dtype: DType): boolean {
  return dtype !== "i32";
}
