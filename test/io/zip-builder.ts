import { deflateRawSync } from "node:zlib";

/** A file to put in a test zip. */
export interface ZipFileSpec {
  name: string;
  data: Uint8Array | string;
  /** 0 = stored (default), 8 = deflate; any other number is written as-is with stored bytes. */
  method?: number;
}

export interface ZipOptions {
  /** Write zip64 extra fields, a zip64 end record and locator (as multi-GB torch files have). */
  zip64?: boolean;
  /** Pad each local header's extra field so data starts on this boundary (torch uses 64). */
  align?: number;
  /** Archive comment, to exercise the backwards EOCD scan. */
  comment?: string;
}

const enc = new TextEncoder();

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

export function crc32(b: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < b.length; i++) c = CRC_TABLE[(c ^ b[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

class Out {
  private chunks: Uint8Array[] = [];
  length = 0;
  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.length += b.length;
  }
  le(n: number, width: 2 | 4 | 8): void {
    const b = new Uint8Array(width);
    const dv = new DataView(b.buffer);
    if (width === 2) dv.setUint16(0, n, true);
    else if (width === 4) dv.setUint32(0, n, true);
    else dv.setBigUint64(0, BigInt(n), true);
    this.bytes(b);
  }
  concat(): Uint8Array {
    const out = new Uint8Array(this.length);
    let p = 0;
    for (const c of this.chunks) {
      out.set(c, p);
      p += c.length;
    }
    return out;
  }
}

/** Builds a zip archive in memory (for tests only). */
export function buildZip(files: ZipFileSpec[], opts: ZipOptions = {}): Uint8Array {
  const out = new Out();
  const central = new Out();
  for (const f of files) {
    const raw = typeof f.data === "string" ? enc.encode(f.data) : f.data;
    const method = f.method ?? 0;
    const stored = method === 8 ? new Uint8Array(deflateRawSync(raw)) : raw;
    const name = enc.encode(f.name);
    const offset = out.length;
    const crc = crc32(raw);
    let pad = 0;
    if (opts.align) {
      const base = offset + 30 + name.length + 4; // 4: the padding field's own header
      pad = (opts.align - (base % opts.align)) % opts.align;
    }
    out.le(0x04034b50, 4);
    out.le(20, 2);
    out.le(0, 2);
    out.le(method, 2);
    out.le(0, 2);
    out.le(0, 2);
    out.le(crc, 4);
    out.le(stored.length, 4);
    out.le(raw.length, 4);
    out.le(name.length, 2);
    out.le(opts.align ? 4 + pad : 0, 2);
    out.bytes(name);
    if (opts.align) {
      out.le(0x4246, 2); // "FB", torch's padding field id
      out.le(pad, 2);
      out.bytes(new Uint8Array(pad));
    }
    out.bytes(stored);

    const z64 = opts.zip64 === true;
    central.le(0x02014b50, 4);
    central.le(45, 2);
    central.le(z64 ? 45 : 20, 2);
    central.le(0, 2);
    central.le(method, 2);
    central.le(0, 2);
    central.le(0, 2);
    central.le(crc, 4);
    central.le(z64 ? 0xffffffff : stored.length, 4);
    central.le(z64 ? 0xffffffff : raw.length, 4);
    central.le(name.length, 2);
    central.le(z64 ? 4 + 24 : 0, 2);
    central.le(0, 2);
    central.le(0, 2);
    central.le(0, 2);
    central.le(0, 4);
    central.le(z64 ? 0xffffffff : offset, 4);
    central.bytes(name);
    if (z64) {
      central.le(0x0001, 2);
      central.le(24, 2);
      central.le(raw.length, 8);
      central.le(stored.length, 8);
      central.le(offset, 8);
    }
  }
  const cdOffset = out.length;
  const cd = central.concat();
  out.bytes(cd);
  if (opts.zip64) {
    const recOffset = out.length;
    out.le(0x06064b50, 4);
    out.le(44, 8);
    out.le(45, 2);
    out.le(45, 2);
    out.le(0, 4);
    out.le(0, 4);
    out.le(files.length, 8);
    out.le(files.length, 8);
    out.le(cd.length, 8);
    out.le(cdOffset, 8);
    out.le(0x07064b50, 4);
    out.le(0, 4);
    out.le(recOffset, 8);
    out.le(1, 4);
  }
  const comment = enc.encode(opts.comment ?? "");
  out.le(0x06054b50, 4);
  out.le(0, 2);
  out.le(0, 2);
  out.le(opts.zip64 ? 0xffff : files.length, 2);
  out.le(opts.zip64 ? 0xffff : files.length, 2);
  out.le(opts.zip64 ? 0xffffffff : cd.length, 4);
  out.le(opts.zip64 ? 0xffffffff : cdOffset, 4);
  out.le(comment.length, 2);
  out.bytes(comment);
  return out.concat();
}
