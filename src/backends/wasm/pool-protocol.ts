// The fork-join protocol between the thread that runs ops and its helper threads, on shared memory only
// (no messages per job), so that a Node worker_thread and a browser Web Worker can run the same loop.
//
// A job is: a kernel number, its arguments (f64), the size of the dimension to split and the alignment
// of the split, and optionally per-thread scratch (base + thread · stride, appended as the last argument).
// Thread t of T takes rows [t·chunk, min(total, (t+1)·chunk)) with chunk = ceil(total / T / align)·align,
// appended as two arguments before the scratch. The caller runs part 0 itself.
import { KERNEL_NAMES } from "./runtime.js";

export const CTL = {
  /** Job generation: bumped for every job (helpers wait on it). */
  GEN: 0,
  /** Helpers still running the current job. */
  PENDING: 1,
  KERNEL: 2,
  NARGS: 3,
  TOTAL: 4,
  ALIGN: 5,
  THREADS: 6,
  SCRATCH: 7,
  SCRATCH_STRIDE: 8,
  /** Set by a helper whose kernel threw; the caller rethrows. */
  ERROR: 9,
  /** Nonzero: helpers leave their loop. */
  EXIT: 10,
  /** Helpers that have started and instantiated the kernels. */
  READY: 11,
  SIZE: 16,
} as const;

export const MAX_ARGS = 32;

/**
 * Spin iterations (each one atomic load, some tens of microseconds in all) before a waiting thread sleeps
 * in Atomics.wait. Short on purpose: on a machine with other work, a long spin holds a core that the
 * thread being waited for needs (2 threads on 2 busy cores went 5x slower with ~1 ms spins).
 */
export const SPIN_ITERATIONS = 4_000;

export function partOf(total: number, align: number, threads: number, t: number): [number, number] {
  const chunk = Math.ceil(total / threads / align) * align;
  const r0 = Math.min(total, t * chunk);
  return [r0, Math.min(total, r0 + chunk)];
}

type KernelFn = (...args: number[]) => void;

/** Runs this thread's part `t` of the job described in ctl/args. */
export function runPart(ctl: Int32Array, args: Float64Array, exports: WebAssembly.Exports, t: number): void {
  const fn = exports[KERNEL_NAMES[ctl[CTL.KERNEL]]] as KernelFn;
  const [r0, r1] = partOf(ctl[CTL.TOTAL], ctl[CTL.ALIGN], ctl[CTL.THREADS], t);
  if (r0 >= r1) return;
  const n = ctl[CTL.NARGS];
  const a: number[] = new Array(n);
  for (let i = 0; i < n; i++) a[i] = args[i];
  a.push(r0, r1);
  if (ctl[CTL.SCRATCH_STRIDE] > 0) a.push(ctl[CTL.SCRATCH] + t * ctl[CTL.SCRATCH_STRIDE]);
  fn(...a);
}

/** A helper thread's loop: wait for a job (spinning a little first), run its part, report, repeat. */
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
    if (t < ctl[CTL.THREADS]) {
      try {
        runPart(ctl, args, exports, t);
      } catch {
        Atomics.store(ctl, CTL.ERROR, 1);
      }
      if (Atomics.sub(ctl, CTL.PENDING, 1) === 1) Atomics.notify(ctl, CTL.PENDING);
    }
  }
}
