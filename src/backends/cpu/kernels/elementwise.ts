import type { BinaryOp, UnaryOp } from "../../backend.js";

/** torch.nn.functional.softplus with beta 1 and threshold 20 (linear above it). */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Exact GELU (erf form, torch's default): 0.5·x·(1 + erf(x/√2)) = 0.5·x·erfc(−x/√2). */
export function gelu(x: number): number {
  return 0.5 * x * erfc(-x / Math.SQRT2);
}

/** erf by its Taylor series, for |z| < 3 (double precision to ~1e-14 there). */
function erfSeries(z: number): number {
  const z2 = z * z;
  let term = z;
  let sum = z;
  for (let n = 1; n < 80; n++) {
    term *= -z2 / n;
    const add = term / (2 * n + 1);
    sum += add;
    if (Math.abs(add) < 1e-17 * Math.abs(sum)) break;
  }
  return (2 / Math.sqrt(Math.PI)) * sum;
}

/** erfc(z) to near double precision: series near 0, a continued fraction (modified Lentz) in the tails. */
export function erfc(z: number): number {
  if (Math.abs(z) < 3) return 1 - erfSeries(z);
  if (z < 0) return 2 - erfc(-z);
  // erfc(z) = exp(-z²)/√π · 1/(z + (1/2)/(z + 1/(z + (3/2)/(z + ...))))
  const tiny = 1e-300;
  let f = z;
  let c = z;
  let d = 0;
  for (let k = 1; k < 200; k++) {
    const a = k / 2;
    d = z + a * d;
    d = Math.abs(d) < tiny ? tiny : d;
    c = z + a / c;
    c = Math.abs(c) < tiny ? tiny : c;
    d = 1 / d;
    const delta = c * d;
    f *= delta;
    if (Math.abs(delta - 1) < 1e-16) break;
  }
  return Math.exp(-z * z) / Math.sqrt(Math.PI) / f;
}

/** GELU with the tanh approximation (torch's approximate="tanh"; GPT-2 and flash_attn's MLPs). */
export function geluTanh(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

const UNARY: Record<UnaryOp, (x: number) => number> = {
  silu,
  softplus,
  exp: Math.exp,
  neg: (x) => -x,
  gelu,
  relu: (x) => (x > 0 ? x : 0),
  relu2: (x) => (x > 0 ? x * x : 0),
  gelu_tanh: geluTanh,
};

export function unaryKernel(op: UnaryOp, x: Float32Array, out: Float32Array): void {
  const f = UNARY[op];
  for (let i = 0; i < x.length; i++) out[i] = f(x[i]);
}

/** b repeats over a's leading dims (b.length divides a.length). */
export function binaryKernel(op: BinaryOp, a: Float32Array, b: Float32Array, out: Float32Array): void {
  const nb = b.length;
  for (let base = 0; base < a.length; base += nb) {
    if (op === "add") for (let i = 0; i < nb; i++) out[base + i] = a[base + i] + b[i];
    else if (op === "mul") for (let i = 0; i < nb; i++) out[base + i] = a[base + i] * b[i];
    else for (let i = 0; i < nb; i++) out[base + i] = a[base + i] - b[i];
  }
}
