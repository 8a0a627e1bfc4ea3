// Training throughput: updates/s and tokens/s of the trainer (forward, backward, clip, AdamW) — by default
// for the H3 paper's 2-layer, width-64 synthetic models on associative recall (batch 32, seq 42) — on the
// reference autograd backend (plain TypeScript), the fast one (WebAssembly SIMD kernels) and the fast one
// with linear layers' backward products on WebGPU (`webgpu`). `--text FILE --seq-len n` trains on text
// instead (bytes), `--d-model`/`--layers` set the width and depth.
//
//   npx tsc -p tsconfig.json && node dist/bench/train-speed.js [--archs s4d,h3,attention,mamba,mamba2]
//       [--backends ref,fast,webgpu] [--threads 1] [--steps 10] [--warmup 2] [--batch-size 32]
//       [--d-model 64] [--layers 2] [--text data/kjv.txt.gz --seq-len 512] [--out <json>]
import os from "node:os";
import { performance } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { GradBackend } from "../src/autograd/grad-backend.js";
import { writeFileAtomic } from "../src/io/node-files.js";
import { createBackend } from "../src/backends/registry.js";
import type { WebGpuBackend } from "../src/backends/webgpu/index.js";
import { WebGpuBackwardKernels } from "../src/autograd/webgpu-kernels.js";
import { taskData, textData } from "../src/train/data.js";
import { Trainer, type TrainSettings } from "../src/train/trainer.js";
import { argHelpers } from "./common.js";

const USAGE = "usage: node dist/bench/train-speed.js [--archs a,b] [--backends ref,fast,webgpu] [--threads n] [--steps n] [--warmup n] " +
  "[--batch-size n] [--d-model n] [--layers n] [--text file --seq-len n] [--out file]";
const { fail, positiveInt } = argHelpers("train-speed", USAGE);
const { values } = parseArgs({ options: {
  archs: { type: "string", default: "s4d,h3,attention,mamba,mamba2" }, backends: { type: "string", default: "ref,fast" },
  threads: { type: "string", default: "1" }, steps: { type: "string", default: "10" }, warmup: { type: "string", default: "2" },
  "batch-size": { type: "string", default: "32" }, out: { type: "string", default: "bench/results/train-speed.json" },
  "d-model": { type: "string", default: "64" }, layers: { type: "string", default: "2" }, text: { type: "string" },
  "seq-len": { type: "string", default: "512" },
} });
const archs = values.archs.split(",");
const backends = values.backends.split(",");
for (const b of backends) if (!["ref", "fast", "webgpu"].includes(b)) fail(`--backends: unknown backend '${b}' (ref, fast, webgpu)`);
const threads = positiveInt("threads", values.threads);
const steps = positiveInt("steps", values.steps);
const warmup = Number(values.warmup);
const batchSize = positiveInt("batch-size", values["batch-size"]);
const dModel = positiveInt("d-model", values["d-model"]);
const nLayer = positiveInt("layers", values.layers);
const gpu = backends.includes("webgpu") ? (await createBackend("webgpu")) as WebGpuBackend : null;

interface Row {
  arch: string; backend: string; threads: number; parameters: number; updatesPerS: number; tokensPerS: number; msPerUpdate: number;
  gpuProductsPerUpdate?: number;
}

const seqLen = positiveInt("seq-len", values["seq-len"]);
const dataSpec = values.text ? { text: values.text, seqLen } : { task: "associative-recall", options: {} };
const data = values.text ? await textData(values.text, { seqLen }) : taskData("associative-recall", {});
const rows: Row[] = [];
for (const arch of archs) {
  for (const name of backends) {
    const settings: TrainSettings = {
      arch, size: { dModel, nLayer, vocabSize: data.vocabSize, dState: 16, heads: 4 },
      data: dataSpec, steps: steps + warmup, batchSize, accumulate: 1, lr: 1e-3, weightDecay: 0.1,
      warmupSteps: 0, minLrRatio: 0.1, clip: 1, betas: [0.9, 0.98], seed: 0, evalEvery: 1 << 30, checkpointEvery: 1 << 30, logEvery: 1,
    };
    const backend = name === "ref" ? new GradBackend() : name === "webgpu" ? GradBackend.withWebGpu(gpu!, threads) : GradBackend.fast(threads);
    const trainer = Trainer.create(settings, data, os.tmpdir(), { backend });
    for (let i = 0; i < warmup; i++) await trainer.trainStep();
    const t0 = performance.now();
    for (let i = 0; i < steps; i++) await trainer.trainStep();
    const seconds = (performance.now() - t0) / 1000;
    const kernels = backend.kernels;
    const row: Row = {
      arch, backend: name, threads: name === "ref" ? 1 : threads, parameters: trainer.parameterCount(),
      updatesPerS: steps / seconds, tokensPerS: (steps * batchSize * data.seqLen) / seconds, msPerUpdate: (1000 * seconds) / steps,
      ...(kernels instanceof WebGpuBackwardKernels ? { gpuProductsPerUpdate: kernels.gpuProducts / (steps + warmup) } : {}),
    };
    rows.push(row);
    process.stdout.write(`${arch.padEnd(10)} ${name.padEnd(6)} ${String(row.threads).padStart(2)} thr  ${row.parameters.toString().padStart(7)} params  ` +
      `${row.updatesPerS.toFixed(2).padStart(6)} updates/s  ${Math.round(row.tokensPerS).toString().padStart(6)} tokens/s  ${row.msPerUpdate.toFixed(0).padStart(5)} ms/update\n`);
    (backend.inner as { dispose?: () => void }).dispose?.();
  }
}
await writeFileAtomic(values.out, JSON.stringify({
  bench: "train-speed", data: dataSpec, seqLen: data.seqLen, batchSize, dModel, nLayer, steps, warmup, gpu: gpu?.description,
  cpu: os.cpus()[0]?.model, cores: os.availableParallelism(), node: process.version, date: new Date().toISOString(), results: rows,
}, null, 1) + "\n");
process.stdout.write(`wrote ${values.out}\n`);
gpu?.destroy();
