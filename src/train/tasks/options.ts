import { HippoError } from "../../errors.js";

/**
 * Declared options of a synthetic task: each has a kind, a default and a one-line doc. Values may come
 * from code (numbers, booleans) or from command-line flags (strings); both are checked the same way.
 */
export type OptionSpec =
  | { kind: "int"; default: number; min: number; max?: number; doc: string }
  | { kind: "bool"; default: boolean; doc: string }
  | { kind: "enum"; default: string; values: readonly string[]; doc: string };

export type OptionSpecs = Record<string, OptionSpec>;

/** The resolved value type of a spec table. */
export type ResolvedOptions<S extends OptionSpecs> = {
  [K in keyof S]: S[K] extends { kind: "int" } ? number : S[K] extends { kind: "bool" } ? boolean : string;
};

export type TaskOptions = Record<string, unknown>;

/** Checks `given` against `specs` and fills in defaults; errors name the task and the option. */
export function resolveOptions<S extends OptionSpecs>(task: string, specs: S, given: TaskOptions = {}): ResolvedOptions<S> {
  const names = Object.keys(specs);
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(given)) {
    if (!(key in specs)) {
      throw new HippoError(`${task}: unknown option '${key}'; valid options: ${names.join(", ")}`);
    }
  }
  for (const [key, spec] of Object.entries(specs)) {
    const raw = given[key];
    out[key] = raw === undefined ? spec.default : parseValue(task, key, spec, raw);
  }
  return out as ResolvedOptions<S>;
}

function parseValue(task: string, key: string, spec: OptionSpec, raw: unknown): unknown {
  const bad = (want: string) => new HippoError(`${task}: option '${key}' must be ${want}, got ${JSON.stringify(raw)}`);
  switch (spec.kind) {
    case "int": {
      const n = typeof raw === "number" ? raw : typeof raw === "string" && /^\s*[+-]?\d+\s*$/.test(raw) ? Number(raw) : NaN;
      const range = spec.max === undefined ? `an integer >= ${spec.min}` : `an integer in [${spec.min}, ${spec.max}]`;
      if (!Number.isSafeInteger(n) || n < spec.min || (spec.max !== undefined && n > spec.max)) throw bad(range);
      return n;
    }
    case "bool":
      if (raw === true || raw === "true" || raw === "1") return true;
      if (raw === false || raw === "false" || raw === "0") return false;
      throw bad("true or false");
    case "enum":
      if (typeof raw === "string" && spec.values.includes(raw)) return raw;
      throw bad(`one of ${spec.values.map((v) => `'${v}'`).join(", ")}`);
  }
}

/** `key=value` pairs of the resolved options, in declaration order, for describe(). */
export function formatOptions(specs: OptionSpecs, values: Record<string, unknown>): string {
  return Object.keys(specs).map((k) => `${k}=${String(values[k])}`).join(" ");
}

/** Options every task has: seeds, held-out set size, training-pool size, which targets training scores. */
export const COMMON_OPTIONS = {
  seed: { kind: "int", default: 0, min: 0, doc: "seed of the fixed training pool (safari ICLDataModule seed: 0)" },
  testSeed: {
    kind: "int", default: 1_000_003, min: 0,
    doc: "seed of the held-out test set: a stream separate from training (training examples equal to a test example are rejected)",
  },
  numTestExamples: { kind: "int", default: 500, min: 1, doc: "held-out examples (safari icl_synthetics num_test_examples: 500)" },
} as const satisfies OptionSpecs;
