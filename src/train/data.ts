import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { HippoError } from "../errors.js";
import { Rng } from "../generate/rng.js";
import { byteLevelTokenizerJson, BYTE_EOS_ID } from "../tokenizer/byte-level.js";
import { loadTokenizer } from "../tokenizer/tokenizer.js";
import { getTask } from "./tasks/registry.js";
import type { TaskOptions } from "./tasks/options.js";
import { IGNORE_INDEX, type SyntheticTask, type TaskBatch } from "./tasks/task.js";

/** What a training run learns from: a synthetic task or a text corpus. */
export interface TrainData {
  readonly vocabSize: number;
  readonly seqLen: number;
  describe(): string;
  /**
   * The training batch of update `step`, micro-batch `micro`: a function of (seed, step, micro) only,
   * so a resumed run sees exactly the data an uninterrupted one would.
   */
  batch(seed: number, step: number, micro: number, batchSize: number): TaskBatch;
  /** Held-out batches (fixed). */
  evalBatches(batchSize: number): TaskBatch[];
  /** Exact-match accuracy over held-out examples (tasks only). */
  exactMatch?(predictions: Int32Array, targets: Int32Array): number;
  /** tokenizer.json to ship with the trained model, if the data has one. */
  tokenizerJson?: object;
  eosTokenId?: number;
}

/** A seed per (run seed, update, micro-batch): splitmix-style mixing in 32-bit integer steps. */
export function batchSeed(seed: number, step: number, micro: number): number {
  let h = (seed ^ 0x9e3779b9) >>> 0;
  for (const v of [step, micro]) {
    h = Math.imul(h ^ (v >>> 0), 0x85ebca6b) >>> 0;
    h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35) >>> 0;
    h = (h ^ (h >>> 16)) >>> 0;
  }
  return h;
}

export function taskData(name: string, options: TaskOptions): TrainData {
  const task: SyntheticTask = getTask(name, options);
  return {
    vocabSize: task.vocabSize,
    seqLen: task.seqLen,
    describe: () => `${task.name}: ${task.describe()}`,
    batch: (seed, step, micro, batchSize) => task.makeBatch(new Rng(batchSeed(seed, step, micro)), batchSize),
    evalBatches: (batchSize) => splitBatch(task.testSet(), batchSize),
    exactMatch: (p, t) => task.exactMatch(p, t),
  };
}

function splitBatch(all: TaskBatch, batchSize: number): TaskBatch[] {
  const out: TaskBatch[] = [];
  const L = all.length;
  for (let b = 0; b < all.batch; b += batchSize) {
    const n = Math.min(batchSize, all.batch - b);
    out.push({ inputs: all.inputs.slice(b * L, (b + n) * L), targets: all.targets.slice(b * L, (b + n) * L), batch: n, length: L });
  }
  return out;
}

export interface TextDataOptions {
  /** Tokens per training window. */
  seqLen: number;
  /** tokenizer.json (or a directory with one); default: bytes (vocabulary 257 with <|endoftext|>). */
  tokenizer?: string;
  /** Fraction of the corpus (its end) held out for evaluation. */
  validationFraction?: number;
  /** Held-out windows evaluated. */
  evalWindows?: number;
}

/** Next-token prediction on a text file: random training windows, the file's tail held out. */
export async function textData(path: string, o: TextDataOptions): Promise<TrainData> {
  const bytes = await readFile(path).catch((e: NodeJS.ErrnoException) => {
    throw new HippoError(`${path}: cannot read the training text (${e.code ?? e.message})`);
  });
  let text: string;
  try {
    // A .gz corpus is read as the text it compresses (the shipped corpus is gzipped).
    text = new TextDecoder("utf-8", { fatal: true }).decode(path.endsWith(".gz") ? gunzipSync(bytes) : bytes);
  } catch (e) {
    throw new HippoError(`${path}: not UTF-8 text${path.endsWith(".gz") ? " in gzip" : ""} (${(e as Error).message})`);
  }
  let ids: Int32Array;
  let vocabSize: number;
  let tokenizerJson: object | undefined;
  let eosTokenId: number | undefined;
  if (o.tokenizer) {
    const tok = await loadTokenizer(o.tokenizer);
    ids = Int32Array.from(tok.encode(text));
    vocabSize = tok.vocabSize;
  } else {
    ids = Int32Array.from(new TextEncoder().encode(text));
    vocabSize = BYTE_EOS_ID + 1;
    tokenizerJson = byteLevelTokenizerJson();
    eosTokenId = BYTE_EOS_ID;
  }
  const L = o.seqLen;
  const held = Math.max(L + 1, Math.floor(ids.length * (o.validationFraction ?? 0.05)));
  if (ids.length < held + 2 * (L + 1)) {
    throw new HippoError(`${path}: ${ids.length} tokens is too short for windows of ${L} tokens plus a held-out part (need at least ${held + 2 * (L + 1)})`);
  }
  const train = ids.subarray(0, ids.length - held);
  const valid = ids.subarray(ids.length - held);
  const window = (src: Int32Array, o0: number, into: TaskBatch, row: number) => {
    into.inputs.set(src.subarray(o0, o0 + L), row * L);
    into.targets.set(src.subarray(o0 + 1, o0 + L + 1), row * L);
  };
  const empty = (n: number): TaskBatch => ({ inputs: new Int32Array(n * L), targets: new Int32Array(n * L).fill(IGNORE_INDEX), batch: n, length: L });
  return {
    vocabSize, seqLen: L, tokenizerJson, eosTokenId,
    describe: () => `${path}: ${ids.length} tokens (${o.tokenizer ? `tokenizer ${o.tokenizer}` : "bytes"}), ${train.length} for training, ${valid.length} held out; windows of ${L}`,
    batch: (seed, step, micro, batchSize) => {
      const rng = new Rng(batchSeed(seed, step, micro));
      const b = empty(batchSize);
      const span = train.length - L - 1;
      for (let r = 0; r < batchSize; r++) window(train, Math.floor((rng.nextUint32() / 2 ** 32) * (span + 1)), b, r);
      return b;
    },
    evalBatches: (batchSize) => {
      const count = Math.min(o.evalWindows ?? 64, Math.floor((valid.length - 1) / L));
      const out: TaskBatch[] = [];
      for (let w = 0; w < count; w += batchSize) {
        const b = empty(Math.min(batchSize, count - w));
        for (let r = 0; r < b.batch; r++) window(valid, (w + r) * L, b, r);
        out.push(b);
      }
      return out;
    },
  };
}
