// safetensors format: u64 LE header length N, N bytes of UTF-8 JSON header, then the data section.
// Header: { "__metadata__"?: {str: str}, name: { dtype, shape, data_offsets: [begin, end] } }
// with offsets relative to the data section. No Node imports: usable in browsers.
import { HippoError, shapeString } from "../errors.js";
import type { ByteSource } from "./byte-source.js";
import { FILE_DTYPE_BYTES, numelOf, type FileDType, type RawTensor } from "./raw-tensor.js";

export interface SafetensorsEntry {
  dtype: FileDType;
  shape: number[];
  /** Absolute file offsets. */
  begin: number;
  end: number;
}

export interface SafetensorsHeader {
  metadata: Record<string, string>;
  tensors: Map<string, SafetensorsEntry>;
  /** Absolute file offset of the data section. */
  dataStart: number;
}

/** Same limit as the reference (Rust) implementation. */
const MAX_HEADER_BYTES = 100_000_000;
const DTYPES = Object.keys(FILE_DTYPE_BYTES) as FileDType[];

function isDType(s: unknown): s is FileDType {
  return typeof s === "string" && Object.prototype.hasOwnProperty.call(FILE_DTYPE_BYTES, s);
}

function describeJson(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "an array";
  if (typeof v === "object") return "an object";
  return `${typeof v} ${JSON.stringify(v)}`;
}

/** Engine JSON errors may quote the input, newlines included; keep messages to one line. */
export function oneLine(e: unknown, max = 160): string {
  const s = String((e as Error)?.message ?? e).replace(/\s+/g, " ").trim();
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isCount(v: unknown): v is number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
}

/** Sets a key on a plain object, safe for "__proto__". */
function setOwn(obj: Record<string, string>, key: string, value: string): void {
  Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
}

export async function readSafetensorsHeader(src: ByteSource): Promise<SafetensorsHeader> {
  const file = src.name;
  const fail = (msg: string): never => {
    throw new HippoError(`${file}: ${msg}`);
  };
  if (src.size < 8) fail(`not a safetensors file: ${src.size} bytes, need at least 8 for the header length`);
  const lenBytes = await src.read(0, 8);
  const dv = new DataView(lenBytes.buffer, lenBytes.byteOffset, 8);
  const headerLen = dv.getUint32(0, true) + dv.getUint32(4, true) * 2 ** 32;
  if (headerLen > MAX_HEADER_BYTES) {
    fail(`safetensors header length ${headerLen} is absurd (max ${MAX_HEADER_BYTES}); not a safetensors file?`);
  }
  if (headerLen > src.size - 8) {
    fail(`safetensors header length ${headerLen} runs past the end of the file (${src.size} bytes, so at most ${src.size - 8})`);
  }
  const dataStart = 8 + headerLen;
  const dataLen = src.size - dataStart;

  let text = "";
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(await src.read(8, headerLen));
  } catch (e) {
    if (e instanceof HippoError) throw e;
    fail(`safetensors header is not valid UTF-8`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail(`safetensors header is not valid JSON (${oneLine(e)})`);
  }
  if (!isObject(json)) fail(`safetensors header must be a JSON object, got ${describeJson(json)}`);
  const root = json as Record<string, unknown>;

  const metadata: Record<string, string> = {};
  const tensors = new Map<string, SafetensorsEntry>();
  for (const [name, v] of Object.entries(root)) {
    if (name === "__metadata__") {
      if (!isObject(v)) fail(`__metadata__ must be an object of strings, got ${describeJson(v)}`);
      for (const [k, s] of Object.entries(v as Record<string, unknown>)) {
        if (typeof s !== "string") fail(`__metadata__ key ${k}: expected a string value, got ${describeJson(s)}`);
        setOwn(metadata, k, s as string);
      }
      continue;
    }
    const t = `tensor ${name}`;
    if (!isObject(v)) fail(`${t}: expected an object with dtype, shape, data_offsets, got ${describeJson(v)}`);
    const e = v as Record<string, unknown>;
    for (const key of ["dtype", "shape", "data_offsets"]) {
      if (!(key in e)) fail(`${t}: missing "${key}"`);
    }
    if (typeof e.dtype !== "string") fail(`${t}: dtype must be a string, got ${describeJson(e.dtype)}`);
    if (!isDType(e.dtype)) fail(`${t}: unknown dtype ${JSON.stringify(e.dtype)} (known: ${DTYPES.join(", ")})`);
    const dtype = e.dtype as FileDType;
    if (!Array.isArray(e.shape)) fail(`${t}: shape must be an array of integers, got ${describeJson(e.shape)}`);
    const shape = e.shape as unknown[];
    shape.forEach((d, i) => {
      if (!isCount(d)) fail(`${t}: shape dim ${i} must be a non-negative integer, got ${describeJson(d)}`);
    });
    const offs = e.data_offsets;
    if (!Array.isArray(offs) || offs.length !== 2 || !isCount(offs[0]) || !isCount(offs[1])) {
      fail(`${t}: data_offsets must be [begin, end] with non-negative integers, got ${JSON.stringify(offs)}`);
    }
    const [b, en] = offs as [number, number];
    if (b > en || en > dataLen) {
      fail(`${t}: data_offsets [${b}, ${en}] are outside the data section (0..${dataLen} bytes)`);
    }
    const dims = shape as number[];
    const need = numelOf(dims) * FILE_DTYPE_BYTES[dtype];
    if (en - b !== need) {
      fail(`${t}: shape ${shapeString(dims)} ${dtype} needs ${need} bytes, data_offsets give ${en - b}`);
    }
    tensors.set(name, { dtype, shape: dims.slice(), begin: dataStart + b, end: dataStart + en });
  }

  // Overlap check: empty tensors cannot overlap anything.
  const byBegin = [...tensors].filter(([, e]) => e.end > e.begin).sort((x, y) => x[1].begin - y[1].begin);
  for (let i = 1; i < byBegin.length; i++) {
    const [pn, p] = byBegin[i - 1];
    const [cn, c] = byBegin[i];
    if (c.begin < p.end) {
      const rel = (e: SafetensorsEntry) => `[${e.begin - dataStart}, ${e.end - dataStart}]`;
      fail(`tensors ${pn} and ${cn} overlap: data_offsets ${rel(p)} and ${rel(c)}`);
    }
  }
  return { metadata, tensors, dataStart };
}

export async function readSafetensorsTensor(src: ByteSource, header: SafetensorsHeader, name: string): Promise<RawTensor> {
  const e = header.tensors.get(name);
  if (!e) throw new HippoError(`${src.name}: no tensor named ${name} (the file has ${header.tensors.size} tensors)`);
  const bytes = await src.read(e.begin, e.end - e.begin);
  return { dtype: e.dtype, shape: e.shape.slice(), bytes };
}

export async function readSafetensors(src: ByteSource): Promise<{ metadata: Record<string, string>; tensors: Map<string, RawTensor> }> {
  const header = await readSafetensorsHeader(src);
  const tensors = new Map<string, RawTensor>();
  for (const name of header.tensors.keys()) tensors.set(name, await readSafetensorsTensor(src, header, name));
  return { metadata: header.metadata, tensors };
}

/** Encodes a standard safetensors file: tensors contiguous in sorted-name order. */
export function encodeSafetensors(
  tensors: Map<string, RawTensor> | Record<string, RawTensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const entries = tensors instanceof Map ? [...tensors] : Object.entries(tensors);
  entries.sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, unknown> = {};
  if (metadata) {
    const md: Record<string, string> = {};
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") throw new HippoError(`safetensors metadata ${k}: expected a string value, got ${describeJson(v)}`);
      setOwn(md, k, v);
    }
    header.__metadata__ = md;
  }
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === "__metadata__") throw new HippoError(`safetensors: "__metadata__" cannot be a tensor name`);
    if (!isDType(t.dtype)) throw new HippoError(`safetensors: tensor ${name}: unknown dtype ${JSON.stringify(t.dtype)} (known: ${DTYPES.join(", ")})`);
    if (!t.shape.every(isCount)) throw new HippoError(`safetensors: tensor ${name}: bad shape ${shapeString(t.shape)}`);
    const need = numelOf(t.shape) * FILE_DTYPE_BYTES[t.dtype];
    if (t.bytes.byteLength !== need) {
      throw new HippoError(`safetensors: tensor ${name}: shape ${shapeString(t.shape)} ${t.dtype} needs ${need} bytes, got ${t.bytes.byteLength}`);
    }
    Object.defineProperty(header, name, {
      value: { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + need] },
      enumerable: true, writable: true, configurable: true,
    });
    offset += need;
  }
  const json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + padded + offset);
  const dv = new DataView(out.buffer);
  dv.setUint32(0, padded % 2 ** 32, true);
  dv.setUint32(4, Math.floor(padded / 2 ** 32), true);
  out.set(json, 8);
  out.fill(0x20, 8 + json.length, 8 + padded);
  let pos = 8 + padded;
  for (const [, t] of entries) {
    out.set(t.bytes, pos);
    pos += t.bytes.byteLength;
  }
  return out;
}
