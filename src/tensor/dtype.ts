/**
 * Storage dtypes of backend tensors. Compute is always f32; f16/bf16 exist so weights can stay packed
 * (two bytes each) and be widened where a kernel reads them. Token ids are i32.
 */
export type DType = "f32" | "f16" | "bf16" | "i32";

export const DTYPE_BYTES: Record<DType, number> = { f32: 4, f16: 2, bf16: 2, i32: 4 };

/** Host-side arrays per storage dtype: f16/bf16 are raw 16-bit patterns. */
export type HostArray = Float32Array | Uint16Array | Int32Array;

export function isFloat(dtype: DType): boolean {
  return dtype !== "i32";
}
