// RawTensor bytes -> typed arrays, and f16/bf16 bit conversions.
// Assumes a little-endian host (every platform Node and browsers run on in practice).
import { HippoError, shapeString } from "../errors.js";
import { bf16ToF32, f16BitsTable, f16ToF32 } from "../tensor/half.js";
import { FILE_DTYPE_BYTES, numelOf, type FileDType, type RawTensor } from "./raw-tensor.js";

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);


function checkBytes(raw: RawTensor, where: string): number {
  const n = numelOf(raw.shape);
  const need = n * FILE_DTYPE_BYTES[raw.dtype];
  if (raw.bytes.byteLength !== need) {
    throw new HippoError(`${where}: shape ${shapeString(raw.shape)} ${raw.dtype} needs ${need} bytes, got ${raw.bytes.byteLength}`);
  }
  return n;
}

/**
 * An ArrayBuffer holding a copy of exactly these bytes, so typed views are aligned and unshared. Not
 * `bytes.slice().buffer`: a Node Buffer's slice() is a view, whose .buffer is the whole pool or file.
 */
export function copyBuffer(bytes: Uint8Array): ArrayBuffer {
  const copy = new Uint8Array(bytes.byteLength);
  copy.set(bytes);
  return copy.buffer;
}

export { f16ToF32, bf16ToF32 };

/** f32 bit pattern -> f16 bits, round to nearest even; overflow -> inf, NaN stays NaN. */
function f32BitsToF16(f: number): number {
  const sign = (f >>> 16) & 0x8000;
  const a = f & 0x7fffffff;
  if (a > 0x7f800000) return sign | 0x7e00 | ((a >>> 13) & 0x3ff);
  if (a >= 0x47800000) return sign | 0x7c00; // >= 65536 (also inf)
  if (a < 0x38800000) {
    // Subnormal f16 (< 2^-14): count units of 2^-24, exact in float64.
    u32[0] = a;
    const v = f32[0] * 2 ** 24;
    let r = Math.floor(v);
    const d = v - r;
    if (d > 0.5 || (d === 0.5 && r & 1)) r++;
    return sign | r; // r == 1024 is the smallest normal, which is correct
  }
  let h = (a - 0x38000000) >>> 13; // rebias exponent 127 -> 15
  const low = a & 0x1fff;
  if (low > 0x1000 || (low === 0x1000 && h & 1)) h++; // carry may round up to inf
  return sign | h;
}

function f32BitsToBf16(f: number): number {
  if ((f & 0x7fffffff) > 0x7f800000) return ((f >>> 16) | 0x0040) & 0xffff;
  return ((f + 0x7fff + ((f >>> 16) & 1)) >>> 16) & 0xffff;
}

export function f32ToF16Bits(x: number): number {
  f32[0] = x;
  return f32BitsToF16(u32[0]);
}

export function f32ToBf16Bits(x: number): number {
  f32[0] = x;
  return f32BitsToBf16(u32[0]);
}

/** Any dtype -> a fresh Float32Array (F64 rounds, F16/BF16 upcast exactly). */
export function toFloat32(raw: RawTensor, where: string): Float32Array {
  const n = checkBytes(raw, where);
  const buf = copyBuffer(raw.bytes);
  switch (raw.dtype) {
    case "F32": return new Float32Array(buf);
    case "F64": return Float32Array.from(new Float64Array(buf));
    case "F16": {
      const src = new Uint16Array(buf);
      const t = f16BitsTable();
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = t[src[i]];
      return new Float32Array(out.buffer);
    }
    case "BF16": {
      const src = new Uint16Array(buf);
      const out = new Uint32Array(n);
      for (let i = 0; i < n; i++) out[i] = src[i] << 16;
      return new Float32Array(out.buffer);
    }
    case "I64": {
      const src = new BigInt64Array(buf);
      const out = new Float32Array(n);
      for (let i = 0; i < n; i++) out[i] = Number(src[i]);
      return out;
    }
    case "I32": return Float32Array.from(new Int32Array(buf));
    case "I16": return Float32Array.from(new Int16Array(buf));
    case "I8": return Float32Array.from(new Int8Array(buf));
    case "U8": case "BOOL": return Float32Array.from(new Uint8Array(buf));
  }
}

const ID_DTYPES: FileDType[] = ["I64", "I32", "I16", "I8", "U8"];

/** Integer tensor (token ids, indices) -> Int32Array; I64 values must fit in int32. */
export function toInt32Ids(raw: RawTensor, where: string): Int32Array {
  if (!ID_DTYPES.includes(raw.dtype)) {
    throw new HippoError(`${where}: expected an integer dtype (${ID_DTYPES.join(", ")}), got ${raw.dtype}`);
  }
  const n = checkBytes(raw, where);
  const buf = copyBuffer(raw.bytes);
  switch (raw.dtype) {
    case "I32": return new Int32Array(buf);
    case "I16": return Int32Array.from(new Int16Array(buf));
    case "I8": return Int32Array.from(new Int8Array(buf));
    case "U8": return Int32Array.from(new Uint8Array(buf));
    default: {
      const src = new BigInt64Array(buf);
      const out = new Int32Array(n);
      for (let i = 0; i < n; i++) {
        const v = src[i];
        if (v < -2147483648n || v > 2147483647n) {
          throw new HippoError(`${where}: value ${v} at flat index ${i} is outside the int32 range`);
        }
        out[i] = Number(v);
      }
      return out;
    }
  }
}

/** F16/BF16 bits kept packed (aligned copy). */
export function rawToUint16(raw: RawTensor): Uint16Array {
  if (raw.dtype !== "F16" && raw.dtype !== "BF16") {
    throw new HippoError(`expected an F16 or BF16 tensor, got ${raw.dtype} ${shapeString(raw.shape)}`);
  }
  checkBytes(raw, `${raw.dtype} tensor`);
  return new Uint16Array(copyBuffer(raw.bytes));
}

function checkLength(len: number, shape: readonly number[]): void {
  if (!shape.every((d) => Number.isSafeInteger(d) && d >= 0)) throw new HippoError(`bad shape ${shapeString(shape)}`);
  if (len !== numelOf(shape)) throw new HippoError(`shape ${shapeString(shape)} needs ${numelOf(shape)} elements, got ${len}`);
}

export function fromFloat32(data: Float32Array, shape: number[], dtype: "F32" | "F16" | "BF16"): RawTensor {
  checkLength(data.length, shape);
  if (dtype === "F32") return { dtype, shape: shape.slice(), bytes: new Uint8Array(data.slice().buffer) };
  const bits = new Uint32Array(data.buffer, data.byteOffset, data.length);
  const out = new Uint16Array(data.length);
  const conv = dtype === "F16" ? f32BitsToF16 : f32BitsToBf16;
  for (let i = 0; i < out.length; i++) out[i] = conv(bits[i]);
  return { dtype, shape: shape.slice(), bytes: new Uint8Array(out.buffer) };
}

export function fromInt(data: ArrayLike<number>, shape: number[], dtype: "I64" | "I32"): RawTensor {
  checkLength(data.length, shape);
  const lo = dtype === "I32" ? -(2 ** 31) : Number.MIN_SAFE_INTEGER;
  const hi = dtype === "I32" ? 2 ** 31 - 1 : Number.MAX_SAFE_INTEGER;
  for (let i = 0; i < data.length; i++) {
    const v = data[i];
    if (!Number.isInteger(v) || v < lo || v > hi) throw new HippoError(`${dtype} tensor: value ${v} at flat index ${i} is not a representable integer`);
  }
  const arr = dtype === "I32" ? Int32Array.from(data) : BigInt64Array.from(Array.from(data, (v) => BigInt(v)));
  return { dtype, shape: shape.slice(), bytes: new Uint8Array(arr.buffer) };
}
