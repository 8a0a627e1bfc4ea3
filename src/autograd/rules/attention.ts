/** Backward rules of causal attention and rotary embedding (host arrays in, gradients out). */

import { ropeKernel } from "../../backends/cpu/kernels/attention.js";

/**
 * Backward of causalAttentionKernel: q [B, L, Hq, D], k [B, T, Hkv, D], v [B, T, Hkv, Dv], out the
 * forward's output [B, L, Hq, Dv], g its gradient. Query i of row b sees keys 0..qStart[b] + i (clipped
 * to T); query head h reads key/value head h / (Hq / Hkv). The softmax is recomputed per query (float64);
 * with P the probabilities and dP_j = g·v_j, dS_j = P_j·(dP_j − g·out), so
 *   ∂q = scale·Σ_j dS_j k_j,  ∂k_j += scale·dS_j q,  ∂v_j += P_j g.
 * ∂k and ∂v sum over queries and grouped heads in float64.
 */
export function causalAttentionBackward(
  q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, qStart: Int32Array,
  Bsz: number, L: number, T: number, Hq: number, Hkv: number, D: number, Dv: number, scale: number,
  g: Float32Array, want: { q: boolean; k: boolean; v: boolean },
): { gq: Float32Array | null; gk: Float32Array | null; gv: Float32Array | null } {
  const group = Hq / Hkv;
  const gq = want.q ? new Float32Array(q.length) : null;
  const gk64 = want.k ? new Float64Array(k.length) : null;
  const gv64 = want.v ? new Float64Array(v.length) : null;
  const scores = new Float64Array(Hq * T);
  const max = new Float64Array(Hq);
  const sum = new Float64Array(Hq);
  const dot = new Float64Array(Hq);
  const gqAcc = new Float64Array(Hq * D);
  for (let b = 0; b < Bsz; b++) {
    for (let i = 0; i < L; i++) {
      const visible = Math.min(T, qStart[b] + i + 1);
      if (visible <= 0) continue; // output fixed at 0: no gradient flows
      const qo = (b * L + i) * Hq * D;
      const oo = (b * L + i) * Hq * Dv;
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
      sum.fill(0);
      for (let j = 0; j < visible; j++) {
        for (let h = 0; h < Hq; h++) {
          const w = Math.exp(scores[h * T + j] - max[h]);
          scores[h * T + j] = w;
          sum[h] += w;
        }
      }
      for (let h = 0; h < Hq; h++) {
        let s = 0;
        for (let e = 0; e < Dv; e++) s += g[oo + h * Dv + e] * out[oo + h * Dv + e];
        dot[h] = s;
        sum[h] = 1 / sum[h];
      }
      gqAcc.fill(0);
      for (let j = 0; j < visible; j++) {
        const kRow = (b * T + j) * Hkv * D;
        const vRow = (b * T + j) * Hkv * Dv;
        for (let h = 0; h < Hq; h++) {
          const kv = Math.floor(h / group);
          const ko = kRow + kv * D;
          const vo = vRow + kv * Dv;
          const go = oo + h * Dv;
          const p = scores[h * T + j] * sum[h];
          let dp = 0;
          for (let e = 0; e < Dv; e++) dp += g[go + e] * v[vo + e];
          if (gv64) for (let e = 0; e < Dv; e++) gv64[vo + e] += p * g[go + e];
          const ds = p * (dp - dot[h]) * scale;
          if (ds === 0) continue;
          if (gq) {
            const a = h * D;
            for (let e = 0; e < D; e++) gqAcc[a + e] += ds * k[ko + e];
          }
          if (gk64) {
            const qh = qo + h * D;
            for (let e = 0; e < D; e++) gk64[ko + e] += ds * q[qh + e];
          }
        }
      }
      if (gq) for (let e = 0; e < Hq * D; e++) gq[qo + e] = gqAcc[e];
    }
  }
  return { gq, gk: gk64 ? Float32Array.from(gk64) : null, gv: gv64 ? Float32Array.from(gv64) : null };
}

/** Backward of ropeKernel: the inverse rotation (same angles) of the gradient; pass-through dims copy. */
export function ropeBackward(
  g: Float32Array, start: Int32Array, Bsz: number, L: number, H: number, D: number,
  rotaryDim: number, base: number, positionScale: number, interleaved: boolean,
): Float32Array {
  const gx = new Float32Array(g.length);
  ropeKernel(g, start, Bsz, L, H, D, rotaryDim, base, positionScale, interleaved, gx, true);
  return gx;
}
