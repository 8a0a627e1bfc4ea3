// Dense layer: out[m, n] = bias[n] + Σ_k x[m, k]·w[n, k] for the weight rows n in [n0, n1) (one thread's
// share). x and out are f32 [M, K] and [M, N]; w [N, K] is f32, f16 or bf16 (widened in registers). Any
// K, M, N. Few rows (decode) take a dot-product form that streams each weight once; many rows (prefill)
// take a 4×8 register tile over weights packed per panel of 8 rows into the caller's scratch.

import { hsum } from "./math";

export const W_F32: i32 = 0;
export const W_F16: i32 = 1;
export const W_BF16: i32 = 2;
/**
 * f16 weights in the dot-product form when x is prescaled by 2^112 (see linearDot): widened without the
 * rebias, as w·2^-112.
 */
const W_F16_PRESCALED: i32 = 3;
/** 2^112: moves an f16 exponent (bias 15) to an f32 one (bias 127). */
const F16_REBIAS: f32 = 5.192296858534828e33;
/** f32 bits of 2^15: |x| below it keeps x·2^112 below 2^127, clear of f32 overflow. */
const PRESCALE_X_LIMIT: i32 = 0x47000000;

/** Rows at or above which the packed tile form is used. */
export const TILE_MIN_ROWS: i32 = 4;
/** Steps of K summed in registers before they join a tile's running totals. */
const K_BLOCK: i32 = 16;
/** K elements per block of the dot-product form's blocked summation (a multiple of 8). */
const DOT_BLOCK: i32 = 128;
/** x rows kept in cache while the weight panels pass over them. */
const ROW_BLOCK: i32 = 64;

@inline function elemBytes(dt: i32): usize {
  return dt == W_F32 ? 4 : 2;
}

/** Four f16 bit patterns (zero-extended to i32 lanes) as f32 (see halfTopToF32). */
@inline function widenF16x4(h: v128): v128 {
  return halfTopToF32(i32x4.shl(h, 16));
}

@inline function widenF16(h: u32): f32 {
  const f = reinterpret<f32>((h & 0x7fff) << 13) * F16_REBIAS;
  return reinterpret<f32>(reinterpret<u32>(f) | ((h & 0x8000) << 16));
}

/** Four consecutive weights at byte address p, as f32. */
@inline function load4(p: usize, dt: i32): v128 {
  if (dt == W_F32) return v128.load(p);
  const h = v128.load16x4_u(p);
  if (dt == W_BF16) return i32x4.shl(h, 16);
  return widenF16x4(h);
}

@inline function load1(p: usize, dt: i32): f32 {
  if (dt == W_F32) return load<f32>(p);
  const h = <u32>load<u16>(p);
  if (dt == W_BF16) return reinterpret<f32>(h << 16);
  return widenF16(h);
}

/** (Σa, Σb, Σc, Σd) of four vectors. */
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

/** Eight 16-bit weights at p as two f32 vectors: the even elements (lo) and the odd ones (hi). */
@inline function halfPairLo(v: v128, dt: i32): v128 {
  return dt == W_BF16 ? i32x4.shl(v, 16) : halfTop(i32x4.shl(v, 16), dt);
}

@inline function halfPairHi(v: v128, dt: i32): v128 {
  // halfTop ignores the low halves, so f16 needs no masking here.
  return dt == W_BF16 ? v128.and(v, i32x4.splat(0xffff0000)) : halfTop(v, dt);
}

/**
 * f16 bit patterns held in the top halves of i32 lanes (whatever the low halves hold), as f32: an
 * arithmetic shift by 3 moves exponent and mantissa into f32 position, the mask keeps the sign and
 * clears the sign copies and the low half, and the product with 2^112 rebiases the exponent, which is
 * exact for normal and subnormal values alike (3 operations). Infinities and NaNs (exponent 31) would
 * come out finite: the host keeps such tensors off these kernels.
 */
@inline function halfTopToF32(t: v128): v128 {
  return f32x4.mul(halfTopScaled(t), f32x4.splat(F16_REBIAS));
}

/** halfTopToF32 without the rebias: w·2^-112, exact (an f32 subnormal for f16 subnormals). */
@inline function halfTopScaled(t: v128): v128 {
  return v128.and(i32x4.shr_s(t, 3), i32x4.splat(0x8fffe000));
}

/** halfTopToF32, or for W_F16_PRESCALED halfTopScaled (x then carries the 2^112: see linearDot). */
@inline function halfTop(t: v128, dt: i32): v128 {
  return dt == W_F16_PRESCALED ? halfTopScaled(t) : halfTopToF32(t);
}

/**
 * x rows reordered in blocks of 8 as (0, 2, 4, 6, 1, 3, 5, 7), to meet 16-bit weights split into their
 * even and odd elements, and multiplied by `scale`; the K % 8 tail stays in place, unscaled.
 */
@inline function permuteRows(x: usize, M: i32, K: i32, xp: usize, scale: f32): void {
  const K8 = K & ~7;
  const s = f32x4.splat(scale);
  for (let m = 0; m < M; m++) {
    const src = x + ((<usize>m * K) << 2), dst = xp + ((<usize>m * K) << 2);
    let k = 0;
    for (; k < K8; k += 8) {
      const a = v128.load(src + (<usize>k << 2)), b = v128.load(src + (<usize>k << 2), 16);
      v128.store(dst + (<usize>k << 2), f32x4.mul(v128.shuffle<f32>(a, b, 0, 2, 4, 6), s));
      v128.store(dst + (<usize>k << 2), f32x4.mul(v128.shuffle<f32>(a, b, 1, 3, 5, 7), s), 16);
    }
    for (; k < K; k++) store<f32>(dst + (<usize>k << 2), load<f32>(src + (<usize>k << 2)));
  }
}

/** Σ_k x[k]·w[k] of one weight row against 1..2 x rows, f32 weights, K4 = K rounded down to 4. */
@inline function rowTail(xr: usize, wr: usize, dt: i32, from: i32, K: i32): f32 {
  const es = elemBytes(dt);
  let s: f32 = 0;
  for (let k = from; k < K; k++) s += load<f32>(xr + (<usize>k << 2)) * load1(wr + <usize>k * es, dt);
  return s;
}

/** Four tail sums (one per weight row) as a vector. */
@inline function tail4(xr: usize, w0: usize, rowW: usize, dt: i32, from: i32, K: i32): v128 {
  let v = f32x4.splat(rowTail(xr, w0, dt, from, K));
  v = f32x4.replace_lane(v, 1, rowTail(xr, w0 + rowW, dt, from, K));
  v = f32x4.replace_lane(v, 2, rowTail(xr, w0 + 2 * rowW, dt, from, K));
  return f32x4.replace_lane(v, 3, rowTail(xr, w0 + 3 * rowW, dt, from, K));
}

/**
 * Matrix-vector product with f32 weights, 8 rows at a time (8 streams in flight keep more of the
 * memory system busy than 4: decoding is bound by reading the weights). Returns the first row not done.
 */
function matvec8F32(x: usize, K: i32, w: usize, bias: usize, out: usize, n0: i32, n1: i32): i32 {
  const rowW = <usize>K << 2;
  const K4 = K & ~3;
  let n = n0;
  for (; n + 8 <= n1; n += 8) {
    const w0 = w + <usize>n * rowW;
    const w1 = w0 + rowW, w2 = w1 + rowW, w3 = w2 + rowW, w4 = w3 + rowW, w5 = w4 + rowW, w6 = w5 + rowW, w7 = w6 + rowW;
    let lo = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
    let hi = bias ? v128.load(bias + (<usize>n << 2), 16) : f32x4.splat(0);
    for (let kb = 0; kb < K4; kb += DOT_BLOCK) {
      const ke = min(K4, kb + DOT_BLOCK);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
      for (let k = kb; k < ke; k += 4) {
        const ko = <usize>k << 2;
        const xv = v128.load(x + ko);
        a0 = f32x4.add(a0, f32x4.mul(xv, v128.load(w0 + ko)));
        a1 = f32x4.add(a1, f32x4.mul(xv, v128.load(w1 + ko)));
        a2 = f32x4.add(a2, f32x4.mul(xv, v128.load(w2 + ko)));
        a3 = f32x4.add(a3, f32x4.mul(xv, v128.load(w3 + ko)));
        a4 = f32x4.add(a4, f32x4.mul(xv, v128.load(w4 + ko)));
        a5 = f32x4.add(a5, f32x4.mul(xv, v128.load(w5 + ko)));
        a6 = f32x4.add(a6, f32x4.mul(xv, v128.load(w6 + ko)));
        a7 = f32x4.add(a7, f32x4.mul(xv, v128.load(w7 + ko)));
      }
      lo = f32x4.add(lo, sum4(a0, a1, a2, a3));
      hi = f32x4.add(hi, sum4(a4, a5, a6, a7));
    }
    if (K4 < K) {
      lo = f32x4.add(lo, tail4(x, w0, rowW, W_F32, K4, K));
      hi = f32x4.add(hi, tail4(x, w4, rowW, W_F32, K4, K));
    }
    v128.store(out + (<usize>n << 2), lo);
    v128.store(out + (<usize>n << 2), hi, 16);
  }
  return n;
}

/** acc + the 8 products of 16-bit weights v (one load) with the permuted x (xl: even elements, xh: odd). */
@inline function halfDot8(acc: v128, xl: v128, xh: v128, v: v128, dt: i32): v128 {
  return f32x4.add(acc, f32x4.add(f32x4.mul(xl, halfPairLo(v, dt)), f32x4.mul(xh, halfPairHi(v, dt))));
}

/**
 * Matrix-vector product with 16-bit weights against the permuted x (see linearDotRows), 8 rows at a
 * time like matvec8F32 (more streams in flight: bf16, cheap to widen, gains a fifth; f16, bound by its
 * widening, about breaks even); the same sums in the same order as the 4-row form. Returns the first
 * row not done.
 */
@inline function matvec8Half(xs: usize, K: i32, w: usize, dt: i32, bias: usize, out: usize, n0: i32, n1: i32): i32 {
  const rowW = <usize>K << 1;
  const K8 = K & ~7;
  const td = dt == W_F16_PRESCALED ? W_F16 : dt;
  let n = n0;
  for (; n + 8 <= n1; n += 8) {
    const w0 = w + <usize>n * rowW;
    const w1 = w0 + rowW, w2 = w1 + rowW, w3 = w2 + rowW, w4 = w3 + rowW, w5 = w4 + rowW, w6 = w5 + rowW, w7 = w6 + rowW;
    let lo = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
    let hi = bias ? v128.load(bias + (<usize>n << 2), 16) : f32x4.splat(0);
    for (let kb = 0; kb < K8; kb += DOT_BLOCK) {
      const ke = min(K8, kb + DOT_BLOCK);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let a4 = f32x4.splat(0), a5 = f32x4.splat(0), a6 = f32x4.splat(0), a7 = f32x4.splat(0);
      for (let k = kb; k < ke; k += 8) {
        const ko = <usize>k << 2, kw = <usize>k << 1;
        const xl = v128.load(xs + ko), xh = v128.load(xs + ko, 16);
        a0 = halfDot8(a0, xl, xh, v128.load(w0 + kw), dt);
        a1 = halfDot8(a1, xl, xh, v128.load(w1 + kw), dt);
        a2 = halfDot8(a2, xl, xh, v128.load(w2 + kw), dt);
        a3 = halfDot8(a3, xl, xh, v128.load(w3 + kw), dt);
        a4 = halfDot8(a4, xl, xh, v128.load(w4 + kw), dt);
        a5 = halfDot8(a5, xl, xh, v128.load(w5 + kw), dt);
        a6 = halfDot8(a6, xl, xh, v128.load(w6 + kw), dt);
        a7 = halfDot8(a7, xl, xh, v128.load(w7 + kw), dt);
      }
      lo = f32x4.add(lo, sum4(a0, a1, a2, a3));
      hi = f32x4.add(hi, sum4(a4, a5, a6, a7));
    }
    if (K8 < K) {
      lo = f32x4.add(lo, tail4(xs, w0, rowW, td, K8, K));
      hi = f32x4.add(hi, tail4(xs, w4, rowW, td, K8, K));
    }
    v128.store(out + (<usize>n << 2), lo);
    v128.store(out + (<usize>n << 2), hi, 16);
  }
  return n;
}

/** Whether every |x[i]| of n values is below 2^15 (so x·2^112 stays finite; NaNs say no). */
@inline function fitsPrescale(x: usize, n: i32): bool {
  const n4 = n & ~3;
  const abs = i32x4.splat(0x7fffffff), lim = i32x4.splat(PRESCALE_X_LIMIT);
  let over = i32x4.splat(0);
  for (let i = 0; i < n4; i += 4) over = v128.or(over, i32x4.ge_s(v128.and(v128.load(x + (<usize>i << 2)), abs), lim));
  let ok = !v128.any_true(over);
  for (let i = n4; i < n; i++) ok = ok && (load<i32>(x + (<usize>i << 2)) & 0x7fffffff) < PRESCALE_X_LIMIT;
  return ok;
}

/**
 * Dot-product form: each block of 4 weight rows is read once per pair of x rows. f32 weights go 4 at a
 * time; 16-bit weights 8 at a time (one load, split into even/odd elements against the permuted x).
 * For f16, x is multiplied by 2^112 as it is permuted, so that the weights can skip the rebias multiply
 * (5 instead of 7 operations to widen 8 weights): (w·2^-112)·(x·2^112) is w·x exactly. An x with some
 * |x| ≥ 2^15 (x·2^112 near f32 overflow) takes the unscaled path.
 */
@inline function linearDot(x: usize, M: i32, K: i32, w: usize, dt: i32, N: i32, bias: usize, out: usize, n0: i32, n1: i32, scratch: usize): void {
  if (dt == W_F32) {
    linearDotRows(x, x, M, K, w, dt, N, bias, out, n0, n1);
  } else if (dt == W_F16 && fitsPrescale(x, M * K)) {
    permuteRows(x, M, K, scratch, F16_REBIAS);
    linearDotRows(x, scratch, M, K, w, W_F16_PRESCALED, N, bias, out, n0, n1);
  } else {
    permuteRows(x, M, K, scratch, 1);
    linearDotRows(x, scratch, M, K, w, dt, N, bias, out, n0, n1);
  }
}

/**
 * linearDot on x (M rows) and xs: x itself for f32 weights, else x permuted (and for W_F16_PRESCALED
 * prescaled) up to the K % 8 tail, which it holds as in x.
 */
@inline function linearDotRows(x: usize, xs: usize, M: i32, K: i32, w: usize, dt: i32, N: i32, bias: usize, out: usize, n0: i32, n1: i32): void {
  const es = elemBytes(dt);
  const rowW = <usize>K * es;
  const rowX = <usize>K << 2;
  const KV = dt == W_F32 ? K & ~3 : K & ~7;
  // Tails and the leftover rows read x as it is: no prescale.
  const td = dt == W_F16_PRESCALED ? W_F16 : dt;
  let n = n0;
  if (M == 1) n = dt == W_F32 ? matvec8F32(x, K, w, bias, out, n0, n1) : matvec8Half(xs, K, w, dt, bias, out, n0, n1);
  for (; n + 4 <= n1; n += 4) {
    const w0 = w + <usize>n * rowW;
    const w1 = w0 + rowW, w2 = w1 + rowW, w3 = w2 + rowW;
    const bv = bias ? v128.load(bias + (<usize>n << 2)) : f32x4.splat(0);
    let m = 0;
    for (; m + 2 <= M; m += 2) {
      const xa = xs + <usize>m * rowX, xb = xa + rowX;
      let ra = bv, rb = bv;
      // Blocked summation (see K_BLOCK): each block's lane sums join the totals once.
      for (let kb = 0; kb < KV; kb += DOT_BLOCK) {
      const ke = min(KV, kb + DOT_BLOCK);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0), b3 = f32x4.splat(0);
      if (dt == W_F32) {
        for (let k = kb; k < ke; k += 4) {
          const ko = <usize>k << 2;
          const va = v128.load(xa + ko), vb = v128.load(xb + ko);
          let v = v128.load(w0 + ko);
          a0 = f32x4.add(a0, f32x4.mul(va, v)); b0 = f32x4.add(b0, f32x4.mul(vb, v));
          v = v128.load(w1 + ko);
          a1 = f32x4.add(a1, f32x4.mul(va, v)); b1 = f32x4.add(b1, f32x4.mul(vb, v));
          v = v128.load(w2 + ko);
          a2 = f32x4.add(a2, f32x4.mul(va, v)); b2 = f32x4.add(b2, f32x4.mul(vb, v));
          v = v128.load(w3 + ko);
          a3 = f32x4.add(a3, f32x4.mul(va, v)); b3 = f32x4.add(b3, f32x4.mul(vb, v));
        }
      } else {
        for (let k = kb; k < ke; k += 8) {
          const ko = <usize>k << 2, kw = <usize>k << 1;
          const la = v128.load(xa + ko), ha = v128.load(xa + ko, 16);
          const lb = v128.load(xb + ko), hb = v128.load(xb + ko, 16);
          let v = v128.load(w0 + kw);
          let lo = halfPairLo(v, dt), hi = halfPairHi(v, dt);
          a0 = f32x4.add(a0, f32x4.add(f32x4.mul(la, lo), f32x4.mul(ha, hi)));
          b0 = f32x4.add(b0, f32x4.add(f32x4.mul(lb, lo), f32x4.mul(hb, hi)));
          v = v128.load(w1 + kw);
          lo = halfPairLo(v, dt); hi = halfPairHi(v, dt);
          a1 = f32x4.add(a1, f32x4.add(f32x4.mul(la, lo), f32x4.mul(ha, hi)));
          b1 = f32x4.add(b1, f32x4.add(f32x4.mul(lb, lo), f32x4.mul(hb, hi)));
          v = v128.load(w2 + kw);
          lo = halfPairLo(v, dt); hi = halfPairHi(v, dt);
          a2 = f32x4.add(a2, f32x4.add(f32x4.mul(la, lo), f32x4.mul(ha, hi)));
          b2 = f32x4.add(b2, f32x4.add(f32x4.mul(lb, lo), f32x4.mul(hb, hi)));
          v = v128.load(w3 + kw);
          lo = halfPairLo(v, dt); hi = halfPairHi(v, dt);
          a3 = f32x4.add(a3, f32x4.add(f32x4.mul(la, lo), f32x4.mul(ha, hi)));
          b3 = f32x4.add(b3, f32x4.add(f32x4.mul(lb, lo), f32x4.mul(hb, hi)));
        }
      }
      ra = f32x4.add(ra, sum4(a0, a1, a2, a3));
      rb = f32x4.add(rb, sum4(b0, b1, b2, b3));
      }
      if (KV < K) {
        ra = f32x4.add(ra, tail4(xa, w0, rowW, td, KV, K));
        rb = f32x4.add(rb, tail4(xb, w0, rowW, td, KV, K));
      }
      v128.store(out + ((<usize>m * N + n) << 2), ra);
      v128.store(out + ((<usize>(m + 1) * N + n) << 2), rb);
    }
    if (m < M) {
      const xa = xs + <usize>m * rowX;
      let ra = bv;
      for (let kb = 0; kb < KV; kb += DOT_BLOCK) {
      const ke = min(KV, kb + DOT_BLOCK);
      let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
      if (dt == W_F32) {
        for (let k = kb; k < ke; k += 4) {
          const ko = <usize>k << 2;
          const va = v128.load(xa + ko);
          a0 = f32x4.add(a0, f32x4.mul(va, v128.load(w0 + ko)));
          a1 = f32x4.add(a1, f32x4.mul(va, v128.load(w1 + ko)));
          a2 = f32x4.add(a2, f32x4.mul(va, v128.load(w2 + ko)));
          a3 = f32x4.add(a3, f32x4.mul(va, v128.load(w3 + ko)));
        }
      } else {
        for (let k = kb; k < ke; k += 8) {
          const ko = <usize>k << 2, kw = <usize>k << 1;
          const la = v128.load(xa + ko), ha = v128.load(xa + ko, 16);
          let v = v128.load(w0 + kw);
          a0 = f32x4.add(a0, f32x4.add(f32x4.mul(la, halfPairLo(v, dt)), f32x4.mul(ha, halfPairHi(v, dt))));
          v = v128.load(w1 + kw);
          a1 = f32x4.add(a1, f32x4.add(f32x4.mul(la, halfPairLo(v, dt)), f32x4.mul(ha, halfPairHi(v, dt))));
          v = v128.load(w2 + kw);
          a2 = f32x4.add(a2, f32x4.add(f32x4.mul(la, halfPairLo(v, dt)), f32x4.mul(ha, halfPairHi(v, dt))));
          v = v128.load(w3 + kw);
          a3 = f32x4.add(a3, f32x4.add(f32x4.mul(la, halfPairLo(v, dt)), f32x4.mul(ha, halfPairHi(v, dt))));
        }
      }
      ra = f32x4.add(ra, sum4(a0, a1, a2, a3));
      }
      if (KV < K) ra = f32x4.add(ra, tail4(xa, w0, rowW, td, KV, K));
      v128.store(out + ((<usize>m * N + n) << 2), ra);
    }
  }
  // Rows left over (fewer than four): one dot product each, on the unpermuted x.
  const K4 = K & ~3;
  for (; n < n1; n++) {
    const wr = w + <usize>n * rowW;
    const b: f32 = bias ? load<f32>(bias + (<usize>n << 2)) : 0;
    for (let m = 0; m < M; m++) {
      const xr = x + <usize>m * rowX;
      let a = f32x4.splat(0);
      for (let k = 0; k < K4; k += 4) a = f32x4.add(a, f32x4.mul(v128.load(xr + (<usize>k << 2)), load4(wr + <usize>k * es, td)));
      store<f32>(out + ((<usize>m * N + n) << 2), hsum(a) + b + rowTail(xr, wr, td, K4, K));
    }
  }
}

/**
 * Weight rows n..n+7 (zero past n1) packed k-major as f32: panel[k·8 + j] = w[n + j, k].
 */
@inline function packPanel(w: usize, dt: i32, K: i32, n: i32, n1: i32, panel: usize): void {
  const es = elemBytes(dt);
  const rows = min(8, n1 - n);
  if (rows < 8) memory.fill(panel, 0, <usize>K << 5);
  const K4 = K & ~3;
  for (let j = 0; j < rows; j++) {
    const wr = w + (<usize>(n + j) * K) * es;
    const pj = panel + (<usize>j << 2);
    let k = 0;
    for (; k < K4; k += 4) {
      const v = load4(wr + <usize>k * es, dt);
      const p = pj + (<usize>k << 5);
      v128.store_lane<f32>(p, v, 0);
      v128.store_lane<f32>(p, v, 1, 32);
      v128.store_lane<f32>(p, v, 2, 64);
      v128.store_lane<f32>(p, v, 3, 96);
    }
    for (; k < K; k++) {
      const v: f32 = load1(wr + <usize>k * es, dt);
      store<f32>(pj + (<usize>k << 5), v);
    }
  }
}

/** bias[n + j0 .. n + j0 + 3] as a vector, lanes from column `cols` on (and all, without a bias) zero. */
@inline export function biasLanes(bias: usize, n: i32, j0: i32, cols: i32): v128 {
  if (!bias) return f32x4.splat(0);
  const p = bias + (<usize>(n + j0) << 2);
  if (j0 + 4 <= cols) return v128.load(p);
  const k = cols - j0;
  let v = f32x4.splat(0);
  if (k > 0) v = f32x4.replace_lane(v, 0, load<f32>(p));
  if (k > 1) v = f32x4.replace_lane(v, 1, load<f32>(p, 4));
  if (k > 2) v = f32x4.replace_lane(v, 2, load<f32>(p, 8));
  return v;
}

/** Stores 8 results (two vectors) of row m at column n, only the first `cols`. */
@inline export function store8(p: usize, lo: v128, hi: v128, cols: i32): void {
  if (cols == 8) {
    v128.store(p, lo);
    v128.store(p, hi, 16);
    return;
  }
  for (let j = 0; j < cols; j++) {
    const v = j < 4 ? lo : hi;
    const l = j & 3;
    store<f32>(p + (<usize>j << 2), l == 0 ? f32x4.extract_lane(v, 0) : l == 1 ? f32x4.extract_lane(v, 1) : l == 2 ? f32x4.extract_lane(v, 2) : f32x4.extract_lane(v, 3));
  }
}

/** Tile form: x rows in blocks, weight panels of 8 rows packed once per block, 4×8 register tiles. */
@inline function linearTiled(x: usize, M: i32, K: i32, w: usize, dt: i32, N: i32, bias: usize, out: usize, n0: i32, n1: i32, panel: usize): void {
  const rowX = <usize>K << 2;
  for (let m0 = 0; m0 < M; m0 += ROW_BLOCK) {
    const m1 = min(M, m0 + ROW_BLOCK);
    for (let n = n0; n < n1; n += 8) {
      packPanel(w, dt, K, n, n1, panel);
      const cols = min(8, n1 - n);
      const b0 = biasLanes(bias, n, 0, cols), b1 = biasLanes(bias, n, 4, cols);
      let m = m0;
      for (; m + 4 <= m1; m += 4) {
        const x0 = x + <usize>m * rowX;
        const x1 = x0 + rowX, x2 = x1 + rowX, x3 = x2 + rowX;
        let s00 = b0, s01 = b1, s10 = b0, s11 = b1, s20 = b0, s21 = b1, s30 = b0, s31 = b1;
        // Blocked summation: short runs in registers, added into the totals per block of K (error
        // grows with the block length plus the block count, not with K).
        for (let kb = 0; kb < K; kb += K_BLOCK) {
          const ke = min(K, kb + K_BLOCK);
          let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
          let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
          let p = panel + (<usize>kb << 5);
          for (let k = kb; k < ke; k++) {
            const ko = <usize>k << 2;
            const w0 = v128.load(p), w1 = v128.load(p, 16);
            p += 32;
            let xv = v128.load32_splat(x0 + ko);
            c00 = f32x4.add(c00, f32x4.mul(xv, w0)); c01 = f32x4.add(c01, f32x4.mul(xv, w1));
            xv = v128.load32_splat(x1 + ko);
            c10 = f32x4.add(c10, f32x4.mul(xv, w0)); c11 = f32x4.add(c11, f32x4.mul(xv, w1));
            xv = v128.load32_splat(x2 + ko);
            c20 = f32x4.add(c20, f32x4.mul(xv, w0)); c21 = f32x4.add(c21, f32x4.mul(xv, w1));
            xv = v128.load32_splat(x3 + ko);
            c30 = f32x4.add(c30, f32x4.mul(xv, w0)); c31 = f32x4.add(c31, f32x4.mul(xv, w1));
          }
          s00 = f32x4.add(s00, c00); s01 = f32x4.add(s01, c01); s10 = f32x4.add(s10, c10); s11 = f32x4.add(s11, c11);
          s20 = f32x4.add(s20, c20); s21 = f32x4.add(s21, c21); s30 = f32x4.add(s30, c30); s31 = f32x4.add(s31, c31);
        }
        const o = out + ((<usize>m * N + n) << 2);
        const rowO = <usize>N << 2;
        store8(o, s00, s01, cols);
        store8(o + rowO, s10, s11, cols);
        store8(o + 2 * rowO, s20, s21, cols);
        store8(o + 3 * rowO, s30, s31, cols);
      }
      for (; m < m1; m++) {
        const x0 = x + <usize>m * rowX;
        let s00 = b0, s01 = b1;
        for (let kb = 0; kb < K; kb += K_BLOCK) {
          const ke = min(K, kb + K_BLOCK);
          let c00 = f32x4.splat(0), c01 = f32x4.splat(0);
          let p = panel + (<usize>kb << 5);
          for (let k = kb; k < ke; k++) {
            const xv = v128.load32_splat(x0 + (<usize>k << 2));
            c00 = f32x4.add(c00, f32x4.mul(xv, v128.load(p)));
            c01 = f32x4.add(c01, f32x4.mul(xv, v128.load(p, 16)));
            p += 32;
          }
          s00 = f32x4.add(s00, c00);
          s01 = f32x4.add(s01, c01);
        }
        const c00 = s00, c01 = s01;
        store8(out + ((<usize>m * N + n) << 2), c00, c01, cols);
      }
    }
  }
}

@inline function linearAny(x: usize, M: i32, K: i32, w: usize, dt: i32, N: i32, bias: usize, out: usize, n0: i32, n1: i32, scratch: usize): void {
  if (M >= TILE_MIN_ROWS) linearTiled(x, M, K, w, dt, N, bias, out, n0, n1, scratch);
  else linearDot(x, M, K, w, dt, N, bias, out, n0, n1, scratch);
}

/** Scratch bytes one thread needs for linear with this K: a packed panel of 8 weight rows, or up to 3 permuted x rows. */
export function linearScratchBytes(K: i32): i32 {
  return K << 5;
}

export function linear_f32(x: usize, M: i32, K: i32, w: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32, scratch: usize): void {
  linearAny(x, M, K, w, W_F32, N, bias, out, n0, n1, scratch);
}

export function linear_f16(x: usize, M: i32, K: i32, w: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32, scratch: usize): void {
  linearAny(x, M, K, w, W_F16, N, bias, out, n0, n1, scratch);
}

export function linear_bf16(x: usize, M: i32, K: i32, w: usize, N: i32, bias: usize, out: usize, n0: i32, n1: i32, scratch: usize): void {
  linearAny(x, M, K, w, W_BF16, N, bias, out, n0, n1, scratch);
}
