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
   * The step as a replayable graph: every replay first copies each pair's first tensor into its second
   * (the step's outputs into its inputs), then runs the step. Null when a pair cannot be copied whole
   * (a view, or sizes that differ). Every tensor the step touched is kept for the graph until disposed.
   */
  toGraph(copies: readonly (readonly [from: Tensor, to: Tensor])[]): StepGraphHandle | null;
}

export interface StepGraphHandle {
  /** Records one replay; `writes` replace the captured host data, in order. */
  replay(writes: readonly ArrayBufferView[]): void;
  dispose(): void;
}

export function stepCaptureOf(backend: Backend): StepCapture | null {
  const s = backend as Partial<StepCapture>;
  return typeof s.beginStepCapture === "function" && typeof s.endStepCapture === "function" ? (s as StepCapture) : null;
}
