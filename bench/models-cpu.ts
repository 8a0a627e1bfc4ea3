// CPU benchmark across architectures of one size class: mamba2-130m's shape (d_model 768, 24 layers,
// d_state 128, head_dim 64, expand 2) against a Transformer of the same width and depth (12 heads of
// 64, RoPE, SiLU-gated MLP of 2048) and mamba-130m, all with random weights. Prefill and decode
// tokens/s, and what each sequence carries between tokens at 2K, 8K and 32K tokens of context.
//
//   npx tsc -p tsconfig.json && node dist/bench/models-cpu.js [--quick] [--archs mamba2,transformer,mamba]
import os from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { getBackend } from "../src/backends/registry.js";
import { Rng } from "../src/generate/rng.js";
import { memoryTensorSource } from "../src/io/memory-source.js";
import { writeFileAtomic } from "../src/io/node-files.js";
import { ConfigReader } from "../src/models/config-json.js";
import { parseHybridConfig } from "../src/models/hybrid/config.js";
import { initHybridWeights } from "../src/models/hybrid/init.js";
import { buildHybrid } from "../src/models/hybrid/model.js";
import { formatBytes, memoryReport } from "../src/models/memory.js";
import type { SequenceLM } from "../src/models/sequence-lm.js";
import { InferenceState } from "../src/models/state.js";
import { WeightLoader } from "../src/models/weights.js";
import { tensor } from "../src/ops/index.js";
import { randomIds } from "./common.js";

const D = 768;
const VOCAB = 50280;

/** Each architecture as a Hippo hybrid pattern: M Mamba-2, m Mamba, * attention, - MLP. */
function archConfig(arch: string, layers: number): Record<string, unknown> {
  const base = {
    model_type: "hippo_hybrid", hidden_size: D, vocab_size: VOCAB, tie_word_embeddings: true,
    mamba: { state_size: 16, conv_kernel: 4, expand: 2 },
    mamba2: { state_size: 128, head_dim: 64, n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: 256 },
    attention: { num_heads: 12, num_kv_heads: 12, head_dim: 64, rotary_dim: 64, rope_theta: 10000 },
    mlp: { intermediate_size: 2048, activation: "silu", gated: true },
  };
  const pattern = { mamba2: "M", mamba: "m", transformer: "*-" }[arch];
  if (!pattern) throw new Error(`unknown arch '${arch}' (mamba2, transformer, mamba)`);
  return { ...base, pattern: pattern.repeat(layers) };
}

interface Row { arch: string; test: string; tokens: number; seconds: number[]; tokensPerS: number }

async function time(fn: () => Promise<void>): Promise<number> {
  const t0 = performance.now();
  await fn();
  return (performance.now() - t0) / 1000;
}

async function prefill(model: SequenceLM, L: number, rng: Rng): Promise<number> {
  return time(async () => {
    const out = model.forward(tensor(randomIds(rng, L, VOCAB), [1, L], { dtype: "i32" }), null, { logits: "last" });
    await out.logits!.readFloat32();
    out.state.dispose();
  });
}

/** Prefill `context` tokens per row, then time `steps` decode steps of the whole batch. */
async function decode(model: SequenceLM, B: number, context: number, steps: number, rng: Rng): Promise<number> {
  const rows = Array.from({ length: B }, () => model.forward(tensor(randomIds(rng, context, VOCAB), [1, context], { dtype: "i32" }), null, { logits: "none" }).state);
  let state = InferenceState.stack(rows);
  const step = async () => {
    const r = model.step(tensor(randomIds(rng, B, VOCAB), [B, 1], { dtype: "i32" }), state);
    await r.logits.readFloat32();
    state.dispose();
    state = r.state;
  };
  await step(); // warm-up
  return time(async () => { for (let s = 0; s < steps; s++) await step(); });
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      archs: { type: "string", default: "mamba2,transformer,mamba" },
      "prompt-lengths": { type: "string", default: "512,2048" },
      batches: { type: "string", default: "1,8" },
      "decode-contexts": { type: "string", default: "16,2048" },
      "decode-steps": { type: "string", default: "8" },
      layers: { type: "string", default: "24" },
      quick: { type: "boolean", default: false },
      out: { type: "string", default: "bench/results/models-cpu.json" },
    },
  });
  const quick = values.quick!;
  const list = (s: string) => s.split(",").map(Number);
  const layers = quick ? 2 : Number(values.layers);
  const promptLengths = quick ? [64] : list(values["prompt-lengths"]!);
  const batches = quick ? [1, 2] : list(values.batches!);
  const contexts = quick ? [16, 64] : list(values["decode-contexts"]!);
  const steps = quick ? 2 : Number(values["decode-steps"]);
  const backend = getBackend("cpu");
  const rows: Row[] = [];
  const memory: Record<string, unknown>[] = [];
  for (const arch of values.archs!.split(",")) {
    const reader = new ConfigReader(archConfig(arch, layers), `${arch} config`);
    const model = await buildHybrid(reader, new WeightLoader(memoryTensorSource(initHybridWeights(parseHybridConfig(reader), 0)), backend, "random"));
    const desc = model.describe();
    process.stderr.write(`[bench] ${arch}: ${(desc.parameters / 1e6).toFixed(1)}M parameters, ${layers} layers\n`);
    const rng = new Rng(1);
    await prefill(model, Math.min(64, promptLengths[0]), rng); // warm-up
    for (const L of promptLengths) {
      const s = await prefill(model, L, rng);
      rows.push({ arch, test: `prefill ${L}`, tokens: L, seconds: [s], tokensPerS: L / s });
      process.stderr.write(`[bench] ${arch} prefill ${L}: ${(L / s).toFixed(2)} tok/s\n`);
    }
    for (const context of contexts) {
      // Long contexts at batch 1 only: prefilling 8 rows of 2K tokens would dominate the run.
      for (const B of context > 256 ? [1] : batches) {
        const s = await decode(model, B, context, steps, rng);
        rows.push({ arch, test: `decode b${B} @${context}`, tokens: B * steps, seconds: [s], tokensPerS: (B * steps) / s });
        process.stderr.write(`[bench] ${arch} decode b${B} at context ${context}: ${((B * steps) / s).toFixed(2)} tok/s\n`);
      }
    }
    for (const ctx of [2048, 8192, 32768]) {
      const m = memoryReport(desc, ctx);
      memory.push({ arch, context: ctx, state_bytes: m.stateBytesPerSequence, kv_cache_bytes: m.kvCacheBytesPerSequence, total_bytes: m.totalBytesPerSequence });
    }
    model.dispose();
  }
  const lines = [
    `## Hippo CPU bench — architectures at 130M-class shapes (d_model ${D}, ${layers} layers), random weights, f32`,
    "",
    `machine: ${os.cpus()[0]?.model ?? "?"}, ${os.cpus().length} cores (1 used), node ${process.version}`,
    "",
    "| arch | test | tokens/s | ms/token |",
    "|---|---|---:|---:|",
    ...rows.map((r) => `| ${r.arch} | ${r.test} | ${r.tokensPerS.toFixed(2)} | ${((r.seconds[0] * 1000) / r.tokens).toFixed(1)} |`),
    "",
    "| arch | context | recurrent state | KV cache | total per sequence |",
    "|---|---:|---:|---:|---:|",
    ...memory.map((m) => `| ${m.arch} | ${m.context} | ${formatBytes(m.state_bytes as number)} | ${formatBytes(m.kv_cache_bytes as number)} | ${formatBytes(m.total_bytes as number)} |`),
  ];
  process.stdout.write(lines.join("\n") + "\n");
  await writeFileAtomic(quick ? values.out!.replace(/\.json$/, "-quick.json") : values.out!, JSON.stringify({
    machine: { cpu: os.cpus()[0]?.model, cores: os.cpus().length, node: process.version },
    layers, results: rows, memory,
  }, null, 2) + "\n");
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.message : e}\n`);
  process.exit(1);
});
