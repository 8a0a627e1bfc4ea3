import { Rng } from "../../generate/rng.js";
import { check } from "../../errors.js";
import { COMMON_OPTIONS, formatOptions, resolveOptions, type ResolvedOptions, type TaskOptions } from "./options.js";
import { randInt, SyntheticTask, type Example } from "./task.js";

/**
 * Associative recall, as HazyResearch/safari defines it (src/dataloaders/synthetics.py,
 * generate_assoc_recall; H3 paper §3.1 and Appendix): a sequence of key-value pairs, then a query
 * "=> k" and the model must output the value that followed k in the context.
 *
 * Defaults are safari's (configs/dataset/icl_synthetics.yaml, ICLDataModule):
 *   vocab_size 20 (counting the two special tokens "=>" and "."), input_seq_len 40, num_keys 1,
 *   allow_dot False (the query key is always in the context), num_examples 5000 (a fixed training set),
 *   num_test_examples 500. Only the last target (the value) is scored on the test set
 *   (test_tensor[:, 1, :-1] = -100); training targets are every next token (safari leaves train
 *   targets unmasked). configs/experiment/synthetics/associative_recall/vocab_size_10.yaml is the
 *   vocabSize 10, inputSeqLen 20 variant.
 *
 * Token ids (ours; safari sorts the tokens as strings, which only permutes ids): n = vocabSize - 2
 * ordinary tokens, keys 0 .. ⌊n/2⌋-1, values ⌊n/2⌋ .. n-1, then "=>" (copy prefix) = n, "." (noop) = n+1.
 * Each example draws a fresh key → value map (values i.i.d. uniform, so two keys may share a value).
 *
 * Layout (numKeys 1): k v k v ... k v => k | v, with ⌊inputSeqLen/2⌋ pairs; the model sees everything
 * but the final v, so seqLen = 2·⌊inputSeqLen/2⌋ + 2 (42 by default) and the answer is the last target.
 */
export const ASSOCIATIVE_RECALL_OPTIONS = {
  vocabSize: { kind: "int", default: 20, min: 4, max: 1 << 20, doc: "tokens including '=>' and '.' (safari vocab_size: 20)" },
  inputSeqLen: { kind: "int", default: 40, min: 2, max: 1 << 24, doc: "length of the key-value context (safari input_seq_len: 40)" },
  numKeys: { kind: "int", default: 1, min: 1, max: 64, doc: "tokens per key (safari num_keys: 1)" },
  allowDot: {
    kind: "bool", default: false,
    doc: "query keys may be absent from the context, answered by '.' (safari allow_dot: False)",
  },
  numTrainExamples: {
    kind: "int", default: 5000, min: 0, doc: "fixed training pool; 0 = fresh examples (safari num_examples: 5000)",
  },
  trainTargets: {
    kind: "enum", default: "all", values: ["all", "answer"],
    doc: "training targets: every next token (safari) or only the answer",
  },
  ...COMMON_OPTIONS,
} as const;

export class AssociativeRecall extends SyntheticTask {
  readonly name = "associative-recall";
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly options: ResolvedOptions<typeof ASSOCIATIVE_RECALL_OPTIONS>;
  /** Id of the copy prefix "=>" that starts the query. */
  readonly queryToken: number;
  /** Id of "." (the answer to a key absent from the context, with allowDot). */
  readonly noopToken: number;
  readonly numKeyTokens: number;
  private readonly pairs: number;

  constructor(options: TaskOptions = {}) {
    const o = resolveOptions("associative-recall", ASSOCIATIVE_RECALL_OPTIONS, options);
    super({ ...o, trainTargets: o.trainTargets as "all" | "answer" });
    this.options = o;
    this.vocabSize = o.vocabSize;
    const n = o.vocabSize - 2;
    this.numKeyTokens = Math.floor(n / 2);
    this.queryToken = n;
    this.noopToken = n + 1;
    this.pairs = Math.floor(o.inputSeqLen / (o.numKeys + 1));
    check(this.pairs >= 1, `associative-recall: inputSeqLen ${o.inputSeqLen} holds no key-value pair of ${o.numKeys + 1} tokens`);
    this.seqLen = this.pairs * (o.numKeys + 1) + 1 + o.numKeys;
  }

  /** Key ids 0 .. numKeyTokens-1, value ids numKeyTokens .. vocabSize-3. */
  isKeyToken(id: number): boolean {
    return id >= 0 && id < this.numKeyTokens;
  }

  describe(): string {
    return `associative-recall (safari generate_assoc_recall): ${formatOptions(ASSOCIATIVE_RECALL_OPTIONS, this.options)}; ` +
      `seqLen ${this.seqLen}, ${this.pairs} pairs; ${this.commonDescription()}`;
  }

  tokenLabel(id: number): string {
    if (id === this.queryToken) return "=>";
    if (id === this.noopToken) return ".";
    return id < this.numKeyTokens ? `k${id}` : `v${id - this.numKeyTokens}`;
  }

  protected generate(rng: Rng): Example {
    const { numKeys, allowDot } = this.options;
    const nKey = this.numKeyTokens, nValue = this.vocabSize - 2 - nKey;
    // The per-example map: values drawn lazily, i.i.d. uniform over the value tokens (as safari's kv_map).
    // A key tuple is identified by its base-nKey code (exact below 2^53) or, beyond that, by its text.
    const code = (key: number[]): number | string =>
      nKey ** numKeys < 2 ** 53 ? key.reduce((c, t) => c * nKey + t, 0) : key.join(",");
    const kv = new Map<number | string, number>();
    const valueOf = (key: number[]) => {
      const c = code(key);
      let v = kv.get(c);
      if (v === undefined) kv.set(c, (v = nKey + randInt(rng, nValue)));
      return v;
    };
    const drawKey = () => Array.from({ length: numKeys }, () => randInt(rng, nKey));
    const full: number[] = [];
    const present: number[][] = [];
    const presentSet = new Set<number | string>();
    for (let p = 0; p < this.pairs; p++) {
      const k = drawKey();
      full.push(...k, valueOf(k));
      const c = code(k);
      if (!presentSet.has(c)) { presentSet.add(c); present.push(k); }
    }
    let q = drawKey();
    // safari (allow_dot False): a key drawn from all keys; if absent, one drawn from the keys present.
    if (!allowDot && !presentSet.has(code(q))) q = present[randInt(rng, present.length)];
    const answer = presentSet.has(code(q)) ? valueOf(q) : this.noopToken;
    full.push(this.queryToken, ...q, answer);
    return nextTokenExample(full, full.length - 2);
  }
}

/** inputs = full[0..n-1), targets = full[1..n); the answer starts at target index `answerStart`. */
export function nextTokenExample(full: number[], answerStart: number): Example {
  const input = Int32Array.from(full.slice(0, -1));
  const target = Int32Array.from(full.slice(1));
  return { input, target, answerStart };
}
