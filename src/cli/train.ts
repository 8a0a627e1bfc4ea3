import { stat } from "node:fs/promises";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { GradBackend } from "../autograd/grad-backend.js";
import { WebGpuBackwardKernels } from "../autograd/webgpu-kernels.js";
import { createBackend } from "../backends/registry.js";
import type { WebGpuBackend } from "../backends/webgpu/index.js";
import { HippoError } from "../errors.js";
import { NAMED_ARCHITECTURES } from "../train/architectures.js";
import { CHECKPOINT_FILE } from "../train/checkpoint.js";
import { taskData, textData, type TrainData } from "../train/data.js";
import { TASK_NAMES } from "../train/tasks/registry.js";
import { Trainer, type EvalReport, type StepReport, type TrainSettings } from "../train/trainer.js";
import { HELP_FLAG, intFlag, numberFlag, parseFlags, requireString } from "./args.js";
import { formatProgress } from "./train-progress.js";

export const TRAIN_HELP = `hippo train (--task <name> | --text <file>) --out <dir> [options]
hippo train --out <dir> --resume [--steps <n>]

Trains a model on the CPU (autograd over the same layers inference uses) and writes a model directory
that 'hippo generate' and 'hippo forward' load (Mamba and Mamba-2 in the Hugging Face layouts).

data
  --task <name>             synthetic task: ${TASK_NAMES.join(", ")}
  --task-option <k=v>       a task setting, repeatable (e.g. --task-option vocabSize=10); defaults are the papers'
  --text <file>             next-token prediction on a text file (its last 5% held out)
  --tokenizer <path>        tokenizer.json for --text (default: bytes, vocabulary 257)
  --seq-len <n>             window length for --text (default 128)
model
  --arch <a>                ${NAMED_ARCHITECTURES.join(", ")}, or a layer pattern such as "M*M-"
                            (M Mamba-2, m Mamba, H H3, S S4D, * attention, - MLP) (default mamba)
  --d-model <n>             width (default 64)
  --layers <n>              blocks; h3, s4d and attention blocks are mixer + MLP (default 2)
  --d-state <n>             SSM state size (default 16)
  --heads <n>               attention heads (default 4)
optimisation
  --steps <n>               updates (default 2000)
  --batch-size <n>          sequences per micro-batch (default 32)
  --accumulate <n>          micro-batches per update (default 1)
  --lr <x>                  peak learning rate (default 1e-3)
  --ssm-lr <x>              learning rate of Mamba's A_log, D, dt (default --lr)
  --kernel-lr <x>           learning rate of H3/S4D kernel parameters (default min(--lr, 1e-3))
  --weight-decay <x>        AdamW weight decay of matrices (default 0.1; none on norms, biases, SSM parameters)
  --warmup <n>              linear warmup updates (default 10% of --steps, at most 200)
  --min-lr-ratio <x>        floor of the decay as a fraction of --lr (default 0.1)
  --decay cosine|linear     shape of the decay after warmup (default cosine; safari's synthetics: linear, floor 0)
  --embed-dropout <p>       dropout on the token embeddings while training (default 0; safari's synthetics: 0.1)
  --embed-init-std <x>      std of the embedding table's normal init (default the family's: 0.02; HF Mamba: 0.1)
  --clip <x>                clip the global gradient norm, 0 = off (default 1)
  --seed <n>                initialisation and data order (default 0)
run
  --out <dir>               run directory: model files + ${CHECKPOINT_FILE} (required)
  --resume                  continue the run in --out exactly where it stopped
  --eval-every <n>          held-out evaluation every n updates (default 100)
  --checkpoint-every <n>    atomic checkpoint every n updates, and on Ctrl-C (default 100)
  --log-every <n>           log record / non-TTY progress line every n updates (default 10)
  --backend <name>          cpu (default: WebAssembly SIMD kernels), cpu-ref (the plain TypeScript reference) or
                            webgpu (as cpu, with the backward products of linear layers on the GPU; forwards and
                            every other backward rule stay on the CPU)`;

const OPTIONS = {
  task: { type: "string" }, "task-option": { type: "string", multiple: true }, text: { type: "string" },
  tokenizer: { type: "string" }, "seq-len": { type: "string" },
  arch: { type: "string" }, "d-model": { type: "string" }, layers: { type: "string" }, "d-state": { type: "string" }, heads: { type: "string" },
  steps: { type: "string" }, "batch-size": { type: "string" }, accumulate: { type: "string" }, lr: { type: "string" },
  "ssm-lr": { type: "string" }, "kernel-lr": { type: "string" }, "weight-decay": { type: "string" }, warmup: { type: "string" },
  "min-lr-ratio": { type: "string" }, decay: { type: "string" }, "embed-dropout": { type: "string" }, "embed-init-std": { type: "string" }, clip: { type: "string" }, seed: { type: "string" },
  out: { type: "string" }, resume: { type: "boolean" }, "eval-every": { type: "string" }, "checkpoint-every": { type: "string" },
  "log-every": { type: "string" }, backend: { type: "string" },
} as const;

/** The data a run's settings name (also how --resume rebuilds it). */
export async function dataFor(settings: Pick<TrainSettings, "data">): Promise<TrainData> {
  const d = settings.data;
  if (typeof d.task === "string") return taskData(d.task, (d.options ?? {}) as Record<string, unknown>);
  if (typeof d.text === "string") {
    return textData(d.text, { seqLen: Number(d.seqLen), tokenizer: typeof d.tokenizer === "string" ? d.tokenizer : undefined });
  }
  throw new HippoError(`training data must be a task or a text file, got ${JSON.stringify(d)}`);
}

function taskOptions(pairs: readonly string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of pairs) {
    const eq = p.indexOf("=");
    if (eq <= 0) throw new HippoError(`--task-option '${p}' must be key=value (e.g. vocabSize=10)`);
    out[p.slice(0, eq).trim()] = p.slice(eq + 1).trim();
  }
  return out;
}

export async function runTrain(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values: v } = parseFlags("train", argv, (args) => parseArgs({ args, options: { ...OPTIONS, ...HELP_FLAG }, strict: true, allowPositionals: false }));
  if (v.help) {
    out.write(TRAIN_HELP + "\n");
    return 0;
  }
  const options = { backend: await trainingBackend(v.backend) };
  const dir = requireString("train", v.out, "out");
  let trainer: Trainer;
  if (v.resume) {
    const given = ["task", "text", "arch", "d-model", "layers", "d-state", "heads", "lr", "batch-size", "seed"].filter((k) => v[k as keyof typeof v] !== undefined);
    if (given.length > 0) throw new HippoError(`train --resume takes the run's settings from ${join(dir, CHECKPOINT_FILE)}; drop --${given.join(", --")}`);
    trainer = await Trainer.resume(dir, dataFor, v.steps !== undefined ? intFlag(v.steps, "steps", 0) : undefined, options);
    err.write(`resuming ${dir} at update ${trainer.currentStep} of ${trainer.settings.steps}\n`);
  } else {
    if (await stat(join(dir, CHECKPOINT_FILE)).catch(() => null)) {
      throw new HippoError(`${dir} already holds a training run; pass --resume to continue it or choose another --out`);
    }
    if ((v.task === undefined) === (v.text === undefined)) throw new HippoError("train: give exactly one of --task <name> or --text <file>");
    if (v.task === undefined && v["task-option"]) throw new HippoError("train: --task-option needs --task");
    if (v.text === undefined && (v.tokenizer !== undefined || v["seq-len"] !== undefined)) throw new HippoError("train: --tokenizer and --seq-len need --text");
    const data = v.task !== undefined
      ? { task: v.task, options: taskOptions(v["task-option"] ?? []) }
      : { text: v.text!, tokenizer: v.tokenizer, seqLen: intFlag(v["seq-len"], "seq-len", 128) };
    const source = await dataFor({ data });
    const steps = intFlag(v.steps, "steps", 2000);
    const settings: TrainSettings = {
      arch: v.arch ?? "mamba",
      size: {
        dModel: intFlag(v["d-model"], "d-model", 64), nLayer: intFlag(v.layers, "layers", 2), vocabSize: source.vocabSize,
        dState: intFlag(v["d-state"], "d-state", 16), heads: intFlag(v.heads, "heads", 4),
      },
      data,
      steps,
      batchSize: intFlag(v["batch-size"], "batch-size", 32),
      accumulate: intFlag(v.accumulate, "accumulate", 1),
      lr: numberFlag(v.lr, "lr", 1e-3),
      ssmLr: v["ssm-lr"] !== undefined ? numberFlag(v["ssm-lr"], "ssm-lr", 0) : undefined,
      kernelLr: v["kernel-lr"] !== undefined ? numberFlag(v["kernel-lr"], "kernel-lr", 0) : undefined,
      weightDecay: numberFlag(v["weight-decay"], "weight-decay", 0.1),
      warmupSteps: intFlag(v.warmup, "warmup", Math.min(200, Math.floor(steps / 10))),
      minLrRatio: numberFlag(v["min-lr-ratio"], "min-lr-ratio", 0.1),
      ...(v.decay !== undefined ? { decay: v.decay as "cosine" | "linear" } : {}),
      ...(v["embed-dropout"] !== undefined ? { embedDropout: numberFlag(v["embed-dropout"], "embed-dropout", 0) } : {}),
      ...(v["embed-init-std"] !== undefined ? { embedInitStd: numberFlag(v["embed-init-std"], "embed-init-std", 0) } : {}),
      clip: numberFlag(v.clip, "clip", 1),
      betas: [0.9, 0.98],
      seed: intFlag(v.seed, "seed", 0),
      evalEvery: intFlag(v["eval-every"], "eval-every", 100),
      checkpointEvery: intFlag(v["checkpoint-every"], "checkpoint-every", 100),
      logEvery: intFlag(v["log-every"], "log-every", 10),
    };
    trainer = Trainer.create(settings, source, dir, options);
    err.write(`training ${settings.arch} (${trainer.parameterCount().toLocaleString("en-US")} parameters) on ${source.describe()}\n`);
  }
  return runLoop(trainer, out, err);
}

/** The autograd backend `--backend` names (WebGPU: linear layers' backward products on the GPU). */
async function trainingBackend(name: string | undefined): Promise<GradBackend> {
  if (name === undefined || name === "cpu") return GradBackend.fast();
  if (name === "cpu-ref") return new GradBackend();
  if (name === "webgpu") return GradBackend.withWebGpu((await createBackend("webgpu")) as WebGpuBackend);
  throw new HippoError(`train: unknown --backend '${name}' (choose cpu, cpu-ref or webgpu)`);
}

async function runLoop(trainer: Trainer, out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const tty = (err as NodeJS.WriteStream).isTTY === true;
  let interrupted = false;
  const onSigint = () => {
    if (interrupted) process.exit(130);
    interrupted = true;
    err.write(`\ninterrupted: saving a checkpoint (Ctrl-C again to quit without saving)\n`);
  };
  process.on("SIGINT", onSigint);
  const s = trainer.settings;
  const started = performance.now();
  const firstStep = trainer.currentStep;
  let lastEval: EvalReport | null = null;
  try {
    const result = await trainer.run({
      onStep: (r: StepReport) => {
        const line = formatProgress(r, s.steps, lastEval, (performance.now() - started) / 1000, r.step - firstStep);
        if (tty) err.write(`\r\x1b[2K${line}`);
        else if (r.step % s.logEvery === 0 || r.step === s.steps) err.write(line + "\n");
      },
      onEval: (e) => {
        lastEval = e;
        const em = e.exactMatch !== undefined ? `, exact match ${(100 * e.exactMatch).toFixed(1)}%` : "";
        err.write(`${tty ? "\r\x1b[2K" : ""}eval at ${e.step}: loss ${e.loss.toFixed(4)}, token accuracy ${(100 * e.tokenAccuracy).toFixed(1)}%${em}\n`);
      },
      shouldStop: () => interrupted,
    });
    if (tty) err.write("\n");
    const kernels = trainer.backend.kernels;
    const gpuProducts = kernels instanceof WebGpuBackwardKernels ? { gpuLinearProducts: kernels.gpuProducts } : {};
    const summary = { out: trainer.out, step: result.step, stopped: result.stopped, eval: result.lastEval, ...gpuProducts };
    out.write(JSON.stringify(summary) + "\n");
    return result.stopped === "interrupted" ? 130 : 0;
  } finally {
    process.off("SIGINT", onSigint);
  }
}
