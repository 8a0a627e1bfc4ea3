import type { CapturedStep, StepCapture, StepGraphHandle } from "../backends/step-capture.js";
import { InferenceState } from "../models/state.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * Decoding by replaying one captured step (backends with StepCapture: WebGPU). generate records the
 * first steps through the model as usual while capturing their device commands; once two consecutive
 * steps match (same kernels, parameters and sizes: the step does not depend on the position — no
 * attention layer, whose key count grows), the second becomes a graph whose inputs are the step's ids
 * and state and whose outputs are the next ids and state. Each replay first copies the outputs of the
 * previous one into the inputs, then runs the step: afterwards the inputs hold the state the replayed
 * step started from and the outputs the state after it. When a row finishes, generate drops the step
 * it ran ahead, so it needs exactly that older state — which the inputs hold.
 */
export class ReplayedDecoding {
  /** Replays run so far: the inputs hold the state `replays` steps after the captured one's. */
  private replays = 0;

  private constructor(
    private readonly graph: StepGraphHandle,
    /** The captured step's inputs (the graph copies into them) and outputs (it writes them). */
    private readonly input: { state: InferenceState; ids: Tensor },
    private readonly output: { state: InferenceState; ids: Tensor },
  ) {}

  /** Records one replay that reads the latest ids and state and samples with `uniforms`; returns the read of its ids. */
  advance(uniforms: Float32Array): Promise<Float32Array | Int32Array> {
    this.graph.replay([uniforms]);
    this.replays++;
    return this.output.ids.read();
  }

  /**
   * Ends replaying and hands back a state as an ordinary value (the other tensors are released):
   * `latest` the state after the last replay, else the one it started from (the last replay is dropped).
   */
  release(latest: boolean): InferenceState {
    this.graph.dispose();
    const keep = latest ? this.output : this.input;
    const drop = latest ? this.input : this.output;
    drop.state.dispose();
    drop.ids.dispose();
    keep.ids.dispose();
    // Both sides' positions are those of the captured step; every replay moved them one token on.
    return new InferenceState(keep.state.layers, keep.state.positions.map((p) => p + this.replays), keep.state.modelKey);
  }

  dispose(): void {
    this.graph.dispose();
    for (const side of [this.input, this.output]) {
      side.state.dispose();
      side.ids.dispose();
    }
  }

  /**
   * Makes a graph of a captured step from (ids, state) to (next ids, next state) and takes those four;
   * null when the backend cannot copy them whole (the caller keeps them).
   */
  static from(step: CapturedStep, input: { state: InferenceState; ids: Tensor }, output: { state: InferenceState; ids: Tensor }): ReplayedDecoding | null {
    const copies: [Tensor, Tensor][] = [[output.ids, input.ids]];
    const layers = input.state.layers;
    if (output.state.layers.length !== layers.length) return null;
    for (let i = 0; i < layers.length; i++) {
      const names = Object.keys(layers[i]);
      if (Object.keys(output.state.layers[i]).length !== names.length) return null;
      for (const name of names) {
        const to = layers[i][name], from = output.state.layers[i][name];
        if (!from || from.dtype !== to.dtype || from.shape.some((d, j) => d !== to.shape[j])) return null;
        copies.push([from, to]);
      }
    }
    const graph = step.toGraph(copies);
    return graph ? new ReplayedDecoding(graph, input, output) : null;
  }
}

/** Captures decode steps until two consecutive ones match, and then offers the graph (see ReplayedDecoding). */
export class StepCapturer {
  private previous: CapturedStep | null = null;
  private misses = 0;
  private capturing = false;

  constructor(private readonly backend: StepCapture) {}

  /** Whether steps are still worth capturing (a step that depends on the position never matches). */
  get active(): boolean {
    return this.misses < 2;
  }

  begin(): void {
    if (!this.active) return;
    this.backend.beginStepCapture();
    this.capturing = true;
  }

  /**
   * Ends the capture of a step from (ids, state) to (next ids, next state) that wrote `writeBytes` of host
   * data (the sampler's uniforms); a ReplayedDecoding taking those four when it matched the step before.
   */
  end(input: { state: InferenceState; ids: Tensor }, output: { state: InferenceState; ids: Tensor }, writeBytes: number): ReplayedDecoding | null {
    if (!this.capturing) return null;
    this.capturing = false;
    const step = this.backend.endStepCapture([output.ids, ...output.state.layers.flatMap((l) => Object.values(l))]);
    const usable = step !== null && step.writeBytes.length === 1 && step.writeBytes[0] === writeBytes;
    if (!usable) {
      this.previous = null;
      this.misses++;
      return null;
    }
    const previous = this.previous;
    this.previous = step;
    if (!previous) return null;
    if (!previous.matches(step)) {
      this.misses++;
      return null;
    }
    this.previous = null;
    const replay = ReplayedDecoding.from(step, input, output);
    if (!replay) this.misses = Infinity;
    return replay;
  }

  /** Starts over (the batch changed: the next steps differ from the captured ones). */
  reset(): void {
    this.previous = null;
  }
}
