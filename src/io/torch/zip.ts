import { HippoError } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";

/** One file in a zip archive, as listed by its central directory. */
export interface ZipEntry {
  name: string;
  /** 0 = stored, 8 = deflate. */
  method: number;
  compressedSize: number;
  size: number;
  localHeaderOffset: number;
}

const EOCD_SIG = 0x06054b50;
const EOCD64_LOCATOR_SIG = 0x07064b50;
const EOCD64_SIG = 0x06064b50;
const CENTRAL_SIG = 0x02014b50;
const LOCAL_SIG = 0x04034b50;
const EOCD_LEN = 22;
const MAX_COMMENT = 0xffff;

function view(b: Uint8Array): DataView {
  return new DataView(b.buffer, b.byteOffset, b.byteLength);
}

function u64(name: string, dv: DataView, at: number): number {
  const v = dv.getBigUint64(at, true);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new HippoError(`${name}: zip64 field too large (${v})`);
  return Number(v);
}

function corrupt(src: ByteSource, what: string): HippoError {
  return new HippoError(`${src.name}: corrupt zip archive (${what})`);
}

/** Lists the archive's entries from its central directory (zip64 aware). */
export async function readZipDirectory(src: ByteSource): Promise<ZipEntry[]> {
  if (src.size < EOCD_LEN) throw new HippoError(`${src.name}: not a zip archive (only ${src.size} bytes)`);
  const tailLen = Math.min(src.size, EOCD_LEN + MAX_COMMENT);
  const tailStart = src.size - tailLen;
  const tail = await src.read(tailStart, tailLen);
  const tv = view(tail);
  // Scan back: the EOCD sits before a variable-length comment. Prefer a record whose comment
  // ends exactly at the end of the file, so a signature inside the comment cannot fool us.
  const find = (exact: boolean): number => {
    for (let i = tailLen - EOCD_LEN; i >= 0; i--) {
      if (tv.getUint32(i, true) !== EOCD_SIG) continue;
      const end = i + EOCD_LEN + tv.getUint16(i + 20, true);
      if (exact ? end === tailLen : end <= tailLen) return i;
    }
    return -1;
  };
  let at = find(true);
  if (at < 0) at = find(false);
  if (at < 0) {
    const legacy = (await src.read(0, 1))[0] === 0x80;
    throw new HippoError(
      `${src.name}: not a zip archive (no end-of-central-directory record)` +
        (legacy ? "; legacy torch.save files (torch < 1.6) are not supported, re-save with a newer torch" : ""),
    );
  }
  let count = tv.getUint16(at + 10, true);
  let cdSize = tv.getUint32(at + 12, true);
  let cdOffset = tv.getUint32(at + 16, true);
  const eocdPos = tailStart + at;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    if (eocdPos < 20) throw corrupt(src, "zip64 locator missing");
    const loc = view(await src.read(eocdPos - 20, 20));
    if (loc.getUint32(0, true) !== EOCD64_LOCATOR_SIG) throw corrupt(src, "zip64 locator missing");
    const recPos = u64(src.name, loc, 8);
    if (recPos + 56 > src.size) throw corrupt(src, "zip64 end record outside the file");
    const rec = view(await src.read(recPos, 56));
    if (rec.getUint32(0, true) !== EOCD64_SIG) throw corrupt(src, "bad zip64 end record signature");
    count = u64(src.name, rec, 32);
    cdSize = u64(src.name, rec, 40);
    cdOffset = u64(src.name, rec, 48);
  }
  if (cdOffset + cdSize > src.size) throw corrupt(src, "central directory outside the file");
  const cd = await src.read(cdOffset, cdSize);
  const dv = view(cd);
  const dec = new TextDecoder();
  const entries: ZipEntry[] = [];
  let p = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > cdSize || dv.getUint32(p, true) !== CENTRAL_SIG) throw corrupt(src, `bad central directory entry ${n}`);
    const flags = dv.getUint16(p + 8, true);
    const method = dv.getUint16(p + 10, true);
    let compressedSize = dv.getUint32(p + 20, true);
    let size = dv.getUint32(p + 24, true);
    const nameLen = dv.getUint16(p + 28, true);
    const extraLen = dv.getUint16(p + 30, true);
    const commentLen = dv.getUint16(p + 32, true);
    let localHeaderOffset = dv.getUint32(p + 42, true);
    const end = p + 46 + nameLen + extraLen + commentLen;
    if (end > cdSize) throw corrupt(src, `central directory entry ${n} overruns the directory`);
    const name = dec.decode(cd.subarray(p + 46, p + 46 + nameLen));
    if (flags & 1) throw new HippoError(`${src.name}: zip entry '${name}' is encrypted`);
    // Zip64 extra field: 64-bit values appear only for the fields saturated at 0xffffffff, in this order.
    let e = p + 46 + nameLen;
    const extraEnd = e + extraLen;
    while (e + 4 <= extraEnd) {
      const id = dv.getUint16(e, true);
      const len = dv.getUint16(e + 2, true);
      if (id === 0x0001) {
        let q = e + 4;
        const take = (): number => {
          if (q + 8 > e + 4 + len) throw corrupt(src, `short zip64 extra field in '${name}'`);
          const v = u64(src.name, dv, q);
          q += 8;
          return v;
        };
        if (size === 0xffffffff) size = take();
        if (compressedSize === 0xffffffff) compressedSize = take();
        if (localHeaderOffset === 0xffffffff) localHeaderOffset = take();
      }
      e += 4 + len;
    }
    entries.push({ name, method, compressedSize, size, localHeaderOffset });
    p = end;
  }
  return entries;
}

/** Absolute offset of an entry's (possibly compressed) data, from its local header. */
export async function entryDataOffset(src: ByteSource, entry: ZipEntry): Promise<number> {
  if (entry.localHeaderOffset + 30 > src.size) throw corrupt(src, `local header of '${entry.name}' outside the file`);
  const h = view(await src.read(entry.localHeaderOffset, 30));
  if (h.getUint32(0, true) !== LOCAL_SIG) throw corrupt(src, `bad local header for '${entry.name}'`);
  const start = entry.localHeaderOffset + 30 + h.getUint16(26, true) + h.getUint16(28, true);
  if (start + entry.compressedSize > src.size) {
    throw new HippoError(`${src.name}: zip entry '${entry.name}' runs past the end of the file (truncated download?)`);
  }
  return start;
}

/** The entry's uncompressed bytes. Stored entries are read in place (only this entry's range). */
export async function readEntry(src: ByteSource, entry: ZipEntry): Promise<Uint8Array> {
  const start = await entryDataOffset(src, entry);
  if (entry.method === 0) {
    if (entry.size !== entry.compressedSize) throw corrupt(src, `stored entry '${entry.name}' has mismatched sizes`);
    return src.read(start, entry.size);
  }
  if (entry.method === 8) return inflate(src, entry, await src.read(start, entry.compressedSize));
  throw new HippoError(
    `${src.name}: zip entry '${entry.name}' uses compression method ${entry.method}; only stored (0) and deflate (8) are supported`,
  );
}

async function inflate(src: ByteSource, entry: ZipEntry, data: Uint8Array): Promise<Uint8Array> {
  const ds = new DecompressionStream("deflate-raw");
  const writer = ds.writable.getWriter();
  const reader = ds.readable.getReader();
  // Errors surface through the reader; keep the writer's promises from going unhandled.
  writer.write(data as Uint8Array<ArrayBuffer>).catch(() => {});
  writer.close().catch(() => {});
  const out = new Uint8Array(entry.size);
  let n = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      // Never trust the output to stop at the declared size (zip bombs).
      if (n + value.byteLength > out.length) {
        await reader.cancel().catch(() => {});
        throw corrupt(src, `'${entry.name}' inflates past its declared ${entry.size} bytes`);
      }
      out.set(value, n);
      n += value.byteLength;
    }
  } catch (e) {
    if (e instanceof HippoError) throw e;
    throw corrupt(src, `cannot inflate '${entry.name}': ${(e as Error)?.message ?? String(e)}`);
  }
  if (n !== out.length) throw corrupt(src, `'${entry.name}' inflates to ${n} bytes, expected ${entry.size}`);
  return out;
}
