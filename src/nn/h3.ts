import type { DiagSsmParams } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { diagSsmConv, diagSsmStep, linear, shiftSsm } from "../ops/index.js";
import type { LayerState } from "../models/state.js";
import type { LayerContext, SequenceLayer } from "./layer.js";
import { diagSsmWeights, diagStateShape } from "./s4d.js";

export interface H3Weights {
  /** q, k, v projections [D, D] with biases. */
  q: Tensor;
  qBias: Tensor | null;
  k: Tensor;
  kBias: Tensor | null;
  v: Tensor;
  vBias: Tensor | null;
  /** Shift SSM on k: input / output vectors [D, N] (its FIR taps are derived by the op) and its skip [D] (ssm_k_D). */
  shiftB: Tensor;
  shiftC: Tensor;
  shiftD: Tensor;
  /** Diagonal SSM of each of the H = D / P heads, and its skip [H]. */
  ssm: DiagSsmParams;
  D: Tensor;
  /** Output projection [D, D]; its input columns are in the (h, d2) order the SSM op produces. */
  out: Tensor;
  outBias: Tensor | null;
}

export interface H3Shape {
  dModel: number;
  /** P: channels per head; each head's SSM runs over the P² products k[d1]·v[d2]. */
  headDim: number;
  chunkSize: number;
}

/**
 * The H3 mixer (HazyResearch/H3 src/models/ssm/h3.py):
 *   q, k, v = projections of x;  k ← ShiftSSM(k) + ssm_k_D·k;
 *   per head h: z[d1, d2] = DiagSSM_h(k[d1]·v[d2]) + D[h]·k[d1]·v[d2];  y[h, d2] = Σ_d1 q[d1]·z[d1, d2];
 *   output_linear(y).
 * `forward` runs the shift SSM as a direct FIR convolution and the diagonal SSM as an FFT convolution
 * (chunked with state passing for long sequences) and returns both states; `step` advances them by one
 * token. State per sequence: the shift SSM's [D, N] and the diagonal SSM's complex [H, P, P, N/2, 2].
 */
export class H3Mixer implements SequenceLayer {
  readonly kind = "h3";

  constructor(readonly w: H3Weights, readonly shape: H3Shape) {}

  stateShapes(): Record<string, number[]> {
    return { shift: [...this.w.shiftB.shape], ssm: diagStateShape(this.w.ssm, this.shape.headDim) };
  }

  cacheShapesPerToken(): Record<string, number[]> {
    return {};
  }

  weights(): Tensor[] {
    const w = this.w;
    return [w.q, w.qBias, w.k, w.kBias, w.v, w.vBias, w.shiftB, w.shiftC, w.shiftD, ...diagSsmWeights(w.ssm), w.D, w.out, w.outBias]
      .filter((t): t is Tensor => t !== null);
  }

  forward(x: Tensor, state: LayerState | null, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(x, state, false);
  }

  step(x: Tensor, state: LayerState, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(x, state, true);
  }

  private run(x: Tensor, state: LayerState | null, single: boolean): { y: Tensor; state: LayerState } {
    const { w } = this;
    const q = linear(x, w.q, w.qBias);
    const k = linear(x, w.k, w.kBias);
    const v = linear(x, w.v, w.vBias);
    // The shift SSM's parallel mode with L = 1 is exactly its recurrent step.
    const shifted = shiftSsm({ u: k, taps: null, B: w.shiftB, C: w.shiftC, D: w.shiftD, state: state?.shift ?? null });
    const args = {
      u: shifted.y, v, q, headDim: this.shape.headDim, D: w.D, ssm: w.ssm, state: state?.ssm ?? null, chunkSize: this.shape.chunkSize,
    };
    const ssm = single ? diagSsmStep(args) : diagSsmConv(args);
    return { y: linear(ssm.y, w.out, w.outBias), state: { shift: shifted.state, ssm: ssm.state } };
  }
}
