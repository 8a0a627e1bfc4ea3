import type { Tensor } from "../tensor/tensor.js";
import type { LayerState } from "../models/state.js";

/** What a layer needs to know about the batch besides its input. */
export interface LayerContext {
  /** Tokens each row had consumed before this call (absolute position of the call's first token). */
  positions: readonly number[];
  /** The same as an i32 [B] tensor on the model's backend. */
  positionsTensor: Tensor;
}

/**
 * A sequence layer inside a residual block: a mixer (Mamba, Mamba-2, attention, H3, …) or an MLP.
 * Two modes that must agree: `forward` over whole sequences (parallel), `step` for one token
 * (recurrent), both carrying the layer's state.
 */
export interface SequenceLayer {
  readonly kind: string;
  /**
   * Reads `ctx.positionsTensor` (attention: rotary phases, cache writes). Models upload that tensor only
   * when a layer says so: a decoding step of layers that don't then writes no host data, so it can be
   * captured and replayed (src/generate/replay.ts).
   */
  readonly usesPositions?: boolean;
  /** Fixed-size state per sequence: name → shape without the batch axis. */
  stateShapes(): Record<string, number[]>;
  /** State that grows by one entry per token (a KV cache): name → shape of one token's entry. */
  cacheShapesPerToken(): Record<string, number[]>;
  forward(x: Tensor, state: LayerState | null, ctx: LayerContext): { y: Tensor; state: LayerState };
  step(x: Tensor, state: LayerState, ctx: LayerContext): { y: Tensor; state: LayerState };
  /** Every weight tensor (for parameter counts and dispose). */
  weights(): Tensor[];
}

/** Sums parameter counts of weight tensors. */
export function countParameters(tensors: readonly (Tensor | null)[]): number {
  return tensors.reduce((n, t) => n + (t ? t.size : 0), 0);
}
