import type { BinaryOp, UnaryOp } from "../../backend.js";

/** torch.nn.functional.softplus with beta 1 and threshold 20 (linear above it). */
export function softplus(x: number): number {
  return x > 20 ? x : Math.log1p(Math.exp(x));
}

export function silu(x: number): number {
  return x / (1 + Math.exp(-x));
}

/** Exact GELU (erf form, torch's default), via a high-accuracy erf approximation (|err| < 1.2e-7). */
export function gelu(x: number): number {
  return 0.5 * x * (1 + erf(x / Math.SQRT2));
}

function erf(x: number): number {
  // Numerical Recipes erfc (Chebyshev), accurate to ~1.2e-7 everywhere.
  const z = Math.abs(x);
  const t = 1 / (1 + 0.5 * z);
  const r = t * Math.exp(-z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 +
    t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277)))))))));
  return x >= 0 ? 1 - r : r - 1;
}

const UNARY: Record<UnaryOp, (x: number) => number> = {
  silu,
  softplus,
  exp: Math.exp,
  neg: (x) => -x,
  gelu,
  relu: (x) => (x > 0 ? x : 0),
  relu2: (x) => (x > 0 ? x * x : 0),
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
