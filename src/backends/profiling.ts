import type { Tensor } from "../tensor/tensor.js";
import type { Backend } from "./backend.js";
import { opCost, tensorBytes, tensorsIn, type OpCost } from "./op-cost.js";

/**
 * Op-level profiling of any backend: every call of the op table is timed and counted (FLOPs and bytes
 * from shapes, see op-cost.ts) under a caller-chosen scope label, and tensor bytes are tracked from
 * creation to release, so the peak of live bytes during a forward pass is known.
 *
 * The profiler instruments one backend *instance*: its op methods are replaced by timed wrappers for as
 * long as it is attached, so tensors keep pointing at the same backend and models run unchanged. Use a
 * dedicated instance (or detach when done) — every op on that instance is recorded while attached.
 */

/**
 * How an op's duration is measured. The host clock suits eager backends (the CPU computes inside the
 * call). A backend that only records work when an op is called (WebGPU) supplies a timer whose `end`
 * resolves later, e.g. from timestamp queries written around the op's dispatches; `flush()` waits for them.
 */
export interface OpTimer {
  readonly name: string;
  begin(op: string): unknown;
  /** Milliseconds the op took, now or once the device has run it. */
  end(handle: unknown): number | Promise<number>;
  /** Called when a profiler attaches (e.g. to switch the device into timed recording). */
  start?(): void;
  /** Called when it detaches. */
  stop?(): Promise<void> | void;
  /** Makes every pending `end` resolve (submits recorded work, reads its timestamps back). */
  settle?(): Promise<void>;
}

export const hostTimer: OpTimer = {
  name: "host wall clock (performance.now) around each op call",
  begin: () => performance.now(),
  end: (start) => performance.now() - (start as number),
};

/** A backend that can time its own ops (GPU timestamps) offers a timer; the profiler uses it when present. */
export interface TimedBackend extends Backend {
  opTimer(): OpTimer | null;
}

function ownTimer(backend: Backend): OpTimer | null {
  const b = backend as Partial<TimedBackend>;
  return typeof b.opTimer === "function" ? b.opTimer() : null;
}

/** The op-table methods the profiler wraps (everything but `name`). `release` is tracked, not timed. */
export const PROFILED_OPS = [
  "upload", "zeros", "read", "embedding", "linear", "rmsNorm", "layerNorm", "unary", "binary", "sliceLast",
  "selectPositions", "concat0", "slice0", "reshape", "toFloat32", "resizeAxis1", "writeAxis1", "gatedRmsNorm",
  "causalConv1d", "selectiveScan", "selectiveStateUpdate", "ssdChunked", "ssdStep", "causalAttention", "rope",
  "fftConv", "diagSsmKernel", "diagSsmConv", "diagSsmStep", "shiftSsmTaps", "shiftSsm",
] as const satisfies readonly (keyof Backend)[];

/**
 * Optional fusions of two op-table ops, hidden while a profiler is attached so that ops/ composes them
 * from the parts and each part is timed and attributed as itself. (addNorm is split by the bench's
 * instrumentation instead, which knows which layer each half belongs to.)
 */
const SPLIT_WHILE_PROFILING = ["gatedNormLinear"] as const satisfies readonly (keyof Backend)[];

/** Totals of one op under one scope. */
export interface OpTotals {
  scope: string;
  op: string;
  calls: number;
  ms: number;
  flops: number;
  bytes: number;
  /** Bytes of new tensors the calls created (views excluded). */
  allocBytes: number;
}

type AnyFn = (...args: unknown[]) => unknown;

export class OpProfiler {
  /** Label the next op calls are recorded under (e.g. a layer kind); set freely by the caller. */
  scope = "other";
  /** While false, ops run untimed and unrecorded (memory is still tracked). */
  recording = true;
  /**
   * When an array, every recorded call also appends its host-clock interval (performance.now() ms), so
   * that host events such as garbage-collection pauses can be matched to the calls they fell into.
   */
  callLog: { scope: string; op: string; start: number; end: number }[] | null = null;
  readonly timer: OpTimer;
  /** Whether op times come from the device (GPU timestamps) rather than the host clock. */
  get timesOnDevice(): boolean {
    return this.timer !== hostTimer;
  }
  private readonly totals = new Map<string, OpTotals>();
  private readonly live = new Map<number, number>();
  private liveTotal = 0;
  private peak = 0;
  private depth = 0;
  private pending: Promise<void>[] = [];
  private attached = false;

  constructor(readonly backend: Backend, timer?: OpTimer) {
    this.timer = timer ?? ownTimer(backend) ?? hostTimer;
  }

  /** Instruments the backend instance; returns this. */
  attach(): this {
    if (this.attached) return this;
    this.timer.start?.();
    const target = this.backend as unknown as Record<string, AnyFn>;
    for (const op of PROFILED_OPS) {
      const original = target[op];
      if (typeof original !== "function") continue;
      const bound = original.bind(this.backend);
      target[op] = op === "read"
        ? (...args: unknown[]) => this.callAsync(op, bound, args)
        : (...args: unknown[]) => this.call(op, bound, args);
    }
    for (const op of SPLIT_WHILE_PROFILING) (target as Record<string, unknown>)[op] = undefined;
    const release = (target.release as AnyFn).bind(this.backend);
    target.release = (t: unknown) => {
      this.forget(t as Tensor);
      return release(t);
    };
    this.attached = true;
    return this;
  }

  /** Removes the instrumentation (the instance's own prototype methods show through again). */
  detach(): void {
    if (!this.attached) return;
    void this.timer.stop?.();
    const target = this.backend as unknown as Record<string, unknown>;
    for (const op of [...PROFILED_OPS, ...SPLIT_WHILE_PROFILING, "release"]) delete target[op];
    this.attached = false;
  }

  /** Clears the recorded totals (memory tracking continues). */
  reset(): void {
    this.totals.clear();
  }

  /** Bytes of tensors created while attached and not yet released. */
  get liveBytes(): number {
    return this.liveTotal;
  }

  /** Highest liveBytes since the last resetPeak(). */
  get peakBytes(): number {
    return this.peak;
  }

  resetPeak(): void {
    this.peak = this.liveTotal;
  }

  /** Times host-side work (e.g. sampling) as an op of its own under the current scope. */
  time<T>(op: string, fn: () => T, cost: OpCost = { flops: 0, bytes: 0 }): T {
    const start = performance.now();
    const result = fn();
    if (this.recording) this.add(op, performance.now() - start, cost, 0);
    return result;
  }

  /** Waits for op durations that the timer resolves asynchronously (GPU timestamps). */
  async flush(): Promise<void> {
    await this.timer.settle?.();
    const pending = this.pending;
    this.pending = [];
    await Promise.all(pending);
  }

  /** Recorded totals, one entry per (scope, op). */
  snapshot(): OpTotals[] {
    return [...this.totals.values()].map((t) => ({ ...t }));
  }

  private call(op: string, fn: AnyFn, args: unknown[]): unknown {
    // Ops a backend runs inside another op belong to the outer call.
    if (this.depth > 0 || !this.recording) {
      const result = fn(...args);
      this.track(result, args);
      return result;
    }
    this.depth++;
    let handle: unknown;
    let result: unknown;
    const hostStart = this.callLog ? performance.now() : 0;
    try {
      handle = this.timer.begin(op);
      result = fn(...args);
    } finally {
      this.depth--;
    }
    const elapsed = this.timer.end(handle);
    this.callLog?.push({ scope: this.scope, op, start: hostStart, end: performance.now() });
    const alloc = this.track(result, args);
    const cost = opCost(op, args, result);
    const scope = this.scope;
    if (typeof elapsed === "number") this.add(op, elapsed, cost, alloc, scope);
    else this.pending.push(elapsed.then((ms) => this.add(op, ms, cost, alloc, scope)));
    return result;
  }

  private async callAsync(op: string, fn: AnyFn, args: unknown[]): Promise<unknown> {
    if (!this.recording) return fn(...args);
    const scope = this.scope;
    if (this.timer !== hostTimer) {
      // A device timer: the read's own commands (the copy out) are recorded before its first await; the
      // wait that follows is the device finishing earlier ops, whose time those ops already carry.
      const handle = this.timer.begin(op);
      let promise: Promise<unknown>;
      try {
        promise = fn(...args) as Promise<unknown>;
      } finally {
        const elapsed = this.timer.end(handle);
        const cost = opCost(op, args, undefined);
        if (typeof elapsed === "number") this.add(op, elapsed, cost, 0, scope);
        else this.pending.push(elapsed.then((ms) => this.add(op, ms, cost, 0, scope)));
      }
      return promise;
    }
    const start = performance.now();
    const result = await (fn(...args) as Promise<unknown>);
    this.add(op, performance.now() - start, opCost(op, args, result), 0, scope);
    return result;
  }

  /** Registers new output tensors as live; returns their bytes (tensors sharing an input's storage are views). */
  private track(result: unknown, args: unknown[]): number {
    const outputs = tensorsIn(result);
    let bytes = 0;
    if (outputs.size > 0) {
      const inputStorage = new Set([...tensorsIn(args)].map((t) => t.storage));
      for (const t of outputs) {
        if (inputStorage.has(t.storage) || this.live.has(t.id)) continue;
        const n = tensorBytes(t);
        this.live.set(t.id, n);
        this.liveTotal += n;
        bytes += n;
      }
      if (this.liveTotal > this.peak) this.peak = this.liveTotal;
    }
    return bytes;
  }

  private forget(t: Tensor): void {
    const n = this.live.get(t.id);
    if (n === undefined) return;
    this.live.delete(t.id);
    this.liveTotal -= n;
  }

  private add(op: string, ms: number, cost: OpCost, allocBytes: number, scope = this.scope): void {
    const key = `${scope}\u0000${op}`;
    let t = this.totals.get(key);
    if (!t) {
      t = { scope, op, calls: 0, ms: 0, flops: 0, bytes: 0, allocBytes: 0 };
      this.totals.set(key, t);
    }
    t.calls++;
    t.ms += ms;
    t.flops += cost.flops;
    t.bytes += cost.bytes;
    t.allocBytes += allocBytes;
  }
}
