import { check, HippoError } from "../../errors.js";
import { checkParam, type Grads, type Param, type ParamGroup } from "./params.js";

export interface AdamWOptions {
  /** (β1, β2); torch's default (0.9, 0.999). The Mamba paper's recipe uses (0.9, 0.95). */
  betas?: [number, number];
  /** Added to √v̂ (after the square root, as torch); default 1e-8. */
  eps?: number;
}

/** Optimizer state: first and second moments per parameter, and the number of steps taken. */
export interface OptimizerState {
  step: number;
  /** `<param>.exp_avg` and `<param>.exp_avg_sq` (torch's state names), each the parameter's length. */
  tensors: Map<string, Float32Array>;
}

/**
 * AdamW with torch.optim.AdamW's semantics (amsgrad off, maximize off): at step t, for each parameter,
 *   p ← p − lr·wd·p                          (decoupled weight decay, before the Adam update)
 *   m ← β1·m + (1−β1)·g,  v ← β2·v + (1−β2)·g²
 *   p ← p − (lr / (1−β1ᵗ)) · m / (√v / √(1−β2ᵗ) + ε)
 * with lr = group.lr × the schedule's multiplier. Parameters, m and v are float32: m and v are each
 * computed in float64 and rounded to float32 (as torch stores them), and the parameter's update uses those
 * stored values, in float64, rounded once. The state is exactly (m, v, t), so continuing from saved state
 * is bit-identical to never having stopped.
 */
export class AdamW {
  readonly groups: ParamGroup[];
  readonly beta1: number;
  readonly beta2: number;
  readonly eps: number;
  private t = 0;
  private readonly m = new Map<string, Float32Array>();
  private readonly v = new Map<string, Float32Array>();

  constructor(groups: ParamGroup[], options: AdamWOptions = {}) {
    const [beta1, beta2] = options.betas ?? [0.9, 0.999];
    const eps = options.eps ?? 1e-8;
    check(beta1 >= 0 && beta1 < 1, `AdamW: beta1 must be in [0, 1), got ${beta1}`);
    check(beta2 >= 0 && beta2 < 1, `AdamW: beta2 must be in [0, 1), got ${beta2}`);
    check(eps >= 0 && Number.isFinite(eps), `AdamW: eps must be a finite number >= 0, got ${eps}`);
    for (const g of groups) {
      check(Number.isFinite(g.lr) && g.lr >= 0, `AdamW: group '${g.name}' has a bad learning rate ${g.lr}`);
      check(Number.isFinite(g.weightDecay) && g.weightDecay >= 0, `AdamW: group '${g.name}' has a bad weight decay ${g.weightDecay}`);
      for (const p of g.params) {
        checkParam(p);
        check(!this.m.has(p.name), `AdamW: parameter '${p.name}' is in more than one group`);
        this.m.set(p.name, new Float32Array(p.value.length));
        this.v.set(p.name, new Float32Array(p.value.length));
      }
    }
    this.groups = groups;
    this.beta1 = beta1;
    this.beta2 = beta2;
    this.eps = eps;
  }

  /** Steps taken so far (torch's state['step']). */
  get stepCount(): number {
    return this.t;
  }

  /** All parameters, in group order. */
  params(): Param[] {
    return this.groups.flatMap((g) => g.params);
  }

  /**
   * One update with `grads` (one per parameter, by name), each group at lr = group.lr × lrScale (the
   * schedule's multiplier for this step). Every parameter must have a gradient.
   */
  step(grads: Grads, lrScale = 1): void {
    check(Number.isFinite(lrScale) && lrScale >= 0, `AdamW: learning-rate multiplier must be a finite number >= 0, got ${lrScale}`);
    for (const p of this.params()) {
      const g = grads.get(p.name);
      if (!g) throw new HippoError(`AdamW: no gradient for parameter '${p.name}'`);
      check(g.length === p.value.length, `AdamW: gradient of '${p.name}' has ${g.length} elements, the parameter ${p.value.length}`);
    }
    const t = ++this.t;
    const { beta1: b1, beta2: b2, eps } = this;
    const bc1 = 1 - b1 ** t;
    const bc2Sqrt = Math.sqrt(1 - b2 ** t);
    for (const group of this.groups) {
      const lr = group.lr * lrScale;
      const decay = 1 - lr * group.weightDecay;
      const stepSize = lr / bc1;
      for (const p of group.params) {
        const g = grads.get(p.name)!, m = this.m.get(p.name)!, v = this.v.get(p.name)!, x = p.value;
        for (let i = 0; i < x.length; i++) {
          const gi = g[i];
          const mi = Math.fround(b1 * m[i] + (1 - b1) * gi);
          const vi = Math.fround(b2 * v[i] + (1 - b2) * gi * gi);
          m[i] = mi;
          v[i] = vi;
          x[i] = x[i] * decay - (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
        }
      }
    }
  }

  /** A copy of the state (m, v per parameter, step count). */
  stateDict(): OptimizerState {
    const tensors = new Map<string, Float32Array>();
    for (const p of this.params()) {
      tensors.set(`${p.name}.exp_avg`, this.m.get(p.name)!.slice());
      tensors.set(`${p.name}.exp_avg_sq`, this.v.get(p.name)!.slice());
    }
    return { step: this.t, tensors };
  }

  /** Restores state saved by stateDict (copied in); every parameter's m and v must be there, with its length. */
  loadStateDict(state: OptimizerState): void {
    check(Number.isSafeInteger(state.step) && state.step >= 0, `AdamW state: bad step count ${state.step}`);
    const known = new Set<string>();
    for (const p of this.params()) {
      for (const [suffix, dst] of [["exp_avg", this.m], ["exp_avg_sq", this.v]] as const) {
        const key = `${p.name}.${suffix}`;
        const src = state.tensors.get(key);
        if (!src) throw new HippoError(`AdamW state: missing '${key}'`);
        check(src.length === p.value.length, `AdamW state: '${key}' has ${src.length} elements, the parameter ${p.value.length}`);
        known.add(key);
      }
    }
    for (const key of state.tensors.keys()) {
      if (!known.has(key)) throw new HippoError(`AdamW state: '${key}' belongs to no parameter of this optimizer`);
    }
    for (const p of this.params()) {
      this.m.get(p.name)!.set(state.tensors.get(`${p.name}.exp_avg`)!);
      this.v.get(p.name)!.set(state.tensors.get(`${p.name}.exp_avg_sq`)!);
    }
    this.t = state.step;
  }
}
