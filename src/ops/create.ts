import { getBackend } from "../backends/registry.js";
import type { Backend } from "../backends/backend.js";
import type { DType, HostArray } from "../tensor/dtype.js";
import type { Tensor } from "../tensor/tensor.js";

export interface CreateOptions {
  backend?: Backend;
  dtype?: DType;
}

function inferDType(data: HostArray): DType {
  if (data instanceof Float32Array) return "f32";
  if (data instanceof Int32Array) return "i32";
  throw new Error("a Uint16Array needs an explicit dtype: 'f16' or 'bf16'");
}

/** Uploads host data as a tensor (f32 from Float32Array, i32 from Int32Array unless dtype says otherwise). */
export function tensor(data: HostArray | number[], shape: readonly number[], options: CreateOptions = {}): Tensor {
  const backend = options.backend ?? getBackend();
  const array = Array.isArray(data) ? (options.dtype === "i32" ? Int32Array.from(data) : Float32Array.from(data)) : data;
  return backend.upload(array, shape, options.dtype ?? inferDType(array));
}

export function zeros(shape: readonly number[], options: CreateOptions = {}): Tensor {
  return (options.backend ?? getBackend()).zeros(shape, options.dtype ?? "f32");
}
