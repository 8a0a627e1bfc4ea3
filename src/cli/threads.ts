import { HippoError } from "../errors.js";
import os from "node:os";
import { setCpuThreads } from "../backends/registry.js";
import { intFlag } from "./args.js";

/** The --threads line of a command's help, its description starting at `column`. */
export function threadsHelp(column: number): string {
  return "  --threads <n>".padEnd(column) + `CPU kernel threads (default: all cores, here ${os.availableParallelism()}; 1 = no workers)`;
}

/** Applies --threads to the CPU backend (whichever backend the command uses); returns the count in effect. */
export function applyThreadsFlag(value: unknown): number {
  const n = intFlag(value, "threads", os.availableParallelism());
  if (n < 1) throw new HippoError(`--threads must be at least 1, got ${n}`);
  return setCpuThreads(n);
}
