import { classify, OP_CLASSES, scopeKind, type OpClass } from "./classify.js";
import type { RunStats } from "./measure.js";

/**
 * From a run of the unit model (one layer of each kind) to the full model: every op recorded in a layer of
 * kind k is scaled by (layers of kind k in the full model) / (layers of kind k measured). Ops outside the
 * layers (embedding, final norm, LM head, readback, sampling) are kept as measured; the host time no op
 * accounts for ("overhead") is scaled with the number of op calls. A run of the full model composes to itself.
 */

/** Full-depth totals of one op in one layer kind (or "head"). */
export interface OpRow {
  kind: string;
  op: string;
  cls: OpClass;
  calls: number;
  ms: number;
  flops: number;
  bytes: number;
  allocBytes: number;
}

export interface Profile {
  wallMs: number;
  rows: OpRow[];
  /** Peak live activation bytes of the full model (see composePeak). */
  peakBytes: number;
}

export const OVERHEAD_OP = "(outside ops)";

export function composeRun(run: RunStats, measured: Record<string, number>, full: Record<string, number>): Profile {
  const scale = (kind: string) => (measured[kind] ? (full[kind] ?? 0) / measured[kind] : 1);
  const rows = new Map<string, OpRow>();
  let opMs = 0;
  let wallMs = run.wallMs;
  // Each layer's intermediates are freed when it is done, so more layers of a kind do not raise the peak of
  // transient activations; what layers keep (recurrent states, KV caches) is the memory table's business.
  const peakBytes = run.peakBytes;
  for (const o of run.ops) {
    opMs += o.ms;
    const kind = scopeKind(o.scope);
    const cls = classify(o.op, o.scope);
    const s = scale(kind);
    wallMs += (s - 1) * o.ms;
    const key = `${kind}\u0000${o.op}\u0000${cls}`;
    const row = rows.get(key) ?? { kind, op: o.op, cls, calls: 0, ms: 0, flops: 0, bytes: 0, allocBytes: 0 };
    row.calls += s * o.calls;
    row.ms += s * o.ms;
    row.flops += s * o.flops;
    row.bytes += s * o.bytes;
    row.allocBytes += s * o.allocBytes;
    rows.set(key, row);
  }
  // Host work between op calls (shape checks, tensor bookkeeping, scopes) is taken to grow with the number of calls.
  const measuredCalls = run.ops.reduce((n, o) => n + o.calls, 0);
  const composedCalls = [...rows.values()].reduce((n, r) => n + r.calls, 0);
  const overhead = Math.max(0, run.wallMs - opMs) * (measuredCalls > 0 ? composedCalls / measuredCalls : 1);
  wallMs += overhead - Math.max(0, run.wallMs - opMs);
  if (overhead > 0) rows.set("overhead", { kind: "head", op: OVERHEAD_OP, cls: "overhead", calls: 1, ms: overhead, flops: 0, bytes: 0, allocBytes: 0 });
  return { wallMs, rows: [...rows.values()], peakBytes: Math.max(0, peakBytes) };
}

export function emptyByClass(): Record<OpClass, number> {
  return Object.fromEntries(OP_CLASSES.map((c) => [c, 0])) as Record<OpClass, number>;
}

/** Milliseconds per op class. */
export function byClass(p: Profile, field: "ms" | "flops" | "bytes" = "ms"): Record<OpClass, number> {
  const out = emptyByClass();
  for (const r of p.rows) out[r.cls] += r[field];
  return out;
}

/** Milliseconds per op class of one layer of each kind (divided by the full model's count of that kind). */
export function perLayer(p: Profile, full: Record<string, number>): Record<string, Record<OpClass, number>> {
  const out: Record<string, Record<OpClass, number>> = {};
  for (const r of p.rows) {
    const n = r.kind === "head" ? 1 : full[r.kind] ?? 1;
    (out[r.kind] ??= emptyByClass())[r.cls] += r.ms / n;
  }
  return out;
}

// ---- Fitting and projection --------------------------------------------------------------------------

export type Basis = (x: number) => number[];

/** The growth laws time is fitted with, per op class: attention is quadratic in length, FFT L·log L, the rest linear. */
export function basisFor(cls: OpClass): Basis {
  if (cls === "attention") return (L) => [1, L, L * L];
  if (cls === "fft_conv") return (L) => [1, L, L * Math.log2(Math.max(2, L))];
  return (L) => [1, L];
}

function solve(A: number[][], b: number[]): number[] | null {
  const n = b.length;
  const M = A.map((row, i) => [...row, b[i]]);
  for (let c = 0; c < n; c++) {
    let p = c;
    for (let r = c + 1; r < n; r++) if (Math.abs(M[r][c]) > Math.abs(M[p][c])) p = r;
    if (Math.abs(M[p][c]) < 1e-300) return null;
    [M[c], M[p]] = [M[p], M[c]];
    for (let r = 0; r < n; r++) {
      if (r === c) continue;
      const f = M[r][c] / M[c][c];
      for (let k = c; k <= n; k++) M[r][k] -= f * M[c][k];
    }
  }
  return M.map((row, i) => row[n] / row[i]);
}

/**
 * Non-negative least squares in relative error (weights 1/y²) over every subset of the basis; returns the
 * coefficients (zeros for dropped terms). Few points and ≤ 3 terms, so the exhaustive search is cheap.
 */
export function fitNonNegative(xs: number[], ys: number[], basis: Basis): number[] {
  const k = basis(1).length;
  const rows = xs.map(basis);
  const w = ys.map((y) => 1 / Math.max(y, 1e-9) ** 2);
  let best: { coef: number[]; err: number } = { coef: new Array(k).fill(0), err: Infinity };
  if (ys.every((y) => y <= 0)) return best.coef;
  for (let mask = 1; mask < 1 << k; mask++) {
    const idx = [...Array(k).keys()].filter((j) => mask & (1 << j));
    if (idx.length > xs.length) continue;
    // Scale columns to comparable magnitudes before the normal equations.
    const colScale = idx.map((j) => Math.max(...rows.map((r) => Math.abs(r[j]))) || 1);
    const A = idx.map((_, a) => idx.map((__, b) => rows.reduce((s, r, i) => s + (w[i] * r[idx[a]] * r[idx[b]]) / (colScale[a] * colScale[b]), 0)));
    const rhs = idx.map((j, a) => rows.reduce((s, r, i) => s + (w[i] * r[j] * ys[i]) / colScale[a], 0));
    const sol = solve(A, rhs);
    if (!sol || sol.some((c) => c < 0 || !Number.isFinite(c))) continue;
    const coef = new Array(k).fill(0);
    idx.forEach((j, a) => (coef[j] = sol[a] / colScale[a]));
    const err = rows.reduce((s, r, i) => s + w[i] * (r.reduce((t, v, j) => t + v * coef[j], 0) - ys[i]) ** 2, 0);
    if (err < best.err) best = { coef, err };
  }
  return best.coef;
}

export function evaluate(coef: number[], basis: Basis, x: number): number {
  return basis(x).reduce((s, v, j) => s + v * coef[j], 0);
}

/**
 * A fitted model of prefill time vs length: per (layer kind, op class), full depth. Each curve has its
 * class's growth law (basisFor) fitted to the measured lengths, then is scaled to pass through the longest
 * measured point: the cost per unit of work there (e.g. attention once its keys no longer fit in cache)
 * is the best guide to longer prompts, and the projection continues the measured curve without a jump.
 */
export interface PrefillFit {
  terms: { kind: string; cls: OpClass; coef: number[]; scale: number }[];
}

export function fitPrefill(profiles: { length: number; profile: Profile }[]): PrefillFit {
  const keys = new Map<string, { kind: string; cls: OpClass }>();
  for (const { profile } of profiles) for (const r of profile.rows) keys.set(`${r.kind}\u0000${r.cls}`, { kind: r.kind, cls: r.cls });
  const xs = profiles.map((p) => p.length);
  const last = xs.indexOf(Math.max(...xs));
  const terms = [...keys.values()].map(({ kind, cls }) => {
    const ys = profiles.map((p) => p.profile.rows.filter((r) => r.kind === kind && r.cls === cls).reduce((s, r) => s + r.ms, 0));
    const coef = fitNonNegative(xs, ys, basisFor(cls));
    const atLast = evaluate(coef, basisFor(cls), xs[last]);
    return { kind, cls, coef, scale: atLast > 0 ? ys[last] / atLast : 1 };
  });
  return { terms };
}

/** Projected milliseconds per op class at `length`. */
export function projectPrefill(fit: PrefillFit, length: number): Record<OpClass, number> {
  const out = emptyByClass();
  for (const t of fit.terms) out[t.cls] += t.scale * evaluate(t.coef, basisFor(t.cls), length);
  return out;
}

export function total(byCls: Record<string, number>): number {
  return Object.values(byCls).reduce((a, b) => a + b, 0);
}
