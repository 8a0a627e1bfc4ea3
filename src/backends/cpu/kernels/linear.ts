import type { DType } from "../../../tensor/dtype.js";
import { widenBf16, widenF16 } from "../../../tensor/half.js";

/** Weight rows as stored: f32 used in place, f16/bf16 widened four rows at a time into scratch. */
export interface WeightData {
  dtype: DType;
  data: Float32Array | Uint16Array;
}

/** Rows of x kept hot in cache while every block of weight rows passes over them. */
const ROW_BLOCK = 32;

/** out[m, n] = bias[n] + sum_k x[m, k] * w[n, k]; x [M, K], w [N, K], out [M, N]. */
export function linearKernel(
  x: Float32Array, M: number, K: number, weight: WeightData, N: number, bias: Float32Array | null, out: Float32Array,
): void {
  const scratch = weight.dtype === "f32" ? null : new Float32Array(4 * K);
  for (let m0 = 0; m0 < M; m0 += ROW_BLOCK) {
    const m1 = Math.min(M, m0 + ROW_BLOCK);
    for (let n = 0; n < N; n += 4) {
      const nCount = Math.min(4, N - n);
      let wb: Float32Array;
      let wOff: number;
      if (scratch) {
        const src = weight.data as Uint16Array;
        (weight.dtype === "f16" ? widenF16 : widenBf16)(src, n * K, scratch, 0, nCount * K);
        wb = scratch;
        wOff = 0;
      } else {
        wb = weight.data as Float32Array;
        wOff = n * K;
      }
      let m = m0;
      if (nCount === 4) {
        for (; m + 4 <= m1; m += 4) tile4x4(x, m * K, K, wb, wOff, out, m * N + n, N);
        for (; m < m1; m++) tile1x4(x, m * K, K, wb, wOff, out, m * N + n);
      } else {
        for (; m < m1; m++) {
          for (let j = 0; j < nCount; j++) out[m * N + n + j] = dot(x, m * K, wb, wOff + j * K, K);
        }
      }
    }
  }
  if (bias) {
    for (let m = 0; m < M; m++) {
      const row = m * N;
      for (let n = 0; n < N; n++) out[row + n] += bias[n];
    }
  }
}

function dot(a: Float32Array, aOff: number, b: Float32Array, bOff: number, K: number): number {
  let s = 0;
  for (let k = 0; k < K; k++) s += a[aOff + k] * b[bOff + k];
  return s;
}

function tile1x4(x: Float32Array, xOff: number, K: number, w: Float32Array, wOff: number, out: Float32Array, o: number): void {
  const w1 = wOff + K, w2 = w1 + K, w3 = w2 + K;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (let k = 0; k < K; k++) {
    const xv = x[xOff + k];
    a0 += xv * w[wOff + k];
    a1 += xv * w[w1 + k];
    a2 += xv * w[w2 + k];
    a3 += xv * w[w3 + k];
  }
  out[o] = a0; out[o + 1] = a1; out[o + 2] = a2; out[o + 3] = a3;
}

function tile4x4(
  x: Float32Array, xOff: number, K: number, w: Float32Array, wOff: number, out: Float32Array, o: number, N: number,
): void {
  const x1 = xOff + K, x2 = x1 + K, x3 = x2 + K;
  const w1 = wOff + K, w2 = w1 + K, w3 = w2 + K;
  let a00 = 0, a01 = 0, a02 = 0, a03 = 0;
  let a10 = 0, a11 = 0, a12 = 0, a13 = 0;
  let a20 = 0, a21 = 0, a22 = 0, a23 = 0;
  let a30 = 0, a31 = 0, a32 = 0, a33 = 0;
  for (let k = 0; k < K; k++) {
    const v0 = w[wOff + k], v1 = w[w1 + k], v2 = w[w2 + k], v3 = w[w3 + k];
    const u0 = x[xOff + k];
    a00 += u0 * v0; a01 += u0 * v1; a02 += u0 * v2; a03 += u0 * v3;
    const u1 = x[x1 + k];
    a10 += u1 * v0; a11 += u1 * v1; a12 += u1 * v2; a13 += u1 * v3;
    const u2 = x[x2 + k];
    a20 += u2 * v0; a21 += u2 * v1; a22 += u2 * v2; a23 += u2 * v3;
    const u3 = x[x3 + k];
    a30 += u3 * v0; a31 += u3 * v1; a32 += u3 * v2; a33 += u3 * v3;
  }
  out[o] = a00; out[o + 1] = a01; out[o + 2] = a02; out[o + 3] = a03;
  o += N;
  out[o] = a10; out[o + 1] = a11; out[o + 2] = a12; out[o + 3] = a13;
  o += N;
  out[o] = a20; out[o + 1] = a21; out[o + 2] = a22; out[o + 3] = a23;
  o += N;
  out[o] = a30; out[o + 1] = a31; out[o + 2] = a32; out[o + 3] = a33;
}
