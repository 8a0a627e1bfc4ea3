import type { ModelDescription } from "./causal-lm.js";

export interface LayerMemory {
  layer: number;
  kind: string;
  /** Fixed-size recurrent state per sequence (conv windows, SSM states), f32. */
  stateBytes: number;
  /** KV cache per sequence at the report's context length, f32 (0 for SSM and MLP layers). */
  kvCacheBytes: number;
}

export interface MemoryReport {
  layers: LayerMemory[];
  context: number;
  stateBytesPerSequence: number;
  kvCacheBytesPerSequence: number;
  /** Everything a sequence carries between tokens at `context` tokens. */
  totalBytesPerSequence: number;
  /** KV cache per sequence of a Transformer with the same width and depth (K and V of d_model per layer and token). */
  transformerKvBytes: { f32: number; f16: number };
}

const F32 = 4;
const product = (shape: number[]): number => shape.reduce((a, b) => a * b, 1);

/** Per-layer recurrent-state and KV-cache bytes at `context` tokens, against a same-shaped Transformer's KV cache. */
export function memoryReport(desc: ModelDescription, context: number): MemoryReport {
  const layers = desc.layers.map((l, i) => ({
    layer: i,
    kind: l.kind,
    stateBytes: Object.values(l.state).reduce((sum, s) => sum + product(s) * F32, 0),
    kvCacheBytes: Object.values(l.cachePerToken ?? {}).reduce((sum, s) => sum + product(s) * F32 * context, 0),
  }));
  const state = layers.reduce((s, l) => s + l.stateBytes, 0);
  const kv = layers.reduce((s, l) => s + l.kvCacheBytes, 0);
  const kvElements = 2 * desc.nLayer * desc.dModel * context;
  return {
    layers, context, stateBytesPerSequence: state, kvCacheBytesPerSequence: kv, totalBytesPerSequence: state + kv,
    transformerKvBytes: { f32: kvElements * F32, f16: kvElements * 2 },
  };
}

export function formatBytes(bytes: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = bytes;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${u === 0 ? v : v.toFixed(v >= 100 ? 0 : v >= 10 ? 1 : 2)} ${units[u]}`;
}
