import { test } from "node:test";
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import { Rng } from "../../src/generate/rng.js";
import {
  DEFAULT_SAMPLING, applyRepetitionPenalty, sampleToken, validateSampling, type SamplingOptions,
} from "../../src/generate/sampling.js";

const f = Math.fround;
const opts = (o: Partial<SamplingOptions>): SamplingOptions => ({ ...DEFAULT_SAMPLING, ...o });

/** Reference: HF logits processors written the plain way (full sorts, float32 scores). */
function refProbs(logits: Float32Array, history: number[], o: SamplingOptions): number[] {
  let s = Array.from(logits);
  for (const id of new Set(history)) s[id] = s[id] > 0 ? f(logits[id] / o.repetitionPenalty) : f(logits[id] * o.repetitionPenalty);
  s = s.map((v) => f(v / o.temperature));
  const softmax = (x: number[]) => {
    const m = Math.max(...x);
    const e = x.map((v) => Math.exp(v - m));
    const z = e.reduce((a, b) => a + b, 0);
    return e.map((v) => v / z);
  };
  if (o.topK > 0) {
    const kth = [...s].sort((a, b) => b - a)[Math.min(o.topK, s.length) - 1];
    s = s.map((v) => (v < kth ? -Infinity : v));
  }
  if (o.topP < 1) {
    const order = s.map((_, i) => i).sort((a, b) => s[a] - s[b]); // ascending
    const p = softmax(s);
    let cum = 0;
    const remove = new Set<number>();
    order.forEach((i, j) => {
      cum += p[i];
      if (cum <= 1 - o.topP && j < order.length - 1) remove.add(i);
    });
    s = s.map((v, i) => (remove.has(i) ? -Infinity : v));
  }
  if (o.minP > 0) {
    const p = softmax(s);
    const pm = Math.max(...p);
    s = s.map((v, i) => (p[i] < o.minP * pm ? -Infinity : v));
  }
  return softmax(s);
}

function empirical(logits: Float32Array, history: number[], o: SamplingOptions, n: number, seed = 1): number[] {
  const rng = new Rng(seed);
  const counts = new Array(logits.length).fill(0);
  for (let i = 0; i < n; i++) counts[sampleToken(logits, history, o, rng)]++;
  return counts.map((c) => c / n);
}

function randomLogits(n: number, seed: number, scale = 2): Float32Array {
  const r = new Rng(seed);
  return Float32Array.from({ length: n }, () => (r.nextFloat() * 2 - 1) * scale);
}

const plainArgmax = (x: ArrayLike<number>) => {
  let b = 0;
  for (let i = 1; i < x.length; i++) if (x[i] > x[b]) b = i;
  return b;
};

test("empirical frequencies match the filtered softmax (20k draws)", () => {
  const logits = Float32Array.from([1.2, -0.3, 0.8, 2.0, -1.5, 0.1, 1.9, -0.7, 0.45, 1.0, -2.2, 0.6]);
  const history = [3, 3, 10, 0];
  const cases: Partial<SamplingOptions>[] = [
    {},
    { temperature: 0.7 },
    { temperature: 1.8 },
    { topK: 3 },
    { topK: 5, temperature: 0.5 },
    { topP: 0.8 },
    { topP: 0.35 },
    { minP: 0.2 },
    { repetitionPenalty: 1.5 },
    { repetitionPenalty: 0.7, temperature: 1.3 },
    { temperature: 0.8, topK: 8, topP: 0.9, minP: 0.05, repetitionPenalty: 1.3 },
  ];
  const N = 20000;
  for (const c of cases) {
    const o = opts(c);
    const want = refProbs(logits, history, o);
    const got = empirical(logits, history, o, N, 11);
    for (let i = 0; i < want.length; i++) {
      const p = want[i];
      const tol = 4.5 * Math.sqrt((p * (1 - p)) / N) + 1e-3;
      if (p === 0) assert.equal(got[i], 0, `${JSON.stringify(c)}: token ${i} must be filtered`);
      else assert.ok(Math.abs(got[i] - p) < tol, `${JSON.stringify(c)}: token ${i} freq ${got[i]} vs ${p}`);
    }
  }
});

test("filter supports match HF semantics on hand-made cases", () => {
  const support = (logits: number[], o: Partial<SamplingOptions>) =>
    refProbs(Float32Array.from(logits), [], opts(o)).flatMap((p, i) => (p > 0 ? [i] : []));
  const lp = [0.4, 0.3, 0.2, 0.1].map(Math.log);
  // top-p 0.75: ascending cumsum 0.1, 0.3, ... -> only the 0.1 token is removed
  assert.deepEqual(support(lp, { topP: 0.75 }), [0, 1, 2]);
  const got = new Set<number>();
  const rng = new Rng(3);
  for (let i = 0; i < 3000; i++) got.add(sampleToken(Float32Array.from(lp), [], opts({ topP: 0.75 }), rng));
  assert.deepEqual([...got].sort(), [0, 1, 2]);
  // top-k keeps ties at the boundary
  const tied = Float32Array.from([3, 1, 2, 2, 0]);
  const seen = new Set<number>();
  for (let i = 0; i < 3000; i++) seen.add(sampleToken(tied, [], opts({ topK: 2 }), rng));
  assert.deepEqual([...seen].sort(), [0, 2, 3]);
  // min-p: prob < minP * maxProb removed
  const mp = Float32Array.from([0, Math.log(0.5), Math.log(0.2), Math.log(0.05)]);
  const s2 = new Set<number>();
  for (let i = 0; i < 3000; i++) s2.add(sampleToken(mp, [], opts({ minP: 0.1 }), rng));
  assert.deepEqual([...s2].sort(), [0, 1, 2]);
  // top-p always keeps the top token
  for (let i = 0; i < 100; i++) assert.equal(sampleToken(Float32Array.from([5, 0, 0]), [], opts({ topP: 0.01 }), rng), 0);
});

test("greedy equals a plain argmax, lowest index on ties", () => {
  const rng = new Rng(5);
  for (let t = 0; t < 20; t++) {
    const x = randomLogits(50000, 100 + t);
    assert.equal(sampleToken(x, [], opts({ temperature: 0 }), rng), plainArgmax(x));
  }
  assert.equal(sampleToken(Float32Array.from([1, 3, 2, 3]), [], opts({ temperature: 0 }), rng), 1);
  assert.equal(sampleToken(Float32Array.from([-Infinity, -Infinity]), [], opts({ temperature: 0 }), rng), 0);
  // greedy ignores top-k/top-p/min-p and uses penalised logits
  const x = randomLogits(1000, 9);
  const hist = [plainArgmax(x), 5, 17];
  const pen = applyRepetitionPenalty(x, hist, 3);
  const o = opts({ temperature: 0, repetitionPenalty: 3, topK: 3, topP: 0.5, minP: 0.2 });
  assert.equal(sampleToken(x, hist, o, rng), plainArgmax(pen));
});

test("top-k = 1 is argmax at any temperature", () => {
  const rng = new Rng(8);
  for (let t = 0; t < 20; t++) {
    const x = randomLogits(50000, 300 + t);
    assert.equal(sampleToken(x, [], opts({ topK: 1, temperature: 0.3 + t }), rng), plainArgmax(x));
  }
});

test("repetition penalty divides positive and multiplies negative logits, once per distinct id", () => {
  const x = Float32Array.from([2, 1.5, -1, -1.5, 0.25]);
  const before = Float32Array.from(x);
  const pen = applyRepetitionPenalty(x, [0, 2, 0, 0, 2], 2);
  assert.deepEqual(Array.from(pen), [1, 1.5, -2, -1.5, 0.25]);
  assert.deepEqual(x, before);
  const rng = new Rng(1);
  // the penalty flips the greedy choice: 2 -> 1 < 1.5
  assert.equal(sampleToken(Float32Array.from([2, 1.5, -1]), [0], opts({ temperature: 0 }), rng), 0);
  assert.equal(sampleToken(Float32Array.from([2, 1.5, -1]), [0], opts({ temperature: 0, repetitionPenalty: 2 }), rng), 1);
  // negative logits get more negative: -1 -> -2 < -1.5
  assert.equal(sampleToken(Float32Array.from([-1, -1.5]), [0], opts({ temperature: 0, repetitionPenalty: 2 }), rng), 1);
  // penalty < 1 rewards repeats
  assert.equal(sampleToken(Float32Array.from([1, 1.5]), [0], opts({ temperature: 0, repetitionPenalty: 0.5 }), rng), 0);
  assert.throws(() => sampleToken(x, [7], opts({ repetitionPenalty: 1.2 }), rng), HippoError);
});

test("same seed gives the same tokens; input logits untouched", () => {
  const x = randomLogits(5000, 77, 4);
  const copy = Float32Array.from(x);
  const o = opts({ temperature: 0.9, topK: 40, topP: 0.95, minP: 0.02, repetitionPenalty: 1.2 });
  const run = (seed: number) => {
    const rng = new Rng(seed);
    const hist = [1, 2, 3];
    for (let i = 0; i < 50; i++) hist.push(sampleToken(x, hist, o, rng));
    return hist;
  };
  assert.deepEqual(run(123), run(123));
  assert.notDeepEqual(run(123), run(124));
  assert.deepEqual(x, copy);
});

test("validation errors", () => {
  validateSampling(DEFAULT_SAMPLING);
  validateSampling(opts({ temperature: 0, topK: 50, topP: 1, minP: 0.99, repetitionPenalty: 0.5 }));
  const bad: Partial<SamplingOptions>[] = [
    { temperature: -0.1 }, { temperature: NaN }, { temperature: Infinity },
    { topK: -1 }, { topK: 2.5 }, { topK: NaN },
    { topP: 0 }, { topP: 1.01 }, { topP: -0.5 }, { topP: NaN },
    { minP: -0.1 }, { minP: 1 }, { minP: NaN },
    { repetitionPenalty: 0 }, { repetitionPenalty: -1 }, { repetitionPenalty: NaN },
  ];
  for (const b of bad) {
    assert.throws(() => validateSampling(opts(b)), HippoError, JSON.stringify(b));
    assert.throws(() => sampleToken(Float32Array.from([1, 2]), [], opts(b), new Rng(1)), HippoError);
  }
});

