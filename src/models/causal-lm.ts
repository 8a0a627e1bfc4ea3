import type { Backend } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import type { InferenceState } from "./state.js";

export interface ForwardOptions {
  /** 'all': logits at every position [B, L, V]; 'last': only the last position [B, V] (prefill). */
  logits?: "all" | "last" | "none";
  /**
   * Training only: [B, L, D] factors the token embeddings are multiplied by before the first layer
   * (embedding dropout: 0 or 1/(1 − p) each); the shape is checked.
   */
  embeddingMask?: Tensor;
}

export interface ForwardResult {
  /** [B, L, V], [B, V] or null, per ForwardOptions.logits. */
  logits: Tensor | null;
  /** Final hidden states after the last norm, [B, L, D]. */
  hidden: Tensor;
  state: InferenceState;
}

/** What generation, the CLI and benchmarks need from any language model family. */
export interface CausalLM {
  readonly family: string;
  readonly backend: Backend;
  readonly vocabSize: number;
  readonly eosTokenId?: number;
  readonly bosTokenId?: number;
  /**
   * Whether forward and step read the rows' positions (attention): each call then uploads them (i32
   * [batch]) as its first host data, which a replayed decode step supplies anew (generate/replay.ts).
   */
  readonly usesPositions?: boolean;
  /** Parallel mode over whole sequences (i32 ids [B, L]), continuing from `state` when given. */
  forward(ids: Tensor, state?: InferenceState | null, options?: ForwardOptions): ForwardResult;
  /** Recurrent mode: one token per row (i32 ids [B, 1]) → logits [B, V] and the advanced state. */
  step(ids: Tensor, state: InferenceState): { logits: Tensor; state: InferenceState };
  /** An empty state (no tokens consumed) for `batch` rows. */
  initialState(batch: number): InferenceState;
  /** Human-readable description: layer kinds, widths, per-layer state shapes. */
  describe(): ModelDescription;
  dispose(): void;
}

export interface LayerDescription {
  kind: string;
  /** Fixed-size recurrent state per sequence: name → shape without the batch axis. */
  state: Record<string, number[]>;
  /** State that grows by one entry per token (KV cache): name → shape of one token's entry. */
  cachePerToken?: Record<string, number[]>;
}

export interface ModelDescription {
  family: string;
  architecture: string;
  dModel: number;
  nLayer: number;
  vocabSize: number;
  parameters: number;
  layers: LayerDescription[];
  config: Record<string, unknown>;
}
