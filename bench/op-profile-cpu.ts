// Where the CPU time of prompt processing and generation goes, op by op (host clock around each op).
//   node dist/bench/op-profile-cpu.js [mamba|mamba2|gpt2] [f32|f16|q8] [threads] [prompt] [gen]
import { getBackend, setCpuThreads } from "../src/backends/registry.js";
import { OpProfiler } from "../src/backends/profiling.js";
import { Rng } from "../src/generate/rng.js";
import { memoryTensorSource } from "../src/io/memory-source.js";
import { ConfigReader } from "../src/models/config-json.js";
import { parseHybridConfig } from "../src/models/hybrid/config.js";
import { initHybridWeights } from "../src/models/hybrid/init.js";
import { buildHybrid } from "../src/models/hybrid/model.js";
import { WeightLoader } from "../src/models/weights.js";
import { tensor } from "../src/ops/index.js";
import { randomIds } from "./common.js";

const [modelName = "mamba", dtype = "f32", threadsArg = "2", promptArg = "512", genArg = "64"] = process.argv.slice(2);
const configs: Record<string, Record<string, unknown>> = {
  mamba: { model_type: "hippo_hybrid", hidden_size: 768, vocab_size: 50280, tie_word_embeddings: true, mamba: { state_size: 16, conv_kernel: 4, expand: 2 }, pattern: "m".repeat(24) },
  mamba2: { model_type: "hippo_hybrid", hidden_size: 768, vocab_size: 50288, tie_word_embeddings: true, mamba2: { state_size: 128, head_dim: 64, n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: 256 }, pattern: "M".repeat(24) },
  gpt2: { model_type: "hippo_hybrid", hidden_size: 768, vocab_size: 50257, tie_word_embeddings: true, pattern: "*-".repeat(12),
    attention: { num_heads: 12, num_kv_heads: 12, head_dim: 64, rotary_dim: 64, rope_theta: 10000 }, mlp: { intermediate_size: 3072, activation: "gelu", gated: false } },
};
const usage = "usage: node dist/bench/op-profile-cpu.js [mamba|mamba2|gpt2] [f32|f16|q8] [threads] [prompt tokens] [generated tokens]";
const count = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'\n${usage}`);
  return n;
};
if (!configs[modelName]) throw new Error(`unknown model '${modelName}' (mamba, mamba2, gpt2)\n${usage}`);
if (!["f32", "f16", "q8"].includes(dtype)) throw new Error(`weights must be f32, f16 or q8, got '${dtype}'\n${usage}`);
const backend = getBackend("cpu");
setCpuThreads(count("threads", threadsArg));
const reader = new ConfigReader(configs[modelName], modelName);
const weights = initHybridWeights(parseHybridConfig(reader), 0, dtype === "f16" ? "F16" : "F32");
const model = await buildHybrid(reader, new WeightLoader(memoryTensorSource(weights), backend, "random", { quantize: dtype === "q8" ? "q8" : null }));
const vocab = Number(configs[modelName].vocab_size);
const rng = new Rng(1);
const L = count("prompt tokens", promptArg), N = count("generated tokens", genArg);
const prompt = async () => {
  const out = model.forward(tensor(randomIds(rng, L, vocab), [1, L], { dtype: "i32", backend }), null, { logits: "last" });
  await out.logits!.readFloat32();
  out.state.dispose();
};
const generation = async () => {
  let state = model.forward(tensor(randomIds(rng, 1, vocab), [1, 1], { dtype: "i32", backend }), null, { logits: "none" }).state;
  for (let i = 0; i < N; i++) {
    const r = model.step(tensor(randomIds(rng, 1, vocab), [1, 1], { dtype: "i32", backend }), state);
    await r.logits.readFloat32();
    state.dispose();
    state = r.state;
  }
  state.dispose();
};
await prompt();
await generation();
for (const [name, run, tokens] of [["prompt", prompt, L], ["generation", generation, N]] as const) {
  const profiler = new OpProfiler(backend).attach();
  const t0 = performance.now();
  await run();
  const wall = performance.now() - t0;
  profiler.detach();
  const rows = profiler.snapshot().sort((a, b) => b.ms - a.ms);
  const opMs = rows.reduce((s, r) => s + r.ms, 0);
  console.log(`\n${modelName} ${dtype} t${threadsArg} ${name}: ${(tokens / wall * 1000).toFixed(1)} tok/s, wall ${wall.toFixed(0)} ms, in ops ${opMs.toFixed(0)} ms`);
  for (const r of rows.slice(0, 14)) console.log(`${r.op.padEnd(22)} ${String(r.calls).padStart(6)} ${r.ms.toFixed(1).padStart(9)} ms ${(r.flops / r.ms / 1e6).toFixed(1).padStart(7)} GFLOP/s ${(r.bytes / r.ms / 1e6).toFixed(1).padStart(7)} GB/s`);
}
process.exit(0);
