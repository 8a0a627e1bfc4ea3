import os from "node:os";
import type { Backend } from "../backends/backend.js";
import { OpProfiler } from "../backends/profiling.js";
import * as registry from "../backends/registry.js";
import { check, HippoError } from "../errors.js";
import { formatBytes } from "../models/memory.js";
import type { SequenceLM } from "../models/sequence-lm.js";
import { measureCeilings } from "./ceilings.js";
import { byClass, composeRun, fitPrefill, perLayer, projectPrefill, total, type Profile } from "./compose.js";
import { deriveFindings } from "./findings.js";
import { attributeLayers, layerCounts, modelKinds } from "./instrument.js";
import { measureDecode, measurePrefill, Rng, type RunStats } from "./measure.js";
import { carriedBytes, maxDecodeBatch, maxPrefillLength, modelMemory, type ModelMemory } from "./memory.js";
import { Progress } from "./progress.js";
import { directorySpec, modelSpec, sizePreset, type BenchModelSpec } from "./specs.js";
import type { BenchOptions, BenchResults, BudgetRow, CheckRow, DecodePoint, ModelInfo, PrefillPoint, RooflineRow } from "./types.js";

/**
 * The analysis behind `hippo bench`: for every model, prefill latency vs prompt length (measured, then
 * projected by fitted growth laws), decode latency vs context, batch sweeps, time by op class and layer
 * kind, FLOPs and bytes of every op against the device's measured ceilings, and memory (weights,
 * activations, recurrent state vs KV cache, what fits a budget). Returns everything as one JSON-ready value.
 */

export const DEFAULT_MODELS = ["h3", "mamba", "mamba2", "transformer", "hybrid"];

export function defaultOptions(quick: boolean): BenchOptions {
  const common = {
    backend: "cpu", quick, size: "125m", models: [...DEFAULT_MODELS], modelDirs: [], projectTo: 65536,
    memoryBudget: os.totalmem(), memoryContexts: [1024, 4096, 16384, 65536, 262144], depth: "unit" as const, seed: 1,
  };
  if (quick) {
    return {
      ...common, prefillLengths: [128, 256, 512], prefillBatches: [1], prefillBatchLength: 128,
      decodeContexts: [256, 2048, 8192], decodeSteps: 3, decodeBatches: [1, 4], decodeBatchContext: 256, reps: 1, check: false,
    };
  }
  return {
    ...common, prefillLengths: [256, 512, 1024, 2048, 4096], prefillBatches: [1, 4], prefillBatchLength: 256,
    decodeContexts: [256, 1024, 4096, 16384, 65536], decodeSteps: 5, decodeBatches: [1, 4, 16], decodeBatchContext: 1024, reps: 2, check: true,
  };
}

/** Prefill warm-up length: compiles the kernels and measures activation bytes per token. */
const WARMUP_LENGTH = 64;
/** The longest prompt and context the roofline and the per-layer tables are reported at. */
const ROOFLINE_PREFILL = 2048;
const ROOFLINE_DECODE = 4096;
/** Requested runs must fit in this share of the machine's free memory. */
const MACHINE_SHARE = 0.8;

interface Built {
  spec: BenchModelSpec;
  model: SequenceLM;
  measured: Record<string, number>;
  full: Record<string, number>;
  memory: ModelMemory;
  bytesPerToken: number;
}

/**
 * The backend called `name`: created on first use where the registry can create backends (a GPU device is
 * made asynchronously), else looked up. Either way an unknown or unavailable backend is a HippoError.
 */
async function backendNamed(name: string): Promise<Backend> {
  // Dawn rounds timestamps to 100 µs by default (a browser fingerprinting guard), which would zero most
  // single-op GPU times; a benchmark wants the exact clock. Only takes effect before Dawn is first created.
  const env = (globalThis as { process?: { env: Record<string, string | undefined> } }).process?.env;
  if (name === "webgpu" && env && env.HIPPO_WEBGPU_FLAGS === undefined) env.HIPPO_WEBGPU_FLAGS = "disable-dawn-features=timestamp_quantization";
  const create = (registry as { createBackend?: (n: string) => Promise<Backend> }).createBackend;
  return create ? create(name) : registry.getBackend(name);
}

function checkOptions(o: BenchOptions): void {
  const positive = (xs: number[], flag: string) => {
    check(xs.length > 0, `--${flag} is empty`);
    for (const x of xs) check(Number.isInteger(x) && x > 0, `--${flag}: ${x} is not a positive integer`);
  };
  positive(o.prefillLengths, "prefill-lengths");
  positive(o.decodeContexts, "decode-contexts");
  positive(o.decodeBatches, "decode-batches");
  positive(o.prefillBatches, "prefill-batches");
  positive(o.memoryContexts, "memory-contexts");
  positive([o.decodeSteps, o.reps, o.prefillBatchLength, o.decodeBatchContext, o.projectTo], "steps/reps/lengths");
  check(o.models.length + o.modelDirs.length > 0, "no models to benchmark: give --models and/or --model <dir>");
  check(o.memoryBudget > 0, "--memory-budget must be positive");
}

/** Where the backend computes, for the report's header. */
function computeDescription(backend: Backend): string {
  const threads = (backend as { threads?: unknown }).threads;
  if (typeof threads === "number") return `${threads} thread${threads === 1 ? "" : "s"} (WebAssembly SIMD kernels)`;
  return backend.name === "cpu" || backend.name === "cpu-ref" ? "one thread (TypeScript kernels)" : "the device";
}

function sorted(xs: number[]): number[] {
  return [...new Set(xs)].sort((a, b) => a - b);
}

/** Picks the largest of `xs` not above `limit` (or the smallest of them). */
function atMost(xs: number[], limit: number): number {
  const below = xs.filter((x) => x <= limit);
  return below.length ? Math.max(...below) : Math.min(...xs);
}

/** Work the bench times on the host whatever the backend (sampling the read-back logits). */
const HOST_SIDE_OPS = new Set(["sample"]);

function rooflineRows(model: string, phase: "prefill" | "decode", tokens: number, p: Profile, peakF: number, peakB: number, device: boolean): RooflineRow[] {
  // Only ops that do work have a floor (not views, garbage collection or time outside ops); on a device, only
  // ops that ran there (the device's ceilings say nothing about host-side sampling).
  return p.rows.filter((r) => r.ms > 0 && (r.flops > 0 || r.bytes > 0) && !(device && HOST_SIDE_OPS.has(r.op))).map((r) => {
    const floorMs = Math.max(r.flops / peakF, r.bytes / peakB) * 1000;
    return {
      model, phase, tokens, cls: r.cls, kind: r.kind, op: r.op, calls: r.calls, ms: r.ms, flops: r.flops, bytes: r.bytes,
      intensity: r.bytes > 0 ? r.flops / r.bytes : 0,
      flopsPerS: r.flops / (r.ms / 1000), bytesPerS: r.bytes / (r.ms / 1000),
      floorMs, bound: r.flops / peakF >= r.bytes / peakB ? "compute" : "memory",
      timesFloor: r.ms / floorMs,
    };
  });
}

function prefillPoint(model: string, batch: number, length: number, p: Profile, full: Record<string, number>): PrefillPoint {
  return {
    model, batch, length, source: "measured", ms: p.wallMs, tokensPerS: (batch * length) / (p.wallMs / 1000), byClass: byClass(p),
    peakBytes: p.peakBytes, perLayer: perLayer(p, full),
  };
}

function decodePoint(model: string, batch: number, context: number, p: Profile, full: Record<string, number>): DecodePoint {
  return {
    model, batch, context, msPerStep: p.wallMs, msPerToken: p.wallMs / batch, tokensPerS: batch / (p.wallMs / 1000),
    byClass: byClass(p), peakBytes: p.peakBytes, perLayer: perLayer(p, full),
  };
}

async function specsFor(o: BenchOptions, backend: Backend): Promise<BenchModelSpec[]> {
  const size = sizePreset(o.size);
  const specs = o.models.map((name) => modelSpec(name, size));
  for (const dir of o.modelDirs) specs.push(await directorySpec(dir, backend));
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new HippoError(`model '${s.name}' is listed twice`);
    names.add(s.name);
  }
  return specs;
}

export async function runBench(o: BenchOptions, stderr: NodeJS.WritableStream | null = process.stderr): Promise<BenchResults> {
  checkOptions(o);
  const t0 = Date.now();
  const loadStart = os.loadavg();
  const backend = await backendNamed(o.backend);
  const specs = await specsFor(o, backend);
  const prefillLengths = sorted(o.prefillLengths);
  const decodeContexts = sorted(o.decodeContexts);
  const extraPrefillBatches = sorted(o.prefillBatches).filter((b) => !(b === 1 && prefillLengths.includes(o.prefillBatchLength)));
  const extraDecodeBatches = sorted(o.decodeBatches).filter((b) => !(b === 1 && decodeContexts.includes(o.decodeBatchContext)));
  const checkSpecs = o.check && o.depth === "unit" ? specs.filter((s) => s.name === "mamba2" || s.name === "transformer") : [];
  const repeated = prefillLengths.filter((L) => L <= REPEATED_PREFILL).length;
  const perModelTasks = 1 + prefillLengths.length + (o.reps - 1) * repeated + extraPrefillBatches.length +
    o.reps * (decodeContexts.length + extraDecodeBatches.length);
  const progress = new Progress(stderr, 1 + specs.length * perModelTasks + checkSpecs.length);
  const notes: string[] = [];

  const profiler = new OpProfiler(backend);
  if (backend.name !== "cpu" && !profiler.timesOnDevice) {
    const note = `the ${backend.name} backend offers no op timer, so op times are host-side recording times and device work ` +
      "shows up where results are read back; wall times are right, the split by op is not";
    notes.push(`Warning: ${note}.`);
    progress.note(`warning: ${note}`);
  }
  const built: Built[] = [];
  const results: Draft = {
    schema: "hippo-bench-1", backend: { name: backend.name, timer: profiler.timer.name, threads: computeDescription(backend) },
    options: o, ceilings: undefined as never, models: [], prefill: [], decode: [], activations: [], memory: [],
    budget: { bytes: o.memoryBudget, rows: [], longestPrompt: [] }, roofline: [], check: [], notes,
  };
  try {
    profiler.attach();
    const rng = new Rng(o.seed);

    // Build every model first: budget and machine-memory errors come before the long runs.
    for (const spec of specs) {
      progress.task(`${spec.name}: building (${o.depth === "unit" ? "one layer of each kind" : "every layer"}), warm-up`);
      const model = await spec.build(o.depth, backend);
      const measured = layerCounts(modelKinds(model));
      const full = layerCounts(spec.fullKinds);
      const memory = modelMemory(model, full);
      const b: Built = { spec, model, measured, full, memory, bytesPerToken: 0 };
      built.push(b);
      if (memory.weightBytes + memory.stateBytes > o.memoryBudget) {
        throw new HippoError(`model '${spec.name}' needs ${formatBytes(memory.weightBytes)} for its weights alone; ` +
          `--memory-budget ${formatBytes(o.memoryBudget)} cannot hold it (give a larger budget or a smaller --size)`);
      }
      const warm = await measurePrefill(model, profiler, 1, WARMUP_LENGTH, 1, rng);
      b.bytesPerToken = warm.peakBytes / WARMUP_LENGTH;
      // Decode kernels get hot too, at one and two rows, before anything is timed.
      for (const rows of [1, 2]) await measureDecode(model, profiler, rows, WARMUP_LENGTH, 1, rng, 3);
    }
    checkMachineMemory(o, built, prefillLengths, decodeContexts);
    progress.task(`measuring ${backend.name} ceilings (copy bandwidth, linear FLOP/s)`);
    profiler.recording = false;
    results.ceilings = await measureCeilings(backend, o.quick, profiler);

    await measureAll(built, o, profiler, rng, progress, results, prefillLengths, decodeContexts, extraPrefillBatches, extraDecodeBatches);
    for (const spec of checkSpecs) {
      progress.task(`${spec.name}: composition check (every layer)`);
      const b = built.find((x) => x.spec === spec)!;
      results.check.push(...(await compositionCheck(b, backend, profiler, o, prefillLengths[0], decodeContexts[0], rng)));
    }
  } finally {
    profiler.detach();
    for (const b of built) b.model.dispose();
  }
  memoryTables(o, built, results);
  notes.push(...methodNotes(o, prefillLengths, decodeContexts));
  const out: BenchResults = {
    ...results,
    date: new Date().toISOString(),
    seconds: (Date.now() - t0) / 1000,
    machine: {
      cpu: os.cpus()[0]?.model ?? "unknown", cores: os.cpus().length, memoryBytes: os.totalmem(), platform: `${os.platform()} ${os.arch()}`,
      node: process.version, loadAverage: { start: loadStart, end: os.loadavg() },
    },
    findings: [],
  };
  out.findings = deriveFindings(out);
  progress.finish(`done: ${specs.length} models`);
  return out;
}

function checkMachineMemory(o: BenchOptions, built: Built[], lengths: number[], contexts: number[]): void {
  const free = os.freemem() * MACHINE_SHARE;
  for (const b of built) {
    const prefill = Math.max(...lengths, o.prefillBatchLength * Math.max(...o.prefillBatches));
    const need = b.bytesPerToken * prefill;
    if (need > free) {
      throw new HippoError(`prefill of ${prefill} tokens on '${b.spec.name}' needs about ${formatBytes(need)} of activations; ` +
        `this machine has ${formatBytes(os.freemem())} free (give shorter --prefill-lengths)`);
    }
    // The measured model carries its own (unit) layers' state; a step holds two copies of it.
    const unit = modelMemory(b.model, b.measured);
    const batch = Math.max(...o.decodeBatches);
    const decode = Math.max(2 * carriedBytes(unit, Math.max(...contexts)), 2 * batch * carriedBytes(unit, o.decodeBatchContext));
    if (decode > free) {
      throw new HippoError(`decoding '${b.spec.name}' at ${Math.max(...contexts)} tokens of context needs about ${formatBytes(decode)}; ` +
        `this machine has ${formatBytes(os.freemem())} free (give shorter --decode-contexts or smaller --decode-batches)`);
    }
  }
}

type Draft = Omit<BenchResults, "findings" | "seconds" | "machine" | "date">;

/** Prompts up to this long are measured `reps` times (longer ones once: they take minutes). */
const REPEATED_PREFILL = 1024;

/**
 * Every measurement, interleaved across models (each prompt length for all models, then the next), so
 * that a slow spell of a shared machine falls on all models alike rather than on one. Repetitions are
 * whole passes minutes apart (prefill, decode, then prefill and decode again), the fastest kept per point:
 * a slow spell then spoils at most one of them.
 */
async function measureAll(
  built: Built[], o: BenchOptions, profiler: OpProfiler, rng: Rng, progress: Progress, results: Draft,
  lengths: number[], contexts: number[], prefillBatches: number[], decodeBatches: number[],
): Promise<void> {
  const { flopsPerS, bytesPerS } = results.ceilings;
  const device = profiler.timesOnDevice;
  const undo = built.map((b) => attributeLayers(b.model, profiler));
  const compose = (b: Built, run: RunStats) => composeRun(run, b.measured, b.full);
  const best = new Map<string, Profile>();
  const keep = (key: string, p: Profile) => {
    if (!best.has(key) || p.wallMs < best.get(key)!.wallMs) best.set(key, p);
  };
  const passNote = (pass: number) => (o.reps > 1 ? ` (pass ${pass + 1} of ${o.reps})` : "");
  const decodePoints = [...contexts.map((C) => ({ B: 1, C })), ...decodeBatches.map((B) => ({ B, C: o.decodeBatchContext }))];
  try {
    for (const b of built) results.models.push(modelInfo(b));
    for (let pass = 0; pass < o.reps; pass++) {
      for (const L of lengths.filter((L) => pass === 0 || L <= REPEATED_PREFILL)) {
        for (const b of built) {
          progress.task(`${b.spec.name}: prefill ${L} tokens${passNote(pass)}`);
          keep(`${b.spec.name}|prefill|${L}`, compose(b, await measurePrefill(b.model, profiler, 1, L, 1, rng)));
        }
      }
      if (pass === 0) {
        for (const B of prefillBatches) {
          for (const b of built) {
            progress.task(`${b.spec.name}: prefill ${B} × ${o.prefillBatchLength} tokens`);
            const p = compose(b, await measurePrefill(b.model, profiler, B, o.prefillBatchLength, 1, rng));
            results.prefill.push(prefillPoint(b.spec.name, B, o.prefillBatchLength, p, b.full));
          }
        }
      }
      for (const { B, C } of decodePoints) {
        for (const b of built) {
          progress.task(`${b.spec.name}: decode ${B > 1 ? `${B} rows ` : ""}at ${C} tokens of context${passNote(pass)}`);
          keep(`${b.spec.name}|decode|${B}|${C}`, compose(b, await measureDecode(b.model, profiler, B, C, o.decodeSteps, rng, 1)));
        }
      }
    }
  } finally {
    for (const u of undo) u();
  }

  const refLength = atMost(lengths, ROOFLINE_PREFILL);
  const refContext = atMost(contexts, ROOFLINE_DECODE);
  for (const b of built) {
    const name = b.spec.name;
    const measured: { length: number; profile: Profile }[] = [];
    for (const L of lengths) {
      const p = best.get(`${name}|prefill|${L}`)!;
      measured.push({ length: L, profile: p });
      results.prefill.push(prefillPoint(name, 1, L, p, b.full));
      results.activations.push({ model: name, length: L, peakBytes: p.peakBytes, bytesPerToken: p.peakBytes / L });
      if (L === refLength) results.roofline.push(...rooflineRows(name, "prefill", L, p, flopsPerS, bytesPerS, device));
    }
    // Projection beyond the longest measured prompt, from growth laws fitted per layer kind and op class.
    const fit = fitPrefill(measured);
    for (let L = 2 * Math.max(...lengths); L <= o.projectTo; L *= 2) {
      const cls = projectPrefill(fit, L);
      const ms = total(cls);
      results.prefill.push({ model: name, batch: 1, length: L, source: "projected", ms, tokensPerS: L / (ms / 1000), byClass: cls });
    }
    for (const { B, C } of decodePoints) {
      const p = best.get(`${name}|decode|${B}|${C}`)!;
      results.decode.push(decodePoint(name, B, C, p, b.full));
      if (B === 1 && C === refContext) results.roofline.push(...rooflineRows(name, "decode", C, p, flopsPerS, bytesPerS, device));
    }
  }
}

function modelInfo(b: Built): ModelInfo {
  const desc = b.model.describe();
  const m = b.memory;
  return {
    name: b.spec.name, label: b.spec.label, description: b.spec.description, parameters: m.parameters, weightBytes: m.weightBytes,
    dModel: desc.dModel, vocabSize: desc.vocabSize, layers: b.full, measuredLayers: b.measured,
    stateBytesPerSequence: m.stateBytes, kvBytesPerToken: m.kvBytesPerToken,
  };
}

/**
 * Runs a model at full depth and compares it with the numbers composed from its unit model, measured right
 * next to it (alternating, best of two runs each), so both see the same machine.
 */
async function compositionCheck(b: Built, backend: Backend, profiler: OpProfiler, o: BenchOptions, length: number, context: number, rng: Rng): Promise<CheckRow[]> {
  const model = await b.spec.build("full", backend);
  const undo = [attributeLayers(model, profiler), attributeLayers(b.model, profiler)];
  const fullCounts = b.full;
  try {
    await measurePrefill(model, profiler, 1, WARMUP_LENGTH, 1, rng);
    await measureDecode(model, profiler, 1, WARMUP_LENGTH, 1, rng, 3);
    let [unitPrefill, fullPrefill, unitDecode, fullDecode] = [Infinity, Infinity, Infinity, Infinity];
    for (let rep = 0; rep < 2; rep++) {
      unitPrefill = Math.min(unitPrefill, composeRun(await measurePrefill(b.model, profiler, 1, length, 1, rng), b.measured, fullCounts).wallMs);
      fullPrefill = Math.min(fullPrefill, (await measurePrefill(model, profiler, 1, length, 1, rng)).wallMs);
      unitDecode = Math.min(unitDecode, composeRun(await measureDecode(b.model, profiler, 1, context, o.decodeSteps, rng, 1), b.measured, fullCounts).wallMs);
      fullDecode = Math.min(fullDecode, (await measureDecode(model, profiler, 1, context, o.decodeSteps, rng, 1)).wallMs);
    }
    const row = (test: string, composedMs: number, measuredMs: number): CheckRow => ({ model: b.spec.name, test, composedMs, measuredMs, error: (composedMs - measuredMs) / measuredMs });
    return [row(`prefill ${length} tokens`, unitPrefill, fullPrefill), row(`decode step at ${context} tokens`, unitDecode, fullDecode)];
  } finally {
    for (const u of undo) u();
    model.dispose();
  }
}

function memoryTables(o: BenchOptions, built: Built[], results: Draft): void {
  const budget = o.memoryBudget;
  const contexts = sorted([...o.memoryContexts, ...o.decodeContexts]);
  for (const b of built) {
    const name = b.spec.name;
    const m = b.memory;
    for (let C = 256; C <= Math.max(262144, ...contexts); C *= 2) {
      results.memory.push({ model: name, context: C, stateBytes: m.stateBytes, kvBytes: m.kvBytesPerToken * C, totalBytes: carriedBytes(m, C) });
    }
    // A step's working activations per row: the smallest-context decode peak, less the new state and cache it holds.
    const smallest = results.decode.filter((d) => d.model === name && d.batch === 1).sort((x, y) => x.context - y.context)[0];
    const rowActivation = smallest ? Math.max(0, smallest.peakBytes - carriedBytes(m, smallest.context)) : 0;
    for (const C of o.memoryContexts) {
      results.budget.rows.push({
        model: name, context: C, maxBatch: maxDecodeBatch(m, C, budget, rowActivation, 1), maxBatchAsRun: maxDecodeBatch(m, C, budget, rowActivation, 2),
      });
    }
    const acts = results.activations.filter((a) => a.model === name);
    const perToken = acts.length ? acts[acts.length - 1].bytesPerToken : b.bytesPerToken;
    results.budget.longestPrompt.push({ model: name, tokens: maxPrefillLength(m, budget, perToken) });
  }
}

function methodNotes(o: BenchOptions, lengths: number[], contexts: number[]): string[] {
  const notes: string[] = [];
  if (o.quick) {
    notes.push(`--quick: prompts of ${lengths.join(", ")} tokens, decode at ${contexts.join(", ")} tokens of context, ` +
      `${o.decodeSteps} decode steps, no repetitions and no composition check; longer prompts are projected. Numbers are indicative only.`);
  }
  if (o.depth === "unit") {
    notes.push("Each model was run with one layer of each kind at the full width; full-depth numbers scale each layer kind's " +
      "measured ops by its layer count (embedding, LM head, readback and sampling are counted once).");
  }
  return notes;
}
