import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * A full garbage collection before each timed run, so that a pause owed to earlier work is not charged to
 * the run (GC caused by the run itself still is). Node exposes gc() only with --expose-gc; the flag can be
 * set at run time, and a fresh context then sees the function. Without it, this does nothing.
 */
let gc: (() => void) | null | undefined;

export function collectGarbage(): void {
  if (gc === undefined) {
    try {
      setFlagsFromString("--expose-gc");
      gc = runInNewContext("gc") as () => void;
    } catch {
      gc = null;
    }
  }
  gc?.();
}
