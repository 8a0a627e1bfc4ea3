import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadCheckpoint } from "../../src/train/checkpoint.js";
import { hippo } from "./run-cli.js";

const SMALL = ["--task", "associative-recall", "--task-option", "vocabSize=10", "--task-option", "inputSeqLen=8",
  "--task-option", "numTestExamples=16", "--d-model", "16", "--layers", "1", "--d-state", "4", "--batch-size", "4"];

test("hippo train writes a model directory hippo generate loads; --resume continues; an existing run is not overwritten", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hippo-cli-train-"));
  try {
    const out = join(dir, "run");
    const r = hippo("train", ...SMALL, "--steps", "3", "--warmup", "1", "--eval-every", "3", "--decay", "linear", "--embed-dropout", "0.1", "--embed-init-std", "0.1", "--out", out);
    assert.equal(r.code, 0, r.stderr);
    const saved = (await loadCheckpoint(out)).settings;
    assert.equal(saved.decay, "linear");
    assert.equal(saved.embedDropout, 0.1);
    assert.equal(saved.embedInitStd, 0.1);
    const summary = JSON.parse(r.stdout);
    assert.equal(summary.step, 3);
    assert.ok(summary.eval.exactMatch >= 0 && summary.eval.exactMatch <= 1);
    assert.match(r.stderr, /training mamba \([\d,]+ parameters\) on associative-recall/);
    const g = hippo("generate", "--model", out, "--prompt-ids", "1,2,3", "--max-new-tokens", "3", "--temperature", "0");
    assert.equal(g.code, 0, g.stderr);
    const again = hippo("train", ...SMALL, "--steps", "3", "--out", out);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /already holds a training run; pass --resume/);
    const more = hippo("train", "--out", out, "--resume", "--steps", "5");
    assert.equal(more.code, 0, more.stderr);
    assert.equal(JSON.parse(more.stdout).step, 5);
    const mixed = hippo("train", "--out", out, "--resume", "--arch", "h3");
    assert.match(mixed.stderr, /--resume takes the run's settings from .*; drop --arch/);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});

test("hippo train: bad input is one clear line", () => {
  const cases: [string[], RegExp][] = [
    [["--task", "recall", "--out", "x"], /unknown task 'recall'; valid tasks: associative-recall/],
    [["--task", "associative-recall", "--task-option", "vocab=3", "--out", "x"], /unknown option 'vocab'/],
    [["--task", "associative-recall", "--arch", "M?", "--out", "x"], /unknown letter '\?'/],
    [["--task", "associative-recall", "--text", "a.txt", "--out", "x"], /exactly one of --task <name> or --text <file>/],
    [["--task", "associative-recall"], /--out is required/],
    [["--task", "associative-recall", "--embed-dropout", "1.5", "--out", "x"], /--embed-dropout must be in \[0, 1\), got 1.5/],
    [["--task", "associative-recall", "--decay", "step", "--out", "x"], /--decay must be cosine or linear, got 'step'/],
    [["--task", "associative-recall", "--backend", "tpu", "--out", "x"], /unknown --backend .tpu. \(choose cpu, cpu-ref or webgpu\)/],
  ];
  for (const [args, pattern] of cases) {
    const r = hippo("train", ...args);
    assert.equal(r.code, 1, args.join(" "));
    assert.match(r.stderr, pattern);
    assert.equal(r.stderr.trim().split("\n").length, 1, `one line: ${r.stderr}`);
  }
});

test("Ctrl-C saves a checkpoint, exits 130, and --resume picks up from it", async () => {
  const dir = await mkdtemp(join(tmpdir(), "hippo-cli-sigint-"));
  try {
    const out = join(dir, "run");
    const child = spawn(process.execPath, [resolve("bin/hippo.js"), "train", ...SMALL, "--steps", "100000", "--warmup", "1", "--log-every", "1",
      "--eval-every", "100000", "--checkpoint-every", "100000", "--out", out], { stdio: ["ignore", "pipe", "pipe"] });
    let stderr = "";
    const code = await new Promise<number | null>((done) => {
      child.stderr.on("data", (chunk: Buffer) => {
        stderr += chunk.toString();
        if (/ 3\/100000 /.test(stderr) && !child.killed) child.kill("SIGINT");
      });
      child.on("close", (c) => done(c));
    });
    assert.equal(code, 130, stderr);
    assert.match(stderr, /interrupted: saving a checkpoint/);
    const ckpt = await loadCheckpoint(out);
    assert.ok(ckpt.step >= 3 && ckpt.step < 100000);
    const r = hippo("train", "--out", out, "--resume", "--steps", String(ckpt.step + 1));
    assert.equal(r.code, 0, r.stderr);
    assert.equal(JSON.parse(r.stdout).step, ckpt.step + 1);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
