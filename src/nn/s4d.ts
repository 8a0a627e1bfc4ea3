import type { DiagSsmParams } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { diagSsmConv, diagSsmStep, gelu, linear } from "../ops/index.js";
import type { LayerState } from "../models/state.js";
import type { LayerContext, SequenceLayer } from "./layer.js";

/**
 * Parallel-mode chunk length of the diagonal SSM: sequences up to this long are one FFT convolution;
 * longer ones are convolved chunk by chunk with the SSM state passed between chunks, so scratch memory
 * stays O(chunk) per head at any length and the cost stays linear in L. On one CPU thread, blocks of
 * 256 to 4096 steps ran within ~10% of each other at L = 16,384 (8 heads, 32 modes); 2048 keeps a
 * block's FFT buffers in L2. A GPU backend would size the block to its fast memory instead.
 */
export const DEFAULT_SSM_CHUNK = 2048;

/** The complex state shape of a diagonal SSM over H heads with P² convolved channels each. */
export function diagStateShape(ssm: DiagSsmParams, headDim: number): number[] {
  const [H, N] = ssm.A.shape;
  return [H, headDim, headDim, N, 2];
}

export function diagSsmWeights(ssm: DiagSsmParams): Tensor[] {
  return [ssm.logDt, ssm.A, ssm.B, ssm.C];
}

export interface S4DWeights {
  ssm: DiagSsmParams;
  /** [H] skip. */
  D: Tensor;
  /** [H, H] position-wise output transform, and its bias. */
  out: Tensor;
  outBias: Tensor | null;
}

export interface S4DShape {
  activation: "gelu" | "none";
  chunkSize: number;
}

/**
 * The S4D mixer: the diagonal SSM alone, one per channel (no shift SSM, no multiplicative gating):
 * y = out(act(SSM(x) + D·x)). The H3 paper's baseline. State: the complex SSM state per channel.
 */
export class S4DMixer implements SequenceLayer {
  readonly kind = "s4d";

  constructor(readonly w: S4DWeights, readonly shape: S4DShape) {}

  stateShapes(): Record<string, number[]> {
    return { ssm: diagStateShape(this.w.ssm, 1) };
  }

  cacheShapesPerToken(): Record<string, number[]> {
    return {};
  }

  weights(): Tensor[] {
    return [...diagSsmWeights(this.w.ssm), this.w.D, this.w.out, this.w.outBias].filter((t): t is Tensor => t !== null);
  }

  forward(x: Tensor, state: LayerState | null, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(x, state, false);
  }

  step(x: Tensor, state: LayerState, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(x, state, true);
  }

  private run(x: Tensor, state: LayerState | null, single: boolean): { y: Tensor; state: LayerState } {
    const args = { u: x, v: null, q: null, headDim: 1, D: this.w.D, ssm: this.w.ssm, state: state?.ssm ?? null, chunkSize: this.shape.chunkSize };
    const r = single ? diagSsmStep(args) : diagSsmConv(args);
    const h = this.shape.activation === "gelu" ? gelu(r.y) : r.y;
    return { y: linear(h, this.w.out, this.w.outBias), state: { ssm: r.state } };
  }
}
