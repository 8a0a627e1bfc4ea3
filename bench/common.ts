// Helpers shared by the bench/ scripts: flag parsing that exits with the script's usage, random token ids.
import type { Rng } from "../src/generate/rng.js";

export interface ArgHelpers {
  fail(message: string): never;
  positiveInt(flag: string, value: string): number;
  intList(flag: string, value: string): number[];
}

/** Flag helpers whose errors print `<tool>: <message>`, then the usage, and exit with status 2. */
export function argHelpers(tool: string, usage: string): ArgHelpers {
  const fail = (message: string): never => {
    process.stderr.write(`${tool}: ${message}\n${usage}\n`);
    process.exit(2);
  };
  const positiveInt = (flag: string, value: string): number => {
    const n = Number(value);
    if (!Number.isInteger(n) || n <= 0) fail(`--${flag} must be a positive integer, got '${value}'`);
    return n;
  };
  const intList = (flag: string, value: string): number[] => {
    const items = value.split(",").map((s) => s.trim()).filter((s) => s.length > 0);
    if (items.length === 0) fail(`--${flag} needs at least one value`);
    return items.map((s) => positiveInt(flag, s));
  };
  return { fail, positiveInt, intList };
}

export function randomIds(rng: Rng, n: number, vocab: number): Int32Array {
  return Int32Array.from({ length: n }, () => Math.floor(rng.nextFloat() * vocab));
}
