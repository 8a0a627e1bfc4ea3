import type { FileDType, RawTensor } from "./raw-tensor.js";

/**
 * A checkpoint's tensors by name, read lazily. Implemented by safetensors (single file or
 * sharded) and torch .bin loaders, so model loaders need not care about the format.
 */
export interface TensorSource {
  names(): string[];
  has(name: string): boolean;
  info(name: string): { dtype: FileDType; shape: number[] };
  read(name: string): Promise<RawTensor>;
  /** Which file holds the tensor, for error messages. */
  describe(name: string): string;
  close(): Promise<void>;
}
