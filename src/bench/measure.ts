import { PerformanceObserver, type PerformanceObserverEntryList } from "node:perf_hooks";
import type { OpProfiler, OpTotals } from "../backends/profiling.js";
import { Rng } from "../generate/rng.js";
import { sampleToken, type SamplingOptions } from "../generate/sampling.js";
import type { SequenceLM } from "../models/sequence-lm.js";
import { InferenceState, type LayerState } from "../models/state.js";
import { tensor } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { collectGarbage } from "./gc.js";
import { HEAD_SCOPE } from "./instrument.js";

/** One measured run: wall time of one prefill (or one decode step), the op totals behind it, peak activations. */
export interface RunStats {
  wallMs: number;
  /** Op totals of the run (per step for decode). */
  ops: OpTotals[];
  /** Highest bytes of live tensors above what existed before the run (activations, new state, KV copies). */
  peakBytes: number;
}

/** `hippo generate`'s default sampler, so decode steps pay what a user's do. */
export const BENCH_SAMPLING: SamplingOptions = { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05, repetitionPenalty: 1 };

const now = () => performance.now();

/** Untimed decode steps before the recorded ones (they compile the step kernels). */
export const DECODE_WARMUP_STEPS = 2;

function randomIds(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => rng.nextUint32() % vocab);
}

/** Uniform values in (−0.5, 0.5) from a fast LCG (the values only need to be ordinary floats). */
function filler(n: number, seed: number): Float32Array {
  const out = new Float32Array(n);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = s / 4294967296 - 0.5;
  }
  return out;
}

/**
 * A state as after `context` tokens, without running them: every layer's recurrent state and a KV cache of
 * `context` entries, filled with ordinary values. Decode cost depends on shapes only, so this times a step at
 * 64K tokens of context without a 64K-token prefill.
 */
export function syntheticState(model: SequenceLM, batch: number, context: number, seed = 1): InferenceState {
  const b = model.backend;
  const make = (shape: number[]) => b.upload(filler(shape.reduce((x, y) => x * y, 1), seed++), shape, "f32");
  const layers = model.parts.layers.map(({ layer }): LayerState => ({
    ...Object.fromEntries(Object.entries(layer.stateShapes()).map(([k, s]) => [k, make([batch, ...s])])),
    ...Object.fromEntries(Object.entries(layer.cacheShapesPerToken()).map(([k, s]) => [k, make([batch, context, ...s])])),
  }));
  return new InferenceState(layers, new Array<number>(batch).fill(context), model.stateKey, model.cacheNames);
}

function idsTensor(model: SequenceLM, ids: Int32Array, shape: number[]): Tensor {
  return tensor(ids, shape, { backend: model.backend, dtype: "i32" });
}

/**
 * Runs fn with the profiler recording from a clean slate (and a clean heap); returns wall ms, op totals and
 * peak bytes. Garbage-collection pauses that fall inside an op call are moved out of that op into a "gc" op
 * of the same scope: they are a cost of allocating, not of the op's arithmetic.
 */
async function recorded(profiler: OpProfiler, fn: () => Promise<void>): Promise<RunStats> {
  collectGarbage();
  const pauses = await watchGc();
  profiler.reset();
  profiler.resetPeak();
  profiler.callLog = [];
  const base = profiler.liveBytes;
  profiler.recording = true;
  profiler.scope = HEAD_SCOPE;
  const t0 = now();
  try {
    await fn();
  } finally {
    profiler.recording = false;
  }
  const wallMs = now() - t0;
  await profiler.flush();
  const ops = profiler.snapshot();
  moveGcPauses(ops, profiler.callLog, await pauses.stop());
  profiler.callLog = null;
  const peakBytes = profiler.peakBytes - base;
  return { wallMs: (await untimedWallMs(profiler, fn)) ?? wallMs, ops, peakBytes };
}

/**
 * A device timer changes the work it times (a pass per dispatch, timestamp readbacks): with one, the wall
 * time comes from the same work run again untimed, right after the timed run (so both find the buffers
 * the first run allocated, as repeated prefills do). null with the host clock.
 */
async function untimedWallMs(profiler: OpProfiler, fn: () => Promise<void>): Promise<number | null> {
  const timer = profiler.timer;
  if (!timer.start || !timer.stop) return null;
  await timer.stop();
  try {
    collectGarbage();
    const t0 = now();
    await fn();
    return now() - t0;
  } finally {
    timer.start();
  }
}

interface Pause { start: number; end: number }

/** Collects the main thread's garbage-collection pauses (performance.now() times) until stop(). */
async function watchGc(): Promise<{ stop(): Promise<Pause[]> }> {
  const pauses: Pause[] = [];
  const add = (list: PerformanceObserverEntryList) => {
    for (const e of list.getEntries()) pauses.push({ start: e.startTime, end: e.startTime + e.duration });
  };
  const observer = new PerformanceObserver(add);
  observer.observe({ entryTypes: ["gc"] });
  // Entries of the collection just forced arrive on a later tick; drop them.
  await new Promise((resolve) => setTimeout(resolve, 1));
  pauses.length = 0;
  return {
    async stop() {
      // Entries are delivered on a timer tick after the pause.
      await new Promise((resolve) => setTimeout(resolve, 5));
      observer.disconnect();
      return pauses;
    },
  };
}

function moveGcPauses(ops: OpTotals[], calls: { scope: string; op: string; start: number; end: number }[], pauses: Pause[]): void {
  if (pauses.length === 0) return;
  const find = (scope: string, op: string): OpTotals => {
    let t = ops.find((o) => o.scope === scope && o.op === op);
    if (!t) {
      t = { scope, op, calls: 0, ms: 0, flops: 0, bytes: 0, allocBytes: 0 };
      ops.push(t);
    }
    return t;
  };
  for (const call of calls) {
    for (const p of pauses) {
      const overlap = Math.min(call.end, p.end) - Math.max(call.start, p.start);
      if (overlap <= 0) continue;
      const from = find(call.scope, call.op);
      const moved = Math.min(overlap, from.ms);
      from.ms -= moved;
      const gc = find(call.scope, "gc");
      gc.ms += moved;
      gc.calls += 1;
    }
  }
}

/** Prefill of `batch` random prompts of `length` tokens, logits of the last position read back; best of `reps`. */
export async function measurePrefill(model: SequenceLM, profiler: OpProfiler, batch: number, length: number, reps: number, rng: Rng): Promise<RunStats> {
  let best: RunStats | null = null;
  for (let r = 0; r < reps; r++) {
    profiler.recording = false;
    const ids = idsTensor(model, randomIds(rng, batch * length, model.vocabSize), [batch, length]);
    const stats = await recorded(profiler, async () => {
      const out = model.forward(ids, null, { logits: "last" });
      await out.logits!.read();
      out.logits!.dispose();
      out.hidden.dispose();
      out.state.dispose();
    });
    ids.dispose();
    if (!best || stats.wallMs < best.wallMs) best = stats;
  }
  return best!;
}

/**
 * Decode steps of `batch` rows at `context` tokens of context (a synthetic state, see syntheticState): each
 * step runs the model, reads the logits back and samples every row as `hippo generate` does. `warmup`
 * untimed steps first (they compile the step kernels); each of `steps` steps is recorded on its own and the median
 * one (by wall time) is returned, so a garbage-collection pause does not pose as an op's cost.
 */
export async function measureDecode(
  model: SequenceLM, profiler: OpProfiler, batch: number, context: number, steps: number, rng: Rng, warmup = DECODE_WARMUP_STEPS,
): Promise<RunStats> {
  profiler.recording = false;
  let state = syntheticState(model, batch, context);
  let ids = idsTensor(model, randomIds(rng, batch, model.vocabSize), [batch, 1]);
  const step = async () => {
    profiler.scope = HEAD_SCOPE;
    const r = model.step(ids, state);
    const logits = (await r.logits.read()) as Float32Array;
    const V = logits.length / batch;
    const next = profiler.time("sample", () => {
      const out = new Int32Array(batch);
      for (let b = 0; b < batch; b++) out[b] = sampleToken(logits.subarray(b * V, (b + 1) * V), [], BENCH_SAMPLING, rng);
      return out;
    }, { flops: 6 * logits.length, bytes: 4 * logits.length });
    r.logits.dispose();
    state.dispose();
    ids.dispose();
    state = r.state;
    ids = idsTensor(model, next, [batch, 1]);
  };
  for (let w = 0; w < warmup; w++) await step();
  const runs: RunStats[] = [];
  for (let s = 0; s < steps; s++) runs.push(await recorded(profiler, step));
  state.dispose();
  ids.dispose();
  runs.sort((a, b) => a.wallMs - b.wallMs);
  return runs[Math.floor((runs.length - 1) / 2)];
}

export { Rng };
