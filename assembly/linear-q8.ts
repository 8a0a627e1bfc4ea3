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
// Many x rows (prefill) take the same integer products in a register tile: each panel of 8 weight
// rows is widened to int16 and interleaved in pairs of k once per block of 128 x rows, so that one
// i32x4.dot_i16x8_s multiplies a pair of x values (splatted) by that pair of 4 weight rows: 8
// multiply-adds per instruction where the f32 tile gets 4 per two (a multiply and an add). Each block
// of 32 is summed exactly in i32 and joins the f32 totals scaled by its x and weight scales.

import { hsum } from "./math";
import { biasLanes, store8, TILE_MIN_ROWS } from "./linear";

/** x rows kept in cache (as int16) while the widened weight panels pass over them. */
const Q_ROW_BLOCK: i32 = 128;

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
  return blockDotX(w, v128.load(xq), v128.load(xq, 16), v128.load(xq, 32), v128.load(xq, 48));
}

/** acc + d · (block sum), the block sum converted from i32 (|sum| < 2^31: 32 products of ≤ 2^22). */
@inline function addScaled(acc: v128, s: v128, d: f32): v128 {
  return f32x4.add(acc, f32x4.mul(f32x4.convert_i32x4_s(s), f32x4.splat(d)));
}

/** One block of 32: int8 weights at w against the block of x held in four registers, as four i32 lanes. */
@inline function blockDotX(w: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  // load8x8_s sign-extends 8 bytes as it loads (one instruction); a 16-byte load would need a
  // shuffle and a shift to widen its high half.
  let s = i32x4.dot_i16x8_s(v128.load8x8_s(w), x0);
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.load8x8_s(w, 8), x1));
  s = i32x4.add(s, i32x4.dot_i16x8_s(v128.load8x8_s(w, 16), x2));
  return i32x4.add(s, i32x4.dot_i16x8_s(v128.load8x8_s(w, 24), x3));
}

/** (Σa, Σb, Σc, Σd) of four i32 vectors (exact). */
@inline function isum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = i32x4.add(v128.shuffle<i32>(a, b, 0, 4, 1, 5), v128.shuffle<i32>(a, b, 2, 6, 3, 7));
  const cd = i32x4.add(v128.shuffle<i32>(c, d, 0, 4, 1, 5), v128.shuffle<i32>(c, d, 2, 6, 3, 7));
  return i32x4.add(v128.shuffle<i32>(ab, cd, 0, 1, 4, 5), v128.shuffle<i32>(ab, cd, 2, 3, 6, 7));
}

/** The block sums of 4 weight rows (w, w + rowW, …) against one block of x, one row per lane. */
@inline function blockDot4(w: usize, rowW: usize, x0: v128, x1: v128, x2: v128, x3: v128): v128 {
  return isum4(blockDotX(w, x0, x1, x2, x3), blockDotX(w + rowW, x0, x1, x2, x3), blockDotX(w + 2 * rowW, x0, x1, x2, x3), blockDotX(w + 3 * rowW, x0, x1, x2, x3));
}

/** The f32 scales at p, p + stride, p + 2·stride, p + 3·stride as one vector. */
@inline function gather4(p: usize, stride: usize): v128 {
  let v = v128.load32_zero(p);
  v = f32x4.replace_lane(v, 1, load<f32>(p + stride));
  v = f32x4.replace_lane(v, 2, load<f32>(p + 2 * stride));
  return f32x4.replace_lane(v, 3, load<f32>(p + 3 * stride));
}

/**
 * Integer dot form over weight rows [n0, n1) for each of the M quantized x rows. Rows go 8 at a time:
 * each block of x is loaded once into registers for the 8 rows, and the block sums of 4 rows are
 * gathered into one vector (lane = row) before the f32 step, which then scales 4 rows at once.
 */
function linearDotQ8(xq: usize, M: i32, K: i32, wv: usize, ws: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32): void {
  const nb = (K + 31) >> 5;
  const xs = xq + <usize>M * nb * 64;
  const rowW = <usize>K;
  const rowS = <usize>nb << 2;
  for (let m = 0; m < M; m++) {
    const xm = xq + ((<usize>m * nb) << 6);
    const sm = xs + ((<usize>m * nb) << 2);
    let n = n0;
    for (; n + 8 <= n1; n += 8) {
      const w0 = wv + <usize>n * rowW, w4 = w0 + 4 * rowW;
      const s0 = ws + <usize>n * rowS, s4 = s0 + 4 * rowS;
      let lo = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
      let hi = bias ? v128.load(bias + (<usize>n << 2), 16) : f32x4.splat(0);
      for (let b = 0; b < nb; b++) {
        const xb = xm + (<usize>b << 6);
        const x0 = v128.load(xb), x1 = v128.load(xb, 16), x2 = v128.load(xb, 32), x3 = v128.load(xb, 48);
        const kb = <usize>b << 5, sb = <usize>b << 2;
        const dx = f32x4.splat(load<f32>(sm + sb));
        const ulo = blockDot4(w0 + kb, rowW, x0, x1, x2, x3);
        lo = f32x4.add(lo, f32x4.mul(f32x4.convert_i32x4_s(ulo), f32x4.mul(gather4(s0 + sb, rowS), dx)));
        const uhi = blockDot4(w4 + kb, rowW, x0, x1, x2, x3);
        hi = f32x4.add(hi, f32x4.mul(f32x4.convert_i32x4_s(uhi), f32x4.mul(gather4(s4 + sb, rowS), dx)));
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

/** Scratch bytes one thread needs for linear_q8 with this K: a widened panel of 8 weight rows and its scales. */
export function linearQ8ScratchBytes(K: i32): i32 {
  const nb = (K + 31) >> 5;
  return nb * (32 * 16 + 32);
}

/**
 * Weight rows n..n+7 (zero past n1) widened to int16 and interleaved for the tile: for each pair of k
 * (zero past K, up to whole blocks of 32) two vectors, rows n..n+3 then n+4..n+7, each holding
 * (w[r, k], w[r, k+1]) for its four rows r; then the rows' block scales, [nb][8] f32. Returns the
 * scales' address.
 */
function packPanelQ16(wv: usize, ws: usize, K: i32, n: i32, n1: i32, panel: usize): usize {
  const nb = (K + 31) >> 5;
  const rows = min(8, n1 - n);
  const sp = panel + (<usize>nb << 9);
  const rowW = <usize>K;
  let k = 0;
  if (rows == 8) {
    // 4 rows × 8 k at a time: widen, then transpose the 4×4 grid of (k, k+1) pairs (i32 lanes).
    const K8 = K & ~7;
    for (let g = 0; g < 2; g++) {
      const r0 = wv + <usize>(n + 4 * g) * rowW, r1 = r0 + rowW, r2 = r1 + rowW, r3 = r2 + rowW;
      const dst = panel + (<usize>g << 4);
      for (k = 0; k < K8; k += 8) {
        const ko = <usize>k;
        const a = i16x8.extend_low_i8x16_s(v128.load64_zero(r0 + ko));
        const b = i16x8.extend_low_i8x16_s(v128.load64_zero(r1 + ko));
        const c = i16x8.extend_low_i8x16_s(v128.load64_zero(r2 + ko));
        const d = i16x8.extend_low_i8x16_s(v128.load64_zero(r3 + ko));
        const ab0 = v128.shuffle<i32>(a, b, 0, 4, 1, 5), ab1 = v128.shuffle<i32>(a, b, 2, 6, 3, 7);
        const cd0 = v128.shuffle<i32>(c, d, 0, 4, 1, 5), cd1 = v128.shuffle<i32>(c, d, 2, 6, 3, 7);
        const p = dst + (<usize>k << 4); // pair k/2 at (k/2)·32 bytes
        v128.store(p, v128.shuffle<i32>(ab0, cd0, 0, 1, 4, 5));
        v128.store(p, v128.shuffle<i32>(ab0, cd0, 2, 3, 6, 7), 32);
        v128.store(p, v128.shuffle<i32>(ab1, cd1, 0, 1, 4, 5), 64);
        v128.store(p, v128.shuffle<i32>(ab1, cd1, 2, 3, 6, 7), 96);
      }
    }
    k = K8;
  }
  // The rest (a short panel, K % 8, the zeros up to whole blocks) one element at a time.
  const kEnd = nb << 5;
  for (let j = 0; j < 8; j++) {
    const wr = wv + <usize>(n + j) * rowW;
    const pj = panel + (<usize>(j >> 2) << 4) + (<usize>(j & 3) << 2);
    for (let kk = rows == 8 ? k : 0; kk < kEnd; kk++) {
      const v: i32 = j < rows && kk < K ? <i32>load<i8>(wr + <usize>kk) : 0;
      store<i16>(pj + (<usize>(kk >> 1) << 5) + (<usize>(kk & 1) << 1), <i16>v);
    }
  }
  for (let b = 0; b < nb; b++) {
    for (let j = 0; j < 8; j++) {
      store<f32>(sp + (<usize>(b * 8 + j) << 2), j < rows ? load<f32>(ws + ((<usize>(n + j) * nb + b) << 2)) : 0);
    }
  }
  return sp;
}

/** c + Σ over 16 pairs of k: the dot of a widened panel block (pairs at p) with one x row's pairs at xb. */
@inline function pairDot(c: v128, w: v128, xb: usize, off: usize): v128 {
  return i32x4.add(c, i32x4.dot_i16x8_s(w, v128.load32_splat(xb + off)));
}

/** s + (block sum) · (x scale · weight scales), the block sum converted from i32 (exact: |sum| < 2^28). */
@inline function addBlock(s: v128, c: v128, dx: f32, sw: v128): v128 {
  return f32x4.add(s, f32x4.mul(f32x4.convert_i32x4_s(c), f32x4.mul(sw, f32x4.splat(dx))));
}

/** Integer tile form: 4 x rows × 8 weight rows per register tile, over panels packed by packPanelQ16. */
function linearTiledQ16(xq: usize, M: i32, K: i32, wv: usize, ws: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32, panel: usize): void {
  const nb = (K + 31) >> 5;
  const rowX = <usize>nb << 6;
  const xs = xq + <usize>M * nb * 64;
  const rowS = <usize>nb << 2;
  const rowO = <usize>N << 2;
  for (let m0 = 0; m0 < M; m0 += Q_ROW_BLOCK) {
    const m1 = min(M, m0 + Q_ROW_BLOCK);
    for (let n = n0; n < n1; n += 8) {
      const sp = packPanelQ16(wv, ws, K, n, n1, panel);
      const cols = min(8, n1 - n);
      const b0 = biasLanes(bias, n, 0, cols), b1 = biasLanes(bias, n, 4, cols);
      let m = m0;
      for (; m + 4 <= m1; m += 4) {
        const x0 = xq + <usize>m * rowX, x1 = x0 + rowX, x2 = x1 + rowX, x3 = x2 + rowX;
        const d0 = xs + <usize>m * rowS, d1 = d0 + rowS, d2 = d1 + rowS, d3 = d2 + rowS;
        let s00 = b0, s01 = b1, s10 = b0, s11 = b1, s20 = b0, s21 = b1, s30 = b0, s31 = b1;
        for (let b = 0; b < nb; b++) {
          let c00 = i32x4.splat(0), c01 = i32x4.splat(0), c10 = i32x4.splat(0), c11 = i32x4.splat(0);
          let c20 = i32x4.splat(0), c21 = i32x4.splat(0), c30 = i32x4.splat(0), c31 = i32x4.splat(0);
          let p = panel + (<usize>b << 9);
          const xb = <usize>b << 6;
          for (let q: usize = 0; q < 64; q += 4) {
            const w0 = v128.load(p), w1 = v128.load(p, 16);
            p += 32;
            const o = xb + q;
            c00 = pairDot(c00, w0, x0, o); c01 = pairDot(c01, w1, x0, o);
            c10 = pairDot(c10, w0, x1, o); c11 = pairDot(c11, w1, x1, o);
            c20 = pairDot(c20, w0, x2, o); c21 = pairDot(c21, w1, x2, o);
            c30 = pairDot(c30, w0, x3, o); c31 = pairDot(c31, w1, x3, o);
          }
          const swLo = v128.load(sp + (<usize>b << 5)), swHi = v128.load(sp + (<usize>b << 5), 16);
          const sb = <usize>b << 2;
          let dx = load<f32>(d0 + sb);
          s00 = addBlock(s00, c00, dx, swLo); s01 = addBlock(s01, c01, dx, swHi);
          dx = load<f32>(d1 + sb);
          s10 = addBlock(s10, c10, dx, swLo); s11 = addBlock(s11, c11, dx, swHi);
          dx = load<f32>(d2 + sb);
          s20 = addBlock(s20, c20, dx, swLo); s21 = addBlock(s21, c21, dx, swHi);
          dx = load<f32>(d3 + sb);
          s30 = addBlock(s30, c30, dx, swLo); s31 = addBlock(s31, c31, dx, swHi);
        }
        const o = out + ((<usize>m * N + n) << 2);
        store8(o, s00, s01, cols);
        store8(o + rowO, s10, s11, cols);
        store8(o + 2 * rowO, s20, s21, cols);
        store8(o + 3 * rowO, s30, s31, cols);
      }
      for (; m < m1; m++) {
        const x0 = xq + <usize>m * rowX, d0 = xs + <usize>m * rowS;
        let s00 = b0, s01 = b1;
        for (let b = 0; b < nb; b++) {
          let c00 = i32x4.splat(0), c01 = i32x4.splat(0);
          let p = panel + (<usize>b << 9);
          const xb = <usize>b << 6;
          for (let q: usize = 0; q < 64; q += 4) {
            c00 = pairDot(c00, v128.load(p), x0, xb + q);
            c01 = pairDot(c01, v128.load(p, 16), x0, xb + q);
            p += 32;
          }
          const dx = load<f32>(d0 + (<usize>b << 2));
          s00 = addBlock(s00, c00, dx, v128.load(sp + (<usize>b << 5)));
          s01 = addBlock(s01, c01, dx, v128.load(sp + (<usize>b << 5), 16));
        }
        store8(out + ((<usize>m * N + n) << 2), s00, s01, cols);
      }
    }
  }
}

/**
 * out[m, n] = bias[n] + Σ_k x[m, k]·w[n, k] for weight rows [n0, n1), from xq (x quantized by
 * quantize_q16, which the host runs first, once for all threads). M < TILE_MIN_ROWS takes the dot form;
 * larger M the integer tiles, packing panels into the thread's scratch (linearQ8ScratchBytes).
 */
export function linear_q8(xq: usize, M: i32, K: i32, wv: usize, ws: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32, scratch: usize): void {
  if (M < TILE_MIN_ROWS) linearDotQ8(xq, M, K, wv, ws, N, bias, out, n0, n1);
  else linearTiledQ16(xq, M, K, wv, ws, N, bias, out, n0, n1, scratch);
}
