// Helper threads for the wasm kernels: T − 1 workers plus the calling thread share each kernel's rows,
// cut into chunks that whoever is free claims (pool-protocol.ts). Jobs go through shared memory; the
// caller works too and then blocks (spin, then Atomics.wait) until every chunk is done, so ops stay
// synchronous. Workers are unref'd: they never keep a process alive.
import { CTL, MAX_ARGS, MAX_CHUNKS, SPIN_ITERATIONS, claimStart, runChunk, workOn, type HelperData } from "./pool-protocol.js";
import { KERNEL_NAMES, type KernelName } from "./runtime.js";

interface NodeWorker { unref(): void; terminate(): Promise<number>; on(event: "error", listener: (error: Error) => void): void }
type WorkerCtor = new (url: URL, options: { workerData: unknown }) => NodeWorker;
/** What the pool needs of a browser Web Worker (`Worker` of a cross-origin-isolated page). */
interface WebWorker { postMessage(message: unknown): void; terminate(): void }
type WebWorkerCtor = new (url: URL, options: { type: "module" }) => WebWorker;

/** How long the caller waits for new workers to start before running single-threaded. */
const START_TIMEOUT_MS = 10_000;

export interface Job {
  kernel: KernelName;
  args: number[];
  /** Size of the split dimension and the multiple each part's start is rounded to. */
  total: number;
  align: number;
  /** Per-thread scratch: base byte offset and stride (0: the kernel takes no scratch). */
  scratch?: number;
  scratchStride?: number;
  /**
   * Chunks per thread (default CHUNKS_PER_THREAD). 1 for kernels with per-call work that chunks would
   * repeat (the SSD chunk step computes C·Bᵀ once per call).
   */
  grain?: number;
}

/** Chunks per thread: enough for a late helper to take a share, few enough that claims stay cheap. */
const CHUNKS_PER_THREAD = 4;

let workerCtor: WorkerCtor | null | undefined;
/** node:fs's existsSync (null outside Node), to check for the helpers' module file before starting them. */
let fileExists: ((path: URL) => boolean) | null = null;

/** node:worker_threads' Worker, loaded once; null outside Node. */
async function loadWorkerCtor(): Promise<WorkerCtor | null> {
  if (workerCtor !== undefined) return workerCtor;
  try {
    const mod = await import("node:worker_threads");
    workerCtor = mod.Worker as unknown as WorkerCtor;
    fileExists = (await import("node:fs")).existsSync;
  } catch {
    workerCtor = null;
  }
  return workerCtor;
}

/** Resolved at module load in Node (top-level await), so pools can start synchronously later. */
await loadWorkerCtor();

/**
 * Browsers' Web Worker where shared memory may be sent to workers (a cross-origin-isolated page, or a
 * worker of one); null elsewhere.
 */
function webWorkerCtor(): WebWorkerCtor | null {
  const g = globalThis as { Worker?: WebWorkerCtor; crossOriginIsolated?: boolean };
  return typeof g.Worker === "function" && g.crossOriginIsolated === true ? g.Worker : null;
}

/**
 * Whether this thread may block in Atomics.wait: a browser page's main thread may not (it throws), so
 * there the caller only spins for its helpers' last chunks — work already under way, never a wait for a
 * helper to start.
 */
const CAN_BLOCK = (() => {
  try {
    Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 1, 0); // value differs: returns at once
    return true;
  } catch {
    return false;
  }
})();

export class ThreadPool {
  // Fresh control blocks for every set of workers, so that workers being stopped (which may still be
  // waking up) can never see the next set's jobs.
  private ctl = new Int32Array(new SharedArrayBuffer(CTL.SIZE * 4));
  private args = new Float64Array(new SharedArrayBuffer(MAX_ARGS * 8));
  private workers: (NodeWorker | WebWorker)[] = [];
  private size = 1;

  constructor(
    private readonly module: WebAssembly.Module,
    private readonly memory: WebAssembly.Memory,
    private readonly exports: WebAssembly.Exports,
    /** The Node helpers' module (worker.js beside this file; a bundler may have left it behind). */
    private readonly workerUrl = new URL("./worker.js", import.meta.url),
  ) {}

  /** Threads that run kernels, the caller included. */
  get threads(): number {
    return this.size;
  }

  /** Sets the thread count (1 = the caller alone, no workers); starts or stops workers to match. */
  setThreads(n: number): void {
    const want = Math.max(1, Math.floor(n));
    if (want === this.size) return;
    this.stopWorkers();
    this.size = want;
    if (want > 1 && !this.startWorkers(want - 1)) this.size = 1;
  }

  private startWorkers(count: number): boolean {
    const node = workerCtor ?? null;
    const web = node ? null : webWorkerCtor();
    if (!node && !web) return false;
    this.ctl = new Int32Array(new SharedArrayBuffer(CTL.SIZE * 4));
    this.args = new Float64Array(new SharedArrayBuffer(MAX_ARGS * 8));
    if (web) {
      // A Web Worker starts only once this thread yields to its event loop, so nothing waits for it here:
      // jobs run on the caller alone until the helpers report ready, and each helper joins from the job
      // after that (the protocol never lets a helper into a job already posted).
      for (let i = 1; i <= count; i++) {
        const w = new web(new URL("./web-worker.js", import.meta.url), { type: "module" });
        w.postMessage(this.helperData(i));
        this.workers.push(w);
      }
      return true;
    }
    const url = this.workerUrl;
    if (url.protocol === "file:" && fileExists && !fileExists(url)) {
      // Bundled without the helpers' file: say so once and run on one thread, rather than let the
      // worker's load error end the process.
      process.emitWarning(`the wasm kernels' helper module ${url.pathname} is missing (bundled without it?); running on one thread`, "HippoWarning");
      return false;
    }
    for (let i = 1; i <= count; i++) {
      const w = new node!(url, { workerData: this.helperData(i) });
      // A helper that fails to start never reports ready: the wait below times out and the pool runs on
      // one thread. Without a listener its error would end the process.
      w.on("error", (e) => process.emitWarning(`a wasm kernel helper thread failed: ${e.message}`, "HippoWarning"));
      w.unref();
      this.workers.push(w);
    }
    const deadline = Date.now() + START_TIMEOUT_MS;
    for (;;) {
      const ready = Atomics.load(this.ctl, CTL.READY);
      if (ready >= count) return true;
      if (Date.now() > deadline) {
        this.stopWorkers();
        return false;
      }
      Atomics.wait(this.ctl, CTL.READY, ready, 50);
    }
  }

  /** What helper `index` starts from: the kernels, the shared memory and this set's control blocks. */
  private helperData(index: number): HelperData {
    return { module: this.module, memory: this.memory, ctl: this.ctl.buffer as SharedArrayBuffer, args: this.args.buffer as SharedArrayBuffer, index };
  }

  private stopWorkers(): void {
    if (this.workers.length === 0) return;
    Atomics.store(this.ctl, CTL.EXIT, 1);
    Atomics.add(this.ctl, CTL.GEN, 1);
    Atomics.notify(this.ctl, CTL.GEN);
    for (const w of this.workers) void w.terminate();
    this.workers = [];
    this.size = 1;
  }

  /** Helper threads that have started and can take chunks (in browsers they come some time after setThreads). */
  get readyHelpers(): number {
    return Math.min(this.workers.length, Atomics.load(this.ctl, CTL.READY));
  }

  /** Chunks helper threads have run so far (0 with no helpers). */
  get helperChunks(): number {
    return Atomics.load(this.ctl, CTL.HELPER_CHUNKS);
  }

  /** Stops the workers (the pool then runs everything on the caller). */
  dispose(): void {
    this.stopWorkers();
  }

  /** Runs a job across the threads (the caller among them); returns when every chunk is done. */
  run(job: Job, threads = this.size): void {
    const ctl = this.ctl;
    const t = Math.max(1, Math.min(threads, this.size));
    const units = Math.ceil(job.total / job.align);
    const chunks = Math.max(1, Math.min(units, MAX_CHUNKS, t === 1 ? 1 : t * (job.grain ?? CHUNKS_PER_THREAD)));
    ctl[CTL.KERNEL] = KERNEL_NAMES.indexOf(job.kernel);
    ctl[CTL.NARGS] = job.args.length;
    ctl[CTL.TOTAL] = job.total;
    ctl[CTL.ALIGN] = job.align;
    ctl[CTL.CHUNKS] = chunks;
    ctl[CTL.SCRATCH] = job.scratch ?? 0;
    ctl[CTL.SCRATCH_STRIDE] = job.scratchStride ?? 0;
    for (let i = 0; i < job.args.length; i++) this.args[i] = job.args[i];
    if (chunks === 1) {
      runChunk(ctl, this.args, this.exports, 0, 0); // helpers are not told: nothing to share
      return;
    }
    Atomics.store(ctl, CTL.ERROR, 0);
    Atomics.store(ctl, CTL.DONE, 0);
    Atomics.store(ctl, CTL.THREADS, t);
    const gen = ctl[CTL.GEN] + 1;
    // Publish: the claim word opens the job (after its description, which helpers read only after a
    // claim), then the generation wakes the helpers.
    Atomics.store(ctl, CTL.CLAIM, claimStart(gen));
    Atomics.store(ctl, CTL.GEN, gen);
    Atomics.notify(ctl, CTL.GEN);
    try {
      workOn(ctl, this.args, this.exports, gen, 0);
    } finally {
      // Even when this thread's chunk threw: chunks claimed by helpers must be done before the next job.
      let spins = 0;
      for (;;) {
        const done = Atomics.load(ctl, CTL.DONE);
        if (done >= chunks) break;
        if (++spins > SPIN_ITERATIONS && CAN_BLOCK) Atomics.wait(ctl, CTL.DONE, done, 1);
      }
    }
    if (Atomics.load(ctl, CTL.ERROR)) throw new Error(`wasm kernel ${job.kernel} failed on a helper thread`);
  }
}
