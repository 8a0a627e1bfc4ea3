import { HippoError, shapeString } from "../errors.js";
import type { BinaryOp, UnaryOp } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { backendOf, expectFloat } from "./validate.js";

function unary(op: UnaryOp, x: Tensor): Tensor {
  const b = backendOf(op, x);
  expectFloat(op, "input", x);
  return b.unary(op, x);
}

function binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
  const backend = backendOf(op, a, b);
  const suffix = a.shape.slice(a.rank - b.rank);
  if (b.rank > a.rank || suffix.some((d, i) => d !== b.shape[i])) {
    throw new HippoError(`${op}: shape ${shapeString(b.shape)} does not broadcast onto ${shapeString(a.shape)}`);
  }
  return backend.binary(op, a, b);
}

export const silu = (x: Tensor): Tensor => unary("silu", x);
export const softplus = (x: Tensor): Tensor => unary("softplus", x);
export const exp = (x: Tensor): Tensor => unary("exp", x);
export const neg = (x: Tensor): Tensor => unary("neg", x);
export const gelu = (x: Tensor): Tensor => unary("gelu", x);
export const relu = (x: Tensor): Tensor => unary("relu", x);
/** relu(x)², NemotronH's MLP activation. */
export const relu2 = (x: Tensor): Tensor => unary("relu2", x);
/** GELU, tanh approximation (flash_attn / GPT-2 MLPs). */
export const geluTanh = (x: Tensor): Tensor => unary("gelu_tanh", x);
/** a + b, with b broadcast over a's leading dims. */
export const add = (a: Tensor, b: Tensor): Tensor => binary("add", a, b);
export const mul = (a: Tensor, b: Tensor): Tensor => binary("mul", a, b);
export const sub = (a: Tensor, b: Tensor): Tensor => binary("sub", a, b);
