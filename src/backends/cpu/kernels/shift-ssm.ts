/**
 * H3's shift SSM, per channel c with N state entries:
 *   s_t = shift(s_{t−1}) + B·u_t   (shift: s[n] ← s[n−1], s[0] ← 0),   y_t = C·s_t + D·u_t.
 * Its impulse response is the FIR filter k[j] = Σ_i B[i]·C[i+j] for j < N and 0 beyond, so the whole
 * sequence is a short causal convolution: N taps, computed directly (for the N of H3, 16 to 256, a direct
 * sum costs about what an FFT would, and is exact).
 *
 * Data are channels last: u, y [Bsz, L, Ch]; B, C, taps [Ch, N]; state [Bsz, Ch, N].
 */

export interface ShiftSsmDims {
  Bsz: number;
  L: number;
  Ch: number;
  N: number;
}

/** taps[c, j] = Σ_i B[c, i]·C[c, i+j] (SSKernelShift's kernel, which it computes by FFT). */
export function shiftSsmTapsKernel(B: Float32Array, C: Float32Array, Ch: number, N: number, taps: Float32Array): void {
  for (let c = 0; c < Ch; c++) {
    for (let j = 0; j < N; j++) {
      let s = 0;
      for (let i = 0; i + j < N; i++) s += B[c * N + i] * C[c * N + i + j];
      taps[c * N + j] = s;
    }
  }
}

/** Inputs up to this long are run step by step (see shiftSsmKernel). */
export const SHORT_INPUT = 4;

/** [Ch, N] → [N, Ch] in f64, so that the inner loops run over contiguous channels. */
function transposed(a: Float32Array, Ch: number, N: number, offset = 0): Float64Array {
  const out = new Float64Array(N * Ch);
  for (let c = 0; c < Ch; c++) for (let n = 0; n < N; n++) out[n * Ch + c] = a[offset + c * N + n];
  return out;
}

/**
 * Parallel mode over L steps from a carried state:
 *   y[t] = Σ_{j ≤ min(t, N−1)} k[j]·u[t−j] + D·u[t] + Σ_{n > t} C[n]·s[n−t−1]   (the last sum: the old state)
 *   s'[n] = Σ_{m ≤ min(n, L−1)} B[n−m]·u[L−1−m] + (n ≥ L ? s[n−L] : 0)
 * Short inputs (decoding steps) go through the recurrence, which costs O(L·N) per channel without the
 * O(N²) state terms above.
 */
export function shiftSsmKernel(
  u: Float32Array, taps: Float32Array, B: Float32Array, C: Float32Array, D: Float32Array | null,
  state: Float32Array | null, d: ShiftSsmDims, y: Float32Array, stateOut: Float32Array,
): void {
  const { Bsz, L, Ch, N } = d;
  if (L <= SHORT_INPUT) {
    shiftSsmRecurrenceKernel(u, B, C, D, state, d, y, stateOut);
    return;
  }
  const kT = transposed(taps, Ch, N);
  const BT = transposed(B, Ch, N);
  const CT = transposed(C, Ch, N);
  const acc = new Float64Array(Ch);
  const next = new Float64Array(N * Ch);
  for (let b = 0; b < Bsz; b++) {
    const sT = state ? transposed(state, Ch, N, b * Ch * N) : null;
    const ub = b * L * Ch;
    for (let t = 0; t < L; t++) {
      const row = ub + t * Ch;
      for (let c = 0; c < Ch; c++) acc[c] = (D ? D[c] : 0) * u[row + c];
      const J = Math.min(t, N - 1);
      for (let j = 0; j <= J; j++) {
        const src = row - j * Ch;
        const kj = j * Ch;
        for (let c = 0; c < Ch; c++) acc[c] += kT[kj + c] * u[src + c];
      }
      if (sT) {
        for (let n = t + 1; n < N; n++) {
          const cn = n * Ch, sn = (n - t - 1) * Ch;
          for (let c = 0; c < Ch; c++) acc[c] += CT[cn + c] * sT[sn + c];
        }
      }
      for (let c = 0; c < Ch; c++) y[row + c] = acc[c];
    }
    next.fill(0);
    for (let n = 0; n < N; n++) {
      const dst = n * Ch;
      const M = Math.min(n, L - 1);
      for (let m = 0; m <= M; m++) {
        const bn = (n - m) * Ch, src = ub + (L - 1 - m) * Ch;
        for (let c = 0; c < Ch; c++) next[dst + c] += BT[bn + c] * u[src + c];
      }
      if (sT && n >= L) {
        const sn = (n - L) * Ch;
        for (let c = 0; c < Ch; c++) next[dst + c] += sT[sn + c];
      }
    }
    const so = b * Ch * N;
    for (let c = 0; c < Ch; c++) for (let n = 0; n < N; n++) stateOut[so + c * N + n] = next[n * Ch + c];
  }
}

/** The recurrence itself, step by step: the reference twin of shiftSsmKernel, and its path for short inputs. */
export function shiftSsmRecurrenceKernel(
  u: Float32Array, B: Float32Array, C: Float32Array, D: Float32Array | null,
  state: Float32Array | null, d: ShiftSsmDims, y: Float32Array, stateOut: Float32Array,
): void {
  const { Bsz, L, Ch, N } = d;
  const s = new Float64Array(N);
  for (let b = 0; b < Bsz; b++) {
    for (let c = 0; c < Ch; c++) {
      const so = (b * Ch + c) * N;
      for (let n = 0; n < N; n++) s[n] = state ? state[so + n] : 0;
      for (let t = 0; t < L; t++) {
        const x = u[(b * L + t) * Ch + c];
        for (let n = N - 1; n > 0; n--) s[n] = s[n - 1] + B[c * N + n] * x;
        s[0] = B[c * N] * x;
        let out = (D ? D[c] : 0) * x;
        for (let n = 0; n < N; n++) out += C[c * N + n] * s[n];
        y[(b * L + t) * Ch + c] = out;
      }
      for (let n = 0; n < N; n++) stateOut[so + n] = s[n];
    }
  }
}
