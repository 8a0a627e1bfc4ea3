// The fork-join protocol between the thread that runs ops and its helper threads, on shared memory only
// (no messages per job), so that a Node worker_thread and a browser Web Worker can run the same loop.
//
// A job is: a kernel number, its arguments (f64), the size of the dimension to split and the alignment
// of the split, the number of chunks it is cut into, and optionally per-thread scratch (base + thread ·
// stride, appended as the last argument). Chunk c covers rows [c·size, min(total, (c+1)·size)) with size
// = ceil(total / chunks / align)·align, appended as two arguments before the scratch.
//
// Chunks are claimed, not assigned: every thread, the caller included, takes the next unclaimed chunk
// until none is left, so a helper that wakes late (its core busy with other work) gets fewer chunks
// instead of holding everyone up, and with a descheduled helper the caller simply does all the work.
// The claim counter carries the job's generation in its high bits, so a helper that wakes after its job
// is over cannot claim a chunk of a later one; it reads a job's arguments only after a successful claim,
// which the caller cannot outlive (it waits for every claimed chunk to be done).
import { KERNEL_NAMES } from "./runtime.js";

export const CTL = {
  /** Job generation: bumped for every shared job (helpers wait on it). */
  GEN: 0,
  /** (generation mod 2^20) << 12 | next unclaimed chunk. */
  CLAIM: 1,
  /** Chunks finished. */
  DONE: 2,
  KERNEL: 3,
  NARGS: 4,
  TOTAL: 5,
  ALIGN: 6,
  CHUNKS: 7,
  SCRATCH: 8,
  SCRATCH_STRIDE: 9,
  /** Set by a helper whose kernel threw; the caller rethrows. */
  ERROR: 10,
  /** Nonzero: helpers leave their loop. */
  EXIT: 11,
  /** Helpers that have started and instantiated the kernels. */
  READY: 12,
  /** Threads taking part in the job (thread indices below it; per-thread scratch exists for those). */
  THREADS: 13,
  /** Chunks run by helper threads since the pool started (a count for tests and benchmarks). */
  HELPER_CHUNKS: 14,
  SIZE: 16,
} as const;

export const MAX_ARGS = 32;

/** What a helper thread is given when it starts (worker_threads' workerData, or a Web Worker's first message). */
export interface HelperData {
  module: WebAssembly.Module;
  memory: WebAssembly.Memory;
  ctl: SharedArrayBuffer;
  args: SharedArrayBuffer;
  /** The helper's thread index (1..): its scratch slot, and whether it takes part in a job. */
  index: number;
}

const INDEX_BITS = 12;
/** Most chunks a job may have. */
export const MAX_CHUNKS = (1 << INDEX_BITS) - 1;
const INDEX_MASK = (1 << INDEX_BITS) - 1;
/** Generations wrap after 2^20 jobs: a helper would have to sleep through a million jobs to be fooled. */
const GEN_MASK = (1 << 20) - 1;

/**
 * Spin iterations (each one atomic load, about 0.25 ms in all) before a waiting thread sleeps in
 * Atomics.wait. Long enough that a helper is still awake for the next threaded op of a decoding step
 * (the single-threaded ops between two of them take 20–100 µs; waking a sleeping helper cost mamba-130m
 * q8 decoding ~7% with 4,000 spins), short enough not to hold a core that another thread needs on a busy
 * machine (2 threads on 2 busy cores went 5x slower with ~1 ms spins).
 */
export const SPIN_ITERATIONS = 40_000;

export function chunkOf(total: number, align: number, chunks: number, c: number): [number, number] {
  const size = Math.ceil(total / chunks / align) * align;
  const r0 = Math.min(total, c * size);
  return [r0, Math.min(total, r0 + size)];
}

/** The claim word that opens job `gen` (no chunk claimed yet). */
export function claimStart(gen: number): number {
  return (gen & GEN_MASK) << INDEX_BITS;
}

type KernelFn = (...args: number[]) => void;

/** Runs chunk c of the job in ctl/args on thread t (whose scratch it uses). */
export function runChunk(ctl: Int32Array, args: Float64Array, exports: WebAssembly.Exports, c: number, t: number): void {
  const fn = exports[KERNEL_NAMES[ctl[CTL.KERNEL]]] as KernelFn;
  const [r0, r1] = chunkOf(ctl[CTL.TOTAL], ctl[CTL.ALIGN], ctl[CTL.CHUNKS], c);
  if (r0 >= r1) return;
  const n = ctl[CTL.NARGS];
  const a: number[] = new Array(n);
  for (let i = 0; i < n; i++) a[i] = args[i];
  a.push(r0, r1);
  if (ctl[CTL.SCRATCH_STRIDE] > 0) a.push(ctl[CTL.SCRATCH] + t * ctl[CTL.SCRATCH_STRIDE]);
  fn(...a);
}

/**
 * Claims and runs chunks of job `gen` until none is left; returns how many this thread ran. A chunk that
 * throws is still counted done (nobody waits for it forever); helpers record the error in ERROR, the
 * caller (t = 0) rethrows it.
 */
export function workOn(ctl: Int32Array, args: Float64Array, exports: WebAssembly.Exports, gen: number, t: number): number {
  const tag = gen & GEN_MASK;
  let ran = 0;
  for (;;) {
    const v = Atomics.load(ctl, CTL.CLAIM);
    if (v >>> INDEX_BITS !== tag) return ran; // the job is over (and maybe the next one posted)
    const c = v & INDEX_MASK;
    if (c >= ctl[CTL.CHUNKS]) return ran;
    if (Atomics.compareExchange(ctl, CTL.CLAIM, v, v + 1) !== v) continue;
    try {
      runChunk(ctl, args, exports, c, t);
    } catch (e) {
      Atomics.store(ctl, CTL.ERROR, 1);
      if (t === 0) throw e;
    } finally {
      if (Atomics.add(ctl, CTL.DONE, 1) + 1 === ctl[CTL.CHUNKS]) Atomics.notify(ctl, CTL.DONE);
    }
    ran++;
  }
}

/** A helper thread's loop: wait for a job (spinning a little first), claim and run chunks, repeat. */
export function helperLoop(ctl: Int32Array, args: Float64Array, exports: WebAssembly.Exports, t: number): void {
  // Read the generation before reporting ready: the caller posts its first job only after that.
  let seen = Atomics.load(ctl, CTL.GEN);
  Atomics.add(ctl, CTL.READY, 1);
  Atomics.notify(ctl, CTL.READY);
  for (;;) {
    let spins = 0;
    while (Atomics.load(ctl, CTL.GEN) === seen) {
      if (++spins > SPIN_ITERATIONS) {
        Atomics.wait(ctl, CTL.GEN, seen);
        spins = 0;
      }
    }
    seen = Atomics.load(ctl, CTL.GEN);
    if (Atomics.load(ctl, CTL.EXIT)) return;
    if (t < Atomics.load(ctl, CTL.THREADS)) {
      const ran = workOn(ctl, args, exports, seen, t);
      if (ran > 0) Atomics.add(ctl, CTL.HELPER_CHUNKS, ran);
    }
  }
}
