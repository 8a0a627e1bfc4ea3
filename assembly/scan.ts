// Mamba's selective scan (S6) for the channels e in [e0, e1) of every sequence: per time step,
// h = exp(Δ·A)·h + Δ·B·u, y = C·h + D·u, y *= silu(z). `stateIn` [Bsz, E, N] holds the state before the
// first step and `state` receives the final one (the same buffer, or another: then the entering state
// is read once and never copied); L = 1 is the recurrent decoding step.

import { exp2_4, expf, hsum, silu, silu4, softplus, softplus4 } from "./math";

const LOG2E: f32 = 1.4426950408889634;

export function selective_scan(
  u: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize, z: usize, deltaBias: usize, deltaSoftplus: i32,
  stateIn: usize, state: usize, y: usize, Bsz: i32, L: i32, E: i32, N: i32, e0: i32, e1: i32, scratch: usize,
): void {
  const dts = scratch; // Δ of this step for channels e0..e1
  const N4 = N & ~3;
  for (let b = 0; b < Bsz; b++) {
    for (let t = 0; t < L; t++) {
      const row = <usize>(b * L + t) * E;
      const bn = Bm + ((<usize>(b * L + t) * N) << 2);
      const cn = Cm + ((<usize>(b * L + t) * N) << 2);
      let e = e0;
      for (; e + 4 <= e1; e += 4) {
        let d = v128.load(delta + ((row + e) << 2));
        if (deltaBias) d = f32x4.add(d, v128.load(deltaBias + (<usize>e << 2)));
        if (deltaSoftplus) d = softplus4(d);
        v128.store(dts + (<usize>(e - e0) << 2), d);
      }
      for (; e < e1; e++) {
        let d = load<f32>(delta + ((row + e) << 2));
        if (deltaBias) d += load<f32>(deltaBias + (<usize>e << 2));
        store<f32>(dts + (<usize>(e - e0) << 2), deltaSoftplus ? softplus(d) : d);
      }
      for (e = e0; e < e1; e++) {
        const d = load<f32>(dts + (<usize>(e - e0) << 2));
        const ue = load<f32>(u + ((row + e) << 2));
        // exp(Δ·A) as 2^((Δ·log2 e)·A): log2 e rides on Δ, once per channel.
        const dv = f32x4.splat(d * LOG2E), duv = f32x4.splat(d * ue);
        const h = state + ((<usize>(b * E + e) * N) << 2);
        const hin = t == 0 ? stateIn + ((<usize>(b * E + e) * N) << 2) : h;
        const a = A + ((<usize>e * N) << 2);
        let acc = f32x4.splat(0);
        for (let n = 0; n < N4; n += 4) {
          const o = <usize>n << 2;
          const hn = f32x4.add(f32x4.mul(exp2_4(f32x4.mul(dv, v128.load(a + o))), v128.load(hin + o)), f32x4.mul(duv, v128.load(bn + o)));
          v128.store(h + o, hn);
          acc = f32x4.add(acc, f32x4.mul(hn, v128.load(cn + o)));
        }
        let s = hsum(acc);
        for (let n = N4; n < N; n++) {
          const o = <usize>n << 2;
          const hn = expf(d * load<f32>(a + o)) * load<f32>(hin + o) + d * ue * load<f32>(bn + o);
          store<f32>(h + o, hn);
          s += hn * load<f32>(cn + o);
        }
        store<f32>(y + ((row + e) << 2), s);
      }
      if (!D && !z) continue;
      e = e0;
      for (; e + 4 <= e1; e += 4) {
        const o = (row + e) << 2;
        let v = v128.load(y + o);
        if (D) v = f32x4.add(v, f32x4.mul(v128.load(D + (<usize>e << 2)), v128.load(u + o)));
        if (z) v = f32x4.mul(v, silu4(v128.load(z + o)));
        v128.store(y + o, v);
      }
      for (; e < e1; e++) {
        const o = (row + e) << 2;
        let v = load<f32>(y + o);
        if (D) v += load<f32>(D + (<usize>e << 2)) * load<f32>(u + o);
        if (z) v *= silu(load<f32>(z + o));
        store<f32>(y + o, v);
      }
    }
  }
}

/** Scratch bytes one thread needs for selective_scan over E channels. */
export function selectiveScanScratchBytes(E: i32): i32 {
  return (E + 4) << 2;
}

/**
 * Depthwise causal convolution, channels last, for channels c in [c0, c1): x [Bsz, L, C], w [C, K],
 * state [Bsz, K-1, C] (the inputs before x, or 0 for zeros). Writes y [Bsz, L, C] and stateOut
 * [Bsz, K-1, C] (the last K-1 inputs). `silu` applies the activation. Scratch: the thread's weights
 * transposed, K × (c1 − c0) floats.
 */
export function causal_conv1d(
  x: usize, w: usize, bias: usize, state: usize, act: i32, y: usize, stateOut: usize,
  Bsz: i32, L: i32, C: i32, K: i32, c0: i32, c1: i32, scratch: usize,
): void {
  const S = K - 1;
  const W = c1 - c0;
  // Decoding (a few steps, 4 taps as every Mamba has): each 4 channels' taps transposed in registers;
  // otherwise the taps are laid out per tap once, in the scratch, for all L steps.
  const inRegisters = K == 4 && L <= 4;
  if (!inRegisters) {
    for (let j = 0; j < K; j++) {
      for (let c = c0; c < c1; c++) store<f32>(scratch + ((<usize>(j * W + c - c0)) << 2), load<f32>(w + ((<usize>(c * K + j)) << 2)));
    }
  }
  for (let b = 0; b < Bsz; b++) {
    const xb = x + ((<usize>b * L * C) << 2);
    const sb = state ? state + ((<usize>b * S * C) << 2) : 0;
    for (let t = 0; t < L; t++) {
      let c = c0;
      if (inRegisters) {
        for (; c + 4 <= c1; c += 4) {
          // Rows: channel c + i's 4 taps; columns after the transpose: tap j of the 4 channels.
          const r = w + ((<usize>c * 4) << 2);
          const r0 = v128.load(r), r1 = v128.load(r, 16), r2 = v128.load(r, 32), r3 = v128.load(r, 48);
          const t0 = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5), t1 = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
          const t2 = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7), t3 = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
          let acc = bias ? v128.load(bias + (<usize>c << 2)) : f32x4.splat(0);
          for (let j = 0; j < 4; j++) {
            const ti = t - 3 + j;
            let v: v128;
            if (ti >= 0) v = v128.load(xb + ((<usize>(ti * C + c)) << 2));
            else if (sb) v = v128.load(sb + ((<usize>((3 + ti) * C + c)) << 2));
            else continue;
            const tap = j == 0 ? v128.shuffle<f32>(t0, t1, 0, 1, 4, 5)
              : j == 1 ? v128.shuffle<f32>(t0, t1, 2, 3, 6, 7)
              : j == 2 ? v128.shuffle<f32>(t2, t3, 0, 1, 4, 5)
              : v128.shuffle<f32>(t2, t3, 2, 3, 6, 7);
            acc = f32x4.add(acc, f32x4.mul(tap, v));
          }
          if (act) acc = silu4(acc);
          v128.store(y + ((<usize>((b * L + t) * C + c)) << 2), acc);
        }
        for (; c < c1; c++) {
          let acc: f32 = bias ? load<f32>(bias + (<usize>c << 2)) : 0;
          for (let j = 0; j < 4; j++) {
            const ti = t - 3 + j;
            let v: f32 = 0;
            if (ti >= 0) v = load<f32>(xb + ((<usize>(ti * C + c)) << 2));
            else if (sb) v = load<f32>(sb + ((<usize>((3 + ti) * C + c)) << 2));
            acc += load<f32>(w + ((<usize>(c * 4 + j)) << 2)) * v;
          }
          if (act) acc = silu(acc);
          store<f32>(y + ((<usize>((b * L + t) * C + c)) << 2), acc);
        }
        continue;
      }
      for (; c + 4 <= c1; c += 4) {
        let acc = bias ? v128.load(bias + (<usize>c << 2)) : f32x4.splat(0);
        for (let j = 0; j < K; j++) {
          const ti = t - S + j;
          let v: v128;
          if (ti >= 0) v = v128.load(xb + ((<usize>(ti * C + c)) << 2));
          else if (sb) v = v128.load(sb + ((<usize>((S + ti) * C + c)) << 2));
          else continue;
          acc = f32x4.add(acc, f32x4.mul(v128.load(scratch + ((<usize>(j * W + c - c0)) << 2)), v));
        }
        if (act) acc = silu4(acc);
        v128.store(y + ((<usize>((b * L + t) * C + c)) << 2), acc);
      }
      for (; c < c1; c++) {
        let acc: f32 = bias ? load<f32>(bias + (<usize>c << 2)) : 0;
        for (let j = 0; j < K; j++) {
          const ti = t - S + j;
          let v: f32 = 0;
          if (ti >= 0) v = load<f32>(xb + ((<usize>(ti * C + c)) << 2));
          else if (sb) v = load<f32>(sb + ((<usize>((S + ti) * C + c)) << 2));
          acc += load<f32>(scratch + ((<usize>(j * W + c - c0)) << 2)) * v;
        }
        if (act) acc = silu(acc);
        store<f32>(y + ((<usize>((b * L + t) * C + c)) << 2), acc);
      }
    }
    // The new window: each of its rows is a row of x or of the old window (or zeros), channels [c0, c1).
    for (let s = 0; s < S; s++) {
      const ti = L - S + s;
      const dst = stateOut + ((<usize>((b * S + s) * C + c0)) << 2);
      if (ti >= 0) memory.copy(dst, xb + ((<usize>(ti * C + c0)) << 2), <usize>W << 2);
      else if (sb) memory.copy(dst, sb + ((<usize>((S + ti) * C + c0)) << 2), <usize>W << 2);
      else memory.fill(dst, 0, <usize>W << 2);
    }
  }
}
