import type { Tensor } from "../tensor/tensor.js";
import { layerNorm, rmsNorm } from "../ops/index.js";

/** RMSNorm (weight only) or LayerNorm (weight and optional bias) over the last axis. */
export class Norm {
  constructor(
    readonly kind: "rms" | "layer",
    readonly weight: Tensor,
    readonly bias: Tensor | null,
    readonly eps: number,
  ) {}

  apply(x: Tensor): Tensor {
    return this.kind === "rms" ? rmsNorm(x, this.weight, this.eps) : layerNorm(x, this.weight, this.bias, this.eps);
  }
}
