/**
 * Op classes of the analysis: what an op-table call is *for*, from its name and the scope it ran in.
 * Scopes are set by the bench (see instrument.ts): a layer kind ("mamba2", "attention", "mlp", "h3", …)
 * while that layer runs, "<kind>/residual" for the residual add after it, and "head" for the embedding,
 * the final norm, the LM head, logits readback and sampling.
 */
export const OP_CLASSES = [
  "projection", "mlp", "attention", "kv_cache", "fft_conv", "scan", "short_conv", "norm", "elementwise", "memory",
  "embedding", "lm_head", "sampling", "readback", "gc", "overhead",
] as const;

export type OpClass = (typeof OP_CLASSES)[number];

export const CLASS_LABELS: Record<OpClass, string> = {
  projection: "projections (linear)",
  mlp: "MLP",
  attention: "attention (QKᵀ·V, RoPE)",
  kv_cache: "KV-cache append",
  fft_conv: "FFT convolution",
  scan: "scan / SSD / SSM step",
  short_conv: "short conv / shift SSM",
  norm: "norms",
  elementwise: "elementwise",
  memory: "copies and slices",
  embedding: "embedding",
  lm_head: "LM head",
  sampling: "sampling",
  readback: "logits readback",
  gc: "garbage collection",
  overhead: "outside ops (host, GPU idle)",
};

/** Colours per class, stable across plots (Tableau 20). */
export const CLASS_COLORS: Record<OpClass, string> = {
  projection: "#4e79a7", mlp: "#a0cbe8", attention: "#e15759", kv_cache: "#ff9d9a", fft_conv: "#f28e2b",
  scan: "#59a14f", short_conv: "#8cd17d", norm: "#b6992d", elementwise: "#f1ce63", memory: "#bab0ac",
  embedding: "#86bcb6", lm_head: "#499894", sampling: "#d37295", readback: "#fabfd2", gc: "#9d7660", overhead: "#79706e",
};

const BY_OP: Record<string, OpClass> = {
  linear: "projection",
  causalAttention: "attention", rope: "attention",
  writeAxis1: "kv_cache", resizeAxis1: "kv_cache",
  fftConv: "fft_conv", diagSsmConv: "fft_conv", diagSsmKernel: "fft_conv",
  selectiveScan: "scan", selectiveStateUpdate: "scan", ssdChunked: "scan", ssdStep: "scan", diagSsmStep: "scan",
  causalConv1d: "short_conv", shiftSsm: "short_conv", shiftSsmTaps: "short_conv",
  rmsNorm: "norm", layerNorm: "norm", gatedRmsNorm: "norm",
  unary: "elementwise", binary: "elementwise",
  embedding: "embedding",
  read: "readback",
  sample: "sampling",
  gc: "gc",
};

/** The layer kind a scope belongs to ("mlp/residual" → "mlp"). */
export function scopeKind(scope: string): string {
  const slash = scope.indexOf("/");
  return slash < 0 ? scope : scope.slice(0, slash);
}

export function classify(op: string, scope: string): OpClass {
  const residual = scope.endsWith("/residual");
  if (residual) return BY_OP[op] === "elementwise" ? "elementwise" : BY_OP[op] ?? "memory";
  if (scope === "mlp" && (op === "linear" || op === "unary" || op === "binary")) return "mlp";
  if (scope === "head" && op === "linear") return "lm_head";
  return BY_OP[op] ?? "memory";
}
