import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadModel } from "../../src/models/load.js";
import { taskData, textData } from "../../src/train/data.js";
import { CHECKPOINT_FILE, loadCheckpoint } from "../../src/train/checkpoint.js";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import { Trainer, type TrainSettings } from "../../src/train/trainer.js";
import { relativeL2 } from "../fixtures.js";

const TASK = { task: "associative-recall", options: { vocabSize: 10, inputSeqLen: 8, numTrainExamples: 0, numTestExamples: 16 } };
const data = () => taskData(TASK.task, TASK.options);

function settings(arch: string, over: Partial<TrainSettings> = {}): TrainSettings {
  return {
    arch, size: { dModel: 16, nLayer: 1, vocabSize: 10, dState: 4, heads: 2 }, data: TASK,
    steps: 6, batchSize: 4, accumulate: 2, lr: 3e-3, weightDecay: 0.1, warmupSteps: 2, minLrRatio: 0.1, clip: 1,
    betas: [0.9, 0.98], seed: 3, evalEvery: 3, checkpointEvery: 3, logEvery: 1, ...over,
  };
}

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), "hippo-train-"));
}

const losses = (log: Record<string, unknown>[]) => log.filter((e) => e.type === "train").map((e) => e.loss as number);

test("training lowers the loss, and a resumed run reproduces an uninterrupted one exactly", async () => {
  const a = await tempDir(), b = await tempDir();
  try {
    const straight = await Trainer.create(settings("mamba"), data(), a).run();
    assert.equal(straight.step, 6);
    const first = losses(straight.log);
    assert.ok(first[5] < first[0], `loss fell: ${first.join(", ")}`);

    let calls = 0;
    const part = await Trainer.create(settings("mamba"), data(), b).run({ shouldStop: () => ++calls === 3 });
    assert.equal(part.stopped, "interrupted");
    assert.equal((await loadCheckpoint(b)).step, 3, "a stop request checkpoints at once");
    const resumed = await (await Trainer.resume(b, async () => data())).run();
    assert.deepEqual(losses(resumed.log), first, "same losses, bit for bit");
    const pa = await readFile(join(a, "model.safetensors")), pb = await readFile(join(b, "model.safetensors"));
    assert.ok(pa.equals(pb), "same final weights");
  } finally {
    await rm(a, { recursive: true, force: true });
    await rm(b, { recursive: true, force: true });
  }
});

test("embedding dropout (safari's synthetics): applied while training only, drawn per update, resumed exactly", async () => {
  const dirs = [await tempDir(), await tempDir(), await tempDir()];
  try {
    const plain = settings("mamba2", { steps: 4, evalEvery: 100, checkpointEvery: 100, decay: "linear", minLrRatio: 0 });
    const dropped = { ...plain, embedDropout: 0.3 };
    const a = Trainer.create(plain, data(), dirs[0]), b = Trainer.create(dropped, data(), dirs[1]);
    assert.deepEqual(await a.evaluate(), await b.evaluate(), "evaluation sees no dropout");
    const la = losses((await a.run()).log), lb = losses((await b.run()).log);
    assert.ok(la.every((x, i) => x !== lb[i]), `dropout changes every update's loss: ${la} vs ${lb}`);
    let calls = 0;
    const part = Trainer.create(dropped, data(), dirs[2]);
    await part.run({ shouldStop: () => ++calls === 2 });
    const resumed = await (await Trainer.resume(dirs[2], async () => data())).run();
    assert.deepEqual(losses(resumed.log), lb, "the same masks after --resume");
    assert.throws(() => Trainer.create({ ...plain, embedDropout: 1 }, data(), "unused"), /--embed-dropout must be in \[0, 1\), got 1/);
    assert.throws(() => Trainer.create({ ...plain, decay: "step" as "linear" }, data(), "unused"), /--decay must be cosine or linear, got 'step'/);
    const model = await a.model();
    const ids = a.backend.upload(Int32Array.of(1, 2, 3), [1, 3], "i32");
    assert.throws(() => model.forward(ids, null, { embeddingMask: a.backend.upload(new Float32Array(3), [1, 3, 1], "f32") }),
      /embeddingMask must be \[1, 3, 16\], got \[1, 3, 1\]/);
  } finally {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

test("--embed-init-std re-initialises the embedding table only (Hugging Face Mamba's 0.1 vs mamba_ssm's 0.02)", () => {
  for (const arch of ["mamba", "mamba2", "h3", "attention"]) {
    const size = { dModel: 32, nLayer: 1, vocabSize: 50, dState: 4, heads: 2 };
    const base = Trainer.create(settings(arch, { size }), data(), "unused");
    const wide = Trainer.create(settings(arch, { size, embedInitStd: 0.1 }), data(), "unused");
    let changed = 0;
    for (const [name, t] of base.params) {
      const a = t.storage as Float32Array, b = wide.params.get(name)!.storage as Float32Array;
      if (a.every((x, i) => x === b[i])) continue;
      changed++;
      assert.match(name, /embed/, `${arch}: only the embedding table changes (${name} did)`);
      const std = Math.sqrt(b.reduce((m, x) => m + x * x, 0) / b.length);
      assert.ok(Math.abs(std - 0.1) < 0.01, `${arch}: ${name} std ${std}`);
    }
    assert.equal(changed, 1, arch);
  }
  assert.throws(() => Trainer.create(settings("mamba", { embedInitStd: -1 }), data(), "unused"), /--embed-init-std must be a positive number, got -1/);
});

for (const arch of ["mamba2", "h3", "s4d", "attention", "m*-"]) {
  test(`${arch}: a trained run directory loads with loadModel and gives the trainer's logits`, async () => {
    const dir = await tempDir();
    try {
      const trainer = Trainer.create(settings(arch, { steps: 2, evalEvery: 2, checkpointEvery: 2 }), data(), dir);
      await trainer.run();
      const ids = Int32Array.of(1, 2, 3, 4, 5, 6);
      const ours = (await trainer.model()).forward(trainer.backend.upload(ids, [1, 6], "i32")).logits!;
      const { model } = await loadModel(dir);
      const loaded = model.forward(model.backend.upload(ids, [1, 6], "i32")).logits!;
      assert.ok(relativeL2(await loaded.readFloat32(), await ours.readFloat32()) < 1e-6);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
}

test("a diverging run stops with a clear error and keeps the last good checkpoint", async () => {
  const dir = await tempDir();
  try {
    const trainer = Trainer.create(settings("mamba", { lr: 1e30, warmupSteps: 0, clip: 0, checkpointEvery: 1, evalEvery: 100, steps: 20 }), data(), dir);
    await assert.rejects(trainer.run(), /training diverged at update \d+: the (loss is (NaN|Infinity)|gradient of '[^']+' holds)/);
    const ckpt = await loadCheckpoint(dir);
    assert.ok(ckpt.step >= 1 && ckpt.step < 20, `checkpoint at ${ckpt.step}`);
    for (const [name, v] of ckpt.params) assert.ok(v.every(Number.isFinite), `${name} finite in the kept checkpoint`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("--resume refuses corrupt and mismatched checkpoints with messages naming the problem", async () => {
  const dir = await tempDir();
  try {
    await Trainer.create(settings("mamba", { steps: 1, warmupSteps: 0, checkpointEvery: 1, evalEvery: 1 }), data(), dir).run();
    const path = join(dir, CHECKPOINT_FILE);
    const good = await readFile(path);
    await writeFile(path, good.subarray(0, good.length - 100));
    await assert.rejects(Trainer.resume(dir, async () => data()), /checkpoint\.safetensors: not a readable checkpoint/);
    // Settings saying another width: every parameter mismatches.
    const text = good.toString("latin1").replace('\\"dModel\\":16', '\\"dModel\\":24');
    await writeFile(path, Buffer.from(text, "latin1"));
    await assert.rejects(Trainer.resume(dir, async () => data()), /parameter '[^']+' has \d+ values, the model needs/);
    await rm(path);
    await assert.rejects(Trainer.resume(dir, async () => data()), /no checkpoint\.safetensors to resume from/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("impossible architectures are refused before training", () => {
  assert.throws(() => Trainer.create(settings("M*Q"), data(), "unused"), /unknown letter 'Q'/);
  assert.throws(() => Trainer.create(settings("transformer"), data(), "unused"), /neither an architecture .* nor a layer pattern/);
  assert.throws(() => Trainer.create(settings("attention", { size: { dModel: 16, nLayer: 1, vocabSize: 10, dState: 4, heads: 3 } }), data(), "unused"), /3 heads do not divide d_model 16/);
  assert.throws(() => Trainer.create(settings("mamba", { warmupSteps: 9 }), data(), "unused"), /--warmup must be an integer in \[0, steps=6\]/);
});

test("text data: byte windows, held-out tail, .gz corpora", async () => {
  const dir = await tempDir();
  try {
    const text = "the quick brown fox jumps over the lazy dog. ".repeat(40);
    await writeFile(join(dir, "t.txt"), text);
    const d = await textData(join(dir, "t.txt"), { seqLen: 16 });
    assert.equal(d.vocabSize, 257);
    const b = d.batch(1, 0, 0, 3);
    for (let r = 0; r < 3; r++) {
      for (let i = 0; i < 15; i++) assert.equal(b.targets[r * 16 + i], b.inputs[r * 16 + i + 1], "targets are the next bytes");
    }
    assert.deepEqual(d.batch(1, 0, 0, 3).inputs, b.inputs, "a batch is a function of (seed, step, micro)");
    assert.ok(d.evalBatches(8).length > 0);
    await writeFile(join(dir, "short.txt"), "tiny");
    await assert.rejects(textData(join(dir, "short.txt"), { seqLen: 16 }), /too short for windows of 16 tokens/);
    await assert.rejects(textData(join(dir, "missing.txt"), { seqLen: 16 }), /cannot read the training text \(ENOENT\)/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

// At this size activations live in wasm memory (≥ 16,384 floats) and each layer runs in its own tidy: an
// inner tensor disposed by a scope once gave its block back while the tape still read it (wrong losses).
for (const arch of ["mamba2", "h3"]) {
  test(`${arch}: the fast path matches the reference with activations resident in wasm memory`, async () => {
    const dirs = [await tempDir(), await tempDir()];
    try {
      const task = { task: "associative-recall", options: {} };
      const s = settings(arch, { steps: 2, batchSize: 32, accumulate: 1, evalEvery: 100, checkpointEvery: 100, data: task, size: { dModel: 16, nLayer: 2, vocabSize: 20, dState: 8, heads: 2 } });
      const ref = Trainer.create(s, taskData(task.task, task.options), dirs[0], { backend: new GradBackend() });
      const fast = Trainer.create(s, taskData(task.task, task.options), dirs[1], { backend: GradBackend.fast() });
      const a = await ref.run(), b = await fast.run();
      const la = losses(a.log), lb = losses(b.log);
      assert.equal(la.length, 2);
      for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) < 1e-5 * la[i], `update ${i + 1}: loss ${lb[i]} vs reference ${la[i]}`);
      for (const [name, t] of ref.params) {
        const err = relativeL2(fast.params.get(name)!.storage as Float32Array, t.storage as Float32Array);
        assert.ok(err < 1e-4, `${name}: relative L2 ${err.toExponential(2)}`);
      }
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  });
}

test("a training step gives its activations' wasm memory back (it does not wait for the garbage collector)", async () => {
  const dir = await tempDir();
  try {
    const task = { task: "associative-recall", options: {} };
    const s = settings("mamba2", { steps: 4, batchSize: 32, accumulate: 1, data: task, size: { dModel: 32, nLayer: 2, vocabSize: 20, dState: 8, heads: 2 } });
    const trainer = Trainer.create(s, taskData(task.task, task.options), dir, { backend: GradBackend.fast() });
    const inner = trainer.backend.inner as unknown as { wasmBytes?: number };
    assert.ok(inner.wasmBytes !== undefined, "the fast path runs on the wasm backend");
    const before = inner.wasmBytes!;
    await trainer.trainStep();
    const after1 = inner.wasmBytes!;
    await trainer.trainStep();
    await trainer.evaluate();
    await trainer.trainStep();
    assert.equal(inner.wasmBytes, after1, "steps after the first reuse the same wasm memory");
    assert.ok(after1 - before < 8 << 20, `one step keeps ${(after1 - before) >> 20} MiB of wasm memory`);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

for (const arch of ["mamba", "mamba2", "h3", "s4d", "attention", "M*-"]) {
  test(`${arch}: the fast training path (wasm kernels) follows the reference path's losses and parameters`, async () => {
    const dirs = [await tempDir(), await tempDir()];
    try {
      const s = settings(arch, { steps: 4, evalEvery: 100, checkpointEvery: 100, size: { dModel: 16, nLayer: 1, vocabSize: 10, dState: 8, heads: 2 } });
      const ref = Trainer.create(s, data(), dirs[0], { backend: new GradBackend() });
      const fast = Trainer.create(s, data(), dirs[1], { backend: GradBackend.fast() });
      assert.notEqual(fast.backend.kernels.name, ref.backend.kernels.name, "the two paths differ");
      const a = await ref.run(), b = await fast.run();
      const la = losses(a.log), lb = losses(b.log);
      for (let i = 0; i < la.length; i++) assert.ok(Math.abs(la[i] - lb[i]) < 1e-4 * la[i], `update ${i + 1}: loss ${lb[i]} vs reference ${la[i]}`);
      for (const [name, t] of ref.params) {
        const err = relativeL2(fast.params.get(name)!.storage as Float32Array, t.storage as Float32Array);
        assert.ok(err < 1e-4, `${name}: relative L2 ${err.toExponential(2)} after ${s.steps} updates`);
      }
    } finally {
      for (const d of dirs) await rm(d, { recursive: true, force: true });
    }
  });
}
