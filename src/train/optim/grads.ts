import { check, HippoError } from "../../errors.js";
import type { Grads } from "./params.js";

/**
 * Clips gradients in place to a global L2 norm of at most `maxNorm` (torch.nn.utils.clip_grad_norm_:
 * scale by maxNorm / (norm + 1e-6) when that is below 1). Returns the norm before clipping (summed in
 * float64). A non-finite norm leaves the gradients untouched (torch would scale them to NaN or 0):
 * check with findNonFinite and skip the step.
 */
export function clipGradNorm(grads: Grads, maxNorm: number): number {
  check(maxNorm > 0 && Number.isFinite(maxNorm), `maxNorm must be a finite number > 0, got ${maxNorm}`);
  const norm = gradNorm(grads);
  if (!Number.isFinite(norm)) return norm;
  const coef = maxNorm / (norm + 1e-6);
  if (coef < 1) {
    for (const g of grads.values()) for (let i = 0; i < g.length; i++) g[i] *= coef;
  }
  return norm;
}

/** Global L2 norm of all gradients, accumulated in float64. */
export function gradNorm(grads: Grads): number {
  let sum = 0;
  for (const g of grads.values()) for (let i = 0; i < g.length; i++) sum += g[i] * g[i];
  return Math.sqrt(sum);
}

export interface NonFinite {
  /** Parameter name. */
  name: string;
  /** First offending element. */
  index: number;
  value: number;
  /** How many elements of this gradient are NaN or ±Infinity. */
  count: number;
}

/** Every gradient holding NaN or ±Infinity, in the map's order (empty when all are finite). */
export function findNonFinite(grads: Grads): NonFinite[] {
  const out: NonFinite[] = [];
  for (const [name, g] of grads) {
    let first = -1, count = 0;
    for (let i = 0; i < g.length; i++) {
      if (!Number.isFinite(g[i])) {
        if (first < 0) first = i;
        count++;
      }
    }
    if (count > 0) out.push({ name, index: first, value: g[first], count });
  }
  return out;
}

/** Throws a HippoError naming the first parameter whose gradient is not finite. */
export function assertFiniteGrads(grads: Grads): void {
  const bad = findNonFinite(grads);
  if (bad.length === 0) return;
  const b = bad[0];
  const more = bad.length > 1 ? ` (and ${bad.length - 1} more parameter${bad.length > 2 ? "s" : ""})` : "";
  throw new HippoError(`non-finite gradient for '${b.name}': ${b.value} at element ${b.index}, ${b.count} element${b.count > 1 ? "s" : ""} in all${more}`);
}

/**
 * Gradient accumulation over micro-batches: add() each micro-batch's gradients, mean() gives
 * sum / count (summed in float64, rounded once). The first add() fixes the names and lengths.
 */
export class GradAccumulator {
  private sums: Map<string, Float64Array> | null = null;
  private n = 0;

  get count(): number {
    return this.n;
  }

  add(grads: Grads): void {
    if (!this.sums) {
      this.sums = new Map([...grads].map(([name, g]) => [name, new Float64Array(g.length)]));
    }
    check(grads.size === this.sums.size,
      `GradAccumulator: micro-batch has ${grads.size} gradients, the first had ${this.sums.size}`);
    for (const [name, g] of grads) {
      const s = this.sums.get(name);
      if (!s) throw new HippoError(`GradAccumulator: gradient '${name}' was not in the first micro-batch`);
      check(s.length === g.length, `GradAccumulator: gradient '${name}' has ${g.length} elements, first had ${s.length}`);
      for (let i = 0; i < g.length; i++) s[i] += g[i];
    }
    this.n++;
  }

  /** The mean gradient of the micro-batches added so far (new arrays). */
  mean(): Grads {
    check(this.sums && this.n > 0, "GradAccumulator: no micro-batch added");
    const out: Grads = new Map();
    for (const [name, s] of this.sums) {
      const g = new Float32Array(s.length);
      for (let i = 0; i < s.length; i++) g[i] = s[i] / this.n;
      out.set(name, g);
    }
    return out;
  }

  /** Forget everything (ready for the next optimizer step). */
  reset(): void {
    this.sums = null;
    this.n = 0;
  }
}
