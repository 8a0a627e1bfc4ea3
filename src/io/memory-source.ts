import { HippoError } from "../errors.js";
import type { RawTensor } from "./raw-tensor.js";
import type { TensorSource } from "./tensor-source.js";

/** A TensorSource over tensors already in memory (random init, tests, benchmarks, browser uploads). */
export function memoryTensorSource(tensors: Map<string, RawTensor> | Record<string, RawTensor>, name = "memory"): TensorSource {
  const map = tensors instanceof Map ? tensors : new Map(Object.entries(tensors));
  const get = (n: string): RawTensor => {
    const t = map.get(n);
    if (!t) throw new HippoError(`${name}: no tensor '${n}'`);
    return t;
  };
  return {
    names: () => [...map.keys()],
    has: (n) => map.has(n),
    info: (n) => ({ dtype: get(n).dtype, shape: [...get(n).shape] }),
    read: async (n) => get(n),
    describe: () => name,
    close: async () => {},
  };
}
