import { check } from "../../errors.js";

export interface WarmupCosineOptions {
  /** Updates of linear warmup (0: none). */
  warmupSteps: number;
  /** Update index at which the cosine reaches its floor; later updates stay there. */
  totalSteps: number;
  /**
   * Floor as a fraction of the peak; default 0.1 (safari's timm cosine: lr_min = 0.1·lr, in the
   * induction-head and Pile configs; the Mamba paper decays to 1e-5 absolute, i.e. minLrRatio = 1e-5 / lr).
   */
  minLrRatio?: number;
  /**
   * Shape of the decay after warmup: "cosine" (default) or "linear" (transformers'
   * get_linear_schedule_with_warmup, safari's `linear_warmup` scheduler, with minLrRatio 0).
   */
  decay?: "cosine" | "linear";
}

/**
 * Linear warmup, then cosine decay to a floor: the learning-rate multiplier for update `step`
 * (0-based: the first update is step 0).
 *   step < warmupSteps:            (step + 1) / warmupSteps    (so the first update already moves, and
 *                                                               the last warmup update is at the peak)
 *   warmupSteps <= step < total:   r + (1 − r)·½(1 + cos(π·p)), p = (step − warmupSteps) / (totalSteps − warmupSteps)
 *                                  (decay "linear": r + (1 − r)·(1 − p))
 *   step >= totalSteps:            r
 */
export function warmupCosine(options: WarmupCosineOptions): (step: number) => number {
  const { warmupSteps, totalSteps, minLrRatio = 0.1, decay = "cosine" } = options;
  check(decay === "cosine" || decay === "linear", `decay must be cosine or linear, got ${String(decay)}`);
  check(Number.isInteger(warmupSteps) && warmupSteps >= 0, `warmupSteps must be an integer >= 0, got ${warmupSteps}`);
  check(Number.isInteger(totalSteps) && totalSteps >= warmupSteps,
    `totalSteps must be an integer >= warmupSteps (${warmupSteps}), got ${totalSteps}`);
  check(minLrRatio >= 0 && minLrRatio <= 1, `minLrRatio must be in [0, 1], got ${minLrRatio}`);
  const decaySteps = totalSteps - warmupSteps;
  return (step: number) => {
    check(Number.isInteger(step) && step >= 0, `schedule step must be an integer >= 0, got ${step}`);
    if (step < warmupSteps) return (step + 1) / warmupSteps;
    if (step >= totalSteps) return minLrRatio;
    const progress = (step - warmupSteps) / decaySteps;
    const fraction = decay === "linear" ? 1 - progress : 0.5 * (1 + Math.cos(Math.PI * progress));
    return minLrRatio + (1 - minLrRatio) * fraction;
  };
}
