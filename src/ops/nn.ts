import { check, HippoError, shapeString } from "../errors.js";
import type { NormSpec, UnaryOp } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { add } from "./elementwise.js";
import { backendOf, expectFloat, expectShape } from "./validate.js";

/** Rows of `table` [V, D] for each i32 id → [...ids.shape, D]. */
export function embedding(table: Tensor, ids: Tensor): Tensor {
  const b = backendOf("embedding", table, ids);
  check(table.rank === 2, `embedding: table must be [vocab, dim], got ${shapeString(table.shape)}`);
  expectFloat("embedding", "table", table);
  check(ids.dtype === "i32", `embedding: ids must be i32, got ${ids.dtype}`);
  return b.embedding(table, ids);
}

/** x [..., K] · weight[N, K]ᵀ + bias → [..., N] (torch.nn.Linear). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return checkedLinear("linear", x, weight, bias).linear(x, weight, bias);
}

/**
 * op(linear(x, weight, bias)): an activation after a projection (an MLP's first layer), one kernel on
 * backends with linearActivation where they take it, the two ops otherwise.
 */
export function linearActivation(x: Tensor, weight: Tensor, bias: Tensor | null, op: UnaryOp): Tensor {
  const b = checkedLinear("linearActivation", x, weight, bias);
  return b.linearActivation?.(x, weight, bias, op) ?? b.unary(op, b.linear(x, weight, bias));
}

function checkedLinear(op: string, x: Tensor, weight: Tensor, bias: Tensor | null) {
  const b = backendOf(op, x, weight, bias);
  expectFloat(op, "input", x);
  expectFloat(op, "weight", weight);
  check(weight.rank === 2, () => `${op}: weight must be [out, in], got ${shapeString(weight.shape)}`);
  const K = weight.shape[1];
  if (x.shape[x.rank - 1] !== K) {
    throw new HippoError(`${op}: input ${shapeString(x.shape)} does not match weight ${shapeString(weight.shape)} (last dim must be ${K})`);
  }
  if (bias) expectShape(op, "bias", bias, [weight.shape[0]]);
  return b;
}

export function rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
  const b = backendOf("rmsNorm", x, weight);
  expectShape("rmsNorm", "weight", weight, [x.shape[x.rank - 1]]);
  return b.rmsNorm(x, weight, eps);
}

export function layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
  const b = backendOf("layerNorm", x, weight, bias);
  expectShape("layerNorm", "weight", weight, [x.shape[x.rank - 1]]);
  if (bias) expectShape("layerNorm", "bias", bias, [x.shape[x.rank - 1]]);
  return b.layerNorm(x, weight, bias, eps);
}

/** Mamba-2's gated RMSNorm: rmsnorm(y · silu(z)) over groups of `groupSize` channels, times weight. */
export function gatedRmsNorm(y: Tensor, z: Tensor, weight: Tensor, groupSize: number, eps: number): Tensor {
  const b = backendOf("gatedRmsNorm", y, z, weight);
  expectGatedNorm("gatedRmsNorm", y, z, weight, "weight", groupSize);
  return b.gatedRmsNorm(y, z, weight, groupSize, eps);
}

/** The gated norm's arguments fit together (the gate like y, the weight over y's width, whole groups); returns the width. */
function expectGatedNorm(op: string, y: Tensor, z: Tensor, weight: Tensor, weightName: string, groupSize: number): number {
  const E = y.shape[y.rank - 1];
  expectShape(op, "gate", z, y.shape);
  expectShape(op, weightName, weight, [E]);
  check(groupSize > 0 && E % groupSize === 0, `${op}: group size ${groupSize} does not divide width ${E}`);
  return E;
}

/**
 * linear(gatedRmsNorm(y, z, normWeight, groupSize, eps), weight, bias): Mamba-2's output projection with
 * its gated norm. One fused pass where the backend has one; the two ops otherwise, with the same results.
 */
export function gatedNormLinear(
  y: Tensor, z: Tensor, normWeight: Tensor, groupSize: number, eps: number, weight: Tensor, bias: Tensor | null,
): Tensor {
  const b = backendOf("gatedNormLinear", y, z, normWeight, weight, bias);
  if (b.gatedNormLinear) {
    const E = expectGatedNorm("gatedNormLinear", y, z, normWeight, "norm weight", groupSize);
    check(weight.rank === 2 && weight.shape[1] === E, `gatedNormLinear: weight ${weight.toString()} does not take inputs of width ${E}`);
    if (bias) expectShape("gatedNormLinear", "bias", bias, [weight.shape[0]]);
    return b.gatedNormLinear(y, z, normWeight, groupSize, eps, weight, bias);
  }
  return linear(gatedRmsNorm(y, z, normWeight, groupSize, eps), weight, bias);
}

/** The norm `spec` describes, over the last axis of x. */
export function norm(x: Tensor, spec: NormSpec): Tensor {
  return spec.kind === "rms" ? rmsNorm(x, spec.weight, spec.eps) : layerNorm(x, spec.weight, spec.bias, spec.eps);
}

/**
 * A residual add followed by a norm: sum = a + b, normed = norm(sum). One fused pass where the backend has
 * one (fewer dispatches per decoded token on the GPU); the two ops otherwise, with the same results.
 */
export function addNorm(a: Tensor, b: Tensor, spec: NormSpec): { sum: Tensor; normed: Tensor } {
  const backend = backendOf("addNorm", a, b, spec.weight, spec.bias);
  expectShape("addNorm", "addend", b, a.shape);
  const D = a.shape[a.rank - 1];
  expectShape("addNorm", "weight", spec.weight, [D]);
  if (spec.bias) expectShape("addNorm", "bias", spec.bias, [D]);
  const fused = a.dtype === "f32" && b.dtype === "f32" ? backend.addNorm?.(a, b, spec) : null;
  if (fused) return fused;
  const sum = add(a, b);
  return { sum, normed: norm(sum, spec) };
}
