import type { BinaryOp, UnaryOp } from "../../backends/backend.js";
import { linearKernel } from "../../backends/cpu/kernels/linear.js";
import { erfc } from "../../backends/cpu/kernels/elementwise.js";
import { sumRows, transpose } from "../host.js";

/** Backward rules of the dense ops: each takes the forward's host inputs and the output gradient. */

/** ∂table of embedding: rows scattered-added at the ids. */
export function embeddingBackward(ids: Int32Array, V: number, D: number, g: Float32Array): Float32Array {
  const gt = new Float32Array(V * D);
  for (let i = 0; i < ids.length; i++) {
    const o = ids[i] * D, s = i * D;
    for (let d = 0; d < D; d++) gt[o + d] += g[s + d];
  }
  return gt;
}

/** y [M, N] = x [M, K] · wᵀ + b → (∂x, ∂w, ∂b), each only if asked for. */
export function linearBackward(
  x: Float32Array, w: Float32Array, M: number, K: number, N: number, g: Float32Array,
  want: { x: boolean; w: boolean; b: boolean },
): { gx: Float32Array | null; gw: Float32Array | null; gb: Float32Array | null } {
  let gx: Float32Array | null = null;
  let gw: Float32Array | null = null;
  if (want.x) {
    gx = new Float32Array(M * K);
    linearKernel(g, M, N, { dtype: "f32", data: transpose(w, N, K) }, K, null, gx);
  }
  if (want.w) {
    gw = new Float32Array(N * K);
    linearKernel(transpose(g, M, N), N, M, { dtype: "f32", data: transpose(x, M, K) }, K, null, gw);
  }
  return { gx, gw, gb: want.b ? sumRows(g, N) : null };
}

export function rmsNormBackward(x: Float32Array, w: Float32Array, D: number, eps: number, g: Float32Array): { gx: Float32Array; gw: Float32Array } {
  const gx = new Float32Array(x.length);
  const gw = new Float32Array(D);
  for (let o = 0; o < x.length; o += D) {
    let ss = 0;
    for (let d = 0; d < D; d++) ss += x[o + d] * x[o + d];
    const r = 1 / Math.sqrt(ss / D + eps);
    let dot = 0;
    for (let d = 0; d < D; d++) {
      const a = g[o + d] * w[d];
      dot += a * x[o + d];
      gw[d] += g[o + d] * x[o + d] * r;
    }
    const c = (r * r * r * dot) / D;
    for (let d = 0; d < D; d++) gx[o + d] = r * g[o + d] * w[d] - c * x[o + d];
  }
  return { gx, gw };
}

export function layerNormBackward(
  x: Float32Array, w: Float32Array, D: number, eps: number, g: Float32Array,
): { gx: Float32Array; gw: Float32Array; gb: Float32Array } {
  const gx = new Float32Array(x.length);
  const gw = new Float32Array(D);
  const gb = new Float32Array(D);
  const xhat = new Float64Array(D);
  for (let o = 0; o < x.length; o += D) {
    let mean = 0;
    for (let d = 0; d < D; d++) mean += x[o + d];
    mean /= D;
    let v = 0;
    for (let d = 0; d < D; d++) v += (x[o + d] - mean) ** 2;
    const r = 1 / Math.sqrt(v / D + eps);
    let sa = 0, sax = 0;
    for (let d = 0; d < D; d++) {
      xhat[d] = (x[o + d] - mean) * r;
      const a = g[o + d] * w[d];
      sa += a;
      sax += a * xhat[d];
      gw[d] += g[o + d] * xhat[d];
      gb[d] += g[o + d];
    }
    for (let d = 0; d < D; d++) gx[o + d] = r * (g[o + d] * w[d] - sa / D - (xhat[d] * sax) / D);
  }
  return { gx, gw, gb };
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

/** d op(x) / dx, given x (and y = op(x) where that is cheaper). */
function unaryDerivative(op: UnaryOp, x: number, y: number): number {
  switch (op) {
    case "silu": {
      const s = 1 / (1 + Math.exp(-x));
      return s * (1 + x * (1 - s));
    }
    case "softplus": return x > 20 ? 1 : 1 / (1 + Math.exp(-x));
    case "exp": return y;
    case "neg": return -1;
    case "relu": return x > 0 ? 1 : 0;
    case "relu2": return x > 0 ? 2 * x : 0;
    case "gelu": return 0.5 * erfc(-x / Math.SQRT2) + (x * Math.exp(-0.5 * x * x)) / Math.sqrt(2 * Math.PI);
    case "gelu_tanh": {
      const u = SQRT_2_OVER_PI * (x + 0.044715 * x * x * x);
      const t = Math.tanh(u);
      return 0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * 0.044715 * x * x);
    }
  }
}

export function unaryBackward(op: UnaryOp, x: Float32Array, y: Float32Array, g: Float32Array): Float32Array {
  const gx = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) gx[i] = g[i] * unaryDerivative(op, x[i], y[i]);
  return gx;
}

/** a op b with b broadcast over a's leading dims (b.length divides a.length). */
export function binaryBackward(
  op: BinaryOp, a: Float32Array, b: Float32Array, g: Float32Array, want: { a: boolean; b: boolean },
): { ga: Float32Array | null; gb: Float32Array | null } {
  const W = b.length;
  let ga: Float32Array | null = null;
  let gb: Float32Array | null = null;
  if (want.a) {
    if (op === "mul") {
      ga = new Float32Array(a.length);
      for (let i = 0; i < a.length; i++) ga[i] = g[i] * b[i % W];
    } else ga = g.slice();
  }
  if (want.b) {
    if (op === "mul") {
      gb = new Float32Array(W);
      for (let i = 0; i < a.length; i++) gb[i % W] += g[i] * a[i];
    } else {
      gb = W === g.length ? g.slice() : sumRows(g, W);
      if (op === "sub") for (let j = 0; j < W; j++) gb[j] = -gb[j];
    }
  }
  return { ga, gb };
}

/** Columns [start, start + length) of rows of width W: the gradient lands back in those columns. */
export function sliceLastBackward(g: Float32Array, W: number, start: number, length: number): Float32Array {
  const rows = g.length / length;
  const gx = new Float32Array(rows * W);
  for (let r = 0; r < rows; r++) gx.set(g.subarray(r * length, (r + 1) * length), r * W + start);
  return gx;
}
