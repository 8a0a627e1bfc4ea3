import type { Tensor } from "../tensor/tensor.js";
import { causalAttention, causalConv1d, linear, reshape, rope, splitLast, writeAxis1, zeros } from "../ops/index.js";
import type { LayerState } from "../models/state.js";
import type { LayerContext, SequenceLayer } from "./layer.js";

export interface RotaryConfig {
  /** Rotated dims per head (partial rotary when less than head_dim). */
  dim: number;
  base: number;
  interleaved: boolean;
  positionScale: number;
}

export interface AttentionShape {
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Softmax scale, usually headDim^-0.5. */
  scale: number;
  rotary: RotaryConfig | null;
}

export interface AttentionWeights {
  /** Separate projections [H·hd, D], [Hkv·hd, D], [Hkv·hd, D] — or `qkv` fused as [q; k; v] rows. */
  q: Tensor | null;
  k: Tensor | null;
  v: Tensor | null;
  qkv: Tensor | null;
  qBias: Tensor | null;
  kBias: Tensor | null;
  vBias: Tensor | null;
  qkvBias: Tensor | null;
  o: Tensor;
  oBias: Tensor | null;
  /** mamba_ssm MHA with d_conv > 0: a depthwise causal conv over the fused q, k, v ([qkvDim, K]), no activation. */
  qkvConv: Tensor | null;
  qkvConvBias: Tensor | null;
}

/**
 * Causal multi-head attention with grouped-query heads, optional rotary embeddings, and a KV cache as
 * its state: k and v of every token so far, [B, T, Hkv, hd] each, growing by one entry per token.
 */
export class Attention implements SequenceLayer {
  readonly usesPositions = true;
  readonly kind = "attention";

  constructor(readonly w: AttentionWeights, readonly shape: AttentionShape) {}

  stateShapes(): Record<string, number[]> {
    const conv = this.w.qkvConv;
    return conv ? { conv: [conv.shape[1] - 1, conv.shape[0]] } : {};
  }

  cacheShapesPerToken(): Record<string, number[]> {
    const { numKvHeads, headDim } = this.shape;
    return { k: [numKvHeads, headDim], v: [numKvHeads, headDim] };
  }

  weights(): Tensor[] {
    return Object.values(this.w).filter((t): t is Tensor => t !== null);
  }

  private project(x: Tensor, state: LayerState | null): { q: Tensor; k: Tensor; v: Tensor; conv: Tensor | null } {
    const { numHeads: H, numKvHeads: Hkv, headDim: hd } = this.shape;
    const { w } = this;
    if (!w.qkv) return { q: linear(x, w.q!, w.qBias), k: linear(x, w.k!, w.kBias), v: linear(x, w.v!, w.vBias), conv: null };
    let qkv = linear(x, w.qkv, w.qkvBias);
    let conv: Tensor | null = null;
    if (w.qkvConv) {
      const out = causalConv1d({ x: qkv, weight: w.qkvConv, bias: w.qkvConvBias, state: state?.conv ?? null, activation: null });
      qkv = out.y;
      conv = out.state;
    }
    const [q, k, v] = splitLast(qkv, [H * hd, Hkv * hd, Hkv * hd]);
    return { q, k, v, conv };
  }

  forward(x: Tensor, state: LayerState | null, ctx: LayerContext): { y: Tensor; state: LayerState } {
    const { numHeads: H, numKvHeads: Hkv, headDim: hd, rotary, scale } = this.shape;
    const [B, L] = x.shape;
    const { q: qFlat, k: kFlat, v: vFlat, conv } = this.project(x, state);
    let q = reshape(qFlat, [B, L, H, hd]);
    let k = reshape(kFlat, [B, L, Hkv, hd]);
    const v = reshape(vFlat, [B, L, Hkv, hd]);
    if (rotary) {
      const args = { start: ctx.positionsTensor, rotaryDim: rotary.dim, base: rotary.base, interleaved: rotary.interleaved, positionScale: rotary.positionScale };
      q = rope({ x: q, ...args });
      k = rope({ x: k, ...args });
    }
    const empty = () => zeros([B, 0, Hkv, hd], { backend: x.backend });
    const kCache = writeAxis1(state?.k ?? empty(), k, ctx.positionsTensor);
    const vCache = writeAxis1(state?.v ?? empty(), v, ctx.positionsTensor);
    const attended = causalAttention({ q, k: kCache, v: vCache, queryStart: ctx.positionsTensor, scale });
    return { y: linear(reshape(attended, [B, L, H * hd]), this.w.o, this.w.oBias), state: conv ? { k: kCache, v: vCache, conv } : { k: kCache, v: vCache } };
  }

  step(x: Tensor, state: LayerState, ctx: LayerContext): { y: Tensor; state: LayerState } {
    return this.forward(x, state, ctx);
  }
}
