// CPU benchmark, llama-bench style: prefill (pp) and decode (tg) throughput of a mamba-130m-shaped
// model with random weights, plus a roofline-ish "floor" for each test from measured machine numbers.
//
//   npx tsc -p tsconfig.json && node dist/bench/mamba-cpu.js [--quick] [--dtype f32|f16|bf16|q8] ...
//
// See bench/README.md for what each number means.
import { mkdir } from "node:fs/promises";
import os from "node:os";
import { dirname } from "node:path";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { getBackend } from "../src/backends/registry.js";
import { Rng } from "../src/generate/rng.js";
import { fromFloat32, rawToUint16 } from "../src/io/convert.js";
import { memoryTensorSource } from "../src/io/memory-source.js";
import { writeFileAtomic } from "../src/io/node-files.js";
import { initMambaWeights, mambaConfig } from "../src/models/mamba/init.js";
import type { MambaConfig } from "../src/models/mamba/config.js";
import { buildMambaLM } from "../src/models/mamba/model.js";
import type { SequenceLM } from "../src/models/sequence-lm.js";
import { InferenceState } from "../src/models/state.js";
import { WeightLoader } from "../src/models/weights.js";
import { linear, tensor } from "../src/ops/index.js";
import type { Backend } from "../src/backends/backend.js";
import { DTYPE_BYTES } from "../src/tensor/dtype.js";
import { quantizeQ8 } from "../src/tensor/q8.js";
import type { Tensor } from "../src/tensor/tensor.js";
import { argHelpers, randomIds, type ArgHelpers } from "./common.js";

type BenchDType = "f32" | "f16" | "bf16" | "q8";

const USAGE = `usage: node dist/bench/mamba-cpu.js [options]
  --prompt-lengths <list>  prefill prompt lengths (default 512,2048)
  --batches <list>         decode batch sizes (default 1,8)
  --decode-steps <n>       timed decode steps per repetition (default 16)
  --decode-prompt <n>      prompt tokens prefilled per row before decoding (default 16)
  --reps <n>               repetitions for every test (overrides the two below)
  --prefill-reps <n>       prefill repetitions (default 3 for prompts <= 512 tokens, 1 for longer)
  --decode-reps <n>        decode repetitions (default 3)
  --dtype f32|f16|bf16|q8  storage dtype of the weight matrices (default f32; q8: int8 blocks of 32 with
                           an f32 scale each, embedding/LM head included, quantized from f32 at load)
  --layers <n>             layer count (default 24, as mamba-130m)
  --seed <n>               weight/token seed (default 0)
  --out <path>             JSON results (default bench/results/mamba-cpu-<dtype>[-quick].json)
  --quick                  4 layers, prompt 128, 8 decode steps, 1 rep: checks the script in seconds
  -h, --help`;

const args: ArgHelpers = argHelpers("mamba-cpu", USAGE);

/** mamba-130m (state-spaces/mamba-130m-hf). */
const SHAPE = { dModel: 768, nLayer: 24, vocabSize: 50280, dState: 16, expand: 2, dConv: 4 };

/** linearKernel keeps this many input rows in cache per pass over the weights (ROW_BLOCK in kernels/linear.ts). */
const LINEAR_ROW_BLOCK = 32;

/** Decode steps run (untimed) before each decode measurement to warm the JIT and allocator. */
const DECODE_WARMUP_STEPS = 2;

/** Prefill warm-up length cap: the warm-up only needs to compile the same kernels, not to be as long. */
const PREFILL_WARMUP_MAX = 512;

interface Options {
  promptLengths: number[];
  batches: number[];
  decodeSteps: number;
  decodePrompt: number;
  prefillReps: number | null;
  decodeReps: number;
  dtype: BenchDType;
  layers: number;
  seed: number;
  out: string;
  quick: boolean;
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      strict: true,
      allowPositionals: false,
      options: {
        "prompt-lengths": { type: "string" },
        batches: { type: "string" },
        "decode-steps": { type: "string" },
        "decode-prompt": { type: "string" },
        reps: { type: "string" },
        "prefill-reps": { type: "string" },
        "decode-reps": { type: "string" },
        dtype: { type: "string" },
        layers: { type: "string" },
        seed: { type: "string" },
        out: { type: "string" },
        quick: { type: "boolean" },
        help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    args.fail((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const dtype = (values.dtype ?? "f32").toLowerCase();
  if (dtype !== "f32" && dtype !== "f16" && dtype !== "bf16" && dtype !== "q8") args.fail(`--dtype must be f32, f16, bf16 or q8, got '${values.dtype}'`);
  const reps = values.reps !== undefined ? args.positiveInt("reps", values.reps) : quick ? 1 : null;
  const seed = values.seed !== undefined ? Number(values.seed) : 0;
  if (!Number.isSafeInteger(seed)) args.fail(`--seed must be an integer, got '${values.seed}'`);
  return {
    promptLengths: values["prompt-lengths"] !== undefined ? args.intList("prompt-lengths", values["prompt-lengths"]) : quick ? [128] : [512, 2048],
    batches: values.batches !== undefined ? args.intList("batches", values.batches) : [1, 8],
    decodeSteps: values["decode-steps"] !== undefined ? args.positiveInt("decode-steps", values["decode-steps"]) : quick ? 8 : 16,
    decodePrompt: values["decode-prompt"] !== undefined ? args.positiveInt("decode-prompt", values["decode-prompt"]) : 16,
    prefillReps: values["prefill-reps"] !== undefined ? args.positiveInt("prefill-reps", values["prefill-reps"]) : reps,
    decodeReps: values["decode-reps"] !== undefined ? args.positiveInt("decode-reps", values["decode-reps"]) : reps ?? 3,
    dtype,
    layers: values.layers !== undefined ? args.positiveInt("layers", values.layers) : quick ? 4 : SHAPE.nLayer,
    seed,
    out: values.out ?? `bench/results/mamba-cpu-${dtype}${quick ? "-quick" : ""}.json`,
    quick,
  };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** The checkpoint dtype the random weights are made in (q8 is quantized from f32 as it loads). */
const fileDType = (d: BenchDType) => (d === "f32" || d === "q8" ? "F32" : d === "f16" ? "F16" : "BF16") as "F32" | "F16" | "BF16";
/** Bytes per weight-matrix element (q8: one int8 plus a 4-byte scale per 32). */
const bytesOf = (d: BenchDType) => DTYPE_BYTES[d];

// ---------------------------------------------------------------------------------------------------
// Machine measurements for the floors.

/**
 * Single-thread memory bandwidth from a large Float32Array copy (TypedArray.set, i.e. memcpy), counted
 * as read + write traffic (2 × bytes / s). Best of several copies; 256 MiB per buffer to defeat caches.
 */
function measureCopyBandwidth(): number {
  const n = 64 * 1024 * 1024;
  const src = new Float32Array(n);
  for (let i = 0; i < n; i += 1024) src[i] = i;
  const dst = new Float32Array(n);
  dst.set(src); // faults the pages in
  let best = Infinity;
  for (let r = 0; r < 5; r++) {
    const t0 = performance.now();
    dst.set(src);
    best = Math.min(best, (performance.now() - t0) / 1000);
  }
  if (dst[1024] !== 1024) throw new Error("copy check failed");
  return (2 * n * 4) / best;
}

/**
 * Our linear op (CPU backend, one thread) on x [M, 768] · w [768, 768]ᵀ with w in the bench dtype:
 * best-of-10 timing of `inner` back-to-back calls. M = 512 is the prefill-shaped problem the floors use;
 * M = 1 (a matrix-vector product, weights cache-resident) is reported to explain decode at batch 1.
 */
function measureLinearFlops(backend: Backend, dtype: BenchDType, seed: number, M = 512, inner = 1): number {
  const K = 768, N = 768;
  const rng = new Rng(seed + 1);
  const xs = new Float32Array(M * K).map(() => rng.nextFloat() * 2 - 1);
  const ws = new Float32Array(N * K).map(() => (rng.nextFloat() * 2 - 1) / Math.sqrt(K));
  const x = tensor(xs, [M, K], { backend });
  const w = dtype === "f32"
    ? tensor(ws, [N, K], { backend })
    : dtype === "q8"
      ? backend.upload(quantizeQ8(ws, N, K), [N, K], "q8")
      : backend.upload(rawToUint16(fromFloat32(ws, [N, K], fileDType(dtype))), [N, K], dtype);
  const run = () => {
    const t0 = performance.now();
    for (let i = 0; i < inner; i++) linear(x, w).dispose();
    return (performance.now() - t0) / 1000;
  };
  run(); // warm-up
  let best = Infinity;
  for (let r = 0; r < 10; r++) best = Math.min(best, run());
  x.dispose();
  w.dispose();
  return (2 * M * K * N * inner) / best;
}

// ---------------------------------------------------------------------------------------------------
// Model cost model.

interface CostModel {
  /** Weight-matrix parameters per layer (in_proj, x_proj, dt_proj, out_proj). */
  layerMatmulParams: number;
  /** LM head parameters (tied to the embedding table). */
  headParams: number;
  /** Small f32 parameters per layer (conv, biases, A, D, norm) read every step. */
  layerSmallParams: number;
  /** Recurrent state floats per sequence, all layers (conv window + SSM state). */
  stateFloats: number;
}

function costModel(c: MambaConfig): CostModel {
  const { dModel: Dm, dInner: E, dState: N, dConv: K, dtRank: R, vocabSize: V } = c;
  return {
    layerMatmulParams: 2 * E * Dm + (R + 2 * N) * E + E * R + Dm * E,
    headParams: V * Dm,
    layerSmallParams: E * K + (c.convBias ? E : 0) + E /* dt bias */ + E * N /* A */ + E /* D */ + Dm /* norm */,
    stateFloats: c.nLayer * ((K - 1) * E + E * N),
  };
}

interface Floor {
  tokens_per_s: number;
  bound: "memory" | "compute";
  memory_tokens_per_s: number | null;
  compute_tokens_per_s: number;
  bytes_per_step?: number;
  flops: number;
}

/** Prefill of one sequence of L tokens with logits at the last position only. */
function prefillFloor(c: MambaConfig, cm: CostModel, L: number, flopsPerS: number): Floor {
  const flops = 2 * (c.nLayer * cm.layerMatmulParams * L + cm.headParams);
  const compute = L / (flops / flopsPerS);
  return { tokens_per_s: compute, bound: "compute", memory_tokens_per_s: null, compute_tokens_per_s: compute, flops };
}

/**
 * One decode step for B rows: every weight matrix is streamed once per LINEAR_ROW_BLOCK rows, the
 * small parameters once, and each row's state is read and written; activations are ignored.
 * Memory floor = B / (bytes / bandwidth); compute floor = B / (matmul FLOPs / linear GFLOP/s).
 */
function decodeFloor(c: MambaConfig, cm: CostModel, B: number, dtype: BenchDType, bandwidth: number, flopsPerS: number): Floor {
  const passes = Math.ceil(B / LINEAR_ROW_BLOCK);
  const weightBytes = (c.nLayer * cm.layerMatmulParams + cm.headParams) * bytesOf(dtype) * passes;
  const smallBytes = (c.nLayer * cm.layerSmallParams + c.dModel) * 4;
  const stateBytes = 2 * cm.stateFloats * 4 * B;
  const embedBytes = B * c.dModel * bytesOf(dtype);
  const bytes = weightBytes + smallBytes + stateBytes + embedBytes;
  const memory = B / (bytes / bandwidth);
  const flops = 2 * (c.nLayer * cm.layerMatmulParams + cm.headParams) * B;
  const compute = B / (flops / flopsPerS);
  return {
    tokens_per_s: Math.min(memory, compute), bound: memory <= compute ? "memory" : "compute",
    memory_tokens_per_s: memory, compute_tokens_per_s: compute, bytes_per_step: bytes, flops,
  };
}

// ---------------------------------------------------------------------------------------------------
// Measurements.

interface Result {
  test: string;
  kind: "prefill" | "decode";
  batch: number;
  /** Prompt length (prefill) or timed decode steps (decode). */
  length: number;
  /** Tokens processed per repetition (prefill: L; decode: batch × steps). */
  tokens: number;
  reps: number;
  seconds: number[];
  tokens_per_s: number[];
  tokens_per_s_mean: number;
  tokens_per_s_min: number;
  tokens_per_s_max: number;
  ms_per_token_mean: number;
  floor: Floor;
  /** Mean tokens/s as a fraction of the floor's tokens/s. */
  fraction_of_floor: number;
}

function summarize(
  base: Pick<Result, "test" | "kind" | "batch" | "length" | "tokens">, seconds: number[], floor: Floor,
): Result {
  const tps = seconds.map((s) => base.tokens / s);
  const mean = tps.reduce((a, b) => a + b, 0) / tps.length;
  const meanSeconds = seconds.reduce((a, b) => a + b, 0) / seconds.length;
  return {
    ...base, reps: seconds.length, seconds, tokens_per_s: tps,
    tokens_per_s_mean: mean, tokens_per_s_min: Math.min(...tps), tokens_per_s_max: Math.max(...tps),
    ms_per_token_mean: (1000 * meanSeconds) / base.tokens,
    floor, fraction_of_floor: mean / floor.tokens_per_s,
  };
}

/** One prefill: forward over [1, L] with last-position logits, read back; everything disposed. */
async function timePrefill(model: SequenceLM, ids: Int32Array): Promise<number> {
  const t = tensor(ids, [1, ids.length], { backend: model.backend, dtype: "i32" });
  const t0 = performance.now();
  const out = model.forward(t, null, { logits: "last" });
  await out.logits!.readFloat32();
  const s = (performance.now() - t0) / 1000;
  t.dispose();
  out.logits!.dispose();
  out.hidden.dispose();
  out.state.dispose();
  return s;
}

async function benchPrefill(model: SequenceLM, L: number, reps: number, rng: Rng, floor: Floor): Promise<Result> {
  const V = model.vocabSize;
  log(`pp${L}: warm-up (${Math.min(L, PREFILL_WARMUP_MAX)} tokens)`);
  await timePrefill(model, randomIds(rng, Math.min(L, PREFILL_WARMUP_MAX), V));
  const seconds: number[] = [];
  for (let r = 0; r < reps; r++) {
    const s = await timePrefill(model, randomIds(rng, L, V));
    seconds.push(s);
    log(`pp${L}: rep ${r + 1}/${reps}: ${s.toFixed(2)} s, ${(L / s).toFixed(2)} tok/s`);
  }
  return summarize({ test: `pp${L}`, kind: "prefill", batch: 1, length: L, tokens: L }, seconds, floor);
}

/** Prefills `prompt` tokens for each of B rows separately (as generation does) and stacks the states. */
function prefillRows(model: SequenceLM, B: number, prompt: number, rng: Rng): InferenceState {
  const states: InferenceState[] = [];
  for (let b = 0; b < B; b++) {
    const ids = tensor(randomIds(rng, prompt, model.vocabSize), [1, prompt], { backend: model.backend, dtype: "i32" });
    const out = model.forward(ids, null, { logits: "none" });
    ids.dispose();
    out.hidden.dispose();
    out.logits?.dispose();
    states.push(out.state);
  }
  if (states.length === 1) return states[0];
  const stacked = InferenceState.stack(states);
  for (const s of states) s.dispose();
  return stacked;
}

/**
 * `steps` decode steps from a copy of `start`: step, read the logits back, pick each row's argmax as
 * the next token (greedy generation), dispose the old state and logits. Returns the seconds taken.
 */
async function decodeSteps(model: SequenceLM, start: InferenceState, firstIds: Int32Array, steps: number): Promise<number> {
  const B = start.batch;
  const V = model.vocabSize;
  let state = start.clone();
  let next = firstIds;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const ids = tensor(next, [B, 1], { backend: model.backend, dtype: "i32" });
    const out = model.step(ids, state);
    ids.dispose();
    state.dispose();
    state = out.state;
    const logits = await out.logits.readFloat32();
    out.logits.dispose();
    next = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      let best = 0, bestV = -Infinity;
      for (let v = 0, o = b * V; v < V; v++) if (logits[o + v] > bestV) { bestV = logits[o + v]; best = v; }
      next[b] = best;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  state.dispose();
  return seconds;
}

async function benchDecode(model: SequenceLM, B: number, opts: Options, rng: Rng, floor: Floor): Promise<Result> {
  const N = opts.decodeSteps;
  const test = `tg${N} b${B}`;
  log(`${test}: prefilling ${B} × ${opts.decodePrompt} tokens`);
  const start = prefillRows(model, B, opts.decodePrompt, rng);
  const firstIds = randomIds(rng, B, model.vocabSize);
  log(`${test}: warm-up (${DECODE_WARMUP_STEPS} steps)`);
  await decodeSteps(model, start, firstIds, DECODE_WARMUP_STEPS);
  const seconds: number[] = [];
  for (let r = 0; r < opts.decodeReps; r++) {
    const s = await decodeSteps(model, start, firstIds, N);
    seconds.push(s);
    log(`${test}: rep ${r + 1}/${opts.decodeReps}: ${s.toFixed(2)} s, ${((B * N) / s).toFixed(2)} tok/s`);
  }
  start.dispose();
  return summarize({ test, kind: "decode", batch: B, length: N, tokens: B * N }, seconds, floor);
}

// ---------------------------------------------------------------------------------------------------
// Report.

function fmt(x: number): string {
  if (x >= 100) return x.toFixed(1);
  if (x >= 10) return x.toFixed(2);
  return x.toFixed(3);
}

function table(results: Result[]): string {
  const rows = [
    "| test | tokens/s (mean) | min – max | ms/token | reps | floor tok/s | bound | % of floor |",
    "|---|---:|---:|---:|---:|---:|---|---:|",
  ];
  for (const r of results) {
    rows.push(`| ${r.test} | ${fmt(r.tokens_per_s_mean)} | ${fmt(r.tokens_per_s_min)} – ${fmt(r.tokens_per_s_max)} | `
      + `${fmt(r.ms_per_token_mean)} | ${r.reps} | ${fmt(r.floor.tokens_per_s)} | ${r.floor.bound} | `
      + `${(100 * r.fraction_of_floor).toFixed(0)}% |`);
  }
  return rows.join("\n");
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const backend = getBackend("cpu");
  const config = mambaConfig({ ...SHAPE, nLayer: opts.layers });
  const cm = costModel(config);
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model.trim() ?? "unknown",
    cores: cpus.length,
    node: process.version,
    platform: `${os.platform()} ${os.arch()}`,
    memory_gib: Math.round(os.totalmem() / 2 ** 30),
    threads_used: 1,
  };

  log(`measuring memory-copy bandwidth and linear 512×768×768 (${opts.dtype}) throughput`);
  const bandwidth = measureCopyBandwidth();
  const linearFlops = measureLinearFlops(backend, opts.dtype, opts.seed);
  const matvecFlops = measureLinearFlops(backend, opts.dtype, opts.seed, 1, 200);
  log(`copy bandwidth ${(bandwidth / 1e9).toFixed(2)} GB/s, linear ${(linearFlops / 1e9).toFixed(2)} GFLOP/s, `
    + `matvec ${(matvecFlops / 1e9).toFixed(2)} GFLOP/s`);

  log(`initialising ${opts.layers}-layer weights (${opts.dtype}, seed ${opts.seed})`);
  let t0 = performance.now();
  let raw: Map<string, import("../src/io/raw-tensor.js").RawTensor> | null = initMambaWeights(config, opts.seed, fileDType(opts.dtype));
  const model = await buildMambaLM(config, new WeightLoader(memoryTensorSource(raw), backend, "random", { quantize: opts.dtype === "q8" ? "q8" : null }));
  raw = null;
  const loadSeconds = (performance.now() - t0) / 1000;
  const weightBytes = (config.nLayer * cm.layerMatmulParams + cm.headParams) * bytesOf(opts.dtype)
    + (config.nLayer * cm.layerSmallParams + config.dModel) * 4;
  log(`model ready in ${loadSeconds.toFixed(1)} s: ${(model.describe().parameters / 1e6).toFixed(1)}M parameters`);

  const rng = new Rng(opts.seed + 2);
  const results: Result[] = [];
  t0 = performance.now();
  for (const L of opts.promptLengths) {
    const reps = opts.prefillReps ?? (L <= 512 ? 3 : 1);
    results.push(await benchPrefill(model, L, reps, rng, prefillFloor(config, cm, L, linearFlops)));
  }
  for (const B of opts.batches) {
    results.push(await benchDecode(model, B, opts, rng, decodeFloor(config, cm, B, opts.dtype, bandwidth, linearFlops)));
  }
  const benchSeconds = (performance.now() - t0) / 1000;
  model.dispose();

  const header = [
    `## Hippo CPU bench — mamba-130m shape, random weights, ${opts.dtype}${opts.quick ? " (--quick)" : ""}`,
    "",
    `- machine: ${machine.cpu}, ${machine.cores} cores (1 used), ${machine.memory_gib} GiB, ${machine.platform}, node ${machine.node}`,
    `- model: d_model ${config.dModel}, ${config.nLayer} layers, vocab ${config.vocabSize}, d_state ${config.dState}, `
      + `d_inner ${config.dInner}, d_conv ${config.dConv}; ${(model.describe().parameters / 1e6).toFixed(1)}M parameters, `
      + `${(weightBytes / 1e6).toFixed(0)} MB of weights (matrices ${opts.dtype}, small parameters f32)`,
    `- measured: memory copy ${(bandwidth / 1e9).toFixed(2)} GB/s (one thread, read+write), `
      + `linear 512×768×768 ${(linearFlops / 1e9).toFixed(2)} GFLOP/s (one thread, ${opts.dtype} weights; `
      + `1×768×768 matvec: ${(matvecFlops / 1e9).toFixed(2)} GFLOP/s, not used in the floors)`,
    `- floors: prefill = matmul FLOPs / linear GFLOP/s; decode = min(bytes per step / copy bandwidth, matmul FLOPs / linear GFLOP/s)`,
    `- decode: ${opts.decodePrompt}-token prompt per row, ${opts.decodeSteps} timed steps after ${DECODE_WARMUP_STEPS} warm-up steps; `
      + `prefill: 1 warm-up of min(L, ${PREFILL_WARMUP_MAX}) tokens; total ${benchSeconds.toFixed(0)} s`,
    "",
  ].join("\n");
  process.stdout.write(`${header}\n${table(results)}\n`);

  const json = {
    machine,
    config: {
      model: "mamba-130m shape (random weights)",
      d_model: config.dModel, n_layer: config.nLayer, vocab_size: config.vocabSize, d_state: config.dState,
      d_inner: config.dInner, d_conv: config.dConv, dt_rank: config.dtRank,
      parameters: model.describe().parameters, weight_bytes: weightBytes,
      dtype: opts.dtype, seed: opts.seed, quick: opts.quick,
      prompt_lengths: opts.promptLengths, batches: opts.batches, decode_steps: opts.decodeSteps,
      decode_prompt: opts.decodePrompt, decode_warmup_steps: DECODE_WARMUP_STEPS, prefill_warmup_max: PREFILL_WARMUP_MAX,
      load_seconds: loadSeconds, bench_seconds: benchSeconds,
    },
    measured: { copy_bandwidth_bytes_per_s: bandwidth, linear_512x768x768_flops_per_s: linearFlops, linear_1x768x768_flops_per_s: matvecFlops },
    results,
    date: new Date().toISOString(),
  };
  await mkdir(dirname(opts.out), { recursive: true });
  await writeFileAtomic(opts.out, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${opts.out}`);
}

main().catch((e: unknown) => {
  process.stderr.write(`mamba-cpu: ${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
  process.exit(1);
});
