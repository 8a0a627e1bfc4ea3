import type { Backend } from "./backend.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * An optional backend capability: recording one decode step's device commands and replaying them, so a
 * step costs the device calls alone instead of the model's JavaScript (WebGPU decoding is bound by the
 * host's recording at small batches).
 */
export interface StepCapture {
  /** Starts capturing the commands recorded from now on (they still run). */
  beginStepCapture(): void;
  /**
   * Ends the capture once `outputs` hold their values. Null when the step cannot be replayed (it read
   * data back, or the backend was profiling).
   */
  endStepCapture(outputs: readonly Tensor[]): CapturedStep | null;
}

export interface CapturedStep {
  /**
   * Whether `other` ran the same kernels with the same parameters, grids and buffer sizes (its buffers may
   * differ): two consecutive steps that match do not depend on the position, so one can stand for all.
   */
  matches(other: CapturedStep): boolean;
  /** Byte lengths of the host data the step wrote, in order (a replay takes fresh data of these lengths). */
  readonly writeBytes: readonly number[];
  /**
   * The step as a replayable graph. The captured step read each pair's first tensor and wrote its second
   * (ids and state in, next ids and next state out); replays alternate directions: odd replays read the
   * second tensors and write the first, even ones the captured way — so the newest values are always on
   * one side and the ones before them on the other, with no copies. A pair of two tensors of one buffer
   * is a KV cache the step appended to in place (see Backend.writeAxis1): every replay appends to it, at
   * the positions it is given. Null when that cannot be done (a view, sizes that differ, a step that
   * writes one of its other inputs). Every buffer the step touched is kept for the graph until disposed.
   */
  toGraph(pairs: readonly (readonly [input: Tensor, output: Tensor])[]): StepGraphHandle | null;
}

export interface StepGraphHandle {
  /** Per pair given to toGraph: whether it is a cache appended in place (then its axis 1 bounds the replays). */
  readonly inPlace: readonly boolean[];
  /** Records one replay (see toGraph for its direction); `writes` replace the captured host data, in order. */
  replay(writes: readonly ArrayBufferView[]): void;
  dispose(): void;
}

export function stepCaptureOf(backend: Backend): StepCapture | null {
  const s = backend as Partial<StepCapture>;
  return typeof s.beginStepCapture === "function" && typeof s.endStepCapture === "function" ? (s as StepCapture) : null;
}
