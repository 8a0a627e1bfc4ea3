// Elementwise activations and Mamba-2's gated RMS norm, for one thread's range.

import { exp4, silu4, softplus4 } from "./math";

export const U_SILU: i32 = 0;
export const U_GELU: i32 = 1;
export const U_GELU_TANH: i32 = 2;
export const U_SOFTPLUS: i32 = 3;
export const U_EXP: i32 = 4;

/**
 * erfc(z) on four lanes (Numerical Recipes' erfcc: Chebyshev fit, fractional error < 1.2e-7 for every z):
 * t = 1 / (1 + |z|/2), erfc(|z|) = t·exp(−z² + P(t)), erfc(−z) = 2 − erfc(z).
 */
@inline export function erfc4(z: v128): v128 {
  const a = f32x4.abs(z);
  const t = f32x4.div(f32x4.splat(1.0), f32x4.add(f32x4.splat(1.0), f32x4.mul(f32x4.splat(0.5), a)));
  let p = f32x4.splat(0.17087277);
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.82215223));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.48851587));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.13520398));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.27886807));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-0.18628806));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.09678418));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(0.37409196));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(1.00002368));
  p = f32x4.add(f32x4.mul(p, t), f32x4.splat(-1.26551223));
  const r = f32x4.mul(t, exp4(f32x4.sub(p, f32x4.mul(a, a))));
  return v128.bitselect(f32x4.sub(f32x4.splat(2.0), r), r, f32x4.lt(z, f32x4.splat(0)));
}

/** torch's exact GELU: 0.5·x·erfc(−x/√2). */
@inline function gelu4(x: v128): v128 {
  return f32x4.mul(f32x4.mul(f32x4.splat(0.5), x), erfc4(f32x4.mul(x, f32x4.splat(-0.7071067811865476))));
}

/** GELU, tanh form: 0.5·x·(1 + tanh(u)) = x·(1 − 1/(exp(2u) + 1)), u = √(2/π)·(x + 0.044715·x³). */
@inline function geluTanh4(x: v128): v128 {
  const u = f32x4.mul(f32x4.splat(0.7978845608028654), f32x4.add(x, f32x4.mul(f32x4.splat(0.044715), f32x4.mul(x, f32x4.mul(x, x)))));
  const e = exp4(f32x4.add(u, u));
  return f32x4.mul(x, f32x4.sub(f32x4.splat(1.0), f32x4.div(f32x4.splat(1.0), f32x4.add(e, f32x4.splat(1.0)))));
}

@inline function apply4(op: i32, x: v128): v128 {
  if (op == U_SILU) return silu4(x);
  if (op == U_GELU) return gelu4(x);
  if (op == U_GELU_TANH) return geluTanh4(x);
  if (op == U_SOFTPLUS) return softplus4(x);
  return exp4(x);
}

/** out[i] = op(x[i]) for i in [i0, i1). */
export function unary_f32(op: i32, x: usize, out: usize, i0: i32, i1: i32): void {
  let i = i0;
  for (; i + 4 <= i1; i += 4) v128.store(out + (<usize>i << 2), apply4(op, v128.load(x + (<usize>i << 2))));
  for (; i < i1; i++) store<f32>(out + (<usize>i << 2), f32x4.extract_lane(apply4(op, f32x4.splat(load<f32>(x + (<usize>i << 2)))), 0));
}

/**
 * Mamba-2's gated RMS norm for groups [g0, g1) of `groupSize` values: v = y·silu(z), out = v / rms(v) · w,
 * w [W] repeating along the flat index (W a multiple of groupSize).
 */
export function gated_rms_norm(y: usize, z: usize, w: usize, W: i32, groupSize: i32, eps: f32, out: usize, g0: i32, g1: i32): void {
  const G4 = groupSize & ~3;
  for (let g = g0; g < g1; g++) {
    const o = <usize>g * groupSize;
    const wo = <usize>((<i64>g * groupSize) % W);
    let ss = f32x4.splat(0);
    let i = 0;
    for (; i < G4; i += 4) {
      const p = (o + i) << 2;
      const v = f32x4.mul(v128.load(y + p), silu4(v128.load(z + p)));
      v128.store(out + p, v);
      ss = f32x4.add(ss, f32x4.mul(v, v));
    }
    let s = f32x4.extract_lane(ss, 0) + f32x4.extract_lane(ss, 1) + f32x4.extract_lane(ss, 2) + f32x4.extract_lane(ss, 3);
    for (; i < groupSize; i++) {
      const p = (o + i) << 2;
      const zi = load<f32>(z + p);
      const v = load<f32>(y + p) * f32x4.extract_lane(silu4(f32x4.splat(zi)), 0);
      store<f32>(out + p, v);
      s += v * v;
    }
    const inv = <f32>1.0 / sqrt<f32>(s / <f32>groupSize + eps);
    const iv = f32x4.splat(inv);
    i = 0;
    for (; i < G4; i += 4) {
      const p = (o + i) << 2;
      v128.store(out + p, f32x4.mul(f32x4.mul(v128.load(out + p), iv), v128.load(w + ((wo + i) << 2))));
    }
    for (; i < groupSize; i++) {
      const p = (o + i) << 2;
      store<f32>(out + p, load<f32>(out + p) * inv * load<f32>(w + ((wo + i) << 2)));
    }
  }
}

/**
 * The residual add and the norm after it, rows [r0, r1) of width D: sum = a + b (written out, f32), then
 * RMSNorm (layer = 0: sum / sqrt(mean(sum²) + eps) · w) or LayerNorm (layer = 1: (sum − mean) /
 * sqrt(var + eps) · w + bias, the variance about the mean in a second pass). The norm is computed in f64
 * as the reference does: an output that nearly cancels (w · normed ≈ −bias) keeps its digits.
 */
export function add_norm(a: usize, b: usize, w: usize, bias: usize, D: i32, eps: f32, layer: i32, sum: usize, out: usize, r0: i32, r1: i32): void {
  const D4 = D & ~3;
  for (let r = r0; r < r1; r++) {
    const o = <usize>r * D;
    let i = 0;
    for (; i < D4; i += 4) {
      const p = (o + i) << 2;
      v128.store(sum + p, f32x4.add(v128.load(a + p), v128.load(b + p)));
    }
    for (; i < D; i++) {
      const p = (o + i) << 2;
      store<f32>(sum + p, load<f32>(a + p) + load<f32>(b + p));
    }
    let mean: f64 = 0;
    if (layer) {
      for (i = 0; i < D; i++) mean += <f64>load<f32>(sum + ((o + i) << 2));
      mean /= <f64>D;
    }
    let t: f64 = 0;
    for (i = 0; i < D; i++) {
      const d = <f64>load<f32>(sum + ((o + i) << 2)) - mean;
      t += d * d;
    }
    const inv = 1.0 / sqrt<f64>(t / <f64>D + <f64>eps);
    for (i = 0; i < D; i++) {
      let y = (<f64>load<f32>(sum + ((o + i) << 2)) - mean) * inv * <f64>load<f32>(w + (<usize>i << 2));
      if (bias) y += <f64>load<f32>(bias + (<usize>i << 2));
      store<f32>(out + ((o + i) << 2), <f32>y);
    }
  }
}
