import { HippoError } from "../errors.js";
import type { SequenceLM } from "../models/sequence-lm.js";
import { DTYPE_BYTES } from "../tensor/dtype.js";
import type { Tensor } from "../tensor/tensor.js";

const UNITS: Record<string, number> = {
  "": 1, b: 1, k: 1e3, kb: 1e3, m: 1e6, mb: 1e6, g: 1e9, gb: 1e9, t: 1e12, tb: 1e12,
  kib: 2 ** 10, mib: 2 ** 20, gib: 2 ** 30, tib: 2 ** 40,
};

/** "16GiB", "512 MiB", "2e9", "8G" → bytes. */
export function parseBytes(text: string, flag: string): number {
  const m = /^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*$/i.exec(text);
  const unit = m ? UNITS[m[2].toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new HippoError(`--${flag} must be a size such as 16GiB, 512MiB or 8e9 (bytes), got '${text}'`);
  const bytes = Number(m[1]) * unit;
  if (!(bytes > 0) || !Number.isFinite(bytes)) throw new HippoError(`--${flag} must be positive, got '${text}'`);
  return Math.floor(bytes);
}

const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);

/** What one layer of a kind (or the model's head: embedding, final norm, LM head) holds. */
export interface PartMemory {
  parameters: number;
  weightBytes: number;
  /** Recurrent state per sequence, f32 (conv windows, SSM states). */
  stateBytes: number;
  /** KV cache per sequence and token, f32. */
  kvBytesPerToken: number;
}

/** The memory facts of a full-depth model, composed from a model holding one or more layers of each kind. */
export interface ModelMemory {
  parameters: number;
  weightBytes: number;
  stateBytes: number;
  kvBytesPerToken: number;
  perKind: Record<string, PartMemory>;
}

function tensorsMemory(tensors: readonly (Tensor | null)[]): { parameters: number; weightBytes: number } {
  const unique = [...new Set(tensors.filter((t): t is Tensor => t !== null))];
  return { parameters: unique.reduce((n, t) => n + t.size, 0), weightBytes: unique.reduce((n, t) => n + t.size * DTYPE_BYTES[t.dtype], 0) };
}

export function modelMemory(model: SequenceLM, fullCounts: Record<string, number>): ModelMemory {
  const { parts } = model;
  const head = tensorsMemory([parts.embeddings, parts.lmHead, parts.finalNorm.weight, parts.finalNorm.bias]);
  const sums: Record<string, PartMemory & { n: number }> = {};
  for (const { norm, layer } of parts.layers) {
    const w = tensorsMemory([norm.weight, norm.bias, ...layer.weights()]);
    const s = (sums[layer.kind] ??= { parameters: 0, weightBytes: 0, stateBytes: 0, kvBytesPerToken: 0, n: 0 });
    s.parameters += w.parameters;
    s.weightBytes += w.weightBytes;
    s.stateBytes += Object.values(layer.stateShapes()).reduce((n, sh) => n + 4 * product(sh), 0);
    s.kvBytesPerToken += Object.values(layer.cacheShapesPerToken()).reduce((n, sh) => n + 4 * product(sh), 0);
    s.n++;
  }
  const perKind: Record<string, PartMemory> = {};
  const out: ModelMemory = { ...head, stateBytes: 0, kvBytesPerToken: 0, perKind };
  for (const [kind, s] of Object.entries(sums)) {
    const one: PartMemory = { parameters: s.parameters / s.n, weightBytes: s.weightBytes / s.n, stateBytes: s.stateBytes / s.n, kvBytesPerToken: s.kvBytesPerToken / s.n };
    perKind[kind] = one;
    const count = fullCounts[kind] ?? 0;
    out.parameters += count * one.parameters;
    out.weightBytes += count * one.weightBytes;
    out.stateBytes += count * one.stateBytes;
    out.kvBytesPerToken += count * one.kvBytesPerToken;
  }
  return out;
}

/** Bytes a sequence carries between tokens at `context` tokens: the fixed state plus the KV cache. */
export function carriedBytes(m: ModelMemory, context: number): number {
  return m.stateBytes + m.kvBytesPerToken * context;
}

/**
 * Largest batch of sequences at `context` tokens that fits `budget` while decoding: weights, each row's state
 * and KV cache, and each row's working activations of a step. `copies` counts how many versions of state and
 * KV cache live at once during a step (1 with in-place updates; 2 as Hippo runs now, where a step builds the
 * next state and the grown cache while the previous ones still exist).
 */
export function maxDecodeBatch(m: ModelMemory, context: number, budget: number, rowActivationBytes: number, copies: 1 | 2): number {
  const free = budget - m.weightBytes;
  if (free <= 0) return 0;
  return Math.floor(free / (copies * carriedBytes(m, context) + rowActivationBytes));
}

/**
 * Longest single prompt whose prefill fits `budget`, when a forward's activations take `bytesPerToken` per
 * prompt token (as Hippo allocates them: one layer's intermediates at a time, plus the residual stream).
 */
export function maxPrefillLength(m: ModelMemory, budget: number, bytesPerToken: number): number {
  const free = budget - m.weightBytes - m.stateBytes;
  if (free <= 0) return 0;
  return Math.floor(free / (bytesPerToken + m.kvBytesPerToken));
}
