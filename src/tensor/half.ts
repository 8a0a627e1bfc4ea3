/** 16-bit float decoding shared by io (file conversion) and kernels (weights widened where read). */

let f16Table: Float32Array | null = null;

function decodeF16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? NaN : sign * Infinity;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

/** All 65536 f16 values, built on first use (256 KiB) so decoding is one table load. */
export function f16Table65536(): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = decodeF16(i);
  }
  return f16Table;
}

export function widenF16(src: Uint16Array, srcOffset: number, dst: Float32Array, dstOffset: number, n: number): void {
  const table = f16Table65536();
  for (let i = 0; i < n; i++) dst[dstOffset + i] = table[src[srcOffset + i]];
}

const bf16Scratch = new Uint32Array(1);
const bf16View = new Float32Array(bf16Scratch.buffer);

export function widenBf16(src: Uint16Array, srcOffset: number, dst: Float32Array, dstOffset: number, n: number): void {
  // bf16 is the top half of an f32: write the bits shifted into a u32 view of the destination.
  const dstBits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < n; i++) dstBits[dstOffset + i] = src[srcOffset + i] << 16;
}

export function bf16BitsToF32(bits: number): number {
  bf16Scratch[0] = bits << 16;
  return bf16View[0];
}

export function f16BitsToF32(bits: number): number {
  return f16Table65536()[bits & 0xffff];
}
