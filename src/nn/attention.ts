import type { Tensor } from "../tensor/tensor.js";
import { causalAttention, linear, reshape, rope, splitLast, writeAxis1, zeros } from "../ops/index.js";
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
}

/**
 * Causal multi-head attention with grouped-query heads, optional rotary embeddings, and a KV cache as
 * its state: k and v of every token so far, [B, T, Hkv, hd] each, growing by one entry per token.
 */
export class Attention implements SequenceLayer {
  readonly kind = "attention";

  constructor(readonly w: AttentionWeights, readonly shape: AttentionShape) {}

  stateShapes(): Record<string, number[]> {
    return {};
  }

  cacheShapesPerToken(): Record<string, number[]> {
    const { numKvHeads, headDim } = this.shape;
    return { k: [numKvHeads, headDim], v: [numKvHeads, headDim] };
  }

  weights(): Tensor[] {
    return Object.values(this.w).filter((t): t is Tensor => t !== null);
  }

  private project(x: Tensor): [Tensor, Tensor, Tensor] {
    const { numHeads: H, numKvHeads: Hkv, headDim: hd } = this.shape;
    const { w } = this;
    if (w.qkv) return splitLast(linear(x, w.qkv, w.qkvBias), [H * hd, Hkv * hd, Hkv * hd]) as [Tensor, Tensor, Tensor];
    return [linear(x, w.q!, w.qBias), linear(x, w.k!, w.kBias), linear(x, w.v!, w.vBias)];
  }

  forward(x: Tensor, state: LayerState | null, ctx: LayerContext): { y: Tensor; state: LayerState } {
    const { numHeads: H, numKvHeads: Hkv, headDim: hd, rotary, scale } = this.shape;
    const [B, L] = x.shape;
    const [qFlat, kFlat, vFlat] = this.project(x);
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
    return { y: linear(reshape(attended, [B, L, H * hd]), this.w.o, this.w.oBias), state: { k: kCache, v: vCache } };
  }

  step(x: Tensor, state: LayerState, ctx: LayerContext): { y: Tensor; state: LayerState } {
    return this.forward(x, state, ctx);
  }
}
