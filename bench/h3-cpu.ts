// CPU benchmark of H3: (1) the long convolution vs sequence length L — our FFT convolution, the diagonal
// SSM's fused op (one FFT block, or chunks with state passing), the O(L²) direct convolution and the
// O(L·N) recurrence; (2) an H3-125M-shaped model (random weights): prefill and decode tokens/s;
// (3) decode step time vs context length (an SSM's step does not grow with the context).
//
//   npx tsc -p tsconfig.json && node dist/bench/h3-cpu.js [--quick] ...
//
// See bench/README.md for what each number means.
import os from "node:os";
import { dirname } from "node:path";
import { mkdir } from "node:fs/promises";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import type { DiagSsmParams } from "../src/backends/backend.js";
import { diagSsmRecurrenceKernel, discretizeDiagSsm } from "../src/backends/cpu/kernels/diag-ssm.js";
import { directConvKernel } from "../src/backends/cpu/kernels/long-conv.js";
import { getBackend } from "../src/backends/registry.js";
import { Rng } from "../src/generate/rng.js";
import { memoryTensorSource } from "../src/io/memory-source.js";
import { writeFileAtomic } from "../src/io/node-files.js";
import { h3ReleaseConfig, type H3Config } from "../src/models/h3/config.js";
import { DEFAULT_SSM_CHUNK } from "../src/nn/s4d.js";
import { initH3Weights } from "../src/models/h3/init.js";
import { buildH3LM } from "../src/models/h3/model.js";
import type { SequenceLM } from "../src/models/sequence-lm.js";
import { InferenceState } from "../src/models/state.js";
import { WeightLoader } from "../src/models/weights.js";
import { diagSsmConv, diagSsmKernel, fftConv, tensor } from "../src/ops/index.js";
import type { Tensor } from "../src/tensor/tensor.js";
import { argHelpers, randomIds, type ArgHelpers } from "./common.js";

const USAGE = `usage: node dist/bench/h3-cpu.js [options]
  --lengths <list>         convolution lengths (default 256,1024,4096,16384,65536)
  --channels <n>           channels in the convolution tests (default 8)
  --d-state <n>            SSM state size N (default 64: 32 complex modes, as H3's LMs)
  --direct-max <n>         longest L for the O(L²) direct convolution (default 16384)
  --chunk <n>              chunk of the state-passing variant (default 2048, the models' default)
  --prompt-lengths <list>  model prefill lengths (default 512,2048)
  --batches <list>         model decode batch sizes (default 1,8)
  --decode-steps <n>       timed decode steps (default 16)
  --contexts <list>        contexts for the decode-vs-context test (default 16,4096)
  --layers <n>             layers of the H3-125M-shaped model (default 12)
  --skip-model             only the convolution tests
  --out <path>             JSON results (default bench/results/h3-cpu[-quick].json)
  --quick                  small sizes: checks the script in seconds
  -h, --help`;

const args: ArgHelpers = argHelpers("h3-cpu", USAGE);

interface Options {
  lengths: number[];
  channels: number;
  dState: number;
  directMax: number;
  chunk: number;
  promptLengths: number[];
  batches: number[];
  decodeSteps: number;
  contexts: number[];
  layers: number;
  skipModel: boolean;
  out: string;
  quick: boolean;
}

function parseOptions(argv: string[]): Options {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true, allowPositionals: false,
      options: {
        lengths: { type: "string" }, channels: { type: "string" }, "d-state": { type: "string" }, "direct-max": { type: "string" },
        chunk: { type: "string" }, "prompt-lengths": { type: "string" }, batches: { type: "string" }, "decode-steps": { type: "string" },
        contexts: { type: "string" }, layers: { type: "string" }, "skip-model": { type: "boolean" }, out: { type: "string" },
        quick: { type: "boolean" }, help: { type: "boolean", short: "h" },
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
  const opt = <T>(v: string | undefined, parse: (s: string) => T, normal: T, small: T) => (v !== undefined ? parse(v) : quick ? small : normal);
  const dState = opt(values["d-state"], (s) => args.positiveInt("d-state", s), 64, 64);
  if (dState % 2 !== 0) args.fail("--d-state must be even");
  return {
    lengths: opt(values.lengths, (s) => args.intList("lengths", s), [256, 1024, 4096, 16384, 65536], [256, 2048]),
    channels: opt(values.channels, (s) => args.positiveInt("channels", s), 8, 2),
    dState,
    directMax: opt(values["direct-max"], (s) => args.positiveInt("direct-max", s), 16384, 2048),
    chunk: opt(values.chunk, (s) => args.positiveInt("chunk", s), DEFAULT_SSM_CHUNK, 256),
    promptLengths: opt(values["prompt-lengths"], (s) => args.intList("prompt-lengths", s), [512, 2048], [64]),
    batches: opt(values.batches, (s) => args.intList("batches", s), [1, 8], [1]),
    decodeSteps: opt(values["decode-steps"], (s) => args.positiveInt("decode-steps", s), 16, 4),
    contexts: opt(values.contexts, (s) => args.intList("contexts", s), [16, 4096], [16, 256]),
    layers: opt(values.layers, (s) => args.positiveInt("layers", s), 12, 2),
    skipModel: values["skip-model"] ?? false,
    out: values.out ?? `bench/results/h3-cpu${quick ? "-quick" : ""}.json`,
    quick,
  };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

/** Best of several runs after one warm-up: repeats until `budget` seconds are spent (at most `maxReps`). */
async function bestTime(run: () => Promise<void> | void, budget = 0.3, maxReps = 50): Promise<{ best: number; reps: number }> {
  await run();
  let best = Infinity, spent = 0, reps = 0;
  while (reps < maxReps && (reps === 0 || spent < budget)) {
    const t0 = performance.now();
    await run();
    const s = (performance.now() - t0) / 1000;
    best = Math.min(best, s);
    spent += s;
    reps++;
  }
  return { best, reps };
}

// ---------------------------------------------------------------------------------------------------
// (1) Convolution vs length.

interface ConvRow {
  L: number;
  /** Seconds per call (best), per method; null when not run. */
  fft_conv: number;
  ssm_conv: number;
  ssm_conv_chunked: number;
  direct: number | null;
  recurrence: number;
}

/** S4D-Lin parameters for H heads with N complex modes: Re A = −1/2, Im A = π·n, dt log-uniform. */
function randomSsm(rng: Rng, H: number, N: number): DiagSsmParams {
  const A = new Float32Array(H * N * 2), B = new Float32Array(H * N * 2), C = new Float32Array(H * N * 2);
  for (let i = 0; i < H * N; i++) {
    A[2 * i] = -0.5;
    A[2 * i + 1] = Math.PI * (i % N);
    B[2 * i] = 1;
    C[2 * i] = rng.nextFloat() - 0.5;
    C[2 * i + 1] = rng.nextFloat() - 0.5;
  }
  const logDt = Float32Array.from({ length: H }, () => Math.log(0.001) + rng.nextFloat() * Math.log(100));
  return { logDt: tensor(logDt, [H]), A: tensor(A, [H, N, 2]), B: tensor(B, [H, N, 2]), C: tensor(C, [H, N, 2]), discretization: "bilinear" };
}

async function benchConv(opts: Options): Promise<ConvRow[]> {
  const rng = new Rng(1);
  const H = opts.channels;
  const N = opts.dState / 2;
  const ssm = randomSsm(rng, H, N);
  const rows: ConvRow[] = [];
  for (const L of opts.lengths) {
    // H3's layout with head_dim 1: x = k·v convolved, then gated by q; one batch row.
    const data = () => Float32Array.from({ length: L * H }, () => rng.nextFloat() * 2 - 1);
    const [u, v, q] = [data(), data(), data()];
    const ut = tensor(u, [1, L, H]), vt = tensor(v, [1, L, H]), qt = tensor(q, [1, L, H]);
    const D = tensor(new Float32Array(H).fill(1), [H]);
    const kernel = diagSsmKernel(ssm, L);
    const gated = { u: ut, v: vt, q: qt, headDim: 1, D };
    const dispose = (...ts: Tensor[]) => ts.forEach((t) => t.dispose());
    log(`conv L=${L}: fft`);
    const fft = await bestTime(() => dispose(fftConv({ ...gated, kernel })));
    log(`conv L=${L}: ssm, one FFT block`);
    const one = await bestTime(() => { const r = diagSsmConv({ ...gated, ssm, state: null, chunkSize: L }); dispose(r.y, r.state); });
    log(`conv L=${L}: ssm, chunks of ${opts.chunk}`);
    const chunked = await bestTime(() => { const r = diagSsmConv({ ...gated, ssm, state: null, chunkSize: opts.chunk }); dispose(r.y, r.state); });
    const host = discretizeDiagSsm(await ssm.logDt.readFloat32(), await ssm.A.readFloat32(), await ssm.B.readFloat32(), await ssm.C.readFloat32(), H, N, "bilinear");
    const dims = { B: 1, L, H, P: 1 };
    const y = new Float32Array(L * H), st = new Float32Array(H * N * 2);
    log(`conv L=${L}: recurrence`);
    const rec = await bestTime(() => diagSsmRecurrenceKernel(host, { u, v, q }, dims, new Float32Array(H).fill(1), null, y, st));
    let direct: number | null = null;
    if (L <= opts.directMax) {
      log(`conv L=${L}: direct`);
      const k = await kernel.readFloat32();
      direct = (await bestTime(() => directConvKernel({ u, v, q }, dims, k, L, new Float32Array(H).fill(1), y))).best;
    }
    rows.push({ L, fft_conv: fft.best, ssm_conv: one.best, ssm_conv_chunked: chunked.best, direct, recurrence: rec.best });
    dispose(ut, vt, qt, D, kernel);
  }
  return rows;
}

// ---------------------------------------------------------------------------------------------------
// (2) H3-125M-shaped model; (3) decode vs context.

async function buildRandom(config: H3Config, seed: number): Promise<SequenceLM> {
  return buildH3LM(config, new WeightLoader(memoryTensorSource(initH3Weights(config, seed)), getBackend("cpu"), "random"));
}

function prefill(model: SequenceLM, ids: Int32Array, B: number): { state: InferenceState; seconds: number } {
  const t0 = performance.now();
  const out = model.forward(tensor(ids, [B, ids.length / B], { dtype: "i32" }), null, { logits: "last" });
  out.logits!.dispose();
  out.hidden.dispose();
  return { state: out.state, seconds: (performance.now() - t0) / 1000 };
}

/** `steps` greedy decode steps from a copy of `start`; seconds. */
async function decode(model: SequenceLM, start: InferenceState, steps: number, rng: Rng): Promise<number> {
  const B = start.batch;
  let state = start.clone();
  let next = randomIds(rng, B, model.vocabSize);
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    const out = model.step(tensor(next, [B, 1], { dtype: "i32" }), state);
    state.dispose();
    state = out.state;
    const logits = await out.logits.readFloat32();
    out.logits.dispose();
    next = new Int32Array(B);
    for (let b = 0; b < B; b++) {
      let best = 0;
      for (let v = 1, o = b * model.vocabSize; v < model.vocabSize; v++) if (logits[o + v] > logits[o + best]) best = v;
      next[b] = best;
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  state.dispose();
  return seconds;
}

interface ModelRow {
  test: string;
  tokens: number;
  seconds: number;
  tokens_per_s: number;
  ms_per_token: number;
}

const row = (test: string, tokens: number, seconds: number): ModelRow =>
  ({ test, tokens, seconds, tokens_per_s: tokens / seconds, ms_per_token: (1000 * seconds) / tokens });

async function benchModel(opts: Options): Promise<{ config: Record<string, unknown>; rows: ModelRow[] }> {
  const base = h3ReleaseConfig("H3-125M");
  const config: H3Config = { ...base, nLayer: opts.layers, attnLayerIdx: base.attnLayerIdx.filter((i) => i < opts.layers) };
  log(`model: building H3-125M shape (${config.nLayer} layers) with random weights`);
  const t0 = performance.now();
  const model = await buildRandom(config, 0);
  const loadSeconds = (performance.now() - t0) / 1000;
  const rng = new Rng(2);
  const rows: ModelRow[] = [];
  prefill(model, randomIds(rng, 32, model.vocabSize), 1).state.dispose(); // warm-up
  for (const L of opts.promptLengths) {
    log(`model: pp${L}`);
    const r = prefill(model, randomIds(rng, L, model.vocabSize), 1);
    r.state.dispose();
    rows.push(row(`pp${L}`, L, r.seconds));
    log(`model: pp${L}: ${(L / r.seconds).toFixed(2)} tok/s`);
  }
  for (const B of opts.batches) {
    const start = prefill(model, randomIds(rng, 16 * B, model.vocabSize), B).state;
    await decode(model, start, 2, rng); // warm-up
    log(`model: tg${opts.decodeSteps} b${B}`);
    const s = await decode(model, start, opts.decodeSteps, rng);
    rows.push(row(`tg${opts.decodeSteps} b${B}`, B * opts.decodeSteps, s));
    log(`model: tg${opts.decodeSteps} b${B}: ${((B * opts.decodeSteps) / s).toFixed(2)} tok/s`);
    start.dispose();
  }
  const desc = model.describe();
  model.dispose();
  return {
    config: {
      d_model: config.dModel, n_layer: config.nLayer, d_inner: config.dInner, vocab_size: config.vocabSize,
      attn_layer_idx: config.attnLayerIdx, num_heads: config.attn.numHeads, d_state: config.ssm.dState, head_dim: config.ssm.headDim,
      parameters: desc.parameters, load_seconds: loadSeconds,
    },
    rows,
  };
}

interface ContextRow {
  context: number;
  prefill_seconds: number;
  step_ms: number;
  state_bytes_per_sequence: number;
}

/**
 * Decode step time after contexts of different lengths, on a narrower H3-only model (no attention). The
 * contexts are prefilled first, then timed in alternating rounds (best of each), so that load from other
 * processes hits them alike.
 */
async function benchContext(opts: Options): Promise<{ shape: Record<string, number>; rows: ContextRow[] }> {
  const base = h3ReleaseConfig("H3-125M");
  const config: H3Config = { ...base, dModel: 256, dInner: 1024, nLayer: 2, attnLayerIdx: [], attn: { ...base.attn, numHeads: 4 } };
  const model = await buildRandom(config, 1);
  const rng = new Rng(3);
  const prefilled = opts.contexts.map((ctx) => {
    log(`context ${ctx}: prefill`);
    return { ctx, ...prefill(model, randomIds(rng, ctx, model.vocabSize), 1) };
  });
  const best = prefilled.map(() => Infinity);
  for (let round = 0; round < 5; round++) {
    for (const [i, p] of prefilled.entries()) best[i] = Math.min(best[i], await decode(model, p.state, opts.decodeSteps, rng));
  }
  const rows = prefilled.map((p, i) => ({
    context: p.ctx, prefill_seconds: p.seconds, step_ms: (1000 * best[i]) / opts.decodeSteps, state_bytes_per_sequence: p.state.bytesPerSequence,
  }));
  for (const p of prefilled) p.state.dispose();
  model.dispose();
  return { shape: { d_model: 256, n_layer: 2, d_state: config.ssm.dState, vocab_size: config.vocabSize }, rows };
}

// ---------------------------------------------------------------------------------------------------
// Report.

function fmtMs(s: number | null): string {
  if (s === null) return "—";
  const ms = s * 1000;
  return ms >= 100 ? ms.toFixed(0) : ms >= 10 ? ms.toFixed(1) : ms.toFixed(2);
}

function convTable(rows: ConvRow[], H: number, chunk: number): string {
  const ns = (s: number | null, L: number) => (s === null ? "—" : ((s * 1e9) / (L * H)).toFixed(0));
  const lines = [
    `| L | FFT conv ms | SSM conv, one block ms | SSM conv, chunks of ${chunk} ms | direct ms | recurrence ms | ns/step·channel: FFT / SSM / chunked / direct / recurrence |`,
    "|---:|---:|---:|---:|---:|---:|---|",
  ];
  for (const r of rows) {
    lines.push(`| ${r.L} | ${fmtMs(r.fft_conv)} | ${fmtMs(r.ssm_conv)} | ${fmtMs(r.ssm_conv_chunked)} | ${fmtMs(r.direct)} | ${fmtMs(r.recurrence)} | ` +
      `${ns(r.fft_conv, r.L)} / ${ns(r.ssm_conv, r.L)} / ${ns(r.ssm_conv_chunked, r.L)} / ${ns(r.direct, r.L)} / ${ns(r.recurrence, r.L)} |`);
  }
  return lines.join("\n");
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const cpus = os.cpus();
  const machine = {
    cpu: cpus[0]?.model.trim() ?? "unknown", cores: cpus.length, node: process.version, platform: `${process.platform} ${process.arch}`,
    memory_gib: Math.round(os.totalmem() / 2 ** 30), threads_used: 1,
  };
  log(`machine: ${machine.cpu}, ${machine.cores} cores (1 used), node ${machine.node}`);
  const started = performance.now();
  const conv = await benchConv(opts);
  const model = opts.skipModel ? null : await benchModel(opts);
  const context = opts.skipModel ? null : await benchContext(opts);

  const out: string[] = [];
  out.push(`## H3 long convolution, ${opts.channels} channels, N = ${opts.dState} (H3 gating, head_dim 1, one batch row; best time per call)\n`);
  out.push(convTable(conv, opts.channels, opts.chunk));
  if (model) {
    out.push(`\n## H3-125M shape (d_model 768, ${model.config.n_layer} layers, attention at [${(model.config.attn_layer_idx as number[]).join(", ")}], random weights)\n`);
    out.push("| test | tokens/s | ms/token |\n|---|---:|---:|");
    for (const r of model.rows) out.push(`| ${r.test} | ${r.tokens_per_s.toFixed(2)} | ${r.ms_per_token.toFixed(1)} |`);
  }
  if (context) {
    out.push("\n## Decode step vs context (d_model 256, 2 H3 layers, no attention)\n");
    out.push("| context | step ms | state bytes / sequence |\n|---:|---:|---:|");
    for (const r of context.rows) out.push(`| ${r.context} | ${r.step_ms.toFixed(2)} | ${r.state_bytes_per_sequence} |`);
  }
  process.stdout.write(`${out.join("\n")}\n`);

  const json = {
    machine,
    options: opts,
    conv: { channels: opts.channels, d_state: opts.dState, chunk: opts.chunk, rows: conv },
    model,
    context,
    bench_seconds: (performance.now() - started) / 1000,
    date: new Date().toISOString(),
  };
  await mkdir(dirname(opts.out), { recursive: true });
  await writeFileAtomic(opts.out, `${JSON.stringify(json, null, 2)}\n`);
  log(`wrote ${opts.out}`);
}

main().catch((e) => {
  process.stderr.write(`h3-cpu: ${(e as Error).stack ?? String(e)}\n`);
  process.exit(1);
});
