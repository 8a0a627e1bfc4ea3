// Dense layer with q8 weights (src/tensor/q8.ts): w[n, k] = scales[n·nb + ⌊k/32⌋] · values[n·K + k],
// values int8 [N, K] row-major (rows not padded), scales f32 [N, nb], nb = ceil(K / 32).
//
// Few x rows (decode) take an integer dot product: x is first quantized per block of 32 to int16
// (quantize_q16, one scale per block: max|x| / 32767, error ≤ 1.5e-5 of the block's largest value,
// small beside the int8 weights' own 0.4%), and each block is summed exactly in i32 with
// i32x4.dot_i16x8_s before its two scales are applied in f32. The weights are read once, 32 per
// block as two 16-byte loads; a row's short last block reads past the row (into the next one, or
// the 32 bytes of slack the host allocates after the matrix) against x zero-padded to whole blocks,
// so the extra products are 0 exactly.
//
// Many x rows (prefill) reuse the f32 tile form of linear.ts: each panel of 8 weight rows is
// dequantized into f32 once per block of 64 x rows, so the result is the f32 product with the
// dequantized matrix (exact inputs, f32 sums).

import { hsum } from "./math";
import { linearTiledQ8, TILE_MIN_ROWS } from "./linear";

const QMAX: f32 = 32767;

/** Bytes of the quantized copy of M rows of K: i16 values padded to whole blocks of 32, then the f32 scales. */
export function q16Bytes(M: i32, K: i32): i32 {
  const nb = (K + 31) >> 5;
  return M * nb * (64 + 4);
}

/**
 * x [M, K] f32 to int16 per block of 32 along K: xq [M, nb·32] (zero past K), then scales [M, nb] at
 * xq + M·nb·64; x ≈ scale · xq.
 */
export function quantize_q16(x: usize, M: i32, K: i32, xq: usize): void {
  const nb = (K + 31) >> 5;
  const scales = xq + <usize>M * nb * 64;
  for (let m = 0; m < M; m++) {
    const xr = x + ((<usize>m * K) << 2);
    for (let b = 0; b < nb; b++) {
      const k0 = b << 5;
      const n = min(32, K - k0);
      const src = xr + (<usize>k0 << 2);
      const dst = xq + ((<usize>(m * nb + b)) << 6);
      let amax: f32 = 0;
      if (n == 32) {
        let v = f32x4.abs(v128.load(src));
        for (let i = 16; i < 128; i += 16) v = f32x4.max(v, f32x4.abs(v128.load(src + i)));
        v = f32x4.max(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
        v = f32x4.max(v, v128.shuffle<f32>(v, v, 1, 0, 3, 2));
        amax = f32x4.extract_lane(v, 0);
      } else {
        for (let i = 0; i < n; i++) amax = max(amax, abs(load<f32>(src + (<usize>i << 2))));
      }
      const d = amax / QMAX;
      const inv: f32 = amax > 0 ? QMAX / amax : 0;
      store<f32>(scales + ((<usize>(m * nb + b)) << 2), d);
      if (n == 32) {
        const iv = f32x4.splat(inv);
        for (let i = 0; i < 32; i += 8) {
          const lo = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src + (<usize>i << 2)), iv)));
          const hi = i32x4.trunc_sat_f32x4_s(f32x4.nearest(f32x4.mul(v128.load(src + (<usize>i << 2), 16), iv)));
          v128.store(dst + (<usize>i << 1), i16x8.narrow_i32x4_s(lo, hi));
        }
      } else {
        for (let i = 0; i < 32; i++) {
          const q: i32 = i < n ? <i32>nearest(load<f32>(src + (<usize>i << 2)) * inv) : 0;
          store<i16>(dst + (<usize>i << 1), <i16>q);
        }
      }
    }
  }
}

/** Σ over one block of 32: int8 weights at w against int16 x at xq, as four i32 lanes (exact). */
@inline function blockDot(w: usize, xq: usize): v128 {
  const w0 = v128.load(w), w1 = v128.load(w, 16);
  let s = i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w0), v128.load(xq));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w0), v128.load(xq, 16)));
  s = i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_low_i8x16_s(w1), v128.load(xq, 32)));
  return i32x4.add(s, i32x4.dot_i16x8_s(i16x8.extend_high_i8x16_s(w1), v128.load(xq, 48)));
}

/** acc + d · (block sum), the block sum converted from i32 (|sum| < 2^31: 32 products of ≤ 2^22). */
@inline function addScaled(acc: v128, s: v128, d: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(d)));
}

/** Integer dot form over weight rows [n0, n1) for each of the M quantized x rows. */
function linearDotQ8(xq: usize, M: i32, K: i32, wv: usize, ws: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32): void {
  const nb = (K + 31) >> 5;
  const xs = xq + <usize>M * nb * 64;
  const rowW = <usize>K;
  const rowS = <usize>nb << 2;
  for (let m = 0; m < M; m++) {
    const xm = xq + ((<usize>m * nb) << 6);
    const sm = xs + ((<usize>m * nb) << 2);
    let n = n0;
    // 8 weight rows at a time (more streams in flight: decoding is bound by reading the weights).
    for (; n + 8 <= n1; n += 8) {
      const w0 = wv + <usize>n * rowW, w1 = w0 + rowW, w2 = w1 + rowW, w3 = w2 + rowW;
      const w4 = w3 + rowW, w5 = w4 + rowW, w6 = w5 + rowW, w7 = w6 + rowW;
      const s0 = ws + <usize>n * rowS, s1 = s0 + rowS, s2 = s1 + rowS, s3 = s2 + rowS;
      const s4 = s3 + rowS, s5 = s4 + rowS, s6 = s5 + rowS, s7 = s6 + rowS;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const xb = xm + (<usize>b << 6);
        const kb = <usize>b << 5, sb = <usize>b << 2;
        const dx = load<f32>(sm + sb);
        a0 = addScaled(a0, blockDot(w0 + kb, xb), dx * load<f32>(s0 + sb));
        a1 = addScaled(a1, blockDot(w1 + kb, xb), dx * load<f32>(s1 + sb));
        a2 = addScaled(a2, blockDot(w2 + kb, xb), dx * load<f32>(s2 + sb));
        a3 = addScaled(a3, blockDot(w3 + kb, xb), dx * load<f32>(s3 + sb));
        a4 = addScaled(a4, blockDot(w4 + kb, xb), dx * load<f32>(s4 + sb));
        a5 = addScaled(a5, blockDot(w5 + kb, xb), dx * load<f32>(s5 + sb));
        a6 = addScaled(a6, blockDot(w6 + kb, xb), dx * load<f32>(s6 + sb));
        a7 = addScaled(a7, blockDot(w7 + kb, xb), dx * load<f32>(s7 + sb));
      }
      let lo = sum4(a0, a1, a2, a3), hi = sum4(a4, a5, a6, a7);
      if (bias) {
        lo = f32x4.add(lo, v128.load(bias + (<usize>n << 2)));
        hi = f32x4.add(hi, v128.load(bias + (<usize>n << 2), 16));
      }
      v128.store(out + ((<usize>m * N + n) << 2), lo);
      v128.store(out + ((<usize>m * N + n) << 2), hi, 16);
    }
    for (; n + 4 <= n1; n += 4) {
      const w0 = wv + <usize>n * rowW, w1 = w0 + rowW, w2 = w1 + rowW, w3 = w2 + rowW;
      const s0 = ws + <usize>n * rowS, s1 = s0 + rowS, s2 = s1 + rowS, s3 = s2 + rowS;
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const xb = xm + (<usize>b << 6);
        const kb = <usize>b << 5, sb = <usize>b << 2;
        const dx = load<f32>(sm + sb);
        a0 = addScaled(a0, blockDot(w0 + kb, xb), dx * load<f32>(s0 + sb));
        a1 = addScaled(a1, blockDot(w1 + kb, xb), dx * load<f32>(s1 + sb));
        a2 = addScaled(a2, blockDot(w2 + kb, xb), dx * load<f32>(s2 + sb));
        a3 = addScaled(a3, blockDot(w3 + kb, xb), dx * load<f32>(s3 + sb));
      }
      let r = sum4(a0, a1, a2, a3);
      if (bias) r = f32x4.add(r, v128.load(bias + (<usize>n << 2)));
      v128.store(out + ((<usize>m * N + n) << 2), r);
    }
    for (; n < n1; n++) {
      const w0 = wv + <usize>n * rowW, s0 = ws + <usize>n * rowS;
      let a0 = f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        a0 = addScaled(a0, blockDot(w0 + (<usize>b << 5), xm + (<usize>b << 6)), load<f32>(sm + (<usize>b << 2)) * load<f32>(s0 + (<usize>b << 2)));
      }
      const bv: f32 = bias ? load<f32>(bias + (<usize>n << 2)) : 0;
      store<f32>(out + ((<usize>m * N + n) << 2), hsum(a0) + bv);
    }
  }
}

/** (Σa, Σb, Σc, Σd) of four vectors. */
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/**
 * out[m, n] = bias[n] + Σ_k x[m, k]·w[n, k] for weight rows [n0, n1). M < TILE_MIN_ROWS reads xq (x
 * quantized by quantize_q16, which the host runs first); larger M reads x (f32) and packs panels into
 * the thread's scratch (linearScratchBytes).
 */
export function linear_q8(x: usize, xq: usize, M: i32, K: i32, wv: usize, ws: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32, scratch: usize): void {
  if (M < TILE_MIN_ROWS) linearDotQ8(xq, M, K, wv, ws, N, bias, out, n0, n1);
  else linearTiledQ8(x, M, K, wv, ws, N, bias, out, n0, n1, scratch);
}
