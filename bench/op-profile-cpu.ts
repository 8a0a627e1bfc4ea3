// Where the CPU time of prompt processing and generation goes, op by op (host clock around each op).
//   node dist/bench/op-profile-cpu.js [mamba|mamba2|gpt2] [f32|f16|q8] [threads] [prompt] [gen]
import { getBackend, setCpuThreads } from "../src/backends/registry.js";
import { OpProfiler } from "../src/backends/profiling.js";
import { Rng } from "../src/generate/rng.js";
import { build, generation, MODELS, promptProcessing } from "./cpu-models.js";

const [modelName = "mamba", dtype = "f32", threadsArg = "2", promptArg = "512", genArg = "64"] = process.argv.slice(2);
const usage = "usage: node dist/bench/op-profile-cpu.js [mamba|mamba2|gpt2] [f32|f16|q8] [threads] [prompt tokens] [generated tokens]";
const count = (name: string, v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1) throw new Error(`${name} must be a positive integer, got '${v}'\n${usage}`);
  return n;
};
const shape = MODELS[modelName];
if (!shape) throw new Error(`unknown model '${modelName}' (mamba, mamba2, gpt2)\n${usage}`);
if (!["f32", "f16", "q8"].includes(dtype)) throw new Error(`weights must be f32, f16 or q8, got '${dtype}'\n${usage}`);
const backend = getBackend("cpu");
setCpuThreads(count("threads", threadsArg));
const model = await build(shape, shape.layers, dtype, backend);
const vocab = Number(shape.config(1).vocab_size);
const rng = new Rng(1);
const L = count("prompt tokens", promptArg), N = count("generated tokens", genArg);
const prompt = () => promptProcessing(model, L, vocab, rng, backend);
const steps = () => generation(model, N, vocab, rng, backend);
await prompt(); // warm-up
await generation(model, 2, vocab, rng, backend);
for (const [name, run, tokens] of [["prompt", prompt, L], ["generation", steps, N]] as const) {
  const profiler = new OpProfiler(backend).attach();
  const wall = (await run()) * 1000;
  profiler.detach();
  const rows = profiler.snapshot().sort((a, b) => b.ms - a.ms);
  const opMs = rows.reduce((s, r) => s + r.ms, 0);
  console.log(`\n${modelName} ${dtype} t${threadsArg} ${name}: ${(tokens / wall * 1000).toFixed(1)} tok/s, wall ${wall.toFixed(0)} ms, in ops ${opMs.toFixed(0)} ms`);
  for (const r of rows.slice(0, 14)) console.log(`${r.op.padEnd(22)} ${String(r.calls).padStart(6)} ${r.ms.toFixed(1).padStart(9)} ms ${(r.flops / r.ms / 1e6).toFixed(1).padStart(7)} GFLOP/s ${(r.bytes / r.ms / 1e6).toFixed(1).padStart(7)} GB/s`);
}
process.exit(0);
