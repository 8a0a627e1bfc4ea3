// Training with WebGPU: a linear layer's backward products on the GPU against the TypeScript reference
// rule, and whole training runs (`GradBackend.withWebGpu`, `hippo train --backend webgpu`) against the
// CPU path's losses and parameters.
import assert from "node:assert/strict";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { GradBackend } from "../../../src/autograd/grad-backend.js";
import { referenceKernels } from "../../../src/autograd/kernels.js";
import { WebGpuBackwardKernels } from "../../../src/autograd/webgpu-kernels.js";
import { taskData } from "../../../src/train/data.js";
import { Trainer, type TrainSettings } from "../../../src/train/trainer.js";
import { randomValues } from "../../autograd/gradcheck.js";
import { hippo } from "../../cli/run-cli.js";
import { relativeL2 } from "../../fixtures.js";
import { gpu, skip } from "./setup.js";

function close(name: string, got: Float32Array | null, want: Float32Array | null, tol = 1e-5): void {
  assert.equal(got === null, want === null, `${name}: present in one result only`);
  if (!got || !want) return;
  assert.equal(got.length, want.length, `${name}: length`);
  const err = relativeL2(got, want);
  assert.ok(err < tol, `${name}: relative L2 error ${err.toExponential(2)} (tolerance ${tol})`);
}

test("WebGPU linearBackward matches the reference rule (∂x, ∂w, ∂b), shapes across and inside tiles", { skip }, async () => {
  const kernels = new WebGpuBackwardKernels(gpu!, referenceKernels, 0);
  const shapes = [[1, 1, 1], [5, 3, 7], [37, 19, 13], [65, 130, 3], [130, 17, 67], [200, 64, 96]];
  for (const [M, K, N] of shapes) {
    const x = randomValues(M * K, M + K), w = randomValues(N * K, N), g = randomValues(M * N, 7 * M + N);
    for (const want of [{ x: true, w: true, b: true }, { x: false, w: true, b: false }, { x: true, w: false, b: true }]) {
      const before = kernels.gpuProducts;
      const a = await kernels.linearBackward(x, w, M, K, N, g, want), b = await referenceKernels.linearBackward(x, w, M, K, N, g, want);
      assert.equal(kernels.gpuProducts - before, Number(want.x) + Number(want.w), "both products ran on the GPU");
      close(`gx ${M}x${K}x${N}`, a.gx, b.gx);
      close(`gw ${M}x${K}x${N}`, a.gw, b.gw);
      close(`gb ${M}x${K}x${N}`, a.gb, b.gb);
    }
  }
  // Below the size threshold the CPU kernels answer.
  const small = new WebGpuBackwardKernels(gpu!, referenceKernels);
  await small.linearBackward(new Float32Array(6), new Float32Array(6), 2, 3, 2, new Float32Array(4), { x: true, w: true, b: false });
  assert.equal(small.gpuProducts, 0);
});

const TASK = { task: "associative-recall", options: { vocabSize: 10, inputSeqLen: 8, numTrainExamples: 0, numTestExamples: 16 } };

function settings(arch: string): TrainSettings {
  return {
    arch, size: { dModel: 32, nLayer: 1, vocabSize: 10, dState: 8, heads: 2 }, data: TASK,
    steps: 3, batchSize: 64, accumulate: 1, lr: 3e-3, weightDecay: 0.1, warmupSteps: 1, minLrRatio: 0.1, clip: 1,
    betas: [0.9, 0.98], seed: 5, evalEvery: 100, checkpointEvery: 100, logEvery: 1,
  };
}

const losses = (log: Record<string, unknown>[]) => log.filter((e) => e.type === "train").map((e) => e.loss as number);

// At this size activations live in the wasm backend's shared memory, which Dawn will not upload from directly.
for (const arch of ["mamba", "M*-"]) {
  test(`${arch}: training with linear backward on WebGPU follows the CPU path's losses and parameters`, { skip }, async () => {
    const dirs = [await mkdtemp(join(tmpdir(), "hippo-gpu-train-")), await mkdtemp(join(tmpdir(), "hippo-gpu-train-"))];
    try {
      const s = settings(arch);
      const cpuRun = Trainer.create(s, taskData(TASK.task, TASK.options), dirs[0], { backend: new GradBackend() });
      const gpuBackend = GradBackend.withWebGpu(gpu!, 1, 0);
      const gpuRun = Trainer.create(s, taskData(TASK.task, TASK.options), dirs[1], { backend: gpuBackend });
      const a = await cpuRun.run(), b = await gpuRun.run();
      const kernels = gpuBackend.kernels as WebGpuBackwardKernels;
      assert.ok(kernels.gpuProducts >= s.steps * 2, `linear products ran on the GPU (${kernels.gpuProducts})`);
      const la = losses(a.log), lb = losses(b.log);
      assert.equal(lb.length, s.steps);
      for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) < 1e-4 * la[i], `update ${i + 1}: loss ${lb[i]} vs CPU ${la[i]}`);
      for (const [name, t] of cpuRun.params) {
        const err = relativeL2(gpuRun.params.get(name)!.storage as Float32Array, t.storage as Float32Array);
        assert.ok(err < 1e-4, `${name}: relative L2 ${err.toExponential(2)} after ${s.steps} updates`);
      }
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  });
}

test("hippo train --backend webgpu trains and reports its GPU products", { skip }, async () => {
  const dir = await mkdtemp(join(tmpdir(), "hippo-gpu-train-cli-"));
  try {
    const out = join(dir, "run");
    const r = hippo("train", "--task", "associative-recall", "--task-option", "vocabSize=10", "--task-option", "inputSeqLen=8",
      "--d-model", "64", "--layers", "1", "--batch-size", "64", "--steps", "2", "--warmup", "1", "--eval-every", "2", "--backend", "webgpu", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.step, 2);
    assert.ok(summary.gpuLinearProducts > 0, `GPU products: ${r.stdout}`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
