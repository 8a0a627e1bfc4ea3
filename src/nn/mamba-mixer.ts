import type { Tensor } from "../tensor/tensor.js";
import { causalConv1d, linear, selectiveScan, selectiveStateUpdate, splitLast } from "../ops/index.js";
import type { LayerState } from "../models/state.js";
import type { LayerContext, SequenceLayer } from "./layer.js";

export interface MambaMixerWeights {
  inProj: Tensor; // [2E, D]
  inProjBias: Tensor | null;
  convWeight: Tensor; // [E, K]
  convBias: Tensor | null;
  xProj: Tensor; // [R + 2N, E]
  dtProj: Tensor; // [E, R]
  dtProjBias: Tensor; // [E]
  A: Tensor; // [E, N], already -exp(A_log)
  D: Tensor; // [E]
  outProj: Tensor; // [D, E]
  outProjBias: Tensor | null;
}

export interface MambaMixerShape {
  dInner: number;
  dState: number;
  dtRank: number;
  dConv: number;
}

/**
 * The Mamba (S6) mixer: in_proj → (x, z); x → causal conv → silu → x_proj → (dt, B, C);
 * selective scan with softplus(dt_proj(dt) + bias), D skip and silu(z) gate; out_proj.
 * `forward` runs the whole sequence at once; `step` one token from the carried state.
 */
export class MambaMixer implements SequenceLayer {
  readonly kind = "mamba";

  constructor(readonly w: MambaMixerWeights, readonly shape: MambaMixerShape) {}

  /** The conv window (last K-1 inputs) and the SSM state, per sequence. */
  stateShapes(): Record<string, number[]> {
    const { dInner, dState, dConv } = this.shape;
    return { conv: [dConv - 1, dInner], ssm: [dInner, dState] };
  }

  cacheShapesPerToken(): Record<string, number[]> {
    return {};
  }

  weights(): Tensor[] {
    return Object.values(this.w).filter((t): t is Tensor => t !== null);
  }

  forward(hidden: Tensor, state: LayerState | null, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(hidden, state, false);
  }

  step(hidden: Tensor, state: LayerState, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(hidden, state, true);
  }

  private run(hidden: Tensor, state: LayerState | null, single: boolean): { y: Tensor; state: LayerState } {
    const { w } = this;
    const { dInner, dState, dtRank } = this.shape;
    const [x, z] = splitLast(linear(hidden, w.inProj, w.inProjBias), [dInner, dInner]);
    const conv = causalConv1d({ x, weight: w.convWeight, bias: w.convBias, state: state?.conv ?? null, activation: "silu" });
    const [dtLow, B, C] = splitLast(linear(conv.y, w.xProj), [dtRank, dState, dState]);
    // dt_proj goes into the scan: a backend may fuse it into its recurrent step (the ops compose it otherwise).
    const args = {
      u: conv.y, delta: dtLow, deltaProj: w.dtProj, A: w.A, B, C, D: w.D, z, deltaBias: w.dtProjBias, deltaSoftplus: true,
      state: state?.ssm ?? null,
    };
    const scan = single ? selectiveStateUpdate(args) : selectiveScan(args);
    return { y: linear(scan.y, w.outProj, w.outProjBias), state: { conv: conv.state, ssm: scan.state } };
  }
}
