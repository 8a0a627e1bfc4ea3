// Dispatches per decoding step on WebGPU for the benchmark's model shapes (mamba-130m, mamba2-130m,
// H3-125M widths), at batch 1 (and other batch sizes with --batches), counted by the runtime at two depths
// and extrapolated linearly to the full one. Any adapter will do (the count does not depend on speed):
// SwiftShader locally.
//
//   npx tsc -p tsconfig.json && node dist/bench/webgpu-dispatches.js [--batches 1,64] [--models mamba,mamba2,h3] [--steps 12]
//     [--unfused-norm] [--out bench/results/webgpu-dispatches.json]
import { parseArgs } from "node:util";
import { createBackend } from "../src/backends/registry.js";
import type { WebGpuBackend } from "../src/backends/webgpu/index.js";
import { generate } from "../src/generate/generate.js";
import { writeFileAtomic } from "../src/io/node-files.js";
import { memoryTensorSource } from "../src/io/memory-source.js";
import { ConfigReader } from "../src/models/config-json.js";
import { h3ReleaseConfig } from "../src/models/h3/config.js";
import { initH3Weights } from "../src/models/h3/init.js";
import { buildH3LM } from "../src/models/h3/model.js";
import { parseHybridConfig } from "../src/models/hybrid/config.js";
import { initHybridWeights } from "../src/models/hybrid/init.js";
import { buildHybrid } from "../src/models/hybrid/model.js";
import type { SequenceLM } from "../src/models/sequence-lm.js";
import { WeightLoader } from "../src/models/weights.js";

const { values } = parseArgs({ options: {
  out: { type: "string", default: "bench/results/webgpu-dispatches.json" },
  batches: { type: "string", default: "1" },
  models: { type: "string", default: "mamba,mamba2,h3" },
  /** Steps per counted run (runs of 2, STEPS and 2·STEPS tokens). */
  steps: { type: "string", default: "12" },
  /** Batched decoding's norms in their own pass (the backend's fuseNormIntoTiled off), for a before/after count. */
  "unfused-norm": { type: "boolean", default: false },
} });
const batches = values.batches!.split(",").map(Number);
const gpu = (await createBackend("webgpu")) as WebGpuBackend;
if (values["unfused-norm"]) gpu.fuseNormIntoTiled = false;
/** A small vocabulary: the LM head is one dispatch whatever its size, and SwiftShader is slow. */
const VOCAB = 512;
const STEPS = Number(values.steps);

async function build(name: string, layers: number): Promise<SequenceLM> {
  if (name === "h3") {
    const config = { ...h3ReleaseConfig("H3-125M"), nLayer: layers, attnLayerIdx: [1], vocabSize: VOCAB };
    return buildH3LM(config, new WeightLoader(memoryTensorSource(initH3Weights(config, 0)), gpu, "random"));
  }
  const reader = new ConfigReader({
    model_type: "hippo_hybrid", hidden_size: 768, vocab_size: VOCAB, tie_word_embeddings: true, pattern: (name === "mamba" ? "m" : "M").repeat(layers),
    mamba: { state_size: 16, conv_kernel: 4, expand: 2 },
    mamba2: { state_size: 128, head_dim: 64, n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: 256 },
  }, `${name} config`);
  return buildHybrid(reader, new WeightLoader(memoryTensorSource(initHybridWeights(parseHybridConfig(reader), 0)), gpu, "random"));
}

/**
 * Dispatches per token: whole runs of STEPS and 2·STEPS new tokens, after a warm-up run (one-time work);
 * their difference is STEPS steps exactly (prefill and the step decoding records ahead cancel).
 */
async function perToken(model: SequenceLM, batch: number): Promise<number> {
  const prompts = Array.from({ length: batch }, (_, i) => [1 + (i % 7), 2, 3]);
  const run = async (tokens: number) => {
    const d0 = gpu.rt.dispatchCount;
    for await (const _ of generate(model, prompts, { maxNewTokens: tokens, sampling: { temperature: 0 }, eosTokenId: null }));
    return gpu.rt.dispatchCount - d0;
  };
  await run(2);
  return ((await run(2 * STEPS)) - (await run(STEPS))) / STEPS;
}

const rows: { model: string; batch: number; perLayer: number; fullDepth: number; layers: number }[] = [];
const depths = { mamba: 24, mamba2: 24, h3: 12 } as const;
for (const name of values.models!.split(",") as (keyof typeof depths)[]) {
  const depth = depths[name];
  if (!depth) throw new Error(`--models: unknown model '${name}' (mamba, mamba2, h3)`);
  const models = [await build(name, 2), await build(name, 3)];
  for (const batch of batches) {
    const [two, three] = [await perToken(models[0], batch), await perToken(models[1], batch)];
    const perLayer = three - two;
    const fullDepth = two + (depth - 2) * perLayer;
    rows.push({ model: name, batch, perLayer, fullDepth, layers: depth });
    process.stdout.write(`${name.padEnd(7)} batch ${String(batch).padStart(2)}  ${perLayer.toFixed(2).padStart(6)} per layer  ${fullDepth.toFixed(0).padStart(4)} per step at ${depth} layers\n`);
  }
  for (const m of models) m.dispose();
}
await writeFileAtomic(values.out!, JSON.stringify({ bench: "webgpu-dispatches", adapter: gpu.description, steps: STEPS, fuse_norm_into_tiled: gpu.fuseNormIntoTiled, results: rows }, null, 1) + "\n");
process.stdout.write(`wrote ${values.out}\n`);
gpu.destroy();
