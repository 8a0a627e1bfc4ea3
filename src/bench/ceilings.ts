import type { Backend } from "../backends/backend.js";
import type { OpProfiler } from "../backends/profiling.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * The device's ceilings, measured through the backend's own op table so that any backend measures
 * itself: memory bandwidth from a large copy (toFloat32 of an f32 tensor is a plain copy), FLOP/s from a
 * large linear. A tiny readback after each op makes asynchronous backends finish before the clock stops.
 */
export interface Ceilings {
  /** Best copy rate, counting bytes read + written. */
  bytesPerS: number;
  copyBytes: number;
  /** How bytesPerS was measured. */
  copyMethod: string;
  /** The backend's copy op into a freshly allocated tensor (what an op that allocates its output can reach). */
  allocatingCopyBytesPerS: number;
  /** Best linear rate: 2·M·N·K / s on x [M, K] · W [N, K]ᵀ. */
  flopsPerS: number;
  linearShape: [number, number, number];
  /** What the elementwise kernels stream (a + b, 3 × bytes / s): for context, not a ceiling. */
  elementwiseBytesPerS: number;
  /** Matrix–vector rate (M = 1, the decode shape): for context (and a bandwidth probe on devices). */
  matvecFlopsPerS: number;
  /** [N, K] of that product (absent in reports written before it was recorded: the linear's N, K). */
  matvecShape?: [number, number];
}

function filled(backend: Backend, shape: number[]): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = new Float32Array(n);
  for (let i = 0; i < n; i++) data[i] = (i & 1023) / 1024 - 0.5;
  return backend.upload(data, shape, "f32");
}

/** Waits until the device has computed `t` (and everything before it), reading back one value. */
async function finished(t: Tensor): Promise<void> {
  const flat = t.backend.reshape(t, [t.size]);
  await t.backend.read(t.backend.slice0(flat, 0, 1));
}

async function best(reps: number, run: () => Tensor): Promise<number> {
  let bestS = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    const out = run();
    await finished(out);
    bestS = Math.min(bestS, (performance.now() - t0) / 1000);
    out.dispose();
  }
  return bestS;
}

type Timing = (reps: number, run: () => Tensor) => Promise<number>;

/**
 * Runs `run` untimed, `perRound` at a time, until `ms` of wall time have passed (a GPU idling at low clocks
 * needs that to come up).
 */
async function warmUp(run: () => Tensor, ms: number, perRound: number): Promise<void> {
  const start = performance.now();
  do {
    const outs = Array.from({ length: perRound }, () => run());
    await finished(outs[perRound - 1]);
    for (const t of outs) t.dispose();
  } while (performance.now() - start < ms);
}

/**
 * Device time of one op, from the profiler's device timer (GPU timestamps): host-clock timing of a GPU op
 * mostly measures submit and readback latency, which dwarfs a 0.1 ms copy. After a warm-up, batches of runs
 * are recorded back to back and read out once, so that the GPU stays busy as it is in a model's forward;
 * the best batch's mean per run is returned. (On an H200 right after a pause, one batch without warm-up
 * measured a quarter of the rates the same probe reaches warm.)
 */
function deviceTiming(profiler: OpProfiler, quick: boolean): Timing {
  return async (reps, run) => {
    // --quick is for a laptop in a minute, where the "GPU" may be a software rasterizer.
    await warmUp(run, quick ? 0 : 500, quick ? 1 : 4);
    const runs = quick ? reps : Math.max(reps, 10);
    let bestS = Infinity;
    for (let batch = 0; batch < (quick ? 1 : 3); batch++) {
      profiler.reset();
      profiler.recording = true;
      try {
        for (let r = 0; r < runs; r++) run().dispose();
      } finally {
        profiler.recording = false;
      }
      await profiler.flush();
      const ms = profiler.snapshot().reduce((sum, t) => sum + t.ms, 0);
      if (ms > 0) bestS = Math.min(bestS, ms / runs / 1000);
    }
    profiler.reset();
    return bestS;
  };
}

/** Copy between two existing host buffers: the memory ceiling of a backend whose tensors live in host memory. */
function hostCopySeconds(n: number, reps: number): number {
  const src = new Float32Array(n).fill(1);
  const dst = new Float32Array(n);
  let bestS = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    dst.set(src);
    bestS = Math.min(bestS, (performance.now() - t0) / 1000);
  }
  return bestS;
}

/**
 * `profiler`: when its timer is a device timer (GPU timestamps), ops are timed by it, at sizes that keep a
 * GPU busy; otherwise by the host clock around the op and a tiny readback.
 */
export async function measureCeilings(backend: Backend, quick: boolean, profiler?: OpProfiler): Promise<Ceilings> {
  const device = profiler?.timesOnDevice ? profiler : null;
  const time: Timing = device ? deviceTiming(device, quick) : best;
  const n = (quick ? 16 : 64) * 1024 * 1024;
  const a = filled(backend, [n]);
  const allocS = await time(quick ? 3 : 5, () => backend.toFloat32(a));
  // The CPU backend's storage is host memory, so the host's copy rate is its ceiling; other backends are
  // measured through their copy op (which allocates its output, as every op does).
  const host = backend.name === "cpu";
  const copyS = host ? hostCopySeconds(n, quick ? 3 : 5) : allocS;
  // Two distinct inputs: a + a would read its input once from memory and once from cache.
  const b = backend.binary("mul", a, a);
  const addS = await time(3, () => backend.binary("add", a, b));
  a.dispose();
  b.dispose();
  const [M, N, K] = device ? (quick ? [512, 512, 512] : [4096, 4096, 4096]) : quick ? [512, 768, 768] : [1024, 1024, 1024];
  const x = filled(backend, [M, K]);
  const w = filled(backend, [N, K]);
  const linS = await time(quick ? 2 : 3, () => backend.linear(x, w, null));
  w.dispose();
  // The matrix–vector product streams its weights once: on a GPU, the decode-shaped way to read memory.
  const [Nv, Kv] = device && !quick ? [16384, 4096] : [N, K];
  const wv = filled(backend, [Nv, Kv]);
  const v = filled(backend, [1, Kv]);
  const mvS = await time(20, () => backend.linear(v, wv, null));
  for (const t of [x, wv, v]) t.dispose();
  const how = device ? `, timed by ${device.timer.name}` : "";
  const copyRate = (2 * 4 * n) / copyS;
  const addRate = (3 * 4 * n) / addS;
  const matvecRate = (4 * Nv * Kv) / mvS;
  // A GPU's buffer-to-buffer copy engine can be slower than its shader cores streaming memory (H200: 0.7–2
  // vs 2–3.3 TB/s, varying between runs); on a device the bandwidth ceiling is the fastest of the three ways
  // of moving bytes. The CPU's is the host copy: its kernels are not written to stream at the memory's rate.
  const probes: [string, number][] = host ? [["host memory copy into an existing buffer (Float32Array.set)", copyRate]] : [
    ["the backend's toFloat32 copy", copyRate],
    ["the backend's elementwise add (a + b: 3 × bytes)", addRate],
    [`the backend's matrix–vector product (${Nv}×${Kv} f32 weights read once)`, matvecRate],
  ];
  const [method, bytesPerS] = probes.reduce((x, y) => (y[1] > x[1] ? y : x));
  return {
    bytesPerS,
    copyBytes: 4 * n,
    copyMethod: method + how,
    allocatingCopyBytesPerS: (2 * 4 * n) / allocS,
    flopsPerS: (2 * M * N * K) / linS,
    linearShape: [M, N, K],
    elementwiseBytesPerS: addRate,
    matvecFlopsPerS: (2 * Nv * Kv) / mvS,
    matvecShape: [Nv, Kv],
  };
}
