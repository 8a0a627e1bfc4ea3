import type { CapturedStep, StepCapture, StepGraphHandle } from "../backends/step-capture.js";
import { InferenceState } from "../models/state.js";
import type { Tensor } from "../tensor/tensor.js";

/**
 * Decoding by replaying one captured step (backends with StepCapture: WebGPU). generate records the
 * first steps through the model as usual while capturing their device commands; once two consecutive
 * steps match (same kernels, parameters and sizes: the step does not depend on the position), the second
 * becomes a graph from (ids, state) to (next ids, next state) that replays in alternating directions: the
 * newest ids and state are on one side and the ones before them on the other. When a row finishes,
 * generate drops the step it ran ahead, so it needs exactly that older state — which the other side holds.
 * KV caches the backend appends to in place (attention) are one buffer on both sides: a replay writes the
 * rows' positions (when the model reads them) and appends at them; an older state ignores the entry the
 * dropped step appended. Replays stop where such a cache is full (canAdvance).
 */
export class ReplayedDecoding {
  /** Replays run so far: odd → the newest values are on the input side. */
  private replays = 0;

  private constructor(
    private readonly graph: StepGraphHandle,
    /** The captured step's inputs and outputs. */
    private readonly input: { state: InferenceState; ids: Tensor },
    private readonly output: { state: InferenceState; ids: Tensor },
    /** Whether each replay writes the rows' positions before the sampler's uniforms. */
    private readonly writesPositions: boolean,
    /** Replays that fit before the smallest cache appended in place is full (Infinity: no such cache). */
    private readonly maxReplays: number,
  ) {}

  private get newest(): { state: InferenceState; ids: Tensor } {
    return this.replays % 2 === 1 ? this.input : this.output;
  }

  /** Whether one more replay fits: its tokens' cache entries (at the newest positions) within capacity. */
  canAdvance(): boolean {
    return this.replays < this.maxReplays;
  }

  /** Records one replay that reads the newest ids and state and samples with `uniforms`; returns the read of its ids. */
  advance(uniforms: Float32Array): Promise<Float32Array | Int32Array> {
    if (!this.canAdvance()) throw new Error("ReplayedDecoding: a cache appended in place is full");
    const positions = Int32Array.from(this.input.state.positions, (p) => p + this.replays + 1);
    this.graph.replay(this.writesPositions ? [positions, uniforms] : [uniforms]);
    this.replays++;
    return this.newest.ids.read();
  }

  /**
   * Ends replaying and hands back a state as an ordinary value (the other tensors are released):
   * `latest` the newest state, else the one before it (the last replay is dropped).
   */
  release(latest: boolean): InferenceState {
    return this.end(latest, false).state;
  }

  /** Ends replaying and hands back the newest state and the ids it was sampled with (to step the model from there). */
  finish(): { state: InferenceState; ids: Tensor } {
    const { state, ids } = this.end(true, true);
    return { state, ids: ids! };
  }

  private end(latest: boolean, keepIds: boolean): { state: InferenceState; ids: Tensor | null } {
    this.graph.dispose();
    const newest = this.newest;
    const older = newest === this.input ? this.output : this.input;
    const [keep, drop] = latest ? [newest, older] : [older, newest];
    drop.state.dispose();
    drop.ids.dispose();
    if (!keepIds) keep.ids.dispose();
    // The captured step started at the input's positions; each replay moved one token on.
    const advanced = this.replays + (latest ? 1 : 0);
    const state = new InferenceState(keep.state.layers, this.input.state.positions.map((p) => p + advanced), keep.state.modelKey, keep.state.caches);
    return { state, ids: keepIds ? keep.ids : null };
  }

  dispose(): void {
    this.graph.dispose();
    for (const side of [this.input, this.output]) {
      side.state.dispose();
      side.ids.dispose();
    }
  }

  /**
   * Makes the graph of a captured step from (ids, state) to (next ids, next state) and takes those four;
   * null when the backend cannot (the caller keeps them). `writesPositions`: the step's first host write
   * is the rows' positions.
   */
  static from(
    step: CapturedStep, input: { state: InferenceState; ids: Tensor }, output: { state: InferenceState; ids: Tensor }, writesPositions: boolean,
  ): ReplayedDecoding | null {
    const pairs: [Tensor, Tensor][] = [[input.ids, output.ids]];
    const layers = input.state.layers;
    if (output.state.layers.length !== layers.length) return null;
    for (let i = 0; i < layers.length; i++) {
      const names = Object.keys(layers[i]);
      if (Object.keys(output.state.layers[i]).length !== names.length) return null;
      for (const name of names) {
        const from = layers[i][name], to = output.state.layers[i][name];
        if (!to || from.dtype !== to.dtype || from.shape.some((d, j) => d !== to.shape[j])) return null;
        pairs.push([from, to]);
      }
    }
    const graph = step.toGraph(pairs);
    if (!graph) return null;
    // Replay n appends at the input's positions + n: the entry of the furthest row must lie within axis 1.
    const capacity = Math.min(...pairs.filter((_, i) => graph.inPlace[i]).map(([t]) => (t.rank >= 2 ? t.shape[1] : 0)));
    return new ReplayedDecoding(graph, input, output, writesPositions, capacity - Math.max(...input.state.positions) - 1);
  }
}

/** Captures decode steps until two consecutive ones match, and then offers the graph (see ReplayedDecoding). */
export class StepCapturer {
  private previous: CapturedStep | null = null;
  private misses = 0;
  private capturing = false;

  /** `writesPositions`: the model uploads the rows' positions at the start of each step (CausalLM.usesPositions). */
  constructor(private readonly backend: StepCapture, private readonly writesPositions = false) {}

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
    // The host data a replay can supply: the positions (i32 per row) if the model reads them, then the uniforms.
    const expected = this.writesPositions ? [input.state.batch * 4, writeBytes] : [writeBytes];
    const usable = step !== null && step.writeBytes.length === expected.length && step.writeBytes.every((n, i) => n === expected[i]);
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
    const replay = ReplayedDecoding.from(step, input, output, this.writesPositions);
    if (!replay) this.misses = Infinity;
    return replay;
  }

  /** Ends a capture whose step failed (nothing of it is kept). */
  abandon(): void {
    if (!this.capturing) return;
    this.capturing = false;
    this.backend.endStepCapture([]);
  }

  /**
   * Starts over (the batch changed, or a full cache grew: the next steps differ from the captured ones,
   * and the first of them — a cache copied into a larger one — matches none).
   */
  reset(): void {
    this.previous = null;
    if (Number.isFinite(this.misses)) this.misses = 0;
  }
}
