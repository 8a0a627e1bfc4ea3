/** 16-bit float decoding shared by io (file conversion) and kernels (weights widened where read). */

// Little-endian hosts only (every platform Node and browsers run on in practice): the bit tricks
// below write f32 bit patterns through Uint32Array views.
if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) throw new Error("Hippo needs a little-endian host");

let f16Bits: Uint32Array | null = null;

/** All 65536 f16 values as f32 bit patterns (NaN payloads kept), built on first use (256 KiB). */
export function f16BitsTable(): Uint32Array {
  if (!f16Bits) {
    const t = new Uint32Array(65536);
    const tf = new Float32Array(t.buffer);
    for (let h = 0; h < 65536; h++) {
      const sign = h & 0x8000 ? -1 : 1;
      const e = (h >> 10) & 0x1f;
      const m = h & 0x3ff;
      if (e === 31) t[h] = ((h & 0x8000) << 16) | 0x7f800000 | (m << 13);
      else if (e === 0) tf[h] = sign * m * 2 ** -24;
      else tf[h] = sign * (1 + m / 1024) * 2 ** (e - 15);
    }
    f16Bits = t;
  }
  return f16Bits;
}

export function widenF16(src: Uint16Array, srcOffset: number, dst: Float32Array, dstOffset: number, n: number): void {
  const table = f16BitsTable();
  const dstBits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < n; i++) dstBits[dstOffset + i] = table[src[srcOffset + i]];
}

export function widenBf16(src: Uint16Array, srcOffset: number, dst: Float32Array, dstOffset: number, n: number): void {
  // bf16 is the top half of an f32.
  const dstBits = new Uint32Array(dst.buffer, dst.byteOffset, dst.length);
  for (let i = 0; i < n; i++) dstBits[dstOffset + i] = src[srcOffset + i] << 16;
}

const scratchBits = new Uint32Array(1);
const scratchFloat = new Float32Array(scratchBits.buffer);

export function f16ToF32(bits: number): number {
  scratchBits[0] = f16BitsTable()[bits & 0xffff];
  return scratchFloat[0];
}

export function bf16ToF32(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratchFloat[0];
}
