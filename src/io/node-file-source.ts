import { open, type FileHandle } from "node:fs/promises";
import { HippoError } from "../errors.js";
import { checkRange, type ByteSource } from "./byte-source.js";

export type FileSource = ByteSource & { close(): Promise<void> };

// Single reads above 2 GiB fail in Node, so large tensors are read in chunks.
const CHUNK = 1 << 30;

/** Opens a file for positional reads; the caller must close() it. */
export async function openFileSource(path: string): Promise<FileSource> {
  let fh: FileHandle;
  try {
    fh = await open(path, "r");
  } catch (e) {
    throw fsError(path, e);
  }
  let size: number;
  try {
    const st = await fh.stat();
    if (!st.isFile()) throw new HippoError(`${path}: not a regular file`);
    size = st.size;
  } catch (e) {
    await fh.close();
    throw e instanceof HippoError ? e : fsError(path, e);
  }
  let closed = false;
  return {
    name: path,
    size,
    async read(offset, length) {
      if (closed) throw new HippoError(`${path}: read after close`);
      checkRange({ name: path, size }, offset, length);
      const out = new Uint8Array(length);
      let done = 0;
      while (done < length) {
        const n = Math.min(CHUNK, length - done);
        const { bytesRead } = await fh.read(out, done, n, offset + done);
        if (bytesRead === 0) {
          throw new HippoError(`${path}: file shrank while reading (wanted ${length} bytes at offset ${offset}, got ${done})`);
        }
        done += bytesRead;
      }
      return out;
    },
    async close() {
      if (closed) return;
      closed = true;
      await fh.close();
    },
  };
}

export function fsError(path: string, e: unknown): HippoError {
  const code = (e as NodeJS.ErrnoException)?.code;
  if (code === "ENOENT") return new HippoError(`${path}: no such file`);
  if (code === "EACCES" || code === "EPERM") return new HippoError(`${path}: permission denied`);
  if (code === "EISDIR") return new HippoError(`${path}: is a directory, expected a file`);
  return new HippoError(`${path}: ${(e as Error)?.message ?? String(e)}`);
}
