import { test } from "node:test";
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import { Rng } from "../../src/generate/rng.js";
import {
  AssociativeRecall, exactMatch, getTask, IGNORE_INDEX, InductionHead, Phonebook, SelectiveCopying, TASK_NAMES,
  type SyntheticTask, type TaskBatch,
} from "../../src/train/tasks/index.js";

function rows(b: TaskBatch, which: "inputs" | "targets"): Int32Array[] {
  return Array.from({ length: b.batch }, (_, i) => b[which].subarray(i * b.length, (i + 1) * b.length));
}

/** Positions where a row's target is scored. */
function scored(target: Int32Array): number[] {
  return Array.from(target.keys()).filter((i) => target[i] !== IGNORE_INDEX);
}

const SMALL: Record<string, Record<string, unknown>> = {
  "associative-recall": { numTestExamples: 50, numTrainExamples: 200 },
  "induction-head": { numTestExamples: 50, numTrainExamples: 200 },
  "selective-copying": { numTestExamples: 50, noiseLength: 40 },
  "phonebook": { numTestExamples: 50, numEntries: 6 },
};

test("defaults are the papers' settings (lengths and vocabularies)", () => {
  const ar = getTask("associative-recall"), ih = getTask("induction-head");
  const sc = getTask("selective-copying"), pb = getTask("phonebook");
  assert.deepEqual([ar.vocabSize, ar.seqLen], [20, 42]); // safari: vocab 20, input_seq_len 40 (+ "=> k")
  assert.deepEqual([ih.vocabSize, ih.seqLen], [20, 31]); // safari: vocab 20, input_seq_len 30 (+ "=>")
  assert.deepEqual([sc.vocabSize, sc.seqLen], [16, 224 + 32]); // Mamba: A 16, M 16; CPU noise length 224
  assert.equal(getTask("selective-copying", { noiseLength: 4096 }).seqLen, 4096 + 32);
  assert.deepEqual([pb.vocabSize, pb.seqLen], [112, 272]);
  assert.equal(getTask("associative-recall", { vocabSize: 10, inputSeqLen: 20 }).seqLen, 22); // safari vocab_size_10.yaml
  for (const t of [ar, ih, sc, pb]) assert.match(t.describe(), new RegExp(`^${t.name} `));
  assert.match(ar.describe(), /vocabSize=20 inputSeqLen=40 numKeys=1 allowDot=false numTrainExamples=5000/);
});

test("every task: shapes, token ranges, determinism, distinct held-out set never seen in training", () => {
  for (const name of TASK_NAMES) {
    const task = getTask(name, SMALL[name]);
    const b = task.makeBatch(new Rng(5), 64);
    assert.equal(b.batch, 64);
    assert.equal(b.length, task.seqLen);
    assert.equal(b.inputs.length, 64 * task.seqLen);
    assert.equal(b.targets.length, 64 * task.seqLen);
    for (const x of b.inputs) assert.ok(x >= 0 && x < task.vocabSize, `${name}: input ${x}`);
    for (const y of b.targets) assert.ok(y === IGNORE_INDEX || (y >= 0 && y < task.vocabSize), `${name}: target ${y}`);

    // Deterministic: same rng state, same batch; another seed, another batch; a new instance, the same test set.
    const again = getTask(name, SMALL[name]).makeBatch(new Rng(5), 64);
    assert.deepEqual(again, b, name);
    assert.notDeepEqual(task.makeBatch(new Rng(6), 64).inputs, b.inputs, name);
    assert.deepEqual(getTask(name, SMALL[name]).testSet(), task.testSet(), name);
    assert.notDeepEqual(getTask(name, { ...SMALL[name], testSeed: 99 }).testSet().inputs, task.testSet().inputs, name);

    // The held-out set: distinct rows, answer positions only, none of them in training batches.
    const test = task.testSet();
    assert.equal(test.batch, 50);
    const testKeys = new Set(rows(test, "inputs").map((r) => r.join(",")));
    assert.equal(testKeys.size, 50, `${name}: test rows distinct`);
    for (const r of rows(task.makeBatch(new Rng(7), 300), "inputs")) assert.ok(!testKeys.has(r.join(",")), `${name}: test row in training`);
  }
});

test("held-out examples are kept out of training even where collisions are likely", () => {
  // 2 ordinary tokens, 6 positions: few distinct sequences, so fresh samples hit the test set often.
  const task = new InductionHead({ vocabSize: 4, inputSeqLen: 6, numTestExamples: 40, numTrainExamples: 0 });
  const testKeys = new Set(rows(task.testSet(), "inputs").map((r) => r.join(",")));
  const train = rows(task.makeBatch(new Rng(1), 2000), "inputs").map((r) => r.join(","));
  assert.ok(new Set(train).size < 200, "the space is small (so collisions would happen)");
  for (const r of train) assert.ok(!testKeys.has(r));
  // A fixed pool: distinct, outside the test set.
  const pooled = new InductionHead({ vocabSize: 4, inputSeqLen: 6, numTestExamples: 40, numTrainExamples: 30 });
  const poolRows = new Set(rows(pooled.makeBatch(new Rng(2), 3000), "inputs").map((r) => r.join(",")));
  assert.equal(poolRows.size, 30);
  for (const r of poolRows) assert.ok(!testKeys.has(r));
  // Settings with too few distinct examples say so instead of looping.
  assert.throws(() => new AssociativeRecall({ vocabSize: 4, inputSeqLen: 2, numTestExamples: 10 }).testSet(),
    (e: Error) => e instanceof HippoError && /too few distinct examples for 10 distinct test examples/.test(e.message));
});

test("associative recall: the answer is the value that followed the query key in the context", () => {
  for (const opts of [{}, { numKeys: 2, vocabSize: 12, inputSeqLen: 30 }, { vocabSize: 10, inputSeqLen: 20 }]) {
    const task = new AssociativeRecall({ ...opts, numTestExamples: 200, numTrainExamples: 100 });
    const k = task.options.numKeys, L = task.seqLen;
    const test = task.testSet();
    rows(test, "inputs").forEach((x, b) => {
      const y = rows(test, "targets")[b];
      assert.deepEqual(scored(y), [L - 1], "only the last position is scored");
      assert.equal(x[L - 1 - k], task.queryToken);
      const key = Array.from(x.subarray(L - k));
      let found = -1;
      for (let i = 0; i + k < L - 1 - k; i += k + 1) {
        assert.ok(Array.from(x.subarray(i, i + k)).every((t) => task.isKeyToken(t)), "keys in key positions");
        assert.ok(!task.isKeyToken(x[i + k]) && x[i + k] < task.queryToken, "a value after each key");
        if (Array.from(x.subarray(i, i + k)).join() === key.join()) {
          if (found >= 0) assert.equal(x[i + k], found, "a repeated key keeps its value");
          found = x[i + k];
        }
      }
      assert.ok(found >= 0, "allowDot false: the query key is in the context");
      assert.equal(y[L - 1], found);
    });
    // Training targets (safari): every next token; the last one is the answer.
    const tb = task.makeBatch(new Rng(3), 8);
    rows(tb, "inputs").forEach((x, b) => {
      const y = rows(tb, "targets")[b];
      for (let i = 0; i < L - 1; i++) assert.equal(y[i], x[i + 1]);
    });
  }
});

test("associative recall with allowDot: absent keys are answered with '.'", () => {
  const task = new AssociativeRecall({ allowDot: true, vocabSize: 40, inputSeqLen: 6, numTestExamples: 200 });
  const L = task.seqLen;
  let dots = 0;
  rows(task.testSet(), "inputs").forEach((x, b) => {
    const y = task.testSet().targets[b * L + L - 1];
    const present = [0, 2, 4].some((i) => x[i] === x[L - 1]);
    assert.equal(y === task.noopToken, !present);
    if (!present) dots++;
  });
  assert.ok(dots > 50, `some queries miss the context (${dots})`);
});

test("induction head: the answer is what followed the special token's first occurrence", () => {
  for (const opts of [{}, { inductionLen: 3, numTriggers: 3, inputSeqLen: 40 }]) {
    const task = new InductionHead({ ...opts, numTestExamples: 200, numTrainExamples: 100 });
    const m = task.options.inductionLen, n = task.options.inputSeqLen, L = task.seqLen;
    const test = task.testSet();
    let multi = 0;
    rows(test, "inputs").forEach((x, b) => {
      const y = rows(test, "targets")[b];
      assert.deepEqual(scored(y), Array.from({ length: m }, (_, i) => n + i), "the last inductionLen positions are scored");
      assert.equal(x[n], task.triggerToken, "the final trigger");
      const first = x.indexOf(task.triggerToken);
      assert.ok(first < n - 1 - m);
      for (let i = 0; i < m; i++) assert.equal(y[n + i], x[first + 1 + i]);
      // Teacher forcing: after the final trigger the input holds the copied tokens but the last.
      for (let i = 1; i < m; i++) assert.equal(x[n + i], x[first + i]);
      const count = Array.from(x.subarray(0, n)).filter((t) => t === task.triggerToken).length;
      if (count > 1) multi++;
      assert.ok(x.every((t) => t !== task.noopToken));
      assert.equal(L, n + m);
    });
    if (task.options.numTriggers > 1) assert.ok(multi > 20, `several triggers in some examples (${multi})`);
  }
});

test("selective copying: the answer is the data tokens in order, at the markers", () => {
  const task = new SelectiveCopying({ noiseLength: 60, numTokens: 8, numTestExamples: 100 });
  const M = 8, span = 60 + 8;
  const test = task.testSet();
  let notPrefix = 0;
  rows(test, "inputs").forEach((x, b) => {
    const y = rows(test, "targets")[b];
    assert.deepEqual(scored(y), Array.from({ length: M }, (_, i) => span + i));
    const data = Array.from(x.subarray(0, span)).filter((t) => t !== task.noiseToken);
    assert.equal(data.length, M);
    assert.ok(data.every((t) => t >= 1 && t <= task.vocabSize - 2));
    assert.deepEqual(Array.from(y.subarray(span)), data);
    assert.ok(Array.from(x.subarray(span)).every((t) => t === task.markerToken));
    if (x.subarray(0, M).some((t) => t === 0)) notPrefix++;
  });
  assert.ok(notPrefix > 90, "positions are random, not the first M");
  // Training scores the same positions.
  const tb = task.makeBatch(new Rng(1), 4);
  for (const y of rows(tb, "targets")) assert.deepEqual(scored(y), Array.from({ length: M }, (_, i) => span + i));
  // The paper's length builds (a few examples only, to stay fast).
  const paper = new SelectiveCopying({ noiseLength: 4096, numTestExamples: 2 });
  const pb = paper.makeBatch(new Rng(1), 2);
  assert.equal(pb.inputs.length, 2 * 4128);
});

test("phonebook: the answer is the queried person's number", () => {
  const task = new Phonebook({ numTestExamples: 100 });
  const { nameLength: nl, numberLength: dl, numEntries } = task.options;
  const entry = nl + dl + 1, L = task.seqLen;
  const test = task.testSet();
  rows(test, "inputs").forEach((x, b) => {
    const y = rows(test, "targets")[b];
    const answerStart = L - dl;
    assert.deepEqual(scored(y), Array.from({ length: dl }, (_, i) => answerStart + i));
    const q0 = numEntries * entry;
    assert.equal(x[q0], task.queryToken);
    const qName = Array.from(x.subarray(q0 + 1, q0 + 1 + nl)).join();
    const book = Array.from({ length: numEntries }, (_, e) => ({
      name: Array.from(x.subarray(e * entry, e * entry + nl)).join(),
      number: Array.from(x.subarray(e * entry + nl, e * entry + nl + dl)),
      sep: x[e * entry + nl + dl],
    }));
    assert.equal(new Set(book.map((e) => e.name)).size, numEntries, "names are distinct");
    assert.ok(book.every((e) => e.sep === task.separatorToken && e.number.every((d) => d < 10)));
    const hit = book.find((e) => e.name === qName)!;
    assert.deepEqual(Array.from(y.subarray(answerStart)), hit.number);
    // Teacher forcing: the answer's digits after the first are also inputs.
    assert.deepEqual(Array.from(x.subarray(answerStart + 1)), hit.number.slice(0, dl - 1));
  });
});

test("exactMatch: every scored position right, per example", () => {
  const T = IGNORE_INDEX;
  const targets = Int32Array.from([T, 3, 4, /**/ T, T, 5, /**/ T, T, T]);
  const perfect = Int32Array.from([9, 3, 4, /**/ 9, 9, 5, /**/ 9, 9, 9]);
  assert.equal(exactMatch(perfect, targets, 3), 1);
  assert.equal(exactMatch(Int32Array.from([9, 3, 0, 9, 9, 5, 0, 0, 0]), targets, 3), 0.5);
  assert.equal(exactMatch(Int32Array.from([0, 0, 0, 0, 0, 0, 0, 0, 0]), targets, 3), 0);
  assert.throws(() => exactMatch(new Int32Array(3), Int32Array.from([T, T, T]), 3), /no example has a scored position/);
  assert.throws(() => exactMatch(new Int32Array(4), targets, 3), /predicted ids have 4 entries but targets have 9/);
  // On a task: the targets themselves score 1, a shifted answer scores 0.
  const task: SyntheticTask = getTask("induction-head", { numTestExamples: 20 });
  const t = task.testSet();
  const pred = t.targets.map((y) => (y === IGNORE_INDEX ? 0 : y));
  assert.equal(task.exactMatch(pred, t.targets), 1);
  assert.equal(task.tokenAccuracy(pred, t.targets), 1);
  assert.equal(task.exactMatch(pred.map((y) => y + 1), t.targets), 0);
});

test("unknown tasks and bad options are errors that name them", () => {
  assert.throws(() => getTask("copying"), (e: Error) => e instanceof HippoError &&
    e.message === "unknown task 'copying'; valid tasks: associative-recall, induction-head, selective-copying, phonebook");
  assert.throws(() => getTask("associative-recall", { seqLen: 10 }),
    (e: Error) => e instanceof HippoError && /associative-recall: unknown option 'seqLen'; valid options: vocabSize, inputSeqLen, numKeys/.test(e.message));
  assert.throws(() => getTask("induction-head", { vocabSize: 2 }), /induction-head: option 'vocabSize' must be an integer in \[3, \d+\], got 2/);
  assert.throws(() => getTask("selective-copying", { noiseLength: 1.5 }), /option 'noiseLength' must be an integer/);
  assert.throws(() => getTask("associative-recall", { allowDot: "yes" }), /option 'allowDot' must be true or false, got "yes"/);
  assert.throws(() => getTask("phonebook", { trainTargets: "some" }), /option 'trainTargets' must be one of 'all', 'answer', got "some"/);
  assert.throws(() => getTask("phonebook", { numNames: 3, nameLength: 1, numEntries: 4 }), /3\^1 possible names cannot give 4 distinct entries/);
  assert.throws(() => getTask("induction-head", { inputSeqLen: 3, inductionLen: 2 }), /leaves no room for a trigger/);
  // Flag strings are accepted.
  const t = getTask("associative-recall", { inputSeqLen: "20", allowDot: "true", trainTargets: "answer" });
  assert.equal(t.seqLen, 22);
  assert.throws(() => getTask("associative-recall").makeBatch(new Rng(1), 0), /batch size must be a positive integer/);
});
