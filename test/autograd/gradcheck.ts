import assert from "node:assert/strict";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import { Tape } from "../../src/autograd/tape.js";
import type { Tensor } from "../../src/tensor/tensor.js";

/** Deterministic uniform values in [-scale, scale) (a small LCG: tests need no quality, only repeatability). */
export function randomValues(n: number, seed: number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  let s = (seed * 2654435761) >>> 0 || 1;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    out[i] = ((s / 2 ** 32) * 2 - 1) * scale;
  }
  return out;
}

export function param(backend: GradBackend, shape: number[], seed: number, scale = 1, offset = 0): Tensor {
  const values = randomValues(shape.reduce((a, b) => a * b, 1), seed, scale).map((v) => v + offset);
  return backend.upload(values, shape, "f32");
}

export interface GradcheckOptions {
  /** Finite-difference step. */
  step?: number;
  /** Allowed relative L2 error of each input's gradient. */
  tolerance?: number;
  /** Elements checked per input (spread evenly); all when the input is smaller. */
  samples?: number;
}

/**
 * Compares the tape's gradients of Σ r·f() (r a fixed random projection) with central finite differences
 * in every watched input. f must recompute from the inputs' current storage (perturbed in place here).
 */
export async function gradcheck(backend: GradBackend, inputs: Record<string, Tensor>, f: () => Tensor, options: GradcheckOptions = {}): Promise<void> {
  const { step = 3e-3, tolerance = 1e-3, samples = 48 } = options;
  const tape = new Tape();
  tape.watch(...Object.values(inputs));
  backend.tape = tape;
  let out: Tensor;
  try {
    out = f();
  } finally {
    backend.tape = null;
  }
  const seed = randomValues(out.size, 99);
  const analytic = await tape.backward(out, Object.values(inputs), seed);
  const objective = (): number => {
    const y = f().storage as Float32Array;
    let s = 0;
    for (let i = 0; i < y.length; i++) s += seed[i] * y[i];
    return s;
  };
  for (const [name, t] of Object.entries(inputs)) {
    const data = t.storage as Float32Array;
    const grad = analytic.get(t)!;
    const stride = Math.max(1, Math.floor(data.length / samples));
    let diff = 0, norm = 0;
    for (let i = 0; i < data.length; i += stride) {
      const keep = data[i];
      data[i] = keep + step;
      const plus = objective();
      data[i] = keep - step;
      const minus = objective();
      data[i] = keep;
      const numeric = (plus - minus) / (2 * step);
      diff += (grad[i] - numeric) ** 2;
      norm += numeric ** 2;
    }
    const rel = Math.sqrt(diff) / Math.max(Math.sqrt(norm), 1e-6);
    if (process.env.GRADCHECK_VERBOSE) console.log(`gradcheck ${name}: ${rel.toExponential(2)}`);
    assert.ok(rel < tolerance, `gradient of '${name}' ${t.toString()}: relative L2 error ${rel.toExponential(2)} vs finite differences (tolerance ${tolerance})`);
  }
}
