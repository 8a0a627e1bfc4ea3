import { Rng } from "../../generate/rng.js";
import { check } from "../../errors.js";
import { nextTokenExample } from "./associative-recall.js";
import { COMMON_OPTIONS, formatOptions, resolveOptions, type ResolvedOptions, type TaskOptions } from "./options.js";
import { randInt, SyntheticTask, type Example } from "./task.js";

/**
 * Phonebook lookup: a list of (name, phone number) entries, then a query name; the model must output
 * that person's number. NVIDIA's "An Empirical Study of Mamba-based Language Models" (Waleffe et al.
 * 2024) evaluates it on pretrained LMs, after Jelassi et al. 2024 ("Repeat After Me"), with natural-
 * language names and 10-digit numbers in text prompts; neither trains on a token-level version, so this
 * is our token-level form of the same task, for training small models from scratch:
 *
 *   name₁ digits₁ ; name₂ digits₂ ; … nameₙ digitsₙ ; ? name_q | digits_q
 *
 * Names are `nameLength` tokens (2: first and last name) from `numNames` name tokens, distinct within a
 * book; numbers are `numberLength` uniform digits (10, as a US phone number); the query name is one of the
 * book's, uniformly. The answer (scored on the test set) is the query's `numberLength` digits.
 * Defaults: 20 entries (seqLen 272), CPU-sized; raise `numEntries` for longer contexts.
 *
 * Token ids: digits 0-9, name tokens 10 .. 10+numNames-1, then ";" (end of entry) and "?" (query).
 */
export const PHONEBOOK_OPTIONS = {
  numEntries: { kind: "int", default: 20, min: 1, max: 1 << 20, doc: "entries in the book (CPU default 20)" },
  numNames: { kind: "int", default: 100, min: 1, max: 1 << 20, doc: "name tokens to draw names from" },
  nameLength: { kind: "int", default: 2, min: 1, max: 64, doc: "tokens per name (first and last: 2)" },
  numberLength: { kind: "int", default: 10, min: 1, max: 64, doc: "digits per phone number (10)" },
  numTrainExamples: { kind: "int", default: 0, min: 0, doc: "fixed training pool; 0 = fresh examples" },
  trainTargets: {
    kind: "enum", default: "answer", values: ["all", "answer"], doc: "training targets: only the queried number, or every next token",
  },
  ...COMMON_OPTIONS,
} as const;

const DIGITS = 10;

export class Phonebook extends SyntheticTask {
  readonly name = "phonebook";
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly options: ResolvedOptions<typeof PHONEBOOK_OPTIONS>;
  readonly separatorToken: number;
  readonly queryToken: number;

  constructor(options: TaskOptions = {}) {
    const o = resolveOptions("phonebook", PHONEBOOK_OPTIONS, options);
    super({ ...o, trainTargets: o.trainTargets as "all" | "answer" });
    this.options = o;
    check(o.numNames ** o.nameLength >= o.numEntries,
      `phonebook: ${o.numNames}^${o.nameLength} possible names cannot give ${o.numEntries} distinct entries`);
    this.separatorToken = DIGITS + o.numNames;
    this.queryToken = this.separatorToken + 1;
    this.vocabSize = this.queryToken + 1;
    const entry = o.nameLength + o.numberLength + 1;
    this.seqLen = o.numEntries * entry + 1 + o.nameLength + o.numberLength - 1;
  }

  describe(): string {
    return `phonebook (after Waleffe et al. 2024 / Jelassi et al. 2024, token-level): ${formatOptions(PHONEBOOK_OPTIONS, this.options)}; ` +
      `vocab ${this.vocabSize}, seqLen ${this.seqLen}; ${this.commonDescription()}`;
  }

  tokenLabel(id: number): string {
    if (id < DIGITS) return String(id);
    if (id === this.separatorToken) return ";";
    if (id === this.queryToken) return "?";
    return `n${id - DIGITS}`;
  }

  protected generate(rng: Rng): Example {
    const { numEntries, numNames, nameLength, numberLength } = this.options;
    const names: number[][] = [], numbers: number[][] = [];
    const seen = new Set<string>();
    while (names.length < numEntries) {
      const name = Array.from({ length: nameLength }, () => DIGITS + randInt(rng, numNames));
      const key = name.join(",");
      if (seen.has(key)) continue;
      seen.add(key);
      names.push(name);
      numbers.push(Array.from({ length: numberLength }, () => randInt(rng, DIGITS)));
    }
    const full: number[] = [];
    for (let e = 0; e < numEntries; e++) full.push(...names[e], ...numbers[e], this.separatorToken);
    const q = randInt(rng, numEntries);
    full.push(this.queryToken, ...names[q], ...numbers[q]);
    return nextTokenExample(full, full.length - 1 - numberLength);
  }
}
