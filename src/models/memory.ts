import type { ModelDescription } from "./causal-lm.js";

export interface LayerMemory {
  layer: number;
  kind: string;
  /** Recurrent state per sequence, f32. */
  stateBytes: number;
}

export interface MemoryReport {
  layers: LayerMemory[];
  stateBytesPerSequence: number;
  context: number;
  /** KV cache per sequence of a Transformer with the same width and depth, at `context` tokens. */
  transformerKvBytes: { f32: number; f16: number };
}

/**
 * Recurrent-state bytes per layer against the KV cache a Transformer of the same width and depth
 * (K and V of d_model each, per layer, per token) would hold at `context` tokens.
 */
export function memoryReport(desc: ModelDescription, context: number): MemoryReport {
  const layers = desc.layers.map((l, i) => ({
    layer: i,
    kind: l.kind,
    stateBytes: Object.values(l.state).reduce((sum, shape) => sum + shape.reduce((a, b) => a * b, 1) * 4, 0),
  }));
  const kvElements = 2 * desc.nLayer * desc.dModel * context;
  return {
    layers,
    stateBytesPerSequence: layers.reduce((s, l) => s + l.stateBytes, 0),
    context,
    transformerKvBytes: { f32: kvElements * 4, f16: kvElements * 2 },
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
