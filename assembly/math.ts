// Vector and scalar math shared by the kernels: exp, log, softplus and silu on f32x4 lanes.

/**
 * exp on four lanes (Cephes expf: range reduction by ln 2, degree-6 polynomial); about 2 ulp for |x| < 87.
 * Written for V8's x64 code: pmin/pmax clamp in one instruction each (min/max are ~7 for NaN and −0
 * rules; a NaN still comes out NaN), and n = round(x·log2 e) comes from adding 1.5·2^23, whose low
 * mantissa bits then hold n for the exponent (trunc_sat is a multi-instruction sequence).
 */
@inline export function exp4(x: v128): v128 {
  x = f32x4.pmax(f32x4.pmin(x, f32x4.splat(88.0)), f32x4.splat(-87.0));
  const y = f32x4.add(f32x4.mul(x, f32x4.splat(1.44269504088896341)), f32x4.splat(12582912.0));
  const fx = f32x4.sub(y, f32x4.splat(12582912.0));
  let r = f32x4.sub(x, f32x4.mul(fx, f32x4.splat(0.693359375)));
  r = f32x4.sub(r, f32x4.mul(fx, f32x4.splat(-2.12194440e-4)));
  let p = horner5(r, 1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1);
  p = f32x4.add(f32x4.add(f32x4.mul(f32x4.mul(p, r), r), r), f32x4.splat(1.0));
  return f32x4.mul(p, pow2Rounded(y));
}

/** c0·r⁵ + c1·r⁴ + c2·r³ + c3·r² + c4·r + c5 on four lanes, by Horner's rule. */
@inline function horner5(r: v128, c0: f32, c1: f32, c2: f32, c3: f32, c4: f32, c5: f32): v128 {
  let p = f32x4.splat(c0);
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c1));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c2));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c3));
  p = f32x4.add(f32x4.mul(p, r), f32x4.splat(c4));
  return f32x4.add(f32x4.mul(p, r), f32x4.splat(c5));
}

/**
 * 2^n on four lanes from y = x + 1.5·2^23 (x rounded to the integer n in y's bits): (n + 127) << 23, as
 * y's low 23 bits are n + 2^22 (mod 2^23) and the rest shifts out.
 */
@inline function pow2Rounded(y: v128): v128 {
  return i32x4.shl(i32x4.add(y, i32x4.splat(127)), 23);
}

/**
 * 2^x on four lanes (Cephes exp2f: n = round(x), 2^(x − n) by a degree-6 polynomial on [−0.5, 0.5], 2^n
 * from the exponent bits); about 2 ulp. Six vector operations fewer than exp4 (no ln 2 split of the
 * reduction), for callers that can fold log2 e into a factor they already multiply by (the scan: Δ).
 * Clamped to [−126, 127] with pmin/pmax, so a NaN still comes out NaN.
 */
@inline export function exp2_4(x: v128): v128 {
  x = f32x4.pmax(f32x4.pmin(x, f32x4.splat(127.0)), f32x4.splat(-126.0));
  const y = f32x4.add(x, f32x4.splat(12582912.0));
  const f = f32x4.sub(x, f32x4.sub(y, f32x4.splat(12582912.0)));
  const p = horner5(f, 1.535336188319500e-4, 1.339887440266574e-3, 9.618437357674640e-3, 5.550332471162809e-2, 2.402264791363012e-1, 6.931472028550421e-1);
  return f32x4.mul(f32x4.add(f32x4.mul(p, f), f32x4.splat(1.0)), pow2Rounded(y));
}

/** Natural log on four lanes for x > 0 (Cephes logf). */
@inline export function log4(x: v128): v128 {
  // x = m · 2^e with m in [sqrt(1/2), sqrt(2)).
  let e = i32x4.sub(i32x4.shr_u(x, 23), i32x4.splat(126));
  let m = v128.or(v128.and(x, i32x4.splat(0x007fffff)), i32x4.splat(0x3f000000)); // [0.5, 1)
  const small = f32x4.lt(m, f32x4.splat(0.707106781186547524));
  e = i32x4.add(e, small); // true lanes are -1
  m = f32x4.sub(f32x4.add(m, v128.and(m, small)), f32x4.splat(1.0));
  const z = f32x4.mul(m, m);
  let y = f32x4.splat(7.0376836292e-2);
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-1.1514610310e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(1.1676998740e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-1.2420140846e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(1.4249322787e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-1.6668057665e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(2.0000714765e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(-2.4999993993e-1));
  y = f32x4.add(f32x4.mul(y, m), f32x4.splat(3.3333331174e-1));
  y = f32x4.mul(f32x4.mul(y, m), z);
  const ef = f32x4.convert_i32x4_s(e);
  y = f32x4.add(y, f32x4.mul(ef, f32x4.splat(-2.12194440e-4)));
  y = f32x4.sub(y, f32x4.mul(z, f32x4.splat(0.5)));
  return f32x4.add(f32x4.add(m, y), f32x4.mul(ef, f32x4.splat(0.693359375)));
}

/** log(1 + u) for u > -1, accurate for small u (Goldberg: log(w)·u/(w − 1) with w = 1 + u rounded). */
@inline export function log1p4(u: v128): v128 {
  const w = f32x4.add(f32x4.splat(1.0), u);
  const d = f32x4.sub(w, f32x4.splat(1.0));
  const r = f32x4.div(f32x4.mul(log4(w), u), d);
  return v128.bitselect(u, r, f32x4.eq(d, f32x4.splat(0.0)));
}

/** torch softplus (beta 1, threshold 20): x above 20, else log(1 + exp(x)). */
@inline export function softplus4(x: v128): v128 {
  const soft = log1p4(exp4(x));
  return v128.bitselect(x, soft, f32x4.gt(x, f32x4.splat(20.0)));
}

@inline export function silu4(x: v128): v128 {
  return f32x4.div(x, f32x4.add(f32x4.splat(1.0), exp4(f32x4.neg(x))));
}

// Scalar helpers are plain functions (binaryen inlines them): AssemblyScript's @inline has resolved a
// parameter to a same-named variable of the caller.
// Scalars go through the vector functions: AssemblyScript's own Math.exp reads lookup tables from a data
// segment in linear memory, which this module must not have (the memory belongs to the host's allocator).
export function softplus(v: f32): f32 {
  return f32x4.extract_lane(softplus4(f32x4.splat(v)), 0);
}

export function silu(v: f32): f32 {
  return f32x4.extract_lane(silu4(f32x4.splat(v)), 0);
}

export function expf(v: f32): f32 {
  return f32x4.extract_lane(exp4(f32x4.splat(v)), 0);
}

/** Sum of the four lanes. */
@inline export function hsum(v: v128): f32 {
  const s = f32x4.add(v, i32x4.shuffle(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(f32x4.add(s, i32x4.shuffle(s, s, 1, 0, 3, 2)), 0);
}
