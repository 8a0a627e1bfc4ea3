/**
 * A tensor as it sits in a checkpoint file: dtype name, shape and little-endian bytes.
 * Readers (safetensors, torch zip/pickle) produce these; model loaders turn them into backend Tensors.
 */
export type FileDType = "F64" | "F32" | "F16" | "BF16" | "I64" | "I32" | "I16" | "I8" | "U8" | "BOOL";

export interface RawTensor {
  dtype: FileDType;
  shape: number[];
  /** Exactly numel * bytesPerElement(dtype) bytes, contiguous, row-major, little-endian. */
  bytes: Uint8Array;
}

export const FILE_DTYPE_BYTES: Record<FileDType, number> = {
  F64: 8, F32: 4, F16: 2, BF16: 2, I64: 8, I32: 4, I16: 2, I8: 1, U8: 1, BOOL: 1,
};

export function numelOf(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
