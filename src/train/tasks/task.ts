import { check, HippoError } from "../../errors.js";
import { Rng } from "../../generate/rng.js";

/** Target value of a position that is not scored (torch's CrossEntropyLoss ignore_index). */
export const IGNORE_INDEX = -100;

/** A batch of examples, row-major: example b's tokens are inputs[b*length .. (b+1)*length). */
export interface TaskBatch {
  /** Token ids [batch * length]. */
  inputs: Int32Array;
  /** Token id the model should predict at each position, or IGNORE_INDEX where nothing is scored [batch * length]. */
  targets: Int32Array;
  batch: number;
  length: number;
}

/** One example as a task generates it: every defined target, and where its answer begins. */
export interface Example {
  input: Int32Array;
  /** Targets for training with trainTargets "all" (IGNORE_INDEX where the task defines none). */
  target: Int32Array;
  /** Positions >= answerStart hold the answer: the only positions scored on the test set (and in training with trainTargets "answer"). */
  answerStart: number;
}

/** Uniform integer in [0, n), without modulo bias. */
export function randInt(rng: Rng, n: number): number {
  check(Number.isInteger(n) && n >= 1 && n <= 2 ** 32, `randInt: bad range ${n}`);
  const limit = Math.floor(2 ** 32 / n) * n;
  for (;;) {
    const x = rng.nextUint32();
    if (x < limit) return x % n;
  }
}

/** Fraction of examples whose every scored position (target != IGNORE_INDEX) is predicted right. */
export function exactMatch(predictedIds: Int32Array, targets: Int32Array, length: number): number {
  checkSameShape(predictedIds, targets, length);
  let counted = 0, right = 0;
  for (let b = 0; b * length < targets.length; b++) {
    let scored = false, ok = true;
    for (let i = b * length; i < (b + 1) * length; i++) {
      if (targets[i] === IGNORE_INDEX) continue;
      scored = true;
      if (predictedIds[i] !== targets[i]) { ok = false; break; }
    }
    if (scored) { counted++; if (ok) right++; }
  }
  if (counted === 0) throw new HippoError("exactMatch: no example has a scored position (every target is -100)");
  return right / counted;
}

/** Fraction of scored positions predicted right (safari's accuracy_ignore_index). */
export function tokenAccuracy(predictedIds: Int32Array, targets: Int32Array, length: number): number {
  checkSameShape(predictedIds, targets, length);
  let scored = 0, right = 0;
  for (let i = 0; i < targets.length; i++) {
    if (targets[i] === IGNORE_INDEX) continue;
    scored++;
    if (predictedIds[i] === targets[i]) right++;
  }
  if (scored === 0) throw new HippoError("tokenAccuracy: no scored position (every target is -100)");
  return right / scored;
}

function checkSameShape(predictedIds: Int32Array, targets: Int32Array, length: number): void {
  check(Number.isInteger(length) && length > 0, `length must be a positive integer, got ${length}`);
  check(predictedIds.length === targets.length,
    `predicted ids have ${predictedIds.length} entries but targets have ${targets.length}`);
  check(targets.length % length === 0, `targets (${targets.length} entries) are not a whole number of rows of length ${length}`);
}

/** A set of token rows (exact comparison behind a 32-bit FNV-1a hash). */
export class RowSet {
  private buckets = new Map<number, Int32Array[]>();
  size = 0;

  has(row: Int32Array): boolean {
    const bucket = this.buckets.get(hashRow(row));
    return bucket !== undefined && bucket.some((r) => sameRow(r, row));
  }

  /** Adds a copy of `row`; false when it was already there. */
  add(row: Int32Array): boolean {
    const h = hashRow(row);
    const bucket = this.buckets.get(h);
    if (bucket?.some((r) => sameRow(r, row))) return false;
    if (bucket) bucket.push(row.slice());
    else this.buckets.set(h, [row.slice()]);
    this.size++;
    return true;
  }
}

function hashRow(row: Int32Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < row.length; i++) {
    let x = row[i];
    for (let k = 0; k < 4; k++) {
      h = Math.imul(h ^ (x & 0xff), 0x01000193);
      x >>>= 8;
    }
  }
  return h >>> 0;
}

function sameRow(a: Int32Array, b: Int32Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** Settings every task shares (see COMMON_OPTIONS). */
export interface CommonSettings {
  seed: number;
  testSeed: number;
  numTestExamples: number;
  /** Size of the fixed training pool makeBatch samples from; 0 = a fresh example every time. */
  numTrainExamples: number;
  /** "all": every target the task defines (safari trains AR and induction head as plain next-token LMs); "answer": only the answer. */
  trainTargets: "all" | "answer";
}

/** How many generation attempts may be rejected (duplicates, test examples) before the settings are declared too small. */
const MAX_REJECTS = 10_000;

/**
 * A synthetic task: fixed-length examples from `generate`, a fixed held-out test set (its own seed stream,
 * distinct examples, answer positions scored only), and training batches that never contain a test example.
 */
export abstract class SyntheticTask {
  abstract readonly name: string;
  abstract readonly vocabSize: number;
  /** Length of every example (inputs and targets per row). */
  abstract readonly seqLen: number;

  private test: TaskBatch | null = null;
  private testRows: RowSet | null = null;
  private pool: Example[] | null = null;

  constructor(protected readonly common: CommonSettings) {}

  /** One example drawn from `rng`. */
  protected abstract generate(rng: Rng): Example;

  /** The settings, one line (defaults are the papers'; see each task's file for sources). */
  abstract describe(): string;

  /** A readable name for a token id (for debugging and examples). */
  abstract tokenLabel(id: number): string;

  /** A training batch. Deterministic given rng's state; never contains a held-out example. */
  makeBatch(rng: Rng, batchSize: number): TaskBatch {
    check(Number.isInteger(batchSize) && batchSize >= 1, `${this.name}: batch size must be a positive integer, got ${batchSize}`);
    const L = this.seqLen;
    const inputs = new Int32Array(batchSize * L), targets = new Int32Array(batchSize * L);
    const pool = this.trainPool();
    for (let b = 0; b < batchSize; b++) {
      const ex = pool ? pool[randInt(rng, pool.length)] : this.freshTrainExample(rng);
      inputs.set(ex.input, b * L);
      targets.set(this.common.trainTargets === "all" ? ex.target : answerOnly(ex), b * L);
    }
    return { inputs, targets, batch: batchSize, length: L };
  }

  /** The fixed held-out set: numTestExamples distinct examples from testSeed; only answer positions are scored. */
  testSet(): TaskBatch {
    if (this.test) return this.test;
    const rng = new Rng(this.common.testSeed);
    const rows = new RowSet();
    const n = this.common.numTestExamples, L = this.seqLen;
    const inputs = new Int32Array(n * L), targets = new Int32Array(n * L);
    let rejects = 0;
    while (rows.size < n) {
      const ex = this.generate(rng);
      if (!rows.add(ex.input)) {
        this.tooFew(++rejects, `${n} distinct test examples`);
        continue;
      }
      inputs.set(ex.input, (rows.size - 1) * L);
      targets.set(answerOnly(ex), (rows.size - 1) * L);
    }
    this.testRows = rows;
    this.test = { inputs, targets, batch: n, length: L };
    return this.test;
  }

  /** Fraction of examples whose every scored position is right; `predictedIds` and `targets` are [B * seqLen]. */
  exactMatch(predictedIds: Int32Array, targets: Int32Array): number {
    return exactMatch(predictedIds, targets, this.seqLen);
  }

  /** Fraction of scored positions right. */
  tokenAccuracy(predictedIds: Int32Array, targets: Int32Array): number {
    return tokenAccuracy(predictedIds, targets, this.seqLen);
  }

  /** True when `input` (one row) is one of the held-out examples. */
  isTestExample(input: Int32Array): boolean {
    this.testSet();
    return this.testRows!.has(input);
  }

  protected commonDescription(): string {
    const c = this.common;
    const train = c.numTrainExamples > 0 ? `pool of ${c.numTrainExamples} (seed ${c.seed})` : "fresh examples";
    return `train: ${train}, targets ${c.trainTargets}; test: ${c.numTestExamples} examples (seed ${c.testSeed}), answer scored`;
  }

  private freshTrainExample(rng: Rng): Example {
    this.testSet();
    for (let rejects = 1; ; rejects++) {
      const ex = this.generate(rng);
      if (!this.testRows!.has(ex.input)) return ex;
      this.tooFew(rejects, "a training example outside the test set");
    }
  }

  private trainPool(): Example[] | null {
    if (this.common.numTrainExamples === 0) return null;
    if (this.pool) return this.pool;
    this.testSet();
    const rng = new Rng(this.common.seed);
    const seen = new RowSet(), pool: Example[] = [];
    let rejects = 0;
    while (pool.length < this.common.numTrainExamples) {
      const ex = this.generate(rng);
      if (this.testRows!.has(ex.input) || !seen.add(ex.input)) {
        this.tooFew(++rejects, `${this.common.numTrainExamples} distinct training examples outside the test set`);
        continue;
      }
      pool.push(ex);
    }
    this.pool = pool;
    return pool;
  }

  private tooFew(rejects: number, what: string): void {
    if (rejects > MAX_REJECTS) {
      throw new HippoError(`${this.name}: these settings give too few distinct examples for ${what} (${this.describe()})`);
    }
  }
}

function answerOnly(ex: Example): Int32Array {
  const t = ex.target.slice();
  t.fill(IGNORE_INDEX, 0, ex.answerStart);
  return t;
}
