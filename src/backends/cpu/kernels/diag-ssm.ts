import { fftSizeFor, headBlockSize, HeadBlockRows, SpectralConvolver, type GatedConvDims, type GatedConvInputs } from "./long-conv.js";

/**
 * The diagonal (S4D) SSM of each head h, N complex modes, discretised in f64:
 *   s_t = dA ⊙ s_{t−1} + dB · x_t,   y_t = 2·Re(Σ_n C_n s_t,n)
 * (the conjugate half of the modes is implied by the factor 2, as in S4D). Its convolution kernel is
 * the Vandermonde sum K[l] = 2·Re(Σ_n C_n dB_n dA_n^l).
 */
export interface DiagSsmHost {
  H: number;
  N: number;
  /** [H·N] each: real and imaginary parts. */
  dAr: Float64Array;
  dAi: Float64Array;
  dBr: Float64Array;
  dBi: Float64Array;
  Cr: Float64Array;
  Ci: Float64Array;
}

/**
 * Discretises continuous-time parameters (SSKernelDiag): dt = exp(logDt[h]), dtA = dt·A;
 * bilinear: dA = (1 + dtA/2) / (1 − dtA/2), dB = dt·B / (1 − dtA/2); zoh: dA = exp(dtA), dB = B·(exp(dtA) − 1) / A.
 * A, B, C are [H, N, 2] (real, imag).
 */
export function discretizeDiagSsm(
  logDt: Float32Array, A: Float32Array, B: Float32Array, C: Float32Array, H: number, N: number, disc: "bilinear" | "zoh",
): DiagSsmHost {
  const out: DiagSsmHost = {
    H, N,
    dAr: new Float64Array(H * N), dAi: new Float64Array(H * N),
    dBr: new Float64Array(H * N), dBi: new Float64Array(H * N),
    Cr: new Float64Array(H * N), Ci: new Float64Array(H * N),
  };
  for (let h = 0; h < H; h++) {
    const dt = Math.exp(logDt[h]);
    for (let n = 0; n < N; n++) {
      const i = h * N + n;
      const ar = A[2 * i], ai = A[2 * i + 1], br = B[2 * i], bi = B[2 * i + 1];
      const xr = dt * ar, xi = dt * ai; // dtA
      let dAr: number, dAi: number, gr: number, gi: number; // dB = g · B
      if (disc === "bilinear") {
        // 1 / (1 − dtA/2)
        const denR = 1 - xr / 2, denI = -xi / 2;
        const m = denR * denR + denI * denI;
        const invR = denR / m, invI = -denI / m;
        const numR = 1 + xr / 2, numI = xi / 2;
        dAr = numR * invR - numI * invI;
        dAi = numR * invI + numI * invR;
        gr = dt * invR;
        gi = dt * invI;
      } else {
        const e = Math.exp(xr);
        dAr = e * Math.cos(xi);
        dAi = e * Math.sin(xi);
        // (exp(dtA) − 1) / A
        const nr = dAr - 1, ni = dAi;
        const m = ar * ar + ai * ai;
        gr = (nr * ar + ni * ai) / m;
        gi = (ni * ar - nr * ai) / m;
      }
      out.dAr[i] = dAr;
      out.dAi[i] = dAi;
      out.dBr[i] = gr * br - gi * bi;
      out.dBi[i] = gr * bi + gi * br;
      out.Cr[i] = C[2 * i];
      out.Ci[i] = C[2 * i + 1];
    }
  }
  return out;
}

/** Head h's kernel taps K[0..T) by the Vandermonde sum, each mode's powers by repeated multiplication. */
export function diagSsmTaps(ssm: DiagSsmHost, h: number, T: number, out: Float64Array): void {
  out.fill(0, 0, T);
  for (let n = 0; n < ssm.N; n++) {
    const i = h * ssm.N + n;
    const ar = ssm.dAr[i], ai = ssm.dAi[i];
    // p = C·dB·dA^l
    let pr = ssm.Cr[i] * ssm.dBr[i] - ssm.Ci[i] * ssm.dBi[i];
    let pi = ssm.Cr[i] * ssm.dBi[i] + ssm.Ci[i] * ssm.dBr[i];
    for (let l = 0; l < T; l++) {
      out[l] += 2 * pr;
      const t = pr * ar - pi * ai;
      pi = pr * ai + pi * ar;
      pr = t;
    }
  }
}

/** The kernels [H, L] as f32. */
export function diagSsmKernelKernel(ssm: DiagSsmHost, L: number, out: Float32Array): void {
  const row = new Float64Array(L);
  for (let h = 0; h < ssm.H; h++) {
    diagSsmTaps(ssm, h, L, row);
    for (let l = 0; l < L; l++) out[h * L + l] = row[l];
  }
}

/** State layout: [B, H, P, P, N, 2] — one complex state vector per convolved channel (h, d1, d2). */
function stateOffset(d: GatedConvDims, N: number, b: number, h: number, d1: number, d2: number): number {
  return ((((b * d.H + h) * d.P + d1) * d.P + d2) * N) * 2;
}

/**
 * Free response of the carried state over a chunk, then the state after it. For each mode:
 *   z[j] += 2·Re(C·dA^{j+1}·s)        (what the state alone contributes to output j)
 *   s ← dA^Tc·s + Σ_j dA^{Tc−1−j}·dB·x[j]   (Horner: one multiply-add per input)
 * `withOutput` skips the first line when the carried state is known to be zero.
 */
function passState(
  ssm: DiagSsmHost, h: number, st: Float64Array, so: number, x: Float64Array, Tc: number, z: Float64Array, withOutput: boolean,
): void {
  for (let n = 0; n < ssm.N; n++) {
    const i = h * ssm.N + n;
    const ar = ssm.dAr[i], ai = ssm.dAi[i], br = ssm.dBr[i], bi = ssm.dBi[i];
    let sr = st[so + 2 * n], si = st[so + 2 * n + 1];
    if (withOutput) {
      // w = C·dA·s
      const cr = ssm.Cr[i], ci = ssm.Ci[i];
      const car = cr * ar - ci * ai, cai = cr * ai + ci * ar;
      let wr = car * sr - cai * si, wi = car * si + cai * sr;
      for (let j = 0; j < Tc; j++) {
        z[j] += 2 * wr;
        const t = wr * ar - wi * ai;
        wi = wr * ai + wi * ar;
        wr = t;
      }
    }
    for (let j = 0; j < Tc; j++) {
      const t = sr * ar - si * ai + br * x[j];
      si = sr * ai + si * ar + bi * x[j];
      sr = t;
    }
    st[so + 2 * n] = sr;
    st[so + 2 * n + 1] = si;
  }
}

/**
 * The diagonal SSM as a long convolution with state passing. The sequence is cut into chunks of at most
 * `chunk` steps; within a chunk the SSM is an FFT convolution with its first T kernel taps, the state
 * carried from earlier chunks adds its free response, and the state is advanced to the chunk's end.
 * Memory is O(T) per head whatever L is; one chunk (L ≤ chunk) is one plain FFT convolution.
 * Returns outputs gated as in long-conv.ts and the final state [B, H, P, P, N, 2].
 */
export function diagSsmConvKernel(
  ssm: DiagSsmHost, inp: GatedConvInputs, d: GatedConvDims, D: Float32Array | null,
  state: Float32Array | null, chunk: number, y: Float32Array, stateOut: Float32Array,
): void {
  const { B, L, H, P } = d;
  const N = ssm.N;
  if (state) stateOut.set(state);
  else stateOut.fill(0);
  if (L === 0) return;
  const T = Math.min(L, chunk);
  const conv = new SpectralConvolver(fftSizeFor(T));
  const HB = headBlockSize(P, H);
  const rows = new HeadBlockRows(HB * P, T, inp.v !== null, inp.q !== null);
  const bins = conv.plan.bins;
  const kRe = Array.from({ length: HB }, () => new Float64Array(bins));
  const kIm = Array.from({ length: HB }, () => new Float64Array(bins));
  const taps = new Float64Array(T);
  const x = new Float64Array(T);
  const z = new Float64Array(T);
  // f64 copy of the states of one (batch row, head block), updated chunk by chunk.
  const st = new Float64Array(HB * P * P * N * 2);
  for (let h0 = 0; h0 < H; h0 += HB) {
    const hb = Math.min(HB, H - h0);
    for (let i = 0; i < hb; i++) {
      diagSsmTaps(ssm, h0 + i, T, taps);
      conv.spectrum(taps, T, kRe[i], kIm[i]);
    }
    for (let b = 0; b < B; b++) {
      const base = stateOffset(d, N, b, h0, 0, 0);
      const span = hb * P * P * N * 2;
      for (let k = 0; k < span; k++) st[k] = stateOut[base + k];
      for (let t0 = 0; t0 < L; t0 += T) {
        const Tc = Math.min(T, L - t0);
        rows.load(inp, d, b, h0, hb, t0, Tc);
        const carried = state !== null || t0 > 0;
        for (let i = 0; i < hb; i++) {
          const h = h0 + i;
          const skip = D ? D[h] : 0;
          for (let d1 = 0; d1 < P; d1++) {
            for (let d2 = 0; d2 < P; d2++) {
              rows.product(i, P, d1, d2, Tc, x);
              conv.convolve(x, Tc, kRe[i], kIm[i], z);
              for (let j = 0; j < Tc; j++) z[j] += skip * x[j];
              passState(ssm, h, st, ((i * P + d1) * P + d2) * N * 2, x, Tc, z, carried);
              rows.accumulate(i, P, d1, d2, Tc, z);
            }
          }
        }
        rows.store(y, d, b, h0, hb, t0, Tc);
      }
      for (let k = 0; k < span; k++) stateOut[base + k] = st[k];
    }
  }
}

/**
 * The recurrence, token by token (O(L·N) per channel, the state in f64 throughout): the decoding step
 * for L = 1, and the reference twin of diagSsmConvKernel for any L.
 */
export function diagSsmRecurrenceKernel(
  ssm: DiagSsmHost, inp: GatedConvInputs, d: GatedConvDims, D: Float32Array | null,
  state: Float32Array | null, y: Float32Array, stateOut: Float32Array,
): void {
  const { B, L, H, P } = d;
  const N = ssm.N;
  const C = H * P;
  const st = new Float64Array(B * H * P * P * N * 2);
  if (state) st.set(state);
  const acc = new Float64Array(P);
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const row = (b * L + t) * C;
      for (let h = 0; h < H; h++) {
        acc.fill(0);
        for (let d1 = 0; d1 < P; d1++) {
          for (let d2 = 0; d2 < P; d2++) {
            const xv = inp.u[row + h * P + d1] * (inp.v ? inp.v[row + h * P + d2] : 1);
            const so = stateOffset(d, N, b, h, d1, d2);
            let out = (D ? D[h] : 0) * xv;
            for (let n = 0; n < N; n++) {
              const i = h * N + n;
              const sr = st[so + 2 * n], si = st[so + 2 * n + 1];
              const nr = ssm.dAr[i] * sr - ssm.dAi[i] * si + ssm.dBr[i] * xv;
              const ni = ssm.dAr[i] * si + ssm.dAi[i] * sr + ssm.dBi[i] * xv;
              st[so + 2 * n] = nr;
              st[so + 2 * n + 1] = ni;
              out += 2 * (ssm.Cr[i] * nr - ssm.Ci[i] * ni);
            }
            acc[d2] += inp.q ? inp.q[row + h * P + d1] * out : out;
          }
        }
        for (let d2 = 0; d2 < P; d2++) y[row + h * P + d2] = acc[d2];
      }
    }
  }
  for (let k = 0; k < st.length; k++) stateOut[k] = st[k];
}
