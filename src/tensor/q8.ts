/**
 * 8-bit weights, Q8_0-style (llama.cpp's block_q8_0 with an f32 scale).
 *
 * Layout of a q8 matrix w [N, K] (N rows = output features, K = input features, as linear weights are
 * stored), which every kernel that reads q8 (the TypeScript reference, Wasm SIMD, WGSL) follows:
 *
 *   - Each row is cut along K into blocks of Q8_BLOCK = 32 consecutive values; block b of a row covers
 *     k in [32·b, min(32·b + 32, K)). There are nb = ceil(K / 32) blocks per row; when K is not a multiple
 *     of 32 the last block of every row is short (K − 32·(nb − 1) values). Nothing is padded.
 *   - `values`: Int8Array of N·K quantized values, row-major exactly like the f32 matrix:
 *     q[n, k] = values[n·K + k], each in [−127, 127] (−128 never occurs).
 *   - `scales`: Float32Array of N·nb scales, row-major: d[n, b] = scales[n·nb + b].
 *   - w[n, k] ≈ d[n, floor(k / 32)] · q[n, k].
 *
 * Quantization of one block: d = max|w| / 127 (rounded to f32), q = round(w / d) with ties away from zero
 * (C's roundf, as llama.cpp), clamped to ±127; an all-zero block has d = 0 and q = 0. The error of every
 * value is at most d/2 (plus f32 rounding of the division). Scales are f32 rather than llama.cpp's f16:
 * 4.5 bits of overhead per block instead of 2 (1.125 bytes per weight instead of 1.0625), and no widening
 * in the kernels and no f16 underflow for blocks of tiny weights.
 */
import { HippoError, shapeString } from "../errors.js";

/** Values per block along K. */
export const Q8_BLOCK = 32;

/** Blocks per row of K values. */
export function q8Blocks(K: number): number {
  return Math.ceil(K / Q8_BLOCK);
}

/** A q8 matrix on the host: the CPU backend's storage for dtype "q8", and what uploads of q8 take. */
export class Q8Matrix {
  /** Blocks per row. */
  readonly blocks: number;

  constructor(
    /** N·K int8 values, row-major. */
    readonly values: Int8Array,
    /** N·blocks f32 scales, row-major. */
    readonly scales: Float32Array,
    /** N rows. */
    readonly rows: number,
    /** K values per row. */
    readonly cols: number,
  ) {
    this.blocks = q8Blocks(cols);
    if (values.length !== rows * cols) {
      throw new HippoError(`q8 matrix [${rows}, ${cols}] needs ${rows * cols} int8 values, got ${values.length}`);
    }
    if (scales.length !== rows * this.blocks) {
      throw new HippoError(`q8 matrix [${rows}, ${cols}] needs ${rows * this.blocks} scales (${this.blocks} blocks of ${Q8_BLOCK} per row), got ${scales.length}`);
    }
  }

  /** Logical element count (N·K), so a Q8Matrix sizes like the other host arrays. */
  get length(): number {
    return this.values.length;
  }

  /** Bytes held: one per value plus four per block. */
  get byteLength(): number {
    return this.values.byteLength + this.scales.byteLength;
  }
}

/** C roundf: round half away from zero. */
function roundAway(v: number): number {
  return v < 0 ? -Math.floor(-v + 0.5) : Math.floor(v + 0.5);
}

/**
 * Quantizes a row-major f32 matrix [rows, cols] block by block. `what` names the tensor in the error a
 * non-finite weight raises (a NaN or infinity would poison its whole block).
 */
export function quantizeQ8(w: Float32Array, rows: number, cols: number, what = "tensor"): Q8Matrix {
  if (w.length !== rows * cols) throw new HippoError(`${what}: quantizeQ8 of ${shapeString([rows, cols])} needs ${rows * cols} values, got ${w.length}`);
  const nb = q8Blocks(cols);
  const values = new Int8Array(rows * cols);
  const scales = new Float32Array(rows * nb);
  for (let n = 0; n < rows; n++) {
    const row = n * cols;
    for (let b = 0; b < nb; b++) {
      const k0 = row + b * Q8_BLOCK;
      const k1 = row + Math.min(cols, (b + 1) * Q8_BLOCK);
      let amax = 0;
      for (let i = k0; i < k1; i++) {
        const a = Math.abs(w[i]);
        if (!(a <= Number.MAX_VALUE)) {
          throw new HippoError(`${what}: cannot quantize a non-finite weight (${w[i]} at [${n}, ${i - row}])`);
        }
        if (a > amax) amax = a;
      }
      const d = Math.fround(amax / 127);
      scales[n * nb + b] = d;
      if (d === 0) continue;
      const inv = 1 / d;
      for (let i = k0; i < k1; i++) {
        const q = roundAway(w[i] * inv);
        values[i] = q > 127 ? 127 : q < -127 ? -127 : q;
      }
    }
  }
  return new Q8Matrix(values, scales, rows, cols);
}

/** Rows [row0, row0 + count) of a q8 matrix widened to f32 into `out` at `outOffset`. */
export function dequantizeQ8Rows(q: Q8Matrix, row0: number, count: number, out: Float32Array, outOffset = 0): void {
  const K = q.cols, nb = q.blocks, v = q.values, s = q.scales;
  for (let n = row0; n < row0 + count; n++) {
    let o = outOffset + (n - row0) * K;
    let i = n * K;
    for (let b = 0; b < nb; b++) {
      const d = s[n * nb + b];
      const end = Math.min(i + Q8_BLOCK, (n + 1) * K);
      for (; i < end; i++) out[o++] = d * v[i];
    }
  }
}

/** The whole matrix as f32 (row-major [rows, cols]). */
export function dequantizeQ8(q: Q8Matrix): Float32Array {
  const out = new Float32Array(q.rows * q.cols);
  dequantizeQ8Rows(q, 0, q.rows, out, 0);
  return out;
}
