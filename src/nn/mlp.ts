import type { Tensor } from "../tensor/tensor.js";
import { gelu, geluTanh, linear, linearActivation, mul, relu2, silu, splitLast } from "../ops/index.js";
import type { LayerState } from "../models/state.js";
import { type SequenceLayer } from "./layer.js";

/** gelu_tanh: the tanh approximation (flash_attn / H3 MLPs). */
export type MlpActivation = "relu2" | "gelu" | "silu" | "gelu_tanh";

export interface MlpWeights {
  /** [hidden, D] (plain), or the gate and up projections of a gated MLP. */
  up: Tensor;
  upBias: Tensor | null;
  /** Gated MLPs: [hidden, D] gate projection, or null when `up` is fused [2·hidden, D] (mamba_ssm GatedMLP: value, then gate). */
  gate: Tensor | null;
  gateBias: Tensor | null;
  down: Tensor;
  downBias: Tensor | null;
}

/**
 * Position-wise MLP: plain act(up(x)) → down (NemotronH relu², GPT-style GELU), or gated
 * act(gate(x)) · up(x) → down (Llama / mamba_ssm GatedMLP with SiLU).
 */
export class Mlp implements SequenceLayer {
  readonly kind = "mlp";

  constructor(readonly w: MlpWeights, readonly activation: MlpActivation, readonly gated: boolean) {}

  stateShapes(): Record<string, number[]> {
    return {};
  }

  cacheShapesPerToken(): Record<string, number[]> {
    return {};
  }

  weights(): Tensor[] {
    return Object.values(this.w).filter((t): t is Tensor => t !== null);
  }

  private act(x: Tensor): Tensor {
    switch (this.activation) {
      case "relu2": return relu2(x);
      case "gelu": return gelu(x);
      case "gelu_tanh": return geluTanh(x);
      case "silu": return silu(x);
    }
  }

  forward(x: Tensor, _state: LayerState | null): { y: Tensor; state: LayerState } {
    let hidden: Tensor;
    // MlpActivation names are unary ops: the activation may run inside the product (linearActivation).
    if (!this.gated) hidden = linearActivation(x, this.w.up, this.w.upBias, this.activation);
    else if (this.w.gate) hidden = mul(linearActivation(x, this.w.gate, this.w.gateBias, this.activation), linear(x, this.w.up, this.w.upBias));
    else {
      const width = this.w.up.shape[0] / 2;
      const [value, gate] = splitLast(linear(x, this.w.up, this.w.upBias), [width, width]);
      hidden = mul(value, this.act(gate));
    }
    return { y: linear(hidden, this.w.down, this.w.downBias), state: {} };
  }

  step(x: Tensor, state: LayerState): { y: Tensor; state: LayerState } {
    return this.forward(x, state);
  }
}
