import { HippoError, shapeString } from "../errors.js";
import { memoryTensorSource } from "../io/memory-source.js";
import type { RawTensor } from "../io/raw-tensor.js";
import { WeightLoader } from "../models/weights.js";
import { exp, neg, reshape } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import type { GradBackend } from "../autograd/grad-backend.js";

/**
 * A WeightLoader over trainable parameters: model builders get the parameter tensors themselves
 * (not copies), and tensors derived from them (A = -exp(A_log), reshaped conv filters) are made with
 * ops, so a forward pass of the built model is differentiable with respect to every parameter.
 */
export class ParameterLoader extends WeightLoader {
  constructor(readonly params: ReadonlyMap<string, Tensor>, backend: GradBackend, where: string) {
    super(memoryTensorSource(shapesOnly(params), where), backend, where);
  }

  override get differentiable(): boolean {
    return true;
  }

  private param(names: string | readonly string[], shape: readonly number[], why: string): Tensor {
    return this.params.get(this.info(typeof names === "string" ? [names] : names, shape, why))!;
  }

  override async matrix(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.param(names, shape, why);
  }

  override async table(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.param(names, shape, why);
  }

  override async vector(names: string | readonly string[], shape: readonly number[], why: string): Promise<Tensor> {
    return this.param(names, shape, why);
  }

  override async floats(names: string | readonly string[], _shape: readonly number[], _why: string): Promise<Float32Array> {
    const name = typeof names === "string" ? names : names[0];
    throw new HippoError(`${this.where}: '${name}' would be transformed outside autograd; this layer option cannot be trained`);
  }

  override async reshaped(name: string, stored: readonly number[], shape: readonly number[], why: string): Promise<Tensor> {
    return reshape(this.param(name, stored, why), shape);
  }

  override async negExp(name: string, shape: readonly number[], why: string): Promise<Tensor> {
    return neg(exp(this.param(name, shape, why)));
  }
}

/** Shape-only stand-ins, so the base loader's name resolution and shape checks work unchanged. */
function shapesOnly(params: ReadonlyMap<string, Tensor>): Map<string, RawTensor> {
  const out = new Map<string, RawTensor>();
  for (const [name, t] of params) {
    if (t.dtype !== "f32") throw new HippoError(`parameter '${name}' ${shapeString(t.shape)} must be f32 to train, got ${t.dtype}`);
    out.set(name, { dtype: "F32", shape: [...t.shape], bytes: new Uint8Array(0) });
  }
  return out;
}
