import type { Tensor } from "../tensor/tensor.js";
import { causalConv1d, gatedNormLinear, linear, reshape, splitLast, ssdChunked, ssdStep } from "../ops/index.js";
import type { LayerState } from "../models/state.js";
import type { LayerContext, SequenceLayer } from "./layer.js";

export interface Mamba2Weights {
  inProj: Tensor; // [2E + 2GN + H, D]
  inProjBias: Tensor | null;
  convWeight: Tensor; // [E + 2GN, K]
  convBias: Tensor | null;
  dtBias: Tensor; // [H]
  A: Tensor; // [H], -exp(A_log)
  D: Tensor; // [H] or [E]
  norm: Tensor; // [E]
  outProj: Tensor; // [D, E]
  outProjBias: Tensor | null;
}

export interface Mamba2Shape {
  dInner: number;
  nHeads: number;
  headDim: number;
  nGroups: number;
  dState: number;
  dConv: number;
  chunkSize: number;
  /** dt is clamped to [min, max] after softplus (time_step_limit). */
  dtMin: number;
  dtMax: number;
  /** Channels per RMS group of the gated norm: dInner (HF Mamba-2) or dInner / nGroups (mamba_ssm, NemotronH). */
  normGroupSize: number;
  normEps: number;
}

/**
 * The Mamba-2 mixer: in_proj → (z, xBC, dt); causal conv + silu over xBC → (x, B, C); SSD with per-head
 * scalar A, softplus(dt + dt_bias) clamped, D skip; gated RMSNorm with z; out_proj. `forward` runs the
 * SSD chunked algorithm over the sequence, `step` the one-token recurrence.
 */
export class Mamba2Mixer implements SequenceLayer {
  readonly kind = "mamba2";

  constructor(readonly w: Mamba2Weights, readonly shape: Mamba2Shape) {}

  stateShapes(): Record<string, number[]> {
    const { dInner, nGroups, dState, dConv, nHeads, headDim } = this.shape;
    return { conv: [dConv - 1, dInner + 2 * nGroups * dState], ssm: [nHeads, headDim, dState] };
  }

  cacheShapesPerToken(): Record<string, number[]> {
    return {};
  }

  weights(): Tensor[] {
    return Object.values(this.w).filter((t): t is Tensor => t !== null);
  }

  forward(x: Tensor, state: LayerState | null, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(x, state, false);
  }

  step(x: Tensor, state: LayerState, _ctx?: LayerContext): { y: Tensor; state: LayerState } {
    return this.run(x, state, true);
  }

  private run(hidden: Tensor, state: LayerState | null, single: boolean): { y: Tensor; state: LayerState } {
    const { w } = this;
    const s = this.shape;
    const [Bsz, L] = hidden.shape;
    const gn = s.nGroups * s.dState;
    const [z, xBC, dt] = splitLast(linear(hidden, w.inProj, w.inProjBias), [s.dInner, s.dInner + 2 * gn, s.nHeads]);
    const conv = causalConv1d({ x: xBC, weight: w.convWeight, bias: w.convBias, state: state?.conv ?? null, activation: "silu" });
    const [x, B, C] = splitLast(conv.y, [s.dInner, gn, gn]);
    const args = {
      x: reshape(x, [Bsz, L, s.nHeads, s.headDim]), dt, A: w.A,
      B: reshape(B, [Bsz, L, s.nGroups, s.dState]), C: reshape(C, [Bsz, L, s.nGroups, s.dState]),
      D: w.D, dtBias: w.dtBias, dtSoftplus: true, dtMin: s.dtMin, dtMax: s.dtMax,
      state: state?.ssm ?? null, chunkSize: s.chunkSize,
    };
    const ssd = single ? ssdStep(args) : ssdChunked(args);
    const y = gatedNormLinear(reshape(ssd.y, [Bsz, L, s.dInner]), z, w.norm, s.normGroupSize, s.normEps, w.outProj, w.outProjBias);
    return { y, state: { conv: conv.state, ssm: ssd.state } };
  }
}
