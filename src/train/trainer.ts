import { join } from "node:path";
import { GradBackend } from "../autograd/grad-backend.js";
import { crossEntropy } from "../autograd/loss.js";
import { Tape } from "../autograd/tape.js";
import { HippoError } from "../errors.js";
import { toFloat32 } from "../io/convert.js";
import { ConfigReader, parseConfigJson } from "../models/config-json.js";
import type { CausalLM } from "../models/causal-lm.js";
import { findFamily } from "../models/registry.js";
import type { Tensor } from "../tensor/tensor.js";
import { makeArchitecture, type Architecture, type ArchitectureSize } from "./architectures.js";
import { CHECKPOINT_FILE, checkCheckpointParams, loadCheckpoint, saveRun, type Checkpoint } from "./checkpoint.js";
import { batchSeed, type TrainData } from "./data.js";
import { Rng } from "../generate/rng.js";
import { WeightInit } from "../models/init-weights.js";
import type { RawTensor } from "../io/raw-tensor.js";
import { AdamW, clipGradNorm, defaultParamGroups, findNonFinite, GradAccumulator, gradNorm, warmupCosine, type Param } from "./optim/index.js";
import { ParameterLoader } from "./parameter-loader.js";
import type { TaskBatch } from "./tasks/task.js";

/** Everything that defines a run (saved in its checkpoint; --resume continues with these). */
export interface TrainSettings {
  arch: string;
  size: ArchitectureSize;
  /** How the data was chosen (for the record and for resuming): e.g. { task, options } or { text, tokenizer, seqLen }. */
  data: Record<string, unknown>;
  steps: number;
  batchSize: number;
  /** Micro-batches per update (gradient accumulation). */
  accumulate: number;
  lr: number;
  /** Learning rate of Mamba's A_log, D, dt (default lr) and of H3/S4D kernel parameters (default min(lr, 1e-3)). */
  ssmLr?: number;
  kernelLr?: number;
  weightDecay: number;
  warmupSteps: number;
  minLrRatio: number;
  /** Shape of the decay after warmup (default cosine; safari's synthetics: linear to 0). */
  decay?: "cosine" | "linear";
  /** Dropout on the token embeddings while training (default 0; safari's synthetics: 0.1). */
  embedDropout?: number;
  /**
   * Standard deviation of the embedding table's normal init (default: the family's, 0.02 as mamba_ssm and
   * safari; Hugging Face's MambaConfig/Mamba2Config use initializer_range 0.1).
   */
  embedInitStd?: number;
  /** Global gradient-norm clip (0: off). */
  clip: number;
  betas: [number, number];
  seed: number;
  evalEvery: number;
  checkpointEvery: number;
  logEvery: number;
}

export interface StepReport {
  step: number;
  loss: number;
  accuracy: number;
  lr: number;
  gradNorm: number;
  tokensPerSecond: number;
  elapsedSeconds: number;
}

export interface EvalReport {
  step: number;
  loss: number;
  tokenAccuracy: number;
  exactMatch?: number;
}

export interface TrainEvents {
  onStep?(r: StepReport): void;
  onEval?(r: EvalReport): void;
  onCheckpoint?(step: number, dir: string): void;
  /** Polled after every update: true stops the run (after a checkpoint). */
  shouldStop?(): boolean;
}

/** How a run computes (not part of its settings: any choice gives the same results up to float rounding). */
export interface TrainerOptions {
  /** The autograd backend; default: the fast CPU kernels (WebAssembly SIMD) where available, else the reference. */
  backend?: GradBackend;
}

export interface TrainResult {
  step: number;
  stopped: "done" | "interrupted";
  lastEval: EvalReport | null;
  log: Record<string, unknown>[];
}

/**
 * Trains a model on the CPU with autograd: each update builds the model from the parameters through a
 * ParameterLoader (so the family's own loader and layers are what is trained), runs the parallel forward
 * over a batch, cross-entropy, backward, clipping, AdamW. Data, schedule and optimizer state are
 * functions of the step, so a resumed run reproduces an uninterrupted one exactly.
 */
export class Trainer {
  readonly backend: GradBackend;
  readonly arch: Architecture;
  readonly params = new Map<string, Tensor>();
  readonly shapes = new Map<string, readonly number[]>();
  private readonly optimizer: AdamW;
  private readonly schedule: (step: number) => number;
  private readonly evalData: TaskBatch[];
  private step = 0;
  private log: Record<string, unknown>[] = [];

  private constructor(
    readonly settings: TrainSettings, readonly data: TrainData, readonly out: string, initial: Map<string, Float32Array> | null,
    options: TrainerOptions,
  ) {
    checkSettings(settings);
    this.backend = options.backend ?? GradBackend.fast();
    this.arch = makeArchitecture(settings.arch, settings.size);
    const weights = this.arch.init(settings.seed);
    if (!initial && settings.embedInitStd !== undefined) reinitEmbeddings(weights, settings);
    for (const [name, raw] of weights) {
      this.shapes.set(name, raw.shape);
      this.params.set(name, this.backend.upload(initial?.get(name) ?? toFloat32(raw, name), raw.shape, "f32"));
    }
    const list: Param[] = [...this.params].map(([name, t]) => ({ name, shape: [...t.shape], value: t.storage as Float32Array }));
    const groups = defaultParamGroups(list, { lr: settings.lr, weightDecay: settings.weightDecay, ssmLr: settings.ssmLr, kernelLr: settings.kernelLr });
    this.optimizer = new AdamW(groups, { betas: settings.betas });
    this.schedule = warmupCosine({ warmupSteps: settings.warmupSteps, totalSteps: settings.steps, minLrRatio: settings.minLrRatio, decay: settings.decay });
    this.evalData = data.evalBatches(Math.max(settings.batchSize, 32));
  }

  /** A fresh run. */
  static create(settings: TrainSettings, data: TrainData, out: string, options: TrainerOptions = {}): Trainer {
    return new Trainer(settings, data, out, null, options);
  }

  /** Continues the run saved in `out` (its settings, parameters, optimizer state and log); `steps` may extend it. */
  static async resume(
    out: string, data: (settings: TrainSettings) => Promise<TrainData>, steps?: number, options: TrainerOptions = {},
  ): Promise<Trainer> {
    const ckpt = await loadCheckpoint(out);
    const settings = { ...(ckpt.settings as unknown as TrainSettings) };
    if (steps !== undefined) {
      settings.steps = steps;
      settings.warmupSteps = Math.min(settings.warmupSteps, steps);
    }
    const path = join(out, CHECKPOINT_FILE);
    let arch: Architecture;
    try {
      arch = makeArchitecture(settings.arch, settings.size);
    } catch (e) {
      throw new HippoError(`${path}: its settings do not describe a model (${(e as Error).message})`);
    }
    const shapes = new Map([...arch.init(0)].map(([n, raw]) => [n, raw.shape]));
    checkCheckpointParams(path, ckpt.params, shapes);
    const trainer = new Trainer(settings, await data(settings), out, ckpt.params, options);
    try {
      trainer.optimizer.loadStateDict(ckpt.optimizer);
    } catch (e) {
      throw new HippoError(`${path}: optimizer state does not match the parameters (${(e as Error).message})`);
    }
    trainer.step = ckpt.step;
    trainer.log = ckpt.log;
    return trainer;
  }

  get currentStep(): number {
    return this.step;
  }

  parameterCount(): number {
    let n = 0;
    for (const t of this.params.values()) n += t.size;
    return n;
  }

  /** The model as the family builds it, from the current parameters (the same tensors, not copies). */
  async model(): Promise<CausalLM> {
    // Through JSON, as loadModel reads it (transformers' {"__float__": "Infinity"} becomes a number).
    const reader = new ConfigReader(parseConfigJson(JSON.stringify(this.arch.config), "config.json"), `${this.out}/config.json`);
    return findFamily(reader).load(reader, new ParameterLoader(this.params, this.backend, `${this.settings.arch} parameters`));
  }

  private ids(b: TaskBatch): { inputs: Tensor; targets: Tensor } {
    return {
      inputs: this.backend.upload(b.inputs, [b.batch, b.length], "i32"),
      targets: this.backend.upload(b.targets, [b.batch, b.length], "i32"),
    };
  }

  /** One update: forward and backward over `accumulate` micro-batches, clip, AdamW. */
  trainStep(): Promise<StepReport> {
    return this.backend.stepMemory(() => this.update());
  }

  private async update(): Promise<StepReport> {
    const s = this.settings;
    const started = performance.now();
    const acc = new GradAccumulator();
    let lossSum = 0, right = 0, scored = 0, tokens = 0;
    for (let micro = 0; micro < s.accumulate; micro++) {
      const batch = this.data.batch(s.seed, this.step, micro, s.batchSize);
      const tape = new Tape();
      tape.watch(...this.params.values());
      this.backend.tape = tape;
      let loss: Tensor;
      try {
        const model = await this.model();
        const { inputs, targets } = this.ids(batch);
        const embeddingMask = this.dropoutMask(micro, batch.batch, batch.length);
        const { logits } = model.forward(inputs, null, { logits: "all", embeddingMask });
        const ce = crossEntropy(logits!, targets);
        loss = ce.loss;
        for (let i = 0; i < batch.targets.length; i++) {
          if (batch.targets[i] < 0) continue;
          scored++;
          if (ce.predictions[i] === batch.targets[i]) right++;
        }
      } finally {
        this.backend.tape = null;
      }
      const value = (loss.storage as Float32Array)[0];
      if (!Number.isFinite(value)) throw this.diverged(`the loss is ${value}`);
      lossSum += value;
      tokens += batch.batch * batch.length;
      const grads = await tape.backward(loss, [...this.params.values()]);
      acc.add(new Map([...this.params].map(([name, t]) => [name, grads.get(t)!])));
    }
    const grads = acc.mean();
    const bad = findNonFinite(grads);
    if (bad.length > 0) throw this.diverged(`the gradient of '${bad[0].name}' holds ${bad[0].value} (${bad.length} parameter(s) affected)`);
    const norm = s.clip > 0 ? clipGradNorm(grads, s.clip) : gradNorm(grads);
    const lrScale = this.schedule(this.step);
    this.optimizer.step(grads, lrScale);
    this.step++;
    const seconds = (performance.now() - started) / 1000;
    return {
      step: this.step, loss: lossSum / s.accumulate, accuracy: scored > 0 ? right / scored : 0, lr: s.lr * lrScale, gradNorm: norm,
      tokensPerSecond: tokens / seconds, elapsedSeconds: seconds,
    };
  }

  /**
   * Embedding dropout for one micro-batch: each factor 0 with probability p, else 1/(1 − p). A function of
   * (seed, step, micro) like the data, so a resumed run draws the same masks.
   */
  private dropoutMask(micro: number, batch: number, length: number): Tensor | undefined {
    const p = this.settings.embedDropout ?? 0;
    if (p === 0) return undefined;
    const D = this.settings.size.dModel;
    // Not the data's stream: the mask's seed mixes in one more value.
    const rng = new Rng(batchSeed(batchSeed(this.settings.seed, this.step, micro), 0x5eed, 1));
    const mask = new Float32Array(batch * length * D);
    const keep = 1 / (1 - p);
    for (let i = 0; i < mask.length; i++) mask[i] = rng.nextFloat() < p ? 0 : keep;
    return this.backend.upload(mask, [batch, length, D], "f32");
  }

  private diverged(what: string): HippoError {
    const saved = this.log.length > 0 || this.step > 0 ? `the last good checkpoint in ${this.out} is kept` : "nothing was saved";
    return new HippoError(`training diverged at update ${this.step + 1}: ${what}; stopped (${saved}). Try a lower --lr or --clip 1`);
  }

  /** Loss, token accuracy and (tasks) exact match on the held-out data, with the current parameters. */
  evaluate(): Promise<EvalReport> {
    return this.backend.stepMemory(() => this.heldOut());
  }

  private async heldOut(): Promise<EvalReport> {
    const model = await this.model();
    let lossSum = 0, count = 0, right = 0;
    const preds: Int32Array[] = [], targets: Int32Array[] = [];
    for (const b of this.evalData) {
      const { inputs, targets: t } = this.ids(b);
      const { logits } = model.forward(inputs, null, { logits: "all" });
      const ce = crossEntropy(logits!, t);
      lossSum += (ce.loss.storage as Float32Array)[0] * ce.count;
      count += ce.count;
      for (let i = 0; i < b.targets.length; i++) if (b.targets[i] >= 0 && ce.predictions[i] === b.targets[i]) right++;
      preds.push(ce.predictions);
      targets.push(b.targets);
    }
    const report: EvalReport = { step: this.step, loss: lossSum / Math.max(count, 1), tokenAccuracy: right / Math.max(count, 1) };
    if (this.data.exactMatch) report.exactMatch = this.data.exactMatch(concat(preds), concat(targets));
    return report;
  }

  async checkpoint(): Promise<void> {
    const ckpt: Checkpoint = {
      step: this.step,
      settings: this.settings as unknown as Record<string, unknown>,
      params: new Map([...this.params].map(([n, t]) => [n, t.storage as Float32Array])),
      optimizer: this.optimizer.stateDict(),
      log: this.log,
    };
    const config = { ...this.arch.config, ...(this.data.eosTokenId !== undefined ? { eos_token_id: this.data.eosTokenId } : {}) };
    await saveRun(this.out, ckpt, this.shapes, config, this.data.tokenizerJson);
  }

  /** Runs updates until settings.steps (or a stop request), evaluating and checkpointing on schedule. */
  async run(events: TrainEvents = {}): Promise<TrainResult> {
    const s = this.settings;
    let lastEval: EvalReport | null = null;
    let stopped: TrainResult["stopped"] = "done";
    while (this.step < s.steps) {
      const r = await this.trainStep();
      if (r.step % s.logEvery === 0 || r.step === s.steps) this.log.push({ type: "train", ...r });
      events.onStep?.(r);
      // Let signal handlers (Ctrl-C) run: awaits alone never leave the microtask queue.
      await new Promise((done) => setImmediate(done));
      const interrupted = events.shouldStop?.() ?? false;
      if (r.step % s.evalEvery === 0 || r.step === s.steps) {
        lastEval = await this.evaluate();
        this.log.push({ type: "eval", ...lastEval });
        events.onEval?.(lastEval);
      }
      if (r.step % s.checkpointEvery === 0 || r.step === s.steps || interrupted) {
        await this.checkpoint();
        events.onCheckpoint?.(r.step, this.out);
      }
      if (interrupted) {
        stopped = "interrupted";
        break;
      }
    }
    return { step: this.step, stopped, lastEval, log: this.log };
  }
}

function concat(parts: Int32Array[]): Int32Array {
  const out = new Int32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/** Replaces the token embedding table's init with N(0, embedInitStd²) (seeded by the run's seed). */
function reinitEmbeddings(weights: Map<string, RawTensor>, s: TrainSettings): void {
  const names = [...weights].filter(([n, raw]) => n.split(".").some((p) => /embed/.test(p)) && raw.shape.length === 2 && raw.shape[0] === s.size.vocabSize);
  if (names.length !== 1) throw new HippoError(`--embed-init-std: expected one embedding table in ${s.arch}, found ${names.map(([n]) => n).join(", ") || "none"}`);
  const [name, raw] = names[0];
  const init = new WeightInit(batchSeed(s.seed, 0x3e3b, 0), "F32");
  init.put(name, [...raw.shape], init.normal(s.embedInitStd!), true);
  weights.set(name, init.tensors.get(name)!);
}

function checkSettings(s: TrainSettings): void {
  const positive: (keyof TrainSettings)[] = ["steps", "batchSize", "accumulate", "evalEvery", "checkpointEvery", "logEvery"];
  for (const k of positive) {
    const v = s[k];
    if (!Number.isInteger(v) || (v as number) <= 0) throw new HippoError(`training setting ${k} must be a positive integer, got ${String(v)}`);
  }
  if (!(s.lr > 0) || !Number.isFinite(s.lr)) throw new HippoError(`learning rate must be a positive number, got ${s.lr}`);
  if (s.embedInitStd !== undefined && !(s.embedInitStd > 0 && Number.isFinite(s.embedInitStd))) {
    throw new HippoError(`--embed-init-std must be a positive number, got ${s.embedInitStd}`);
  }
  const p = s.embedDropout ?? 0;
  if (!(p >= 0 && p < 1)) throw new HippoError(`--embed-dropout must be in [0, 1), got ${p}`);
  if (s.decay !== undefined && s.decay !== "cosine" && s.decay !== "linear") throw new HippoError(`--decay must be cosine or linear, got '${String(s.decay)}'`);
  if (!(s.clip >= 0)) throw new HippoError(`--clip must be ≥ 0, got ${s.clip}`);
  if (!Number.isInteger(s.warmupSteps) || s.warmupSteps < 0 || s.warmupSteps > s.steps) {
    throw new HippoError(`--warmup must be an integer in [0, steps=${s.steps}], got ${s.warmupSteps}`);
  }
}
