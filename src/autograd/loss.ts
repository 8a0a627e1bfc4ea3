import { check, HippoError, shapeString } from "../errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { GradBackend } from "./grad-backend.js";
import { hostF32, hostI32 } from "./host.js";

/** Targets equal to this are not scored (torch's ignore_index). */
export const IGNORE_INDEX = -100;

export interface CrossEntropyResult {
  /** Mean over scored positions, a [1] tensor (differentiable). */
  loss: Tensor;
  /** Positions scored. */
  count: number;
  /** Argmax prediction per position, for accuracy. */
  predictions: Int32Array;
}

/**
 * Mean cross-entropy of logits [..., V] against i32 targets [...] (pre-shifted: target t is the label
 * of logits at t), positions with IGNORE_INDEX skipped — torch.nn.functional.cross_entropy.
 */
export function crossEntropy(logits: Tensor, targets: Tensor): CrossEntropyResult {
  const backend = logits.backend;
  if (!(backend instanceof GradBackend)) throw new HippoError(`crossEntropy: logits must be on the training backend, got ${backend.name}`);
  const V = logits.shape[logits.rank - 1];
  const rows = logits.size / V;
  check(targets.dtype === "i32" && targets.size === rows,
    `crossEntropy: targets must be i32 with one label per logits row (${rows}), got ${targets.dtype} ${shapeString(targets.shape)}`);
  const x = hostF32(logits);
  const t = hostI32(targets);
  const probs = new Float32Array(x.length);
  const predictions = new Int32Array(rows);
  let total = 0;
  let count = 0;
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let max = -Infinity, arg = 0;
    for (let v = 0; v < V; v++) if (x[o + v] > max) { max = x[o + v]; arg = v; }
    predictions[r] = arg;
    const label = t[r];
    if (label === IGNORE_INDEX) continue;
    check(label >= 0 && label < V, `crossEntropy: target ${label} at position ${r} is outside the vocabulary [0, ${V})`);
    let sum = 0;
    for (let v = 0; v < V; v++) sum += Math.exp(x[o + v] - max);
    const logZ = max + Math.log(sum);
    for (let v = 0; v < V; v++) probs[o + v] = Math.exp(x[o + v] - logZ);
    total += logZ - x[o + label];
    count++;
  }
  const loss = backend.fromHost(Float32Array.of(count > 0 ? total / count : 0), [1]);
  backend.record("crossEntropy", [logits, targets], [loss], ([g]) => {
    const scale = count > 0 ? g![0] / count : 0;
    const gx = new Float32Array(x.length);
    for (let r = 0; r < rows; r++) {
      const label = t[r];
      if (label === IGNORE_INDEX) continue;
      const o = r * V;
      for (let v = 0; v < V; v++) gx[o + v] = probs[o + v] * scale;
      gx[o + label] -= scale;
    }
    return [gx, null];
  });
  return { loss, count, predictions };
}
