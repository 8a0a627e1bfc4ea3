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

/** Gated RMSNorm (Mamba-2): v = y·silu(z); each group of `groupSize` channels is RMS-normalised; times w. */
export function gatedRmsNormKernel(
  y: Float32Array, z: Float32Array, w: Float32Array, groupSize: number, eps: number, out: Float32Array,
): void {
  for (let o = 0; o < y.length; o += groupSize) {
    let ss = 0;
    for (let i = 0; i < groupSize; i++) {
      const zi = z[o + i];
      const v = y[o + i] * (zi / (1 + Math.exp(-zi)));
      out[o + i] = v;
      ss += v * v;
    }
    const inv = 1 / Math.sqrt(ss / groupSize + eps);
    const wo = o % w.length;
    for (let i = 0; i < groupSize; i++) out[o + i] = out[o + i] * inv * w[wo + i];
  }
}
