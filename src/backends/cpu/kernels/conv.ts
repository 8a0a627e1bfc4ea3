import { silu } from "./elementwise.js";

/**
 * Depthwise causal conv over time, channels last. x [B, L, C], w [C, K], state [B, K-1, C] holds the
 * K-1 inputs that precede x. Output t = bias + sum_j w[c, j] * input[t - (K-1) + j]. Returns the new
 * state: the last K-1 inputs of (state ++ x).
 */
export function causalConv1dKernel(
  x: Float32Array, Bsz: number, L: number, C: number,
  w: Float32Array, K: number, bias: Float32Array | null, state: Float32Array | null, activation: "silu" | null,
  out: Float32Array, stateOut: Float32Array,
): void {
  const S = K - 1;
  // Input at time t (t may be negative: from the state) for batch b, channel c.
  for (let b = 0; b < Bsz; b++) {
    const xb = b * L * C;
    const sb = b * S * C;
    const inputAt = (t: number, c: number): number =>
      t >= 0 ? x[xb + t * C + c] : state ? state[sb + (S + t) * C + c] : 0;
    for (let t = 0; t < L; t++) {
      const o = xb + t * C;
      for (let c = 0; c < C; c++) {
        let acc = bias ? bias[c] : 0;
        const wc = c * K;
        for (let j = 0; j < K; j++) {
          const ti = t - S + j;
          acc += w[wc + j] * (ti >= 0 ? x[xb + ti * C + c] : inputAt(ti, c));
        }
        out[o + c] = activation === "silu" ? silu(acc) : acc;
      }
    }
    for (let s = 0; s < S; s++) {
      const t = L - S + s;
      for (let c = 0; c < C; c++) stateOut[sb + s * C + c] = inputAt(t, c);
    }
  }
}
