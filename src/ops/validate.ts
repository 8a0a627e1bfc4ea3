import { HippoError, shapeString } from "../errors.js";
import type { Backend } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";

/** The backend all given tensors share; mixing backends is a programming error worth a clear message. */
export function backendOf(op: string, ...tensors: (Tensor | null | undefined)[]): Backend {
  let backend: Backend | null = null;
  for (const t of tensors) {
    if (!t) continue;
    t.assertAlive();
    if (backend && t.backend !== backend) {
      throw new HippoError(`${op}: tensors on different backends (${backend.name} and ${t.backend.name})`);
    }
    backend = t.backend;
  }
  if (!backend) throw new Error(`${op}: no tensor arguments`);
  return backend;
}

/** Checks a shape against an expected one; -1 in `expected` matches any size. */
export function expectShape(op: string, what: string, t: Tensor, expected: readonly number[]): void {
  const ok = t.rank === expected.length && expected.every((d, i) => d === -1 || d === t.shape[i]);
  if (!ok) {
    const want = shapeString(expected).replaceAll("-1", "*");
    throw new HippoError(`${op}: ${what} has shape ${shapeString(t.shape)}, expected ${want}`);
  }
}

export function expectFloat(op: string, what: string, t: Tensor): void {
  if (t.dtype === "i32") throw new HippoError(`${op}: ${what} must be a float tensor, got i32`);
}
