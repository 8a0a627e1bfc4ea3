import { open, rename, unlink } from "node:fs/promises";
import { randomBytes } from "node:crypto";
import { dirname, basename, join } from "node:path";
import { fsError } from "./node-file-source.js";
import { encodeSafetensors } from "./safetensors.js";
import type { RawTensor } from "./raw-tensor.js";

/**
 * Writes via a temp file in the same directory + fsync + rename, so readers never see a
 * half-written file and a crash leaves the old file intact.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string): Promise<void> {
  const tmp = join(dirname(path), `${basename(path)}.tmp-${process.pid}-${randomBytes(6).toString("hex")}`);
  let fh;
  try {
    fh = await open(tmp, "wx");
  } catch (e) {
    throw fsError(tmp, e);
  }
  try {
    await fh.writeFile(data);
    await fh.sync();
    await fh.close();
    fh = undefined;
    await rename(tmp, path);
  } catch (e) {
    await fh?.close().catch(() => {});
    await unlink(tmp).catch(() => {});
    throw fsError(path, e);
  }
}

export async function writeSafetensorsFile(
  path: string,
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, encodeSafetensors(tensors, metadata));
}
