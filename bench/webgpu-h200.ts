// WebGPU benchmark on a GPU machine (written for the H200 lent through the device tool): the measured
// ceilings (buffer copy bandwidth, f32 matmul rate of Hippo's tiled WGSL kernel and of PyTorch), then for
// mamba-130m, mamba2-130m and H3-125M shapes with random f32 weights: decode tokens/s at batch 1, 8, 64
// (each step: the whole model's step recorded into one command buffer, greedy token chosen on the GPU,
// only ids read back) and prefill tokens/s at 512, 2048, 8192 tokens; HF transformers on the same GPU in
// the same run; and each number's floor from the measured ceilings.
//
//   bash ../shared/device/pack.sh bench/webgpu-h200.ts
//   (GPU machine) source .devkit/setup.sh && node .devkit/webgpu-h200.mjs --out $OUT/webgpu-h200.json
//   (locally, SwiftShader, a smoke test) node dist/bench/webgpu-h200.js --quick
import { execFileSync } from "node:child_process";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { createBackend } from "../src/backends/registry.js";
import type { WebGpuBackend } from "../src/backends/webgpu/index.js";
import { memoryTensorSource } from "../src/io/memory-source.js";
import { ConfigReader } from "../src/models/config-json.js";
import { h3ReleaseConfig, type H3Config } from "../src/models/h3/config.js";
import { initH3Weights } from "../src/models/h3/init.js";
import { buildH3LM } from "../src/models/h3/model.js";
import { parseHybridConfig } from "../src/models/hybrid/config.js";
import { initHybridWeights } from "../src/models/hybrid/init.js";
import { buildHybrid } from "../src/models/hybrid/model.js";
import type { SequenceLM } from "../src/models/sequence-lm.js";
import { generate } from "../src/generate/generate.js";
import { WeightLoader } from "../src/models/weights.js";
import { tensor } from "../src/ops/index.js";
import { kSlices, matmulSpec, matvecColumnsPerWorkgroup, matvecSubgroupSpec, SKINNY_TILE, splitKFor, splitKSumSpec, tileGrid } from "../src/backends/webgpu/kernels/linear.js";
import { squareTile, type TileShape } from "../src/backends/webgpu/kernels/wgsl.js";

const { values: opts } = parseArgs({
  options: {
    quick: { type: "boolean", default: false },
    models: { type: "string", default: "mamba,mamba2,h3" },
    out: { type: "string", default: "bench/results/webgpu-h200.json" },
    "no-hf": { type: "boolean", default: false },
    /** Per-kernel GPU times (timestamp queries) of a decode step and a prefill, and a decode step's wall-clock parts. */
    profile: { type: "boolean", default: false },
    /** Batch rows of the profiled decode steps. */
    "profile-batch": { type: "string", default: "1" },
    /** Only decode at batch 1 for this many steps (for a CPU profile of recording). */
    "decode-only": { type: "string" },
    /** Decode also by stepping the model's code every token (no captured-step replay), in the same call. */
    "compare-stepped": { type: "boolean", default: false },
    /** Batched-decoding products: the matvec linear picks against tiled matmuls. */
    "micro-decode": { type: "boolean", default: false },
    /** Rows of x the micro-decode products take (comma-separated). */
    "micro-rows": { type: "string", default: "8,16,32,64" },
    /** Matmul shapes of the models, and the GPU cost of a chain of tiny dispatches. */
    micro: { type: "boolean", default: false },
    /** Decode batch sizes and prefill lengths of the table (comma-separated; "none" for no prefills). */
    batches: { type: "string", default: "1,8,64" },
    prefills: { type: "string", default: "512,2048,8192" },
    /** Rows from which the backend's products of 512+ columns take the tiled kernel instead of the subgroup matvec. */
    "tiled-min-rows": { type: "string" },
    /** In-situ kernel costs of decoding at these batch sizes: each kernel dispatched twice in the real step, against once. */
    ablate: { type: "string" },
    /**
     * Decode only, the models built once and each batch size run under each of these backend settings in
     * turn (';'-separated; each a '+'-joined list of: base (the defaults), tiledN (tiledMinRows N), wideN
     * (tiledWideMinRows N), unfused-norm (batched decoding's norms in their own pass), skinny / square
     * (skinnyTiles on / off: 64×128 or 64×64 tiles for 33–64 rows), ssdrowsN (ssdStepRows
     * N: rows a subgroup of Mamba-2's decoding step takes)). Runs alternate
     * variants, so drift in the GPU's clocks falls on all of them.
     */
    variants: { type: "string" },
    /** (b, h, p) rows a subgroup of Mamba-2's decoding step takes (the backend's ssdStepRows). */
    "ssd-rows": { type: "string" },
    /** Prefill's 128×128-tile products followed by the activation's own pass (the backend's fuseActIntoLargeTiles off). */
    "unfused-act-large": { type: "boolean", default: false },
    /** Never split a tiled product's K across workgroups. */
    "no-split-k": { type: "boolean", default: false },
  },
});
const quick = opts.quick!;
const log = (s: string) => process.stderr.write(`[bench] ${s}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const gpu = (await createBackend("webgpu")) as WebGpuBackend;
log(`adapter: ${gpu.description}; features: ${gpu.handle.features.join(", ")}`);
if (opts["tiled-min-rows"]) gpu.tiledMinRows = Number(opts["tiled-min-rows"]);
if (opts["no-split-k"]) gpu.splitK = false;
if (opts["ssd-rows"]) gpu.ssdStepRows = Number(opts["ssd-rows"]);
if (opts["unfused-act-large"]) gpu.fuseActIntoLargeTiles = false;
const listOf = (v: string) => (v === "none" ? [] : v.split(",").map(Number));

async function timed(fn: () => Promise<void>, reps: number, warm = 1): Promise<number> {
  for (let i = 0; i < warm; i++) await fn();
  const times: number[] = [];
  for (let i = 0; i < reps; i++) {
    const t0 = performance.now();
    await fn();
    times.push((performance.now() - t0) / 1000);
  }
  return median(times);
}

// ---------------------------------------------------------------------------------------------------
// Ceilings.

/** Device-to-device copy bandwidth (bytes read + written per second): copyBufferToBuffer, and a vec4 copy kernel. */
/**
 * GPU time of one recorded command, µs: `reps` of them recorded first, then the submit timed to completion
 * (median of 3 after a warm-up), so the host's recording cost is left out.
 */
async function gpuMicroseconds(record: () => void, reps: number): Promise<number> {
  const times: number[] = [];
  for (let r = 0; r < 4; r++) {
    for (let i = 0; i < reps; i++) record();
    const t0 = performance.now();
    await gpu.sync();
    if (r > 0) times.push(((performance.now() - t0) * 1000) / reps);
  }
  return median(times);
}

async function copyBandwidth(): Promise<{ copyBuffer: number; kernel: number }> {
  const bytes = quick ? 64 << 20 : 1 << 30;
  const rt = gpu.rt;
  const a = rt.alloc(bytes), b = rt.alloc(bytes);
  const reps = 10;
  const copyBuffer = (2 * bytes * reps) / await timed(async () => {
    for (let i = 0; i < reps; i++) rt.copy(i % 2 ? b : a, 0, i % 2 ? a : b, 0, bytes);
    await gpu.sync();
  }, 3);
  const k = rt.kernel({
    key: "bench-copy-vec4", params: [["n", "u32"]], workgroupSize: 256,
    bindings: [{ name: "src", type: "vec4<f32>" }, { name: "dst", type: "vec4<f32>", write: true }],
    body: `@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let stride = nwg.x * nwg.y * 256u;
  for (var i = (wid.y * nwg.x + wid.x) * 256u + lid; i < p.n; i = i + stride) { dst[i] = src[i]; }
}`,
  });
  const n = bytes / 16;
  const kernel = (2 * bytes * reps) / await timed(async () => {
    for (let i = 0; i < reps; i++) rt.dispatch(k, [n], i % 2 ? [b, a] : [a, b], [4096, 4]);
    await gpu.sync();
  }, 3);
  rt.releaseBuffer(a);
  rt.releaseBuffer(b);
  rt.trim();
  return { copyBuffer, kernel };
}

async function matmulRate(n: number): Promise<number> {
  const x = gpu.upload(new Float32Array(n * n).map((_, i) => Math.sin(i)), [n, n], "f32");
  const w = gpu.upload(new Float32Array(n * n).map((_, i) => Math.cos(i)), [n, n], "f32");
  const reps = quick ? 1 : 5;
  const s = await timed(async () => {
    for (let i = 0; i < reps; i++) gpu.linear(x, w, null).dispose();
    await gpu.sync();
  }, 3);
  x.dispose();
  w.dispose();
  return (2 * n ** 3 * reps) / s;
}

// ---------------------------------------------------------------------------------------------------
// Models.

const VOCAB = 50280;
const LAYERS = quick ? 2 : 24;

function hybridConfig(pattern: string): Record<string, unknown> {
  return {
    model_type: "hippo_hybrid", hidden_size: 768, vocab_size: VOCAB, tie_word_embeddings: true, pattern: pattern.repeat(LAYERS),
    mamba: { state_size: 16, conv_kernel: 4, expand: 2 },
    mamba2: { state_size: 128, head_dim: 64, n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: 256 },
  };
}

async function buildModel(name: string): Promise<SequenceLM> {
  if (name === "h3") {
    const base = h3ReleaseConfig("H3-125M");
    const config: H3Config = quick ? { ...base, nLayer: 2, attnLayerIdx: [1] } : base;
    return buildH3LM(config, new WeightLoader(memoryTensorSource(initH3Weights(config, 0)), gpu, "random"));
  }
  const reader = new ConfigReader(hybridConfig(name === "mamba" ? "m" : "M"), `${name} config`);
  return buildHybrid(reader, new WeightLoader(memoryTensorSource(initHybridWeights(parseHybridConfig(reader), 0)), gpu, "random"));
}

function randomIds(n: number, vocab: number, seed: number): Int32Array {
  let s = seed >>> 0;
  return Int32Array.from({ length: n }, () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s % vocab;
  });
}

interface Row {
  model: string; test: string; tokens_per_s: number; ms: number; floor_tokens_per_s: number; floor_bound: string;
  extra?: Record<string, number>;
  /** Decode: per replayed run, the median of its even and of its odd steps (ms). */
  even_odd_step_ms?: number[][];
  /** Per run, its first 8 step times (ms). */
  start_step_ms?: number[][];
}

/** Bytes a decode step must move at least: every weight but the embedding table once, B embedding rows, state in and out, logits out. */
function decodeBytes(model: SequenceLM, B: number): number {
  const p = model.parts;
  const weights = model.describe().parameters * 4 - p.embeddings.size * 4 + (p.lmHead === p.embeddings ? p.lmHead.size * 4 : 0);
  const state = model.initialState(1);
  const stateBytes = state.bytesPerSequence;
  state.dispose();
  return weights + B * p.dModel * 4 + 2 * B * stateBytes + B * p.vocabSize * 4;
}

/** Matrix FLOPs per token of the position-wise layers (2 per multiply-add), without the LM head. */
function trunkFlopsPerToken(model: SequenceLM): number {
  const p = model.parts;
  const matrices = p.layers.flatMap((l) => l.layer.weights()).filter((t) => t.rank === 2 && t.shape[0] > 1 && t.shape[1] > 1);
  return 2 * matrices.reduce((n, t) => n + t.size, 0);
}

/**
 * Decode throughput as generation runs it (src/generate/generate.ts): B prompts of 16 tokens prefilled, then
 * greedy steps of the whole batch with the token chosen on the GPU, only ids read back, step t+1 recorded
 * while the GPU runs step t (from the fourth token on, a replay of a captured step: src/generate/replay.ts).
 * Timed from the first generated token to the last.
 */
async function benchDecode(name: string, model: SequenceLM, B: number, bw: number, mm: number, stepsWanted?: number): Promise<Row> {
  const steps = stepsWanted ?? (quick ? 3 : 128);
  const prompts = Array.from({ length: B }, (_, r) => Array.from(randomIds(16, model.vocabSize, r + 1)));
  const run = async (n: number, replay = true) => {
    let first = 0;
    let d0 = 0;
    const it = generate(model, prompts, { maxNewTokens: n + 1, sampling: { temperature: 0 }, eosTokenId: null, replay });
    let count = 0;
    // When each step's last token arrived: whether slow runs are slow every step or every other one
    // (replays alternate between two graphs, see GpuCapturedStep.toGraph).
    const stepEnds: number[] = [];
    for (;;) {
      const next = await it.next();
      if (next.done) break;
      if (++count === B) {
        first = performance.now();
        d0 = gpu.rt.dispatchCount;
      }
      if (count >= B && count % B === 0) stepEnds.push(performance.now());
    }
    const stepMs = stepEnds.slice(1).map((t, i) => t - stepEnds[i]);
    return { seconds: (performance.now() - first) / 1000, dispatches: (gpu.rt.dispatchCount - d0) / n, stepMs };
  };
  // Warm-up (pipelines, buffers, the GPU's clocks), then the median of 3 runs; with --compare-stepped
  // each alternates with a run that steps the model's code every token (no captured-step replay).
  await run(3);
  await run(steps);
  const replayed: { seconds: number; dispatches: number; stepMs: number[] }[] = [];
  const steppedRuns: number[] = [];
  for (let i = 0; i < 3; i++) {
    replayed.push(await run(steps));
    if (opts["compare-stepped"]) steppedRuns.push((await run(steps, false)).seconds);
  }
  const { seconds, dispatches } = [...replayed].sort((a, b) => a.seconds - b.seconds)[1];
  // Per run: the median step of the even and of the odd steps (a slow graph of the pair shows as one high).
  const evenOdd = replayed.map(({ stepMs }) => [0, 1].map((parity) => median(stepMs.filter((_, i) => i % 2 === parity))));
  log(`${name} decode b${B} runs, even / odd step medians (ms): ${evenOdd.map(([e, o]) => `${e.toFixed(2)} / ${o.toFixed(2)}`).join("; ")}`);
  // Each run's first steps (the model's JavaScript, then the capture): where a run's start goes.
  const startSteps = replayed.map(({ stepMs }) => stepMs.slice(0, 8));
  log(`${name} decode b${B} runs, first steps (ms): ${startSteps.map((xs) => xs.map((x) => x.toFixed(1)).join(" ")).join("; ")}`);
  const stepped = steppedRuns.length ? (B * steps) / median(steppedRuns) : undefined;
  if (stepped) {
    const rate = (x: number) => ((B * steps) / x).toFixed(0);
    log(`${name} decode b${B}: replayed ${replayed.map((r) => rate(r.seconds)).join(", ")} tok/s; stepped ${steppedRuns.map(rate).join(", ")} tok/s`);
  }
  const bytes = decodeBytes(model, B);
  const flops = (trunkFlopsPerToken(model) + 2 * model.parts.lmHead.size) * B;
  const floorS = Math.max(bytes / bw, flops / mm);
  return {
    model: name, test: `decode b${B}`, tokens_per_s: (B * steps) / seconds, ms: (seconds * 1000) / steps,
    floor_tokens_per_s: B / floorS, floor_bound: bytes / bw >= flops / mm ? "bandwidth" : "matmul",
    extra: { dispatches_per_step: dispatches, bytes_per_step: bytes, flops_per_step: flops, ...(stepped ? { stepped_tokens_per_s: stepped } : {}) },
    even_odd_step_ms: evenOdd,
    start_step_ms: startSteps,
  };
}

async function benchPrefill(name: string, model: SequenceLM, L: number, mm: number): Promise<Row> {
  const ids = randomIds(L, model.vocabSize, L);
  const run = async () => {
    const out = model.forward(tensor(ids, [1, L], { dtype: "i32", backend: gpu }), null, { logits: "last" });
    await out.logits!.read();
    out.logits!.dispose();
    out.hidden.dispose();
    out.state.dispose();
  };
  const seconds = await timed(run, quick ? 1 : 3);
  const flops = trunkFlopsPerToken(model) * L + 2 * model.parts.lmHead.size;
  return {
    model: name, test: `prefill ${L}`, tokens_per_s: L / seconds, ms: seconds * 1000,
    floor_tokens_per_s: L / (flops / mm), floor_bound: "matmul",
    extra: { model_tflops: flops / seconds / 1e12, flops },
  };
}

// ---------------------------------------------------------------------------------------------------
// HF transformers on the same GPU (a Python script run in the same job).

const HF_SCRIPT = String.raw`
import json, sys, time, torch
out = {"torch": torch.__version__}
try:
    import transformers
    out["transformers"] = transformers.__version__
except Exception as e:
    out["error"] = repr(e); print(json.dumps(out)); sys.exit(0)
dev = "cuda"
torch.backends.cuda.matmul.allow_tf32 = False
torch.backends.cudnn.allow_tf32 = False
out["gpu"] = torch.cuda.get_device_name(0)
def sync(): torch.cuda.synchronize()
# ceilings through torch
n = 8192
a = torch.randn(n, n, device=dev); b = torch.randn(n, n, device=dev)
for _ in range(3): a @ b
sync(); t = time.perf_counter()
for _ in range(5): a @ b
sync(); out["torch_f32_matmul_tflops"] = 5 * 2 * n**3 / (time.perf_counter() - t) / 1e12
x = torch.empty(256 * 2**20, device=dev); y = torch.empty_like(x)
for _ in range(3): y.copy_(x)
sync(); t = time.perf_counter()
for _ in range(10): y.copy_(x)
sync(); out["torch_copy_tbps"] = 10 * 2 * x.numel() * 4 / (time.perf_counter() - t) / 1e12
del a, b, x, y
cfg = json.loads(sys.argv[1])
res = []
def bench(name, model):
    model = model.to(dev).eval()
    V = model.config.vocab_size
    with torch.no_grad():
        for L in cfg["prefill"]:
            ids = torch.randint(0, V, (1, L), device=dev)
            def run():
                try: return model(input_ids=ids, use_cache=False, logits_to_keep=1)
                except TypeError: return model(input_ids=ids, use_cache=False)
            if L == cfg["prefill"][0]: run(); sync()
            ts = []
            for _ in range(3 if L <= 2048 else 1):
                t = time.perf_counter(); run(); sync(); ts.append(time.perf_counter() - t)
            s = sorted(ts)[len(ts) // 2]
            res.append({"model": name, "test": f"prefill {L}", "tokens_per_s": L / s, "ms": s * 1000})
        for B in cfg["batches"]:
            steps = cfg["steps"] if B < 64 else max(4, cfg["steps"] // 2)
            ids = torch.randint(0, V, (B, 16), device=dev)
            def gen(n):
                return model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=n, min_new_tokens=n, do_sample=False, use_cache=True, pad_token_id=0)
            gen(2); sync()
            t = time.perf_counter(); gen(1); sync(); t1 = time.perf_counter() - t
            t = time.perf_counter(); gen(1 + steps); sync(); tn = time.perf_counter() - t
            s = max(1e-9, tn - t1)
            res.append({"model": name, "test": f"decode b{B}", "tokens_per_s": B * steps / s, "ms": s * 1000 / steps})
    del model; torch.cuda.empty_cache()
from transformers import MambaConfig, MambaForCausalLM, Mamba2Config, Mamba2ForCausalLM
L = cfg["layers"]
if "mamba" in cfg["models"]:
    try:
        bench("mamba", MambaForCausalLM(MambaConfig(vocab_size=50280, hidden_size=768, num_hidden_layers=L, state_size=16, expand=2, conv_kernel=4, use_mambapy=False)))
    except Exception as e: res.append({"model": "mamba", "error": repr(e)[:300]})
if "mamba2" in cfg["models"]:
    try:
        bench("mamba2", Mamba2ForCausalLM(Mamba2Config(vocab_size=50280, hidden_size=768, num_hidden_layers=L, state_size=128, head_dim=64, num_heads=24, n_groups=1, expand=2, conv_kernel=4, chunk_size=256)))
    except Exception as e: res.append({"model": "mamba2", "error": repr(e)[:300]})
out["results"] = res
print(json.dumps(out))
`;

function runHf(models: string[], prefill: number[], batches: number[]): Record<string, unknown> {
  if (opts["no-hf"]) return { skipped: true };
  const dir = mkdtempSync(join(tmpdir(), "hippo-hf-"));
  const script = join(dir, "hf.py");
  writeFileSync(script, HF_SCRIPT);
  try {
    const stdout = execFileSync("python3", [script, JSON.stringify({ models, prefill, batches, steps: quick ? 4 : 32, layers: LAYERS })], {
      encoding: "utf8", timeout: 420_000, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, PYTHONUNBUFFERED: "1" },
    });
    return JSON.parse(stdout.trim().split("\n").pop()!);
  } catch (e) {
    return { error: String((e as Error).message).slice(0, 500) };
  }
}

// ---------------------------------------------------------------------------------------------------

async function profileModel(name: string, model: SequenceLM, L: number): Promise<Record<string, unknown>> {
  const top = (m: Map<string, { ms: number; count: number }>, per: number) =>
    [...m.entries()].sort((a, b) => b[1].ms - a[1].ms).map(([k, v]) => ({ kernel: k, ms: v.ms / per, count: v.count / per }));
  const out: Record<string, unknown> = {};
  // A decode step's wall-clock parts (batch B): recording, GPU (submit → done), reading the chosen ids back.
  const B = Number(opts["profile-batch"]);
  if (!Number.isInteger(B) || B < 1) throw new Error(`--profile-batch must be a positive integer, got '${opts["profile-batch"]}'`);
  const stepIds = () => tensor(new Int32Array(B).fill(7), [B, 1], { dtype: "i32", backend: gpu });
  let state = model.forward(tensor(randomIds(16 * B, model.vocabSize, 1), [B, 16], { dtype: "i32", backend: gpu }), null, { logits: "none" }).state;
  const sample = { temperature: 0, topK: 0, topP: 1, minP: 0 };
  const parts = { record: 0, gpu: 0, read: 0 };
  const steps = quick ? 2 : 20;
  for (let i = 0; i < steps + 3; i++) {
    const t0 = performance.now();
    const next = model.step(stepIds(), state);
    const chosen = gpu.sampleTokens(next.logits, sample, new Float32Array(B));
    const t1 = performance.now();
    await gpu.sync();
    const t2 = performance.now();
    await chosen.read();
    const t3 = performance.now();
    if (i >= 3) { parts.record += t1 - t0; parts.gpu += t2 - t1; parts.read += t3 - t2; }
    state.dispose();
    state = next.state;
  }
  out[`decode_b${B}_wall_ms`] = { record: parts.record / steps, gpu: parts.gpu / steps, read: parts.read / steps };
  gpu.rt.startProfile();
  for (let i = 0; i < 5; i++) {
    const next = model.step(stepIds(), state);
    gpu.sampleTokens(next.logits, sample, new Float32Array(B));
    state.dispose();
    state = next.state;
  }
  const decodeKernels = top(await gpu.rt.stopProfile(), 5);
  out[`decode_b${B}_kernels`] = decodeKernels;
  state.dispose();
  gpu.rt.startProfile();
  const r = model.forward(tensor(randomIds(L, model.vocabSize, 3), [1, L], { dtype: "i32", backend: gpu }), null, { logits: "last" });
  await r.logits!.read();
  out[`prefill_${L}_kernels`] = top(await gpu.rt.stopProfile(), 1);
  r.state.dispose();
  const sum = (rows: { ms: number }[]) => rows.reduce((n, x) => n + x.ms, 0);
  log(`${name} decode b${B} wall: record ${(parts.record / steps).toFixed(2)} ms, gpu ${(parts.gpu / steps).toFixed(2)} ms, read ${(parts.read / steps).toFixed(2)} ms; ` +
    `GPU kernels ${sum(decodeKernels).toFixed(2)} ms/step; prefill ${L} kernels ${sum(out[`prefill_${L}_kernels`] as { ms: number }[]).toFixed(1)} ms`);
  for (const [what, rows] of [[`decode b${B}`, decodeKernels], [`prefill ${L}`, out[`prefill_${L}_kernels`]]] as const) {
    log(`  ${what}: ` + (rows as { kernel: string; ms: number; count: number }[]).slice(0, 12).map((x) => `${x.kernel} ${x.ms.toFixed(3)} ms ×${x.count}`).join("; "));
  }
  return out;
}

const result: Record<string, unknown> = { adapter: gpu.description, features: gpu.handle.features, quick, tiled_min_rows: gpu.tiledMinRows, tiled_wide_min_rows: gpu.tiledWideMinRows, split_k: gpu.splitK, ssd_step_rows: gpu.ssdStepRows, fuse_act_into_large_tiles: gpu.fuseActIntoLargeTiles, fuse_norm_into_tiled: gpu.fuseNormIntoTiled };
/** Ends a single-purpose mode: its results (with the adapter) to --out, the device released. */
function finishMode(results: Record<string, unknown>): never {
  writeFileSync(opts.out!, JSON.stringify({ adapter: gpu.description, ...results }, null, 2));
  gpu.destroy();
  process.exit(0);
}

/** Runs `work` on each of --models, built one at a time and released after. */
async function eachModel(work: (name: string, model: SequenceLM) => Promise<void>): Promise<void> {
  for (const name of opts.models!.split(",")) {
    const model = await buildModel(name);
    await work(name, model);
    model.dispose();
    gpu.rt.trim();
  }
}

if (opts["micro-decode"]) {
  // Batched-decoding products (M rows of x): the subgroup matvec (rows in blocks of 8) that linear picks,
  // against the tiled matmul with 16T×16T tiles, 100 per submit; µs per product.
  const micro: Record<string, number> = {};
  const bufOf = (t: { storage: unknown }) => (t.storage as { buffer: GPUBuffer }).buffer;
  for (const M of quick ? [16] : listOf(opts["micro-rows"]!)) {
    for (const [N, K] of quick ? [[80, 1536]] : [[3072, 768], [768, 1536], [80, 1536], [3352, 768], ...(M >= 32 ? [[50280, 768]] : [])]) {
      const x = gpu.upload(new Float32Array(M * K).map((_, i) => Math.sin(i)), [M, K], "f32");
      const w = gpu.upload(new Float32Array(N * K).map((_, i) => Math.cos(i)), [N, K], "f32");
      const out = gpu.upload(new Float32Array(M * N), [M, N], "f32");
      const reps = quick ? 2 : 100;
      const line: string[] = [];
      const us = (record: () => void) => gpuMicroseconds(record, reps);
      const t0 = await us(() => gpu.linear(x, w, null).dispose());
      micro[`M${M} N${N} K${K} linear`] = t0;
      line.push(`linear ${t0.toFixed(1)}`);
      // The subgroup matvec taking rows in blocks of 8 (what linear picks), 16, 32 or 64: fewer passes over the weights, more accumulators.
      for (const rows of [8, 16, 32, 64].filter((r) => r <= M)) {
        const spec = matvecSubgroupSpec("f32", rows, true);
        const k = gpu.rt.kernel({ ...spec, key: `${spec.key}-micro` });
        const values: Record<string, number> = { N, K, has_bias: 0, x_off: 0, x_stride: K, M };
        const t = await us(() => gpu.rt.dispatch(k, spec.params.map(([name]) => values[name]), [bufOf(x), bufOf(w), null, bufOf(out)], [Math.ceil(N / matvecColumnsPerWorkgroup()), Math.ceil(M / rows)]));
        micro[`M${M} N${N} K${K} matvec rows ${rows}`] = t;
        line.push(`matvec ×${rows} ${t.toFixed(1)}`);
      }
      const tilesOf = (s: TileShape) => tileGrid(s, M, N);
      const shapeName = (s: TileShape) => (s === SKINNY_TILE ? "skinny" : `T${s.TM}`);
      for (const shape of [squareTile(1), squareTile(2), squareTile(4), SKINNY_TILE]) {
        const k = gpu.rt.kernel(matmulSpec("f32", shape));
        const t = await us(() => gpu.rt.dispatch(k, [M, N, K, 0, 0, K], [bufOf(x), bufOf(w), null, bufOf(out)], tilesOf(shape)));
        micro[`M${M} N${N} K${K} matmul ${shapeName(shape)}`] = t;
        line.push(`matmul ${shapeName(shape)} ${t.toFixed(1)}`);
      }
      // The tiled kernel with K split across workgroups (z) and the partials summed by a second kernel:
      // `auto` is splitKFor's choice; the others fixed slice counts.
      const sum = gpu.rt.kernel(splitKSumSpec());
      for (const shape of [squareTile(2), squareTile(4), SKINNY_TILE]) {
        const k = gpu.rt.kernel(matmulSpec("f32", shape, { splitK: true }));
        const auto = splitKFor(M, N, K, shape).splits;
        for (const wanted of [auto, 2, 4, 8, 16, 32]) {
          const { splits, kChunk } = kSlices(K, wanted);
          if (wanted !== auto && splits === auto) continue;
          const part = gpu.rt.alloc(splits * M * N * 4);
          const t = await us(() => {
            gpu.rt.dispatch(k, [M, N, K, 0, 0, K, kChunk], [bufOf(x), bufOf(w), null, part], [...tilesOf(shape), splits]);
            gpu.rt.dispatch(sum, [M * N, N, splits, 0], [part, null, bufOf(out)], [Math.ceil((M * N) / 256)]);
          });
          gpu.rt.releaseBuffer(part);
          const name = `split-K ${shapeName(shape)} ×${splits}${wanted === auto ? " (auto)" : ""}`;
          micro[`M${M} N${N} K${K} ${name}`] = t;
          line.push(`${name} ${t.toFixed(1)}`);
        }
      }
      log(`M ${M} N ${N} K ${K} (µs): ${line.join(", ")}`);
      for (const t of [x, w, out]) t.dispose();
    }
  }
  // What a dispatch costs the GPU by itself: a chain of tiny dependent dispatches (each reads the last one's output).
  const a = gpu.upload(new Float32Array(768).fill(1), [768], "f32");
  const chain = gpu.upload(new Float32Array(768).fill(1), [768], "f32");
  const addKernel = gpu.rt.kernel({ key: "micro-add", params: [["n", "u32"]], workgroupSize: 256,
    bindings: [{ name: "a", type: "f32" }, { name: "y", type: "f32", write: true }],
    body: "@compute @workgroup_size(256)\nfn main(@builtin(global_invocation_id) g: vec3<u32>) { if (g.x < p.n) { y[g.x] = y[g.x] + a[g.x]; } }" });
  micro["tiny dependent dispatch us (GPU)"] = await gpuMicroseconds(() => gpu.rt.dispatch(addKernel, [768], [bufOf(a), bufOf(chain)], [3]), 400);
  log(`tiny dependent dispatch: ${micro["tiny dependent dispatch us (GPU)"].toFixed(2)} µs of GPU time each`);
  finishMode({ micro });
}
if (opts["decode-only"]) {
  // For a CPU profile (node --cpu-prof): mamba-130m, batch 1, recording and running steps only.
  const model = await buildModel("mamba");
  const r = await benchDecode("mamba", model, 1, 1e12, 1e12, Number(opts["decode-only"]));
  log(`decode-only: ${r.tokens_per_s.toFixed(0)} tok/s, ${r.ms.toFixed(2)} ms/step`);
  gpu.destroy();
  process.exit(0);
}
if (opts.micro) {
  const micro: Record<string, number> = {};
  for (const [M, N, K] of [[8192, 3072, 768], [2048, 3072, 768], [8192, 768, 1536], [8192, 1536, 48], [4096, 4096, 4096], [8192, 8192, 8192]]) {
    const x = gpu.upload(new Float32Array(M * K).map((_, i) => Math.sin(i)), [M, K], "f32");
    const w = gpu.upload(new Float32Array(N * K).map((_, i) => Math.cos(i)), [N, K], "f32");
    const s = await timed(async () => { for (let i = 0; i < 5; i++) gpu.linear(x, w, null).dispose(); await gpu.sync(); }, 3);
    micro[`matmul ${M}x${N}x${K} TFLOP/s`] = (2 * M * N * K * 5) / s / 1e12;
    x.dispose();
    w.dispose();
  }
  // Decode-shaped products (one row of x), 100 per submit: time per product and the weight bytes streamed.
  for (const [N, K] of [[3072, 768], [768, 1536], [80, 1536], [1536, 48], [3352, 768], [50280, 768]]) {
    const x = gpu.upload(new Float32Array(K).map((_, i) => Math.sin(i)), [1, K], "f32");
    const w = gpu.upload(new Float32Array(N * K).map((_, i) => Math.cos(i)), [N, K], "f32");
    const reps = 100;
    const s = await timed(async () => { for (let i = 0; i < reps; i++) gpu.linear(x, w, null).dispose(); await gpu.sync(); }, 3);
    micro[`matvec 1x${N}x${K} us`] = (s / reps) * 1e6;
    micro[`matvec 1x${N}x${K} weight GB/s`] = (N * K * 4 * reps) / s / 1e9;
    x.dispose();
    w.dispose();
  }
  const a = gpu.upload(new Float32Array(768).fill(1), [768], "f32");
  for (const n of [1, 200, 1000]) {
    const s = await timed(async () => {
      for (let i = 0; i < n; i++) gpu.binary("add", a, a).dispose();
      await gpu.sync();
    }, 5);
    micro[`${n} tiny dispatches: us each (wall, one submit)`] = (s * 1e6) / n;
  }
  gpu.rt.startProfile();
  for (let i = 0; i < 200; i++) gpu.binary("add", a, a).dispose();
  const prof = await gpu.rt.stopProfile();
  micro["tiny dispatch GPU us (timestamps)"] = (1000 * [...prof.values()][0].ms) / [...prof.values()][0].count;
  for (const [k, v] of Object.entries(micro)) log(`${k}: ${v.toFixed(2)}`);
  finishMode({ micro });
}
if (opts.variants) {
  const defaults = { tiled: gpu.tiledMinRows, wide: gpu.tiledWideMinRows, fuseNorm: gpu.fuseNormIntoTiled, ssdRows: gpu.ssdStepRows, skinny: gpu.skinnyTiles };
  const apply = (variant: string) => {
    gpu.tiledMinRows = defaults.tiled;
    gpu.tiledWideMinRows = defaults.wide;
    gpu.fuseNormIntoTiled = defaults.fuseNorm;
    gpu.ssdStepRows = defaults.ssdRows;
    gpu.skinnyTiles = defaults.skinny;
    for (const part of variant.split("+")) {
      const setting = /^(tiled|wide|ssdrows)(\d+)$/.exec(part);
      if (part === "base") continue;
      else if (part === "unfused-norm") gpu.fuseNormIntoTiled = false;
      else if (part === "skinny") gpu.skinnyTiles = true;
      else if (part === "square") gpu.skinnyTiles = false;
      else if (setting?.[1] === "tiled") gpu.tiledMinRows = Number(setting[2]);
      else if (setting?.[1] === "wide") gpu.tiledWideMinRows = Number(setting[2]);
      else if (setting?.[1] === "ssdrows") gpu.ssdStepRows = Number(setting[2]);
      else throw new Error(`--variants: unknown setting '${part}' (base, tiledN, wideN, unfused-norm, skinny, square, ssdrowsN)`);
    }
  };
  const variants = opts.variants.split(";");
  variants.forEach(apply); // unknown settings fail before any model is built
  const rows: Record<string, unknown>[] = [];
  await eachModel(async (name, model) => {
    for (const B of listOf(opts.batches!)) {
      const ms: Record<string, number[]> = {};
      // Two rounds over the variants; each variant's best of its two runs.
      for (let round = 0; round < 2; round++) {
        for (const v of variants) {
          apply(v);
          (ms[v] ??= []).push((await benchDecode(name, model, B, 1e12, 1e12, quick ? 3 : B === 64 ? 24 : 48)).ms);
        }
      }
      for (const v of variants) {
        const best = Math.min(...ms[v]);
        rows.push({ model: name, batch: B, variant: v, ms_per_step: ms[v], tokens_per_s: (B * 1000) / best });
        log(`${name} b${B} ${v}: ${ms[v].map((x) => x.toFixed(3)).join(" / ")} ms a step → ${((B * 1000) / best).toFixed(0)} tok/s`);
      }
    }
  });
  finishMode({ variants: rows });
}
if (opts.ablate) {
  // Each kernel of a decode step dispatched twice in the real (replayed) step, against a run just before
  // with it once: the difference is what that kernel costs in place, launch and barrier included.
  const ablation: Record<string, unknown> = {};
  await eachModel(async (name, model) => {
    for (const B of listOf(opts.ablate!)) {
      const counts = new Map<string, number>();
      let state = model.forward(tensor(randomIds(16 * B, model.vocabSize, 1), [B, 16], { dtype: "i32", backend: gpu }), null, { logits: "none" }).state;
      gpu.rt.repeatDispatch = (key) => { counts.set(key, (counts.get(key) ?? 0) + 1); return 1; };
      const next = model.step(tensor(new Int32Array(B).fill(7), [B, 1], { dtype: "i32", backend: gpu }), state);
      gpu.sampleTokens(next.logits, { temperature: 0, topK: 0, topP: 1, minP: 0 }, new Float32Array(B)).dispose();
      gpu.rt.repeatDispatch = null;
      for (const t of [state, next.state]) t.dispose();
      next.logits.dispose();
      await gpu.sync();
      const steps = quick ? 3 : 24;
      const stepMs = async () => (await benchDecode(name, model, B, 1e12, 1e12, steps)).ms;
      const base0 = await stepMs();
      const rows: Record<string, number | string>[] = [];
      for (const [kernel, count] of [...counts].sort((a, b) => b[1] - a[1])) {
        // Step times on these machines are bimodal (the same settings at ~3.5 and ~6.5 ms): the best of
        // three alternating runs of each.
        let base = Infinity, doubled = Infinity;
        for (let round = 0; round < 3; round++) {
          base = Math.min(base, await stepMs());
          gpu.rt.repeatDispatch = (key) => (key === kernel ? 2 : 1);
          doubled = Math.min(doubled, await stepMs());
          gpu.rt.repeatDispatch = null;
        }
        rows.push({ kernel, per_step: count, base_ms: base, doubled_ms: doubled, marginal_ms: doubled - base, us_each: ((doubled - base) * 1000) / count });
        log(`${name} b${B} ${kernel} ×${count}: step ${base.toFixed(3)} → ${doubled.toFixed(3)} ms (${(((doubled - base) * 1000) / count).toFixed(1)} µs each)`);
      }
      const total = rows.reduce((n, r) => n + (r.marginal_ms as number), 0);
      log(`${name} b${B}: step ${base0.toFixed(3)} ms, sum of marginal costs ${total.toFixed(3)} ms`);
      ablation[`${name} b${B}`] = { step_ms: base0, kernels: rows };
    }
  });
  finishMode({ tiled_min_rows: gpu.tiledMinRows, tiled_wide_min_rows: gpu.tiledWideMinRows, ablation });
}
if (opts.profile) {
  const profiles: Record<string, unknown> = {};
  await eachModel(async (name, model) => { profiles[name] = await profileModel(name, model, quick ? 200 : 8192); });
  finishMode({ profiles });
}
const bws = await copyBandwidth();
const bw = Math.max(bws.copyBuffer, bws.kernel);
log(`copy bandwidth: copyBufferToBuffer ${(bws.copyBuffer / 1e12).toFixed(2)} TB/s, vec4 kernel ${(bws.kernel / 1e12).toFixed(2)} TB/s`);
const mmRates: Record<string, number> = {};
for (const n of quick ? [256] : [2048, 4096, 8192]) {
  mmRates[n] = await matmulRate(n);
  log(`tiled f32 matmul ${n}³: ${(mmRates[n] / 1e12).toFixed(2)} TFLOP/s`);
}
const mm = Math.max(...Object.values(mmRates));
result.ceilings = { copy_bytes_per_s: bw, copy: bws, matmul_flops_per_s: mmRates, matmul_ceiling: mm };

const models = opts.models!.split(",");
const prefills = quick ? [64, 200] : listOf(opts.prefills!);
const batches = quick ? [1, 2] : listOf(opts.batches!);
const rows: Row[] = [];
for (const name of models) {
  const t0 = performance.now();
  const model = await buildModel(name);
  log(`${name}: ${(model.describe().parameters / 1e6).toFixed(1)}M parameters, built in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  for (const B of batches) {
    const r = await benchDecode(name, model, B, bw, mm);
    rows.push(r);
    log(`${name} ${r.test}: ${r.tokens_per_s.toFixed(0)} tok/s (${r.ms.toFixed(2)} ms/step, ${r.extra!.dispatches_per_step.toFixed(0)} dispatches); floor ${r.floor_tokens_per_s.toFixed(0)} tok/s`);
  }
  for (const L of prefills) {
    const r = await benchPrefill(name, model, L, mm);
    rows.push(r);
    log(`${name} ${r.test}: ${r.tokens_per_s.toFixed(0)} tok/s (${r.ms.toFixed(1)} ms, ${r.extra!.model_tflops.toFixed(2)} TFLOP/s)`);
  }
  model.dispose();
  gpu.rt.trim();
}
result.hippo = rows;
log("HF transformers ...");
const hf = runHf(models.filter((m) => m !== "h3"), prefills, batches);
result.hf = hf;

const hfRows = ((hf.results as Record<string, unknown>[] | undefined) ?? []).filter((r) => !r.error);
const hfFor = (m: string, t: string) => hfRows.find((r) => r.model === m && r.test === t)?.tokens_per_s as number | undefined;
const fmt = (x: number | undefined, d = 0) => (x === undefined || !Number.isFinite(x) ? "n/a" : x.toFixed(d));
const lines = [
  `adapter: ${gpu.description}`,
  `ceilings: copy ${(bw / 1e12).toFixed(2)} TB/s (WebGPU buffer copy); f32 matmul ${(mm / 1e12).toFixed(2)} TFLOP/s (Hippo's WGSL tiled kernel)` +
    (hf.torch_f32_matmul_tflops ? `; torch f32 matmul ${(hf.torch_f32_matmul_tflops as number).toFixed(1)} TFLOP/s, torch copy ${(hf.torch_copy_tbps as number).toFixed(2)} TB/s` : ""),
  "",
  "| model | test | Hippo WebGPU tok/s | ms | HF transformers tok/s | Hippo / HF | floor tok/s | Hippo / floor |",
  "|---|---|---:|---:|---:|---:|---:|---:|",
  ...rows.map((r) => {
    const h = hfFor(r.model, r.test);
    return `| ${r.model} | ${r.test} | ${fmt(r.tokens_per_s)} | ${r.ms.toFixed(2)} | ${fmt(h)} | ${h ? (r.tokens_per_s / h).toFixed(1) + "×" : "n/a"} | ${fmt(r.floor_tokens_per_s)} (${r.floor_bound}) | ${(r.tokens_per_s / r.floor_tokens_per_s).toFixed(2)} |`;
  }),
];
process.stdout.write(lines.join("\n") + "\n");
writeFileSync(opts.out!, JSON.stringify(result, null, 2));
log(`wrote ${opts.out}`);
gpu.destroy();

