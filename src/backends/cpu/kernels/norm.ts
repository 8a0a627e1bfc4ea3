/** RMSNorm over the last axis (rows of width D): y = x / sqrt(mean(x²) + eps) * w. */
export function rmsNormKernel(x: Float32Array, w: Float32Array, D: number, eps: number, out: Float32Array): void {
  const rows = x.length / D;
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[o + i] * x[o + i];
    const inv = 1 / Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) out[o + i] = x[o + i] * inv * w[i];
  }
}

/** LayerNorm over the last axis: (x - mean) / sqrt(var + eps) * w + b (biased variance, as torch). */
export function layerNormKernel(
  x: Float32Array, w: Float32Array, b: Float32Array | null, D: number, eps: number, out: Float32Array,
): void {
  const rows = x.length / D;
  for (let r = 0; r < rows; r++) {
    const o = r * D;
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[o + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) {
      const d = x[o + i] - mean;
      v += d * d;
    }
    const inv = 1 / Math.sqrt(v / D + eps);
    for (let i = 0; i < D; i++) out[o + i] = (x[o + i] - mean) * inv * w[i] + (b ? b[i] : 0);
  }
}
