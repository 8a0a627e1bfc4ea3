// Shared helpers for the op tests: a seeded PRNG, 16-bit float encoders/decoders written here (independent of
// src/), float64 reference math (erf), tolerance checks and HippoError assertions. No tests in this file.
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import type { Tensor } from "../../src/tensor/tensor.js";

/** mulberry32: a tiny deterministic PRNG, so every failure reproduces from its seed. */
export class Prng {
  private s: number;

  constructor(seed: number) {
    this.s = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  uniform(lo: number, hi: number): number {
    return lo + (hi - lo) * this.next();
  }

  /** Integer in [lo, hi). */
  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo));
  }

  /** n uniform values in [lo, hi), rounded to f32. */
  f32(n: number, lo = -1, hi = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.uniform(lo, hi);
    return out;
  }

  ints(n: number, lo: number, hi: number): Int32Array {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.int(lo, hi);
    return out;
  }
}

export const prod = (shape: readonly number[]): number => shape.reduce((a, b) => a * b, 1);

// ---------------------------------------------------------------------------------------------------------
// 16-bit floats, written from the IEEE definitions (round to nearest, ties to even, after Math.fround).

const scratchF32 = new Float32Array(1);
const scratchU32 = new Uint32Array(scratchF32.buffer);

function f32Bits(x: number): number {
  scratchF32[0] = x;
  return scratchU32[0];
}

function bitsToF32(bits: number): number {
  scratchU32[0] = bits >>> 0;
  return scratchF32[0];
}

function roundHalfEven(v: number): number {
  const f = Math.floor(v);
  const d = v - f;
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

/** f32 value (Math.fround of x) → IEEE half bits. */
export function encodeF16(x: number): number {
  const v = Math.fround(x);
  if (Number.isNaN(v)) return 0x7e00;
  const sign = v < 0 || Object.is(v, -0) ? 0x8000 : 0;
  const a = Math.abs(v);
  if (a >= 65520) return sign | 0x7c00; // 65520 is the tie between 65504 and 2^16: to even, i.e. inf
  if (a < 2 ** -14) return sign | roundHalfEven(a * 2 ** 24); // subnormal; 1024 rolls into the smallest normal
  let e = 0;
  while (2 ** (e + 1) <= a) e++;
  while (2 ** e > a) e--;
  let q = roundHalfEven((a / 2 ** e - 1) * 1024);
  if (q === 1024) {
    q = 0;
    e++;
  }
  if (e + 15 >= 31) return sign | 0x7c00;
  return sign | ((e + 15) << 10) | q;
}

export function decodeF16(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const e = (bits >> 10) & 0x1f;
  const m = bits & 0x3ff;
  if (e === 0x1f) return m ? NaN : sign * Infinity;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

/** f32 value → bfloat16 bits (top half of the f32, rounded to nearest even). */
export function encodeBf16(x: number): number {
  const v = Math.fround(x);
  if (Number.isNaN(v)) return 0x7fc0;
  const b = f32Bits(v);
  return ((b + 0x7fff + ((b >>> 16) & 1)) >>> 16) & 0xffff;
}

export function decodeBf16(bits: number): number {
  return bitsToF32((bits & 0xffff) << 16);
}

export type HalfDType = "f16" | "bf16";

/** Packs values as 16-bit bits; also returns the exact values those bits decode to (what a kernel sees). */
export function toHalf(values: ArrayLike<number>, dtype: HalfDType): { bits: Uint16Array; values: Float64Array } {
  const bits = new Uint16Array(values.length);
  const decoded = new Float64Array(values.length);
  for (let i = 0; i < values.length; i++) {
    bits[i] = dtype === "f16" ? encodeF16(values[i]) : encodeBf16(values[i]);
    decoded[i] = dtype === "f16" ? decodeF16(bits[i]) : decodeBf16(bits[i]);
  }
  return { bits, values: decoded };
}

// ---------------------------------------------------------------------------------------------------------
// float64 reference math.

const TWO_OVER_SQRT_PI = 2 / Math.sqrt(Math.PI);

/** erf by its Maclaurin series (|x| < 2, float64-accurate there) or 1 - erfc (continued fraction). */
export function erf(x: number): number {
  const a = Math.abs(x);
  if (a >= 2) return Math.sign(x) * (1 - erfc(a));
  // erf(a) = 2/√π Σ (-1)^n a^(2n+1) / (n! (2n+1))
  let p = a;
  let sum = a;
  for (let n = 1; n < 200; n++) {
    p *= (-a * a) / n;
    const term = p / (2 * n + 1);
    sum += term;
    if (Math.abs(term) < 1e-18 * Math.abs(sum)) break;
  }
  return Math.sign(x) * TWO_OVER_SQRT_PI * sum;
}

/** erfc without cancellation for large x: continued fraction erfc(x) = e^(-x²)/√π / (x + ½/(x + 1/(x + 3/2/(x + …)))). */
export function erfc(x: number): number {
  if (x < 2) return 1 - erf(x);
  let f = x;
  for (let k = 4000; k >= 1; k--) f = x + k / 2 / f;
  return Math.exp(-x * x) / Math.sqrt(Math.PI) / f;
}

/** Exact (erf) GELU, without cancellation on the negative side. */
export function geluRef(x: number): number {
  return x >= 0 ? 0.5 * x * (1 + erf(x / Math.SQRT2)) : 0.5 * x * erfc(-x / Math.SQRT2);
}

export function softplusRef(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

export function siluRef(x: number): number {
  return x / (1 + Math.exp(-x));
}

// ---------------------------------------------------------------------------------------------------------
// Comparisons.

/**
 * max_i |got_i - want_i| / max(|want_i|, floor). The floor (default 1e-2 · max|want|) keeps entries that
 * are tiny through cancellation (sums of products, differences) from dominating: for them an f32 kernel can
 * only promise a few ulps of the largest magnitude involved. Pass a tiny floor for a purely relative check.
 */
export function maxRelError(got: ArrayLike<number>, want: ArrayLike<number>, floor?: number): number {
  return worstEntry(got, want, floor).err;
}

/** The largest relative error and where it is (a NaN mismatch counts as Infinity). */
function worstEntry(got: ArrayLike<number>, want: ArrayLike<number>, floor?: number): { err: number; index: number } {
  assert.equal(got.length, want.length, "length mismatch");
  let maxAbs = 0;
  for (let i = 0; i < want.length; i++) if (Number.isFinite(want[i])) maxAbs = Math.max(maxAbs, Math.abs(want[i]));
  const fl = floor ?? Math.max(1e-2 * maxAbs, 1e-30);
  let worst = 0, index = -1;
  for (let i = 0; i < want.length; i++) {
    const g = got[i], w = want[i];
    if (Number.isNaN(g) !== Number.isNaN(w)) return { err: Infinity, index: i };
    if (Number.isNaN(w) || g === w) continue;
    const e = Math.abs(g - w) / Math.max(Math.abs(w), fl);
    if (!(e <= worst)) { // also catches e = NaN (inf - inf)
      worst = Number.isNaN(e) ? Infinity : e;
      index = i;
    }
  }
  return { err: worst, index };
}

export interface CloseOptions {
  tol?: number;
  floor?: number;
}

export function assertClose(got: ArrayLike<number>, want: ArrayLike<number>, what: string, opts: CloseOptions = {}): void {
  const tol = opts.tol ?? 1e-5;
  const { err, index: i } = worstEntry(got, want, opts.floor);
  if (!(err <= tol)) {
    assert.fail(`${what}: max relative error ${err.toExponential(3)} > ${tol} (worst at flat index ${i}: got ${got[i]}, want ${want[i]})`);
  }
}

/** Reads a tensor and checks its shape and dtype; returns the values. */
export async function readChecked(t: Tensor, shape: readonly number[], what: string): Promise<Float32Array> {
  assert.deepEqual([...t.shape], [...shape], `${what}: shape`);
  assert.equal(t.dtype, "f32", `${what}: dtype`);
  const v = await t.read();
  assert.ok(v instanceof Float32Array, `${what}: read() gives a Float32Array`);
  assert.equal(v.length, prod(shape), `${what}: length`);
  return v;
}

/** fn must throw a HippoError whose message contains every given fragment. */
export function assertHippoError(fn: () => unknown, ...fragments: (string | RegExp)[]): HippoError {
  let caught: unknown = null;
  try {
    fn();
  } catch (err) {
    caught = err;
  }
  assert.ok(caught !== null, `expected a HippoError mentioning ${fragments.join(", ")}, but nothing was thrown`);
  assert.ok(caught instanceof HippoError, `expected a HippoError, got ${String(caught)}`);
  for (const f of fragments) {
    const ok = typeof f === "string" ? caught.message.includes(f) : f.test(caught.message);
    assert.ok(ok, `HippoError message ${JSON.stringify(caught.message)} should mention ${String(f)}`);
  }
  return caught;
}
