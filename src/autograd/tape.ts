import { HippoError, shapeString } from "../errors.js";
import type { Tensor } from "../tensor/tensor.js";

/** A gradient on the host, flat row-major like the tensor it belongs to; null where none flows. */
export type Grad = Float32Array | null;

/** One recorded op: its backward maps the gradients of its outputs to those of its inputs. */
export interface TapeNode {
  readonly op: string;
  readonly inputs: readonly (Tensor | null)[];
  readonly outputs: readonly Tensor[];
  /** Gradients per output (null for outputs nothing depends on) → gradients per input (aligned with inputs). */
  backward(gradOutputs: readonly Grad[]): Grad[] | Promise<Grad[]>;
}

/**
 * Reverse-mode autodiff record. Ops run eagerly; while a tape is recording, every op with an input that
 * needs a gradient appends a node whose backward closes over the host arrays it needs (not the tensors:
 * forward scopes dispose intermediates, and the arrays stay valid).
 */
export class Tape {
  private readonly nodes: TapeNode[] = [];
  private readonly tracked = new Set<number>();

  /** Marks tensors (parameters) whose gradients are wanted; ops on them get recorded. */
  watch(...tensors: Tensor[]): void {
    for (const t of tensors) this.tracked.add(t.id);
  }

  requiresGrad(t: Tensor | null | undefined): boolean {
    return !!t && this.tracked.has(t.id);
  }

  get length(): number {
    return this.nodes.length;
  }

  /** Appends a node if any input needs a gradient; its outputs then need one too. */
  record(node: TapeNode): void {
    if (!node.inputs.some((t) => this.requiresGrad(t))) return;
    this.nodes.push(node);
    for (const t of node.outputs) this.tracked.add(t.id);
  }

  /**
   * Gradients of a scalar `loss` (or of Σ seed·output for a given seed) with respect to `wrt`.
   * Intermediate gradients are dropped as soon as their node has run. Asynchronous because a rule may
   * wait for the GPU (WebGpuBackwardKernels); nodes still run one at a time, in reverse order.
   */
  async backward(loss: Tensor, wrt: readonly Tensor[], seed?: Float32Array): Promise<Map<Tensor, Float32Array>> {
    if (!seed && loss.size !== 1) throw new HippoError(`backward: loss must be a scalar, got shape ${shapeString(loss.shape)}`);
    const grads = new Map<number, Float32Array>();
    grads.set(loss.id, seed ?? Float32Array.of(1));
    const wanted = new Set(wrt.map((t) => t.id));
    for (let i = this.nodes.length - 1; i >= 0; i--) {
      const node = this.nodes[i];
      const gOut = node.outputs.map((o) => grads.get(o.id) ?? null);
      if (gOut.every((g) => g === null)) continue;
      const gIn = await node.backward(gOut);
      for (const o of node.outputs) if (!wanted.has(o.id)) grads.delete(o.id);
      node.inputs.forEach((t, k) => {
        const g = gIn[k];
        if (!t || !g || !this.tracked.has(t.id)) return;
        if (g.length !== t.size) {
          throw new Error(`backward of ${node.op}: gradient of input ${k} has ${g.length} values, tensor ${shapeString(t.shape)} has ${t.size}`);
        }
        const acc = grads.get(t.id);
        if (!acc) grads.set(t.id, g);
        else for (let j = 0; j < g.length; j++) acc[j] += g[j];
      });
    }
    const out = new Map<Tensor, Float32Array>();
    for (const t of wrt) out.set(t, grads.get(t.id) ?? new Float32Array(t.size));
    return out;
  }
}
