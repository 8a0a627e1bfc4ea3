import { tokenSamplerOf } from "../backends/sampling.js";
import { stepCaptureOf } from "../backends/step-capture.js";
import { check, HippoError } from "../errors.js";
import type { CausalLM } from "../models/causal-lm.js";
import { InferenceState } from "../models/state.js";
import { concat0, reshape, tensor } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import { IncrementalDecoder, type TextTokenizer } from "../tokenizer/tokenizer.js";
import { ReplayedDecoding, StepCapturer } from "./replay.js";
import { Rng } from "./rng.js";
import { DEFAULT_SAMPLING, sampleToken, validateSampling, type SamplingOptions } from "./sampling.js";
import { StopMatcher } from "./stop.js";

export interface GenerateOptions {
  maxNewTokens: number;
  sampling?: Partial<SamplingOptions>;
  /** Seed of the sampler; the same seed gives the same tokens. Default 0. */
  seed?: number;
  /** Strings that end a row's generation (not included in its text). Needs a tokenizer. */
  stop?: string[];
  tokenizer?: TextTokenizer | null;
  /** Token that ends a row; default the model's eos_token_id. null: never stop on a token. */
  eosTokenId?: number | null;
  /**
   * A state to continue from (e.g. a cached, restored prompt state): one row, shared by every prompt,
   * or one row per prompt. The prompts are then fed after the tokens that state has consumed.
   */
  state?: InferenceState;
  /**
   * Replay a captured decode step instead of running the model's code for each token, where the backend
   * can (WebGPU): consecutive steps record the same commands (attention's KV caches appended in place, the
   * positions uploaded per replay). Same tokens either way; default true.
   */
  replay?: boolean;
}

export type FinishReason = "length" | "eos" | "stop";

/** One generated token of one row, with the text it completes (held back while it may start a stop string). */
export interface GenerateStep {
  row: number;
  token: number;
  text: string;
}

export interface GenerateResult {
  /** The newly generated ids (an eos token that ended the row included, as HF generate returns it). */
  tokens: number[];
  /** Their decoding, cut before a stop string; "" without a tokenizer. */
  text: string;
  finishReason: FinishReason;
}

interface Row {
  index: number;
  history: number[];
  tokens: number[];
  decoder: IncrementalDecoder | null;
  text: string;
  emitted: number;
  finish: FinishReason | null;
}

function validatePrompts(model: CausalLM, prompts: readonly (readonly number[])[]): void {
  check(prompts.length > 0, "no prompt given");
  prompts.forEach((p, i) => {
    check(p.length > 0, `prompt ${i} is empty: give at least one token`);
    for (const id of p) {
      if (!Number.isInteger(id) || id < 0 || id >= model.vocabSize) {
        throw new HippoError(`prompt ${i}: token id ${id} is outside the vocabulary [0, ${model.vocabSize})`);
      }
    }
  });
}

/**
 * Generates continuations of several prompts (token ids, any lengths). Each prompt is prefilled once in
 * the parallel mode, then all rows decode together in the recurrent mode, one token per step; rows that
 * finish leave the batch. Yields each token as it is chosen; returns the per-row results.
 */
export async function* generate(
  model: CausalLM,
  prompts: readonly (readonly number[])[],
  options: GenerateOptions,
): AsyncGenerator<GenerateStep, GenerateResult[]> {
  validatePrompts(model, prompts);
  const { maxNewTokens } = options;
  check(Number.isInteger(maxNewTokens) && maxNewTokens > 0, `max new tokens must be a positive integer, got ${maxNewTokens}`);
  const sampling: SamplingOptions = { ...DEFAULT_SAMPLING, ...options.sampling };
  validateSampling(sampling);
  const tokenizer = options.tokenizer ?? null;
  const stops = options.stop?.length ? new StopMatcher(options.stop) : null;
  if (stops && !tokenizer) throw new HippoError("stop strings need a tokenizer (the model has none; pass --tokenizer)");
  const eos = options.eosTokenId === undefined ? model.eosTokenId : options.eosTokenId;
  const rng = new Rng(options.seed ?? 0);
  const start = options.state;
  if (start) {
    check(start.batch === 1 || start.batch === prompts.length,
      `the given state has ${start.batch} rows; expected 1 or one per prompt (${prompts.length})`);
  }

  const rows: Row[] = prompts.map((p, index) => ({
    index, history: [...p], tokens: [], text: "", emitted: 0, finish: null,
    decoder: tokenizer ? new IncrementalDecoder(tokenizer, p) : null,
  }));

  // Prefill: the parallel mode, once per group of consecutive prompts of one length (no padding masks
  // needed; one forward instead of one per row), or per prompt when continuing from a given state.
  const states: InferenceState[] = [];
  const firstLogits: Tensor[] = [];
  for (const [first, count] of prefillGroups(prompts, Boolean(start))) {
    const L = prompts[first].length;
    const ids = tensor(Int32Array.from(prompts.slice(first, first + count).flat()), [count, L], { backend: model.backend, dtype: "i32" });
    const rowState = start ? (start.batch === 1 ? start : start.rows(first, 1)) : null;
    const out = model.forward(ids, rowState, { logits: "last" });
    ids.dispose();
    out.hidden.dispose();
    if (rowState && rowState !== start) rowState.dispose();
    states.push(out.state);
    firstLogits.push(out.logits!);
  }
  // Stacked (copied) whenever it holds several rows, as per-row prefills always were: decoding starts from
  // contiguous tensors of its own (a forward's state tensors may be slices of its activations).
  const stacked = states.length > 1 || states[0].batch > 1;
  let state = stacked ? InferenceState.stack(states) : states[0];
  if (stacked) for (const s of states) s.dispose();
  let logitsTensor = firstLogits.length === 1 ? firstLogits[0] : stackLogits(firstLogits);

  let active = rows;
  // A backend that samples where the logits are (WebGPU) reads back only token ids, and decoding is pipelined:
  // step t+1 is recorded from the ids the device chose at step t before they are read, and its own read is
  // issued (which submits it) before step t's ids are awaited, so the device computes it while the host
  // handles step t's tokens and records step t+2; a row that finishes invalidates that step, which is then
  // redone for the remaining rows (with the same random numbers). No repetition penalty there: it needs the
  // history.
  const sampler = sampling.repetitionPenalty === 1 ? tokenSamplerOf(model.backend) : null;
  // Such a backend may also replay a captured step instead of running the model's code (replay.ts).
  const capture = sampler && options.replay !== false ? stepCaptureOf(model.backend) : null;
  const capturer = capture ? new StepCapturer(capture, model.usesPositions === true) : null;
  let replay: ReplayedDecoding | null = null;
  const draw = (n: number) => Float32Array.from({ length: n }, () => (sampling.temperature > 0 ? rng.nextFloat() : 0));
  let chosen: Tensor | null = null;
  let ahead: Ahead | null = null;
  // The read of `chosen` when it was issued ahead (the step before recorded it).
  let chosenRead: Promise<Float32Array | Int32Array> | null = null;
  // A read whose step was dropped still settles; its result (or a lost device's error) is not wanted.
  const dropRead = (read: Promise<unknown>) => void read.catch(() => undefined);
  try {
    if (sampler) {
      chosen = sampler.sampleTokens(logitsTensor, sampling, draw(active.length));
      logitsTensor.dispose();
    }
    for (let step = 0; step < maxNewTokens; step++) {
      let tokens: number[];
      if (sampler) {
        // Reading submits what is recorded (this step; already done when it was recorded ahead).
        const read = chosenRead ?? chosen!.read();
        chosenRead = null;
        if (step + 1 < maxNewTokens) {
          const rngState = rng.getState();
          if (replay && !replay.canAdvance()) {
            // A cache appended in place is full: step the model from the newest state (the cache grows).
            ({ state, ids: chosen } = replay.finish());
            replay = null;
            capturer?.reset();
          }
          if (replay) {
            ahead = { replayed: true, rng: rngState, read: replay.advance(draw(active.length)) };
          } else {
            capturer?.begin();
            let next: { logits: Tensor; state: InferenceState };
            let nextChosen: Tensor;
            const uniforms = draw(active.length);
            try {
              const ids = reshape(chosen!, [active.length, 1]);
              next = model.step(ids, state);
              ids.dispose();
              nextChosen = sampler.sampleTokens(next.logits, sampling, uniforms);
              next.logits.dispose();
            } catch (err) {
              capturer?.abandon();
              throw err;
            }
            replay = capturer?.end({ state, ids: chosen! }, { state: next.state, ids: nextChosen }, uniforms.byteLength) ?? null;
            const nextRead = nextChosen.read();
            // A replay owns the step's ids and states from here on.
            ahead = replay ? { replayed: true, rng: rngState, read: nextRead } : { replayed: false, state: next.state, chosen: nextChosen, rng: rngState, read: nextRead };
            if (replay) chosen = null;
          }
        }
        tokens = Array.from(await read);
        chosen?.dispose();
        chosen = null;
      } else {
        const logits = await logitsTensor.readFloat32();
        logitsTensor.dispose();
        const V = logits.length / active.length;
        tokens = active.map((row, r) => sampleToken(logits.subarray(r * V, (r + 1) * V), row.history, sampling, rng));
      }
      for (let r = 0; r < active.length; r++) {
        const row = active[r];
        const token = tokens[r];
        row.tokens.push(token);
        row.history.push(token);
        // The end-of-sequence token ends the row; its own text ("<|endoftext|>") is not part of the output.
        const text = token === eos ? "" : advanceText(row, token, stops);
        if (token === eos) row.finish = "eos";
        else if (row.finish === null && row.tokens.length >= maxNewTokens) row.finish = "length";
        yield { row: row.index, token, text: row.finish ? text + flushText(row) : text };
      }
      const remaining = active.filter((r) => r.finish === null);
      if (remaining.length === 0) break;
      if (ahead && remaining.length === active.length) {
        if (!ahead.replayed) {
          state.dispose();
          state = ahead.state;
          chosen = ahead.chosen;
        }
        chosenRead = ahead.read;
        ahead = null;
        continue;
      }
      if (ahead) {
        if (!ahead.replayed) {
          ahead.state.dispose();
          ahead.chosen.dispose();
        }
        dropRead(ahead.read);
        rng.setState(ahead.rng);
      }
      if (replay) {
        // Back to stepping the model: from the state before the dropped step (or the last one, if none was run ahead).
        state = replay.release(ahead === null);
        replay = null;
        capturer?.reset();
      }
      ahead = null;
      if (remaining.length < active.length) {
        const kept = InferenceState.stack(remaining.map((r) => state.rows(active.indexOf(r), 1)));
        state.dispose();
        state = kept;
        active = remaining;
      }
      const ids = tensor(Int32Array.from(active.map((r) => r.tokens[r.tokens.length - 1])), [active.length, 1], { backend: model.backend, dtype: "i32" });
      const next = model.step(ids, state);
      ids.dispose();
      state.dispose();
      state = next.state;
      if (sampler) {
        chosen = sampler.sampleTokens(next.logits, sampling, draw(active.length));
        next.logits.dispose();
      } else logitsTensor = next.logits;
    }
  } finally {
    // While replaying, `state` is the replay's input state, which the replay disposes.
    if (replay) replay.dispose();
    else state.dispose();
    chosen?.dispose();
    if (chosenRead) dropRead(chosenRead);
    if (ahead) {
      if (!ahead.replayed) {
        ahead.state.dispose();
        ahead.chosen.dispose();
      }
      dropRead(ahead.read);
    }
  }
  return rows.map((r) => ({ tokens: r.tokens, text: r.text, finishReason: r.finish ?? "length" }));
}

/** A step run ahead of its ids' read: through the model (its own state and ids), or a replay (replay.ts). */
type Ahead =
  | { replayed: false; state: InferenceState; chosen: Tensor; rng: number[]; read: Promise<Float32Array | Int32Array> }
  | { replayed: true; rng: number[]; read: Promise<Float32Array | Int32Array> };

/**
 * Tokens one batched prefill forward takes at most (rows × prompt length): beyond it the activations of a
 * batch of long prompts would be many times one prompt's, so long prompts go one at a time.
 */
export const PREFILL_GROUP_TOKENS = 8192;

/**
 * The prefill forwards as [first row, rows]: runs of consecutive prompts of one length, each at most
 * PREFILL_GROUP_TOKENS tokens (at least one row); one row each when continuing from a given state.
 */
export function prefillGroups(prompts: readonly (readonly number[])[], perRow: boolean): [number, number][] {
  const groups: [number, number][] = [];
  for (let i = 0; i < prompts.length;) {
    const L = prompts[i].length;
    let n = 1;
    while (!perRow && i + n < prompts.length && prompts[i + n].length === L && (n + 1) * L <= PREFILL_GROUP_TOKENS) n++;
    groups.push([i, n]);
    i += n;
  }
  return groups;
}

function stackLogits(parts: Tensor[]): Tensor {
  const out = concat0(parts);
  for (const p of parts) p.dispose();
  return out;
}

/** Appends a token's text to the row, ends the row at a stop string, and returns the newly safe text. */
function advanceText(row: Row, token: number, stops: StopMatcher | null): string {
  if (!row.decoder) return "";
  row.text += row.decoder.push(token);
  if (stops) {
    const at = stops.find(row.text);
    if (at >= 0) {
      row.text = row.text.slice(0, at);
      row.finish = "stop";
      return takeText(row, row.text.length);
    }
    return takeText(row, row.text.length - stops.holdBack(row.text));
  }
  return takeText(row, row.text.length);
}

function flushText(row: Row): string {
  if (!row.decoder) return "";
  if (row.finish !== "stop") row.text += row.decoder.flush();
  return takeText(row, row.text.length);
}

function takeText(row: Row, upTo: number): string {
  if (upTo <= row.emitted) return "";
  const piece = row.text.slice(row.emitted, upTo);
  row.emitted = upTo;
  return piece;
}

/** Runs `generate` to the end and returns the per-row results. */
export async function generateAll(
  model: CausalLM, prompts: readonly (readonly number[])[], options: GenerateOptions,
): Promise<GenerateResult[]> {
  const it = generate(model, prompts, options);
  for (;;) {
    const next = await it.next();
    if (next.done) return next.value;
  }
}
