import { HippoError } from "../errors.js";

/**
 * Random-access bytes (a file, a fetched buffer). Readers pull only the ranges they need,
 * so a large checkpoint is read tensor by tensor instead of being held whole.
 */
export interface ByteSource {
  /** Used in error messages, e.g. the file path. */
  readonly name: string;
  readonly size: number;
  /** Exactly `length` bytes starting at `offset`; the result may be a view, do not mutate it. */
  read(offset: number, length: number): Promise<Uint8Array>;
}

export function checkRange(src: { name: string; size: number }, offset: number, length: number): void {
  if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(length) || offset < 0 || length < 0 || offset + length > src.size) {
    throw new HippoError(`${src.name}: read of ${length} bytes at offset ${offset} is outside the file (${src.size} bytes)`);
  }
}

/** A ByteSource over bytes already in memory; reads are zero-copy views. */
export function bufferSource(name: string, bytes: Uint8Array): ByteSource {
  const size = bytes.byteLength;
  return {
    name,
    size,
    async read(offset, length) {
      checkRange({ name, size }, offset, length);
      return bytes.subarray(offset, offset + length);
    },
  };
}
