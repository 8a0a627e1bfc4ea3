import type { Backend } from "../backends/backend.js";
import { check, shapeString } from "../errors.js";
import type { LayerContext, SequenceLayer } from "../nn/layer.js";
import type { Norm } from "../nn/norm.js";
import { embedding, linear, mul, reshape, selectPositions, tensor, tidy } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import type { CausalLM, ForwardOptions, ForwardResult, ModelDescription } from "./causal-lm.js";
import { InferenceState, type LayerState } from "./state.js";

/** One pre-norm residual step: h = h + layer(norm(h)). Blocks of HF/mamba_ssm/flash_attn models are one or two of these. */
export interface ResidualLayer {
  norm: Norm;
  layer: SequenceLayer;
}

export interface SequenceLMParts {
  family: string;
  architecture: string;
  backend: Backend;
  embeddings: Tensor;
  layers: ResidualLayer[];
  finalNorm: Norm;
  /** [V, D]; the embedding table itself when tied. */
  lmHead: Tensor;
  vocabSize: number;
  dModel: number;
  /** Blocks as the checkpoint counts them (a block may hold a mixer and an MLP). */
  nBlocks: number;
  eosTokenId?: number;
  bosTokenId?: number;
  config: Record<string, unknown>;
}

/**
 * A language model as a stack of residual layers: embedding → (h + layer(norm(h)))* → final norm →
 * LM head. Every family (Mamba, Mamba-2, hybrids, Transformers, H3) is one of these with its own
 * layers, so hybrids need no new code. State: one LayerState per residual layer.
 */
export class SequenceLM implements CausalLM {
  readonly family: string;
  readonly backend: Backend;
  readonly vocabSize: number;
  readonly eosTokenId?: number;
  readonly bosTokenId?: number;

  /** Whether any layer reads the positions tensor (then each call uploads it; see SequenceLayer.usesPositions). */
  readonly usesPositions: boolean;

  /** Per layer, the names of its KV caches (an InferenceState's `caches`). */
  readonly cacheNames: readonly (readonly string[])[];

  constructor(readonly parts: SequenceLMParts) {
    this.usesPositions = parts.layers.some(({ layer }) => layer.usesPositions);
    this.cacheNames = parts.layers.map(({ layer }) => Object.keys(layer.cacheShapesPerToken()));
    this.family = parts.family;
    this.backend = parts.backend;
    this.vocabSize = parts.vocabSize;
    this.eosTokenId = parts.eosTokenId;
    this.bosTokenId = parts.bosTokenId;
  }

  /** Identifies the architecture a state belongs to (restoring into another is refused). */
  get stateKey(): string {
    const shapes = this.parts.layers.map((l) => `${l.layer.kind}${JSON.stringify(l.layer.stateShapes())}${JSON.stringify(l.layer.cacheShapesPerToken())}`);
    return `${this.family}:d${this.parts.dModel}:${shapes.join("|")}`;
  }

  initialState(batch: number): InferenceState {
    const layers = this.parts.layers.map(({ layer }): LayerState => ({
      ...Object.fromEntries(Object.entries(layer.stateShapes()).map(([k, s]) => [k, this.backend.zeros([batch, ...s])])),
      ...Object.fromEntries(Object.entries(layer.cacheShapesPerToken()).map(([k, s]) => [k, this.backend.zeros([batch, 0, ...s])])),
    }));
    return new InferenceState(layers, new Array(batch).fill(0), this.stateKey, this.cacheNames);
  }

  forward(ids: Tensor, state: InferenceState | null = null, options: ForwardOptions = {}): ForwardResult {
    check(ids.rank === 2 && ids.dtype === "i32", `forward: ids must be i32 [batch, length], got ${ids.dtype} ${shapeString(ids.shape)}`);
    const [B, L] = ids.shape;
    check(L > 0, "forward: empty sequence");
    if (state) check(state.batch === B, `forward: state has ${state.batch} rows, ids have ${B}`);
    return tidy(() => {
      const positions = state?.positions ?? new Array<number>(B).fill(0);
      const mask = options.embeddingMask;
      if (mask) {
        const D = this.parts.embeddings.shape[1];
        check(mask.rank === 3 && mask.shape[0] === B && mask.shape[1] === L && mask.shape[2] === D,
          `forward: embeddingMask must be [${B}, ${L}, ${D}], got ${shapeString(mask.shape)}`);
      }
      const { hidden, layers } = this.trunk(ids, state, positions, false, mask);
      const mode = options.logits ?? "all";
      let logits: Tensor | null = null;
      if (mode === "all") logits = linear(hidden, this.parts.lmHead);
      else if (mode === "last") logits = linear(this.lastPosition(hidden), this.parts.lmHead);
      return { logits, hidden, state: new InferenceState(layers, positions.map((p) => p + L), this.stateKey, this.cacheNames) };
    });
  }

  step(ids: Tensor, state: InferenceState): { logits: Tensor; state: InferenceState } {
    check(ids.rank === 2 && ids.shape[1] === 1 && ids.dtype === "i32", `step: ids must be i32 [batch, 1], got ${ids.dtype} ${shapeString(ids.shape)}`);
    check(state.batch === ids.shape[0], `step: state has ${state.batch} rows, ids have ${ids.shape[0]}`);
    return tidy(() => {
      const { hidden, layers } = this.trunk(ids, state, state.positions, true);
      const logits = linear(this.lastPosition(hidden), this.parts.lmHead);
      return { logits, state: new InferenceState(layers, state.positions.map((p) => p + 1), this.stateKey, this.cacheNames) };
    });
  }

  private lastPosition(hidden: Tensor): Tensor {
    const [B, L, D] = hidden.shape;
    // One position (decoding): a reshape, which keeps a pending final norm pending for the LM head to fuse.
    if (L === 1) return reshape(hidden, [B, D]);
    return selectPositions(hidden, tensor(new Int32Array(B).fill(L - 1), [B], { backend: this.backend }));
  }

  /** Embedding through the final norm; `single` selects each layer's recurrent step. */
  private trunk(
    ids: Tensor, state: InferenceState | null, positions: readonly number[], single: boolean, embeddingMask?: Tensor,
  ): { hidden: Tensor; layers: LayerState[] } {
    const positionsTensor = this.usesPositions
      ? tensor(Int32Array.from(positions), [positions.length], { backend: this.backend })
      : null;
    const ctx: LayerContext = {
      positions,
      get positionsTensor(): Tensor {
        if (!positionsTensor) throw new Error("a layer read ctx.positionsTensor without declaring usesPositions");
        return positionsTensor;
      },
    };
    let h = embedding(this.parts.embeddings, ids);
    if (embeddingMask) h = mul(h, embeddingMask);
    // A layer's output is added to the stream by the next norm (one fused add + norm where the backend has it).
    let pending: Tensor | null = null;
    const layers: LayerState[] = [];
    for (const [i, { norm, layer }] of this.parts.layers.entries()) {
      const prev = state?.layers[i] ?? null;
      const y: Tensor | null = pending;
      // Each layer in a scope of its own: its intermediates are freed as soon as it is done, so a prefill
      // holds one layer's activations at a time instead of the whole model's.
      const next: { sum: Tensor | null; y: Tensor; state: LayerState } = tidy(() => {
        const { sum, normed } = y ? norm.applyAfterAdd(h, y) : { sum: null, normed: norm.apply(h) };
        const out = single && prev ? layer.step(normed, prev, ctx) : layer.forward(normed, prev, ctx);
        return { sum, y: out.y, state: out.state };
      });
      if (y && next.sum) {
        h.dispose();
        y.dispose();
        h = next.sum;
      }
      pending = next.y;
      layers.push(next.state);
    }
    if (!pending) return { hidden: this.parts.finalNorm.apply(h), layers };
    const last = this.parts.finalNorm.applyAfterAdd(h, pending);
    h.dispose();
    pending.dispose();
    last.sum.dispose();
    return { hidden: last.normed, layers };
  }

  private allWeights(): Tensor[] {
    const { embeddings, lmHead, finalNorm, layers } = this.parts;
    const list = [embeddings, finalNorm.weight, finalNorm.bias, ...layers.flatMap((l) => [l.norm.weight, l.norm.bias, ...l.layer.weights()])];
    if (lmHead !== embeddings) list.push(lmHead);
    return [...new Set(list.filter((t): t is Tensor => t !== null))];
  }

  describe(): ModelDescription {
    const p = this.parts;
    return {
      family: p.family,
      architecture: p.architecture,
      dModel: p.dModel,
      nLayer: p.nBlocks,
      vocabSize: p.vocabSize,
      parameters: this.allWeights().reduce((n, t) => n + t.size, 0),
      layers: p.layers.map(({ layer }) => ({ kind: layer.kind, state: layer.stateShapes(), cachePerToken: layer.cacheShapesPerToken() })),
      config: p.config,
    };
  }

  dispose(): void {
    for (const t of this.allWeights()) t.dispose();
  }
}
