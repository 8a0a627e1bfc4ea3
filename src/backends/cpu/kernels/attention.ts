/**
 * Causal attention, grouped-query: q [Bsz, L, Hq, D], k [Bsz, T, Hkv, D], v [Bsz, T, Hkv, Dv].
 * Query i of row b sits at absolute position qStart[b] + i and sees keys 0..that position.
 * Keys and values are streamed once per query position, all heads together (each cached token's
 * [Hkv, D] row is contiguous); softmax in float64 with the maximum subtracted.
 */
export function causalAttentionKernel(
  q: Float32Array, k: Float32Array, v: Float32Array, qStart: Int32Array,
  Bsz: number, L: number, T: number, Hq: number, Hkv: number, D: number, Dv: number, scale: number, out: Float32Array,
): void {
  const group = Hq / Hkv;
  const scores = new Float64Array(Hq * T);
  const max = new Float64Array(Hq);
  const sum = new Float64Array(Hq);
  const acc = new Float64Array(Hq * Dv);
  for (let b = 0; b < Bsz; b++) {
    for (let i = 0; i < L; i++) {
      const visible = Math.min(T, qStart[b] + i + 1);
      const qo = (b * L + i) * Hq * D;
      max.fill(-Infinity);
      for (let j = 0; j < visible; j++) {
        const kRow = (b * T + j) * Hkv * D;
        for (let h = 0; h < Hq; h++) {
          const ko = kRow + Math.floor(h / group) * D;
          const qh = qo + h * D;
          let s = 0;
          for (let e = 0; e < D; e++) s += q[qh + e] * k[ko + e];
          s *= scale;
          scores[h * T + j] = s;
          if (s > max[h]) max[h] = s;
        }
      }
      acc.fill(0);
      sum.fill(0);
      for (let j = 0; j < visible; j++) {
        const vRow = (b * T + j) * Hkv * Dv;
        for (let h = 0; h < Hq; h++) {
          const w = Math.exp(scores[h * T + j] - max[h]);
          sum[h] += w;
          const vo = vRow + Math.floor(h / group) * Dv;
          const ao = h * Dv;
          for (let e = 0; e < Dv; e++) acc[ao + e] += w * v[vo + e];
        }
      }
      const oo = (b * L + i) * Hq * Dv;
      for (let h = 0; h < Hq; h++) {
        for (let e = 0; e < Dv; e++) out[oo + h * Dv + e] = visible > 0 ? acc[h * Dv + e] / sum[h] : 0;
      }
    }
  }
}

/**
 * Rotary embedding on [Bsz, L, H, D]: the first `rotaryDim` dims rotate by position · base^(−2i/rotaryDim).
 * `inverse` rotates back by the same angles (RoPE's backward: the transpose of a rotation is its inverse).
 */
export function ropeKernel(
  x: Float32Array, start: Int32Array, Bsz: number, L: number, H: number, D: number,
  rotaryDim: number, base: number, positionScale: number, interleaved: boolean, out: Float32Array, inverse = false,
): void {
  out.set(x);
  const half = rotaryDim / 2;
  // Frequencies in float32, as torch computes inv_freq and the angles.
  const invFreq = new Float32Array(half);
  for (let i = 0; i < half; i++) invFreq[i] = 1 / Math.pow(base, (2 * i) / rotaryDim);
  for (let b = 0; b < Bsz; b++) {
    for (let t = 0; t < L; t++) {
      const pos = Math.fround((start[b] + t) / positionScale);
      for (let i = 0; i < half; i++) {
        const angle = Math.fround(pos * invFreq[i]);
        const c = Math.cos(angle);
        const s = inverse ? -Math.sin(angle) : Math.sin(angle);
        for (let h = 0; h < H; h++) {
          const o = ((b * L + t) * H + h) * D;
          const i1 = interleaved ? o + 2 * i : o + i;
          const i2 = interleaved ? o + 2 * i + 1 : o + i + half;
          const x1 = x[i1];
          const x2 = x[i2];
          out[i1] = x1 * c - x2 * s;
          out[i2] = x2 * c + x1 * s;
        }
      }
    }
  }
}
