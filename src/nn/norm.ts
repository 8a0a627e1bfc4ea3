import type { NormSpec } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { addNorm, norm } from "../ops/index.js";

/** RMSNorm (weight only) or LayerNorm (weight and optional bias) over the last axis. */
export class Norm implements NormSpec {
  constructor(
    readonly kind: "rms" | "layer",
    readonly weight: Tensor,
    readonly bias: Tensor | null,
    readonly eps: number,
  ) {}

  apply(x: Tensor): Tensor {
    return norm(x, this);
  }

  /** The residual stream after adding `y` to `h`, and its norm (fused where the backend can). */
  applyAfterAdd(h: Tensor, y: Tensor): { sum: Tensor; normed: Tensor } {
    return addNorm(h, y, this);
  }
}
