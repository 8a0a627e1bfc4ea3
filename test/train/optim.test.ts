import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { HippoError } from "../../src/errors.js";
import {
  AdamW, assertFiniteGrads, clipGradNorm, defaultParamGroups, findNonFinite, GradAccumulator, paramRole, warmupCosine,
  type Grads, type Param, type ParamGroup,
} from "../../src/train/optim/index.js";
import { LOCAL_FIXTURES } from "../fixtures.js";

function param(name: string, values: number[], shape = [values.length]): Param {
  return { name, shape, value: Float32Array.from(values) };
}

/** torch.optim.AdamW's documented algorithm, in float64 throughout (an independent reference). */
function referenceAdamW(
  p0: number[], grads: number[][], lrs: number[], wd: number, b1: number, b2: number, eps: number,
): number[][] {
  const p = p0.slice(), m = p0.map(() => 0), v = p0.map(() => 0);
  const out: number[][] = [];
  grads.forEach((g, k) => {
    const t = k + 1, lr = lrs[k];
    for (let i = 0; i < p.length; i++) {
      p[i] -= lr * wd * p[i];
      m[i] = b1 * m[i] + (1 - b1) * g[i];
      v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
      const mHat = m[i] / (1 - b1 ** t), vHat = v[i] / (1 - b2 ** t);
      p[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
    }
    out.push(p.slice());
  });
  return out;
}

/** |actual − expected| <= rel × the largest |expected| of the tensor (for sums with cancellation, such as m). */
function closeScaled(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string): void {
  const scale = Math.max(...Array.from(expected, Math.abs));
  closeRel(actual, expected, 0, what, rel * scale);
}

function closeRel(actual: ArrayLike<number>, expected: ArrayLike<number>, rel: number, what: string, abs = 0): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  for (let i = 0; i < expected.length; i++) {
    const tol = rel * Math.abs(expected[i]) + abs;
    assert.ok(Math.abs(actual[i] - expected[i]) <= tol, `${what}[${i}]: ${actual[i]} vs ${expected[i]} (tolerance ${tol})`);
  }
}

test("AdamW: first step by hand (bias correction makes it lr·sign(g), eps after the sqrt)", () => {
  // t=1: m̂ = g, v̂ = g², so p ← p(1 − lr·wd) − lr·g/(|g| + eps).
  const p = param("w", [1, -2, 0.5]);
  const opt = new AdamW([{ name: "decay", params: [p], lr: 0.1, weightDecay: 0.01 }]);
  opt.step(new Map([["w", Float32Array.from([0.5, -4, 0])]]));
  const expect = [1 * (1 - 0.001) - 0.1 * 0.5 / (0.5 + 1e-8), -2 * (1 - 0.001) + 0.1 * 4 / (4 + 1e-8), 0.5 * (1 - 0.001)];
  closeRel(p.value, expect.map(Math.fround), 1e-7, "p");
  assert.equal(opt.stepCount, 1);
});

test("AdamW matches a float64 reference of torch's algorithm over 20 steps, with a schedule", () => {
  const n = 7;
  const init = Array.from({ length: n }, (_, i) => Math.fround(Math.sin(i + 1) * 2));
  const grads = Array.from({ length: 20 }, (_, k) => Array.from({ length: n }, (_, i) => Math.fround(Math.cos(3 * i + k) * (1 + k % 3))));
  const sched = warmupCosine({ warmupSteps: 4, totalSteps: 20, minLrRatio: 0.1 });
  const lrs = grads.map((_, k) => 0.01 * sched(k));
  const expected = referenceAdamW(init, grads, lrs, 0.1, 0.9, 0.95, 1e-8);
  const p = param("w", init);
  const opt = new AdamW([{ name: "decay", params: [p], lr: 0.01, weightDecay: 0.1 }], { betas: [0.9, 0.95] });
  grads.forEach((g, k) => {
    opt.step(new Map([["w", Float32Array.from(g)]]), sched(k));
    closeRel(p.value, expected[k], 2e-6, `step ${k + 1}`);
  });
});

test("AdamW matches torch.optim.AdamW (fixture from scripts/fixtures/make_adamw_fixture.py)", () => {
  const fx = JSON.parse(readFileSync(join(LOCAL_FIXTURES, "optim", "adamw.json"), "utf8")) as {
    betas: [number, number]; eps: number; lr_multipliers: number[];
    groups: { name: string; params: string[]; lr: number; weight_decay: number }[];
    shapes: Record<string, number[]>; initial: Record<string, number[]>;
    steps: { grads: Record<string, number[]>; params: Record<string, number[]> }[];
    final_state: Record<string, { exp_avg: number[]; exp_avg_sq: number[]; step: number }>;
  };
  const params = new Map(Object.entries(fx.initial).map(([n, v]) => [n, param(n, v, fx.shapes[n])]));
  const groups: ParamGroup[] = fx.groups.map((g) => ({
    name: g.name, params: g.params.map((n) => params.get(n)!), lr: g.lr, weightDecay: g.weight_decay,
  }));
  const opt = new AdamW(groups, { betas: fx.betas, eps: fx.eps });
  fx.steps.forEach((s, k) => {
    const grads: Grads = new Map(Object.entries(s.grads).map(([n, g]) => [n, Float32Array.from(g)]));
    opt.step(grads, fx.lr_multipliers[k]);
    // torch rounds after each tensor op (decay, m, v, √v, /, +eps, the update); we round m, v and the result
    // once each: within 2 float32 ulps on this fixture, checked at 4 (2^-21 relative).
    for (const [n, want] of Object.entries(s.params)) closeRel(params.get(n)!.value, want, 2 ** -21, `step ${k + 1} ${n}`);
  });
  const state = opt.stateDict();
  assert.equal(state.step, fx.steps.length);
  for (const [n, st] of Object.entries(fx.final_state)) {
    assert.equal(st.step, state.step);
    closeScaled(state.tensors.get(`${n}.exp_avg`)!, st.exp_avg, 1e-6, `${n}.exp_avg`);
    closeScaled(state.tensors.get(`${n}.exp_avg_sq`)!, st.exp_avg_sq, 1e-6, `${n}.exp_avg_sq`);
  }
});

/** Gradients that depend on the parameters and the step, so a resumed run must carry the same state. */
function gradsFor(params: Param[], step: number): Grads {
  return new Map(params.map((p) => [p.name, p.value.map((x, i) => Math.sin(3 * x + i + step) + 0.1 * x)]));
}

function makeModel(): Param[] {
  return [
    param("backbone.layers.0.mixer.in_proj.weight", Array.from({ length: 12 }, (_, i) => Math.cos(i) / 3), [3, 4]),
    param("backbone.layers.0.mixer.A_log", Array.from({ length: 4 }, (_, i) => Math.log(i + 1))),
    param("backbone.layers.0.mixer.D", [1, 1, 1, 1]),
    param("backbone.layers.0.norm.weight", [1, 1, 1]),
  ];
}

test("linear decay: transformers' get_linear_schedule_with_warmup shape after our warmup, to the floor", () => {
  const sched = warmupCosine({ warmupSteps: 4, totalSteps: 12, minLrRatio: 0, decay: "linear" });
  assert.deepEqual([0, 1, 2, 3].map(sched), [0.25, 0.5, 0.75, 1]);
  // transformers: max(0, (total − step) / (total − warmup)) from the end of warmup.
  for (let step = 4; step <= 14; step++) assert.ok(Math.abs(sched(step) - Math.max(0, (12 - step) / 8)) < 1e-12, `step ${step}`);
  const floored = warmupCosine({ warmupSteps: 0, totalSteps: 10, minLrRatio: 0.2, decay: "linear" });
  assert.ok(Math.abs(floored(5) - 0.6) < 1e-12);
  assert.throws(() => warmupCosine({ warmupSteps: 0, totalSteps: 10, decay: "step" as "linear" }), /decay must be cosine or linear/);
});

test("optimizer state save/load resumes bit-identically (10 steps vs 5 + save/load + 5)", () => {
  const sched = warmupCosine({ warmupSteps: 3, totalSteps: 10 });
  const run = (steps: number[], params: Param[], opt: AdamW) => {
    for (const k of steps) opt.step(clipGrads(gradsFor(params, k)), sched(k));
  };
  const clipGrads = (g: Grads) => { clipGradNorm(g, 1.0); return g; };
  const newOpt = (params: Param[]) => new AdamW(defaultParamGroups(params, { lr: 3e-3, weightDecay: 0.1 }), { betas: [0.9, 0.95] });

  const straight = makeModel();
  run([0, 1, 2, 3, 4, 5, 6, 7, 8, 9], straight, newOpt(straight));

  const first = makeModel();
  const opt1 = newOpt(first);
  run([0, 1, 2, 3, 4], first, opt1);
  const saved = opt1.stateDict();
  const savedParams = first.map((p) => ({ ...p, value: p.value.slice() }));
  // A fresh process: new parameter objects from the "checkpoint", a new optimizer, its state loaded.
  const resumed = savedParams.map((p) => ({ ...p, value: p.value.slice() }));
  const opt2 = newOpt(resumed);
  opt2.loadStateDict(saved);
  assert.equal(opt2.stepCount, 5);
  run([5, 6, 7, 8, 9], resumed, opt2);

  for (let i = 0; i < straight.length; i++) {
    assert.deepEqual(new Uint8Array(resumed[i].value.buffer), new Uint8Array(straight[i].value.buffer), straight[i].name);
  }
  // Mutating the saved state afterwards does not reach into the optimizer (stateDict and loadStateDict copy).
  saved.tensors.get("backbone.layers.0.mixer.A_log.exp_avg")!.fill(123);
  assert.notEqual(opt2.stateDict().tensors.get("backbone.layers.0.mixer.A_log.exp_avg")![0], 123);
});

test("loadStateDict refuses missing, mis-sized and unknown entries, naming them", () => {
  const params = makeModel();
  const opt = new AdamW(defaultParamGroups(params, { lr: 1e-3 }));
  const good = opt.stateDict();
  const missing = { step: 1, tensors: new Map(good.tensors) };
  missing.tensors.delete("backbone.layers.0.mixer.D.exp_avg_sq");
  assert.throws(() => opt.loadStateDict(missing), (e: Error) => e instanceof HippoError && /missing 'backbone\.layers\.0\.mixer\.D\.exp_avg_sq'/.test(e.message));
  const wrong = { step: 1, tensors: new Map(good.tensors) };
  wrong.tensors.set("backbone.layers.0.norm.weight.exp_avg", new Float32Array(2));
  assert.throws(() => opt.loadStateDict(wrong), /'backbone\.layers\.0\.norm\.weight\.exp_avg' has 2 elements, the parameter 3/);
  const extra = { step: 1, tensors: new Map(good.tensors) };
  extra.tensors.set("lm_head.weight.exp_avg", new Float32Array(2));
  assert.throws(() => opt.loadStateDict(extra), /'lm_head\.weight\.exp_avg' belongs to no parameter/);
  assert.throws(() => opt.step(new Map()), /no gradient for parameter 'backbone\.layers\.0\.mixer\.in_proj\.weight'/);
});

test("default groups: Mamba, Mamba-2, H3/S4D, attention and MLP names", () => {
  const names = [
    "backbone.embeddings.weight", "backbone.embedding.weight", "backbone.embeddings.word_embeddings.weight", "model.embed_tokens.weight",
    "backbone.layers.0.norm.weight", "backbone.norm_f.weight", "backbone.ln_f.weight", "backbone.layers.1.norm1.weight",
    "backbone.layers.1.norm2.bias", "model.layers.0.input_layernorm.weight", "backbone.layers.0.mixer.norm.weight",
    "backbone.layers.0.mixer.A_log", "backbone.layers.0.mixer.D", "backbone.layers.0.mixer.dt_bias", "backbone.layers.0.mixer.dt_proj.bias",
    "backbone.layers.0.mixer.in_proj.weight", "backbone.layers.0.mixer.x_proj.weight", "backbone.layers.0.mixer.dt_proj.weight",
    "backbone.layers.0.mixer.conv1d.weight", "backbone.layers.0.mixer.conv1d.bias", "backbone.layers.0.mixer.out_proj.weight",
    "backbone.layers.1.mixer.kernel.kernel.log_dt", "backbone.layers.1.mixer.kernel.kernel.inv_A_real", "backbone.layers.1.mixer.kernel.kernel.A_imag",
    "backbone.layers.1.mixer.kernel.kernel.B", "backbone.layers.1.mixer.kernel.kernel.C", "backbone.layers.1.mixer.ssm_k_kernel.kernel.B",
    "backbone.layers.1.mixer.ssm_k_kernel.kernel.C", "backbone.layers.1.mixer.D", "backbone.layers.1.mixer.ssm_k_D",
    "backbone.layers.1.mixer.q_proj.weight", "backbone.layers.1.mixer.q_proj.bias", "backbone.layers.2.mixer.o_proj.weight",
    "backbone.layers.3.mixer.up_proj.weight", "backbone.layers.3.mixer.down_proj.weight", "lm_head.weight",
  ];
  const siblings = new Set(names);
  const role = (n: string) => paramRole(n, siblings).role;
  const expect: Record<string, string[]> = {
    no_decay: names.slice(0, 11).concat(["backbone.layers.0.mixer.conv1d.bias", "backbone.layers.1.mixer.q_proj.bias"]),
    ssm: ["backbone.layers.0.mixer.A_log", "backbone.layers.0.mixer.D", "backbone.layers.0.mixer.dt_bias", "backbone.layers.0.mixer.dt_proj.bias"],
    ssm_kernel: [
      "backbone.layers.1.mixer.kernel.kernel.log_dt", "backbone.layers.1.mixer.kernel.kernel.inv_A_real",
      "backbone.layers.1.mixer.kernel.kernel.A_imag", "backbone.layers.1.mixer.kernel.kernel.B", "backbone.layers.1.mixer.ssm_k_kernel.kernel.B",
    ],
  };
  for (const n of names) {
    const want = Object.entries(expect).find(([, list]) => list.includes(n))?.[0] ?? "decay";
    assert.equal(role(n), want, n);
  }
  // H3's D (no A_log beside it) is an ordinary, decayed parameter, as in safari.
  assert.equal(role("backbone.layers.1.mixer.D"), "decay");

  const params = names.map((n) => param(n, [0.5]));
  const groups = defaultParamGroups(params, { lr: 6e-3, weightDecay: 0.1 });
  assert.deepEqual(groups.map((g) => [g.name, g.lr, g.weightDecay]), [
    ["decay", 6e-3, 0.1], ["no_decay", 6e-3, 0], ["ssm", 6e-3, 0], ["ssm_kernel", 1e-3, 0],
  ]);
  const low = defaultParamGroups(params, { lr: 5e-4, ssmLr: 1e-4, kernelLr: 2e-4 });
  assert.deepEqual(low.map((g) => [g.name, g.lr]), [["decay", 5e-4], ["no_decay", 5e-4], ["ssm", 1e-4], ["ssm_kernel", 2e-4]]);
  assert.equal(groups.reduce((a, g) => a + g.params.length, 0), names.length);
  assert.throws(() => defaultParamGroups([param("a", [1]), param("a", [2])], { lr: 1 }), /'a' is listed twice/);
  assert.throws(() => defaultParamGroups([param("a", [1, 2], [3])], { lr: 1 }), /'a' has shape \[3\] \(3 elements\) but its value has 2/);
});

test("weight decay is decoupled and skipped where the group says 0", () => {
  const w = param("x.weight", [2]), b = param("x.bias", [2]);
  const opt = new AdamW(defaultParamGroups([w, b], { lr: 0.5, weightDecay: 0.1 }));
  opt.step(new Map([["x.weight", new Float32Array([0])], ["x.bias", new Float32Array([0])]]));
  assert.equal(w.value[0], Math.fround(2 * (1 - 0.05)));
  assert.equal(b.value[0], 2);
});

test("warmupCosine: linear warmup, cosine to the floor, then flat", () => {
  const s = warmupCosine({ warmupSteps: 4, totalSteps: 14, minLrRatio: 0.1 });
  assert.deepEqual([0, 1, 2, 3].map(s), [0.25, 0.5, 0.75, 1]);
  assert.equal(s(4), 1);
  assert.ok(Math.abs(s(9) - (0.1 + 0.9 * 0.5)) < 1e-12);
  assert.ok(Math.abs(s(13) - (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * 0.9)))) < 1e-12);
  assert.equal(s(14), 0.1);
  assert.equal(s(1000), 0.1);
  for (let k = 4; k < 14; k++) assert.ok(s(k + 1) <= s(k), `decreasing at ${k}`);
  assert.equal(warmupCosine({ warmupSteps: 0, totalSteps: 10 })(0), 1);
  assert.throws(() => warmupCosine({ warmupSteps: 5, totalSteps: 3 }), /totalSteps must be an integer >= warmupSteps/);
});

test("clipGradNorm: returns the pre-clip norm and scales to maxNorm", () => {
  const g: Grads = new Map([["a", Float32Array.from([3, 0])], ["b", Float32Array.from([4])]]);
  assert.equal(clipGradNorm(g, 1), 5);
  const after = Math.hypot(g.get("a")![0], g.get("a")![1], g.get("b")![0]);
  assert.ok(Math.abs(after - 1) < 1e-6);
  assert.ok(Math.abs(g.get("a")![0] - 0.6) < 1e-6);
  const small: Grads = new Map([["a", Float32Array.from([0.3, 0.4])]]);
  assert.ok(Math.abs(clipGradNorm(small, 1) - 0.5) < 1e-7);
  assert.deepEqual(Array.from(small.get("a")!), [0.3, 0.4].map(Math.fround));
  const bad: Grads = new Map([["a", Float32Array.from([1, NaN])]]);
  assert.ok(Number.isNaN(clipGradNorm(bad, 1)));
  assert.equal(bad.get("a")![0], 1);
});

test("non-finite gradients are found and named", () => {
  const g: Grads = new Map([
    ["backbone.layers.0.mixer.in_proj.weight", Float32Array.from([1, 2])],
    ["backbone.layers.0.mixer.A_log", Float32Array.from([0, Infinity, NaN])],
    ["lm_head.weight", Float32Array.from([-Infinity])],
  ]);
  const bad = findNonFinite(g);
  assert.deepEqual(bad.map((b) => [b.name, b.index, b.count]), [["backbone.layers.0.mixer.A_log", 1, 2], ["lm_head.weight", 0, 1]]);
  assert.throws(() => assertFiniteGrads(g),
    (e: Error) => e instanceof HippoError && e.message.includes("'backbone.layers.0.mixer.A_log': Infinity at element 1, 2 elements in all (and 1 more parameter)"));
  assertFiniteGrads(new Map([["a", Float32Array.from([1])]]));
  assert.deepEqual(findNonFinite(new Map([["a", Float32Array.from([1])]])), []);
});

test("GradAccumulator: the mean of the micro-batches' gradients", () => {
  const acc = new GradAccumulator();
  acc.add(new Map([["w", Float32Array.from([1, 2])], ["b", Float32Array.from([3])]]));
  acc.add(new Map([["w", Float32Array.from([3, -2])], ["b", Float32Array.from([0])]]));
  acc.add(new Map([["w", Float32Array.from([2, 3])], ["b", Float32Array.from([0])]]));
  assert.equal(acc.count, 3);
  const m = acc.mean();
  assert.deepEqual(Array.from(m.get("w")!), [2, 1]);
  assert.deepEqual(Array.from(m.get("b")!), [1]);
  assert.throws(() => acc.add(new Map([["w", Float32Array.from([1, 2])], ["c", Float32Array.from([1])]])), /'c' was not in the first micro-batch/);
  acc.reset();
  assert.throws(() => acc.mean(), /no micro-batch added/);
});
