import { check } from "../errors.js";
import type { Rng } from "./rng.js";

/** Next-token selection. Each filter follows the HF transformers logits processor of the same name. */
export interface SamplingOptions {
  /** 0 = greedy (argmax). */
  temperature: number;
  /** Keep the k most likely tokens; 0 = off. */
  topK: number;
  /** Nucleus sampling; 1 = off. */
  topP: number;
  /** Drop tokens with prob < minP * max prob; 0 = off. */
  minP: number;
  /** CTRL-style repetition penalty over prompt + generated ids; 1 = off. */
  repetitionPenalty: number;
}

/** Plain softmax sampling at temperature 1, every filter off. */
export const DEFAULT_SAMPLING: Readonly<SamplingOptions> = Object.freeze({
  temperature: 1,
  topK: 0,
  topP: 1,
  minP: 0,
  repetitionPenalty: 1,
});

export function validateSampling(opts: SamplingOptions): void {
  const { temperature: t, topK: k, topP: p, minP: m, repetitionPenalty: r } = opts;
  check(Number.isFinite(t) && t >= 0, `temperature must be a finite number >= 0, got ${t}`);
  check(Number.isInteger(k) && k >= 0, `top-k must be an integer >= 0 (0 = off), got ${k}`);
  check(Number.isFinite(p) && p > 0 && p <= 1, `top-p must be in (0, 1] (1 = off), got ${p}`);
  check(Number.isFinite(m) && m >= 0 && m < 1, `min-p must be in [0, 1) (0 = off), got ${m}`);
  check(Number.isFinite(r) && r > 0, `repetition penalty must be a finite number > 0 (1 = off), got ${r}`);
}

/**
 * Picks the next token of one row. Order: repetition penalty, then greedy argmax when
 * temperature is 0, else temperature, top-k, top-p, min-p, softmax and one inverse-CDF draw.
 * `logits` is not modified. NaN logits count as -Infinity.
 */
export function sampleToken(
  logits: Float32Array,
  history: ArrayLike<number>,
  opts: SamplingOptions,
  rng: Rng,
): number {
  validateSampling(opts);
  const V = logits.length;
  check(V > 0, "cannot sample from an empty logits row");
  let x: Float32Array = logits;
  if (opts.repetitionPenalty !== 1 && history.length > 0) {
    x = applyRepetitionPenalty(logits, history, opts.repetitionPenalty);
  }
  if (opts.temperature === 0) return argmax(x);

  // Scaled logits (float32, as torch computes them).
  const s = new Float32Array(V);
  const t = opts.temperature;
  for (let i = 0; i < V; i++) s[i] = x[i] / t;

  // Candidates: top-k survivors (ties at the k-th value kept), never -inf/NaN.
  const k = opts.topK > 0 && opts.topK < V ? opts.topK : 0;
  const thr = k > 0 ? kthLargest(s, k) : -Infinity;
  const cand = new Int32Array(V);
  let n = 0;
  let max = -Infinity;
  for (let i = 0; i < V; i++) {
    const v = s[i];
    if (v >= thr && v > -Infinity) {
      cand[n++] = i;
      if (v > max) max = v;
    }
  }
  if (n === 0) return argmax(x);

  // Unnormalised probabilities relative to the max.
  const w = new Float64Array(V);
  let total = 0;
  for (let j = 0; j < n; j++) {
    const i = cand[j];
    total += w[i] = Math.exp(s[i] - max);
  }

  const topP = opts.topP < 1;
  if (topP) n = topPFilter(s, w, cand, n, total, opts.topP);
  if (opts.minP > 0) {
    // prob < minP * maxProb  <=>  w < minP (the max has w = 1, so it always stays).
    let m = 0;
    for (let j = 0; j < n; j++) if (w[cand[j]] >= opts.minP) cand[m++] = cand[j];
    n = m;
  }

  // Inverse CDF over the kept ids in ascending id order.
  const kept = topP ? cand.subarray(0, n).sort() : cand.subarray(0, n);
  total = 0;
  for (let j = 0; j < n; j++) total += w[kept[j]];
  const u = rng.nextFloat() * total;
  let acc = 0;
  let last = kept[0];
  for (let j = 0; j < n; j++) {
    const i = kept[j];
    if (w[i] <= 0) continue;
    acc += w[i];
    last = i;
    if (u < acc) return i;
  }
  return last;
}

/** HF RepetitionPenaltyLogitsProcessor on a copy: each distinct id in history, logit>0 ? l/p : l*p. */
export function applyRepetitionPenalty(logits: Float32Array, history: ArrayLike<number>, penalty: number): Float32Array {
  const out = Float32Array.from(logits);
  const seen = new Uint8Array(logits.length);
  for (let j = 0; j < history.length; j++) {
    const id = history[j];
    check(Number.isInteger(id) && id >= 0 && id < logits.length, `token id ${id} in history is outside the vocabulary (size ${logits.length})`);
    if (seen[id]) continue;
    seen[id] = 1;
    const l = logits[id];
    out[id] = l > 0 ? l / penalty : l * penalty;
  }
  return out;
}

/** Index of the largest value; lowest index wins ties; NaN never wins (all NaN/-inf gives 0). */
export function argmax(x: ArrayLike<number>): number {
  let best = 0;
  let bestV = -Infinity;
  for (let i = 0; i < x.length; i++) {
    if (x[i] > bestV) {
      bestV = x[i];
      best = i;
    }
  }
  return best;
}

/** The k-th largest non-NaN value (with multiplicity), via a size-k min-heap: O(V log k). */
function kthLargest(s: Float32Array, k: number): number {
  const h = new Float32Array(k);
  let size = 0;
  for (let i = 0; i < s.length; i++) {
    const v = s[i];
    if (v !== v) continue;
    if (size < k) {
      // sift up
      let c = size++;
      while (c > 0) {
        const p = (c - 1) >> 1;
        if (h[p] <= v) break;
        h[c] = h[p];
        c = p;
      }
      h[c] = v;
    } else if (v > h[0]) {
      // replace root, sift down
      let c = 0;
      for (;;) {
        let m = 2 * c + 1;
        if (m >= k) break;
        if (m + 1 < k && h[m + 1] < h[m]) m++;
        if (h[m] >= v) break;
        h[c] = h[m];
        c = m;
      }
      h[c] = v;
    }
  }
  return size < k ? -Infinity : h[0];
}

/**
 * HF TopPLogitsWarper: in ascending order, drop tokens whose cumulative prob is <= 1 - topP, keeping
 * at least the top one. Equivalently, walking down from the top, a token stays while the tail from it
 * downwards still holds more than 1 - topP. Pops a max-heap only as far as needed; O(n log n) worst.
 * Rewrites cand[0..kept) (descending order) and returns the kept count.
 */
function topPFilter(s: Float32Array, w: Float64Array, cand: Int32Array, n: number, total: number, topP: number): number {
  // Max-heap of candidate ids keyed by (logit desc, id asc).
  const h = cand.slice(0, n);
  const above = (a: number, b: number) => s[a] > s[b] || (s[a] === s[b] && a < b);
  const siftDown = (c: number, size: number) => {
    const id = h[c];
    for (;;) {
      let m = 2 * c + 1;
      if (m >= size) break;
      if (m + 1 < size && above(h[m + 1], h[m])) m++;
      if (!above(h[m], id)) break;
      h[c] = h[m];
      c = m;
    }
    h[c] = id;
  };
  for (let c = (n >> 1) - 1; c >= 0; c--) siftDown(c, n);
  const limit = 1 - topP;
  let size = n;
  let mass = 0; // mass strictly above the current token
  let kept = 0;
  while (size > 0) {
    const id = h[0];
    if (kept > 0 && (total - mass) / total <= limit) break;
    cand[kept++] = id;
    mass += w[id];
    h[0] = h[--size];
    if (size > 0) siftDown(0, size);
  }
  return kept;
}
