import type { OpProfiler } from "../backends/profiling.js";
import type { LayerContext } from "../nn/layer.js";
import type { Norm } from "../nn/norm.js";
import { add } from "../ops/index.js";
import type { SequenceLM } from "../models/sequence-lm.js";
import type { LayerState } from "../models/state.js";
import type { Tensor } from "../tensor/tensor.js";

/** The scope ops outside every layer run under: embedding, final norm, LM head, readback, sampling. */
export const HEAD_SCOPE = "head";

/**
 * Labels a model's op calls by layer kind for a profiler: each residual layer's norm and layer run under
 * its kind (e.g. "mamba2"), the residual add after it under "<kind>/residual", and the final norm and LM
 * head under "head". Works by wrapping the norm and layer objects of this model instance (nothing else
 * is touched); returns a function that removes the wrappers.
 */
export function attributeLayers(model: SequenceLM, profiler: OpProfiler): () => void {
  const undo: (() => void)[] = [];
  const wrap = <T extends object, K extends keyof T & string>(obj: T, key: K, make: (original: T[K]) => T[K]) => {
    const original = obj[key];
    (obj as Record<string, unknown>)[key] = make((original as (...a: unknown[]) => unknown).bind(obj) as T[K]);
    undo.push(() => delete (obj as Record<string, unknown>)[key]);
  };
  // A layer's output is added to the stream by the next norm (Norm.applyAfterAdd, one fused op on the GPU).
  // While attributing, the add and the norm run as two ops: the add is the previous layer's residual, the
  // norm belongs to the layer (or the head) it feeds, so per-layer counts compose.
  const splitAddNorm = (norm: Norm, producer: string) => () => (h: Tensor, y: Tensor) => {
    profiler.scope = `${producer}/residual`;
    const sum = add(h, y);
    return { sum, normed: norm.apply(sum) };
  };
  const { layers } = model.parts;
  layers.forEach(({ norm, layer }, i) => {
    const kind = layer.kind;
    wrap(norm, "apply", (apply) => (x) => {
      profiler.scope = kind;
      return apply(x);
    });
    if (i > 0) wrap(norm, "applyAfterAdd", splitAddNorm(norm, layers[i - 1].layer.kind));
    for (const mode of ["forward", "step"] as const) {
      wrap(layer, mode, (run) => (x: Tensor, state: LayerState, ctx: LayerContext) => {
        profiler.scope = kind;
        const out = run(x, state, ctx);
        profiler.scope = `${kind}/residual`;
        return out;
      });
    }
  });
  const finalNorm = model.parts.finalNorm;
  wrap(finalNorm, "apply", (apply) => (x) => {
    profiler.scope = HEAD_SCOPE;
    return apply(x);
  });
  if (layers.length > 0) wrap(finalNorm, "applyAfterAdd", splitAddNorm(finalNorm, layers[layers.length - 1].layer.kind));
  return () => {
    for (const u of undo.reverse()) u();
  };
}

/** Residual layers per kind: { mamba2: 24 } or { h3: 11, attention: 1, mlp: 12 }. */
export function layerCounts(kinds: readonly string[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const k of kinds) counts[k] = (counts[k] ?? 0) + 1;
  return counts;
}

export function modelKinds(model: SequenceLM): string[] {
  return model.parts.layers.map((l) => l.layer.kind);
}
