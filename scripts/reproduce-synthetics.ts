/**
 * Reproduces the H3 paper's synthetic results (Table 1: induction head and associative recall for S4D, H3
 * and attention; plus Mamba and Mamba-2) and the phonebook gap between a pure SSM and a hybrid with one
 * attention layer — 2-layer models of width 64 trained with Hippo on the CPU.
 *
 *   node dist/scripts/reproduce-synthetics.js [--steps 400] [--lr 1e-3] [--batch-size 32] [--targets all|answer]
 *       [--warmup N] [--eval-every N] [--min-lr-ratio 0.1] [--task-option k=v ...] [--minutes M] [--only task/arch,...] [--backend cpu|cpu-ref] [--out DIR]
 *       [--resume] [--checkpoint-every N] [--d-model 64] [--d-state 16] [--decay cosine|linear] [--embed-dropout 0] [--embed-init-std X]
 *       trains (skipping runs already saved); --minutes stops a run early (its record says how far it got);
 *       --resume continues runs whose record stops short of their steps from their checkpoint (bit-exact, so a
 *       schedule can be spread over several time-limited calls); --checkpoint-every bounds what a kill loses;
 *       --task-option applies to every run's task (e.g. numTrainExamples=0: a fresh example every time)
 *   node dist/scripts/reproduce-synthetics.js --report [--out DIR]                  table + SVG loss curves
 *
 * Each run's settings, log and final held-out exact match go to docs/synthetics/runs/<task>--<arch>.json.
 */
import { mkdir, readdir, readFile, stat } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import type { TopLevelSpec } from "vega-lite";
import { renderSvg } from "../src/bench/plots.js";
import { writeFileAtomic } from "../src/io/node-files.js";
import { taskData } from "../src/train/data.js";
import { GradBackend } from "../src/autograd/grad-backend.js";
import { Trainer, type TrainSettings } from "../src/train/trainer.js";
import { CHECKPOINT_FILE } from "../src/train/checkpoint.js";

let OUT = join(import.meta.dirname, "..", "..", "docs", "synthetics");

/** The paper's numbers (H3 paper Table 1, exact-match accuracy %). */
const PAPER: Record<string, Record<string, number>> = {
  "induction-head": { s4d: 35.6, h3: 100, attention: 100 },
  "associative-recall": { s4d: 86.0, h3: 99.8, attention: 100 },
};

interface RunSpec {
  task: string;
  arch: string;
  label: string;
  taskOptions?: Record<string, unknown>;
  layers?: number;
  /** Updates relative to --steps (longer sequences get fewer). */
  stepScale?: number;
}

const RUNS: RunSpec[] = [
  ...["induction-head", "associative-recall"].flatMap((task) => [
    { task, arch: "s4d", label: "S4D" }, { task, arch: "h3", label: "H3" }, { task, arch: "attention", label: "Attention" },
    { task, arch: "mamba", label: "Mamba" }, { task, arch: "mamba2", label: "Mamba-2" },
  ]),
  // Phonebook: a pure Mamba-2 model vs the same with its second mixer swapped for attention (NVIDIA's hybrid recipe, no RoPE).
  { task: "phonebook", arch: "M-M-", label: "Mamba-2 (M-M-)", taskOptions: { numEntries: 8 }, stepScale: 0.5 },
  { task: "phonebook", arch: "M-*-", label: "Hybrid (M-*-)", taskOptions: { numEntries: 8 }, stepScale: 0.5 },
];

const runFile = (r: RunSpec) => join(OUT, "runs", `${r.task}--${r.arch.replace(/\*/g, "A")}.json`);

interface TrainFlags {
  baseSteps: number; only: string[] | null; minutes: number; lr: number; batchSize: number; checkpoints: string;
  targets: string | undefined; warmup: number | undefined; taskOptions: Record<string, unknown>; reference: boolean;
  evalEvery: number | undefined; minLrRatio: number; resume: boolean; checkpointEvery: number | undefined;
  dModel: number; dState: number; decay: "cosine" | "linear"; embedDropout: number; embedInitStd: number | undefined;
}

async function train(f: TrainFlags): Promise<void> {
  const { baseSteps, only, minutes, lr, batchSize, checkpoints, targets } = f;
  await mkdir(join(OUT, "runs"), { recursive: true });
  for (const r of RUNS) {
    if (only && !only.includes(`${r.task}/${r.arch}`)) continue;
    const previous = await readFile(runFile(r), "utf8").then((t) => JSON.parse(t) as RunRecord, () => null);
    const unfinished = previous !== null && previous.updatesDone < previous.settings.steps;
    if (previous && !(f.resume && unfinished)) continue;
    const dir = join(checkpoints, `${r.task}--${r.arch.replace(/\*/g, "A")}`);
    const backend = f.reference ? new GradBackend() : GradBackend.fast();
    let trainer: Trainer;
    let settings: TrainSettings;
    if (f.resume && (await stat(join(dir, CHECKPOINT_FILE)).then(() => true, () => false))) {
      // The checkpoint carries the run's settings, parameters, optimizer moments and log: flags do not change them.
      trainer = await Trainer.resume(dir, async (s) => taskData(String(s.data.task ?? r.task), (s.data.options ?? {}) as Record<string, unknown>), undefined, { backend });
      settings = trainer.settings;
      process.stderr.write(`${r.task} / ${r.label}: resuming at update ${trainer.currentStep} of ${settings.steps}\n`);
    } else {
      if (unfinished) throw new Error(`${runFile(r)}: unfinished run but no checkpoint in ${dir}`);
      // --targets answer trains on the answer positions only (safari trains on every next token).
      const taskOptions = { ...(r.taskOptions ?? {}), ...f.taskOptions, ...(targets ? { trainTargets: targets } : {}) };
      const data = taskData(r.task, taskOptions);
      const steps = Math.round(baseSteps * (r.stepScale ?? 1));
      settings = {
        arch: r.arch, size: { dModel: f.dModel, nLayer: r.layers ?? 2, vocabSize: data.vocabSize, dState: f.dState, heads: 4 },
        data: { task: r.task, options: taskOptions }, steps, batchSize, accumulate: 1, lr, weightDecay: 0.1,
        warmupSteps: Math.min(steps, f.warmup ?? Math.floor(steps / 10)), minLrRatio: f.minLrRatio, clip: 1, betas: [0.9, 0.98], seed: 0,
        evalEvery: f.evalEvery ?? Math.max(1, Math.floor(steps / 10)), checkpointEvery: Math.min(steps, f.checkpointEvery ?? steps), logEvery: 5,
        ...(f.decay !== "cosine" ? { decay: f.decay } : {}), ...(f.embedDropout > 0 ? { embedDropout: f.embedDropout } : {}),
        ...(f.embedInitStd !== undefined ? { embedInitStd: f.embedInitStd } : {}),
      };
      trainer = Trainer.create(settings, data, dir, { backend });
      process.stderr.write(`${r.task} / ${r.label}: ${trainer.parameterCount()} parameters, ${settings.steps} updates\n`);
    }
    const steps = settings.steps;
    const started = Date.now();
    // A wall-clock budget (a run on a lent machine has a time limit): stop early, recording how far it got.
    const result = await trainer.run({
      shouldStop: () => Date.now() - started > minutes * 60_000,
      onEval: (e) => process.stderr.write(`  ${e.step}: loss ${e.loss.toFixed(3)}, exact match ${(100 * (e.exactMatch ?? 0)).toFixed(1)}%\n`),
    });
    // A run stopped by --minutes between evaluations gets one at the update it reached.
    if (result.lastEval?.step !== result.step) {
      result.lastEval = await trainer.evaluate();
      result.log.push({ type: "eval", ...result.lastEval });
      process.stderr.write(`  ${result.step} (stopped): loss ${result.lastEval.loss.toFixed(3)}, exact match ${(100 * (result.lastEval.exactMatch ?? 0)).toFixed(1)}%\n`);
    }
    // safari keeps the checkpoint with the best held-out accuracy (train.monitor, mode max): record the best evaluation too.
    const evals = result.log.filter((e) => e.type === "eval") as { exactMatch?: number }[];
    const best = evals.reduce<number | null>((m, e) => (e.exactMatch === undefined ? m : Math.max(m ?? 0, e.exactMatch)), null);
    const record = {
      // seconds: wall time of every segment of the run (a resumed run adds to its earlier record's).
      ...r, parameters: trainer.parameterCount(), settings, seconds: (previous?.seconds ?? 0) + (Date.now() - started) / 1000, updatesDone: result.step,
      exactMatch: result.lastEval?.exactMatch ?? null, bestExactMatch: best, tokenAccuracy: result.lastEval?.tokenAccuracy ?? null,
      backend: trainer.backend.kernels.name, log: result.log,
    };
    await writeFileAtomic(runFile(r), JSON.stringify(record, null, 1) + "\n");
  }
}

interface RunRecord extends RunSpec {
  parameters: number;
  seconds: number;
  updatesDone: number;
  exactMatch: number | null;
  bestExactMatch?: number | null;
  tokenAccuracy?: number | null;
  settings: TrainSettings;
  log: { type: string; step: number; loss: number; exactMatch?: number }[];
}

async function report(): Promise<void> {
  const files = (await readdir(join(OUT, "runs"))).filter((f) => f.endsWith(".json"));
  const runs: RunRecord[] = [];
  for (const f of files) runs.push(JSON.parse(await readFile(join(OUT, "runs", f), "utf8")));
  const order = (r: RunSpec) => RUNS.findIndex((x) => x.task === r.task && x.arch === r.arch);
  runs.sort((a, b) => order(a) - order(b));
  const pct = (x: number | null | undefined) => (x === null || x === undefined ? "—" : `${(100 * x).toFixed(1)}`);
  const lines = [
    "| task | model | parameters | updates | Hippo exact match (%), last eval | best eval | answer-token accuracy (%) | H3 paper (%) | CPU time |",
    "|---|---|---|---|---|---|---|---|---|",
    ...runs.map((r) => `| ${r.task} | ${r.label} | ${r.parameters.toLocaleString("en-US")} | ${r.updatesDone}${r.updatesDone < r.settings.steps ? ` of ${r.settings.steps}` : ""} | ${pct(r.exactMatch)} | ${pct(r.bestExactMatch)} | ${pct(r.tokenAccuracy)} | ${PAPER[r.task]?.[r.arch] ?? "—"} | ${Math.round(r.seconds)} s |`),
  ];
  await writeFileAtomic(join(OUT, "results.md"), lines.join("\n") + "\n");
  process.stdout.write(lines.join("\n") + "\n");
  for (const task of [...new Set(runs.map((r) => r.task))]) {
    const values = runs.filter((r) => r.task === task).flatMap((r) =>
      r.log.filter((e) => e.type === "train").map((e) => ({ model: r.label, update: e.step, loss: e.loss })));
    const spec: TopLevelSpec = {
      $schema: "https://vega.github.io/schema/vega-lite/v5.json",
      title: `${task}: training loss (2 layers, d_model 64)`,
      width: 480, height: 260, background: "white",
      data: { values },
      mark: { type: "line" },
      encoding: {
        x: { field: "update", type: "quantitative", title: "update" },
        y: { field: "loss", type: "quantitative", title: "cross-entropy (nats)", scale: { type: "log" } },
        color: { field: "model", type: "nominal" },
      },
    };
    await writeFileAtomic(join(OUT, `${task}-loss.svg`), await renderSvg(spec));
  }
}

const { values } = parseArgs({ options: {
  steps: { type: "string" }, only: { type: "string" }, report: { type: "boolean" }, out: { type: "string" }, minutes: { type: "string" }, list: { type: "boolean" },
  lr: { type: "string" }, checkpoints: { type: "string" }, "batch-size": { type: "string" }, targets: { type: "string" },
  warmup: { type: "string" }, "eval-every": { type: "string" }, "min-lr-ratio": { type: "string" }, "task-option": { type: "string", multiple: true }, backend: { type: "string" },
  resume: { type: "boolean" }, "checkpoint-every": { type: "string" },
  "d-model": { type: "string" }, "d-state": { type: "string" }, decay: { type: "string" }, "embed-dropout": { type: "string" }, "embed-init-std": { type: "string" },
} });
if (values.out) OUT = values.out;
if (values.list) process.stdout.write(RUNS.map((r) => `${r.task}/${r.arch}`).join("\n") + "\n");
else if (values.report) await report();
else {
  const taskOptions: Record<string, unknown> = {};
  for (const kv of values["task-option"] ?? []) {
    const eq = kv.indexOf("=");
    if (eq <= 0) throw new Error(`--task-option expects key=value, got '${kv}'`);
    const v = kv.slice(eq + 1);
    taskOptions[kv.slice(0, eq)] = /^-?\d+(\.\d+)?$/.test(v) ? Number(v) : v === "true" ? true : v === "false" ? false : v;
  }
  if (values.backend !== undefined && values.backend !== "cpu" && values.backend !== "cpu-ref") throw new Error(`--backend: cpu or cpu-ref, got '${values.backend}'`);
  await train({
    baseSteps: Number(values.steps ?? 400), only: values.only ? values.only.split(",") : null, minutes: Number(values.minutes ?? Infinity),
    lr: Number(values.lr ?? 1e-3), batchSize: Number(values["batch-size"] ?? 32), checkpoints: values.checkpoints ?? join(OUT, "checkpoints"),
    targets: values.targets, warmup: values.warmup !== undefined ? Number(values.warmup) : undefined, taskOptions,
    reference: values.backend === "cpu-ref", evalEvery: values["eval-every"] !== undefined ? Number(values["eval-every"]) : undefined,
    minLrRatio: Number(values["min-lr-ratio"] ?? 0.1), resume: values.resume ?? false,
    checkpointEvery: values["checkpoint-every"] !== undefined ? Number(values["checkpoint-every"]) : undefined,
    dModel: Number(values["d-model"] ?? 64), dState: Number(values["d-state"] ?? 16),
    decay: (values.decay ?? "cosine") as "cosine" | "linear", embedDropout: Number(values["embed-dropout"] ?? 0),
    embedInitStd: values["embed-init-std"] !== undefined ? Number(values["embed-init-std"]) : undefined,
  });
}
