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

/**
 * Per-head copies of the discretised parameters as contiguous f64 rows over the N modes, plus scratch for
 * complex coefficients (w) and the running state (s).
 */
class ModeRows {
  readonly ar: Float64Array;
  readonly ai: Float64Array;
  readonly br: Float64Array;
  readonly bi: Float64Array;
  readonly cr: Float64Array;
  readonly ci: Float64Array;
  readonly wr: Float64Array;
  readonly wi: Float64Array;
  readonly sr: Float64Array;
  readonly si: Float64Array;

  constructor(readonly N: number) {
    [this.ar, this.ai, this.br, this.bi, this.cr, this.ci, this.wr, this.wi, this.sr, this.si] =
      Array.from({ length: 10 }, () => new Float64Array(N));
  }

  setHead(ssm: DiagSsmHost, h: number): void {
    const o = h * this.N;
    this.ar.set(ssm.dAr.subarray(o, o + this.N));
    this.ai.set(ssm.dAi.subarray(o, o + this.N));
    this.br.set(ssm.dBr.subarray(o, o + this.N));
    this.bi.set(ssm.dBi.subarray(o, o + this.N));
    this.cr.set(ssm.Cr.subarray(o, o + this.N));
    this.ci.set(ssm.Ci.subarray(o, o + this.N));
  }
}

// The two loops below are what the diagonal SSM costs beyond the FFT. Each mode is a chain of dependent
// complex multiplies; four modes are kept in registers at a time so the CPU overlaps their chains
// (about 1.3× faster than one mode at a time, 2× faster than all modes through memory).

/** z[j] += 2·Re(Σ_n w_n·dA_n^j) for j < T, w taken from (m.wr, m.wi): a Vandermonde sum by repeated multiplication. */
function addVandermonde(m: ModeRows, T: number, z: Float64Array): void {
  const { N, ar, ai, wr, wi } = m;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    let r0 = wr[n], i0 = wi[n], r1 = wr[n + 1], i1 = wi[n + 1], r2 = wr[n + 2], i2 = wi[n + 2], r3 = wr[n + 3], i3 = wi[n + 3];
    const a0 = ar[n], b0 = ai[n], a1 = ar[n + 1], b1 = ai[n + 1], a2 = ar[n + 2], b2 = ai[n + 2], a3 = ar[n + 3], b3 = ai[n + 3];
    for (let j = 0; j < T; j++) {
      z[j] += 2 * (r0 + r1 + r2 + r3);
      let t = r0 * a0 - i0 * b0; i0 = r0 * b0 + i0 * a0; r0 = t;
      t = r1 * a1 - i1 * b1; i1 = r1 * b1 + i1 * a1; r1 = t;
      t = r2 * a2 - i2 * b2; i2 = r2 * b2 + i2 * a2; r2 = t;
      t = r3 * a3 - i3 * b3; i3 = r3 * b3 + i3 * a3; r3 = t;
    }
  }
  for (; n < N; n++) {
    let r = wr[n], i = wi[n];
    const a = ar[n], b = ai[n];
    for (let j = 0; j < T; j++) {
      z[j] += 2 * r;
      const t = r * a - i * b;
      i = r * b + i * a;
      r = t;
    }
  }
}

/** s ← dA^T·s + Σ_j dA^{T−1−j}·dB·x[j] for every mode (Horner: one complex multiply-add per input). */
function advanceState(m: ModeRows, x: Float64Array, T: number): void {
  const { N, ar, ai, br, bi, sr, si } = m;
  let n = 0;
  for (; n + 4 <= N; n += 4) {
    let r0 = sr[n], i0 = si[n], r1 = sr[n + 1], i1 = si[n + 1], r2 = sr[n + 2], i2 = si[n + 2], r3 = sr[n + 3], i3 = si[n + 3];
    const a0 = ar[n], b0 = ai[n], c0 = br[n], d0 = bi[n], a1 = ar[n + 1], b1 = ai[n + 1], c1 = br[n + 1], d1 = bi[n + 1];
    const a2 = ar[n + 2], b2 = ai[n + 2], c2 = br[n + 2], d2 = bi[n + 2], a3 = ar[n + 3], b3 = ai[n + 3], c3 = br[n + 3], d3 = bi[n + 3];
    for (let j = 0; j < T; j++) {
      const xj = x[j];
      let t = r0 * a0 - i0 * b0 + c0 * xj; i0 = r0 * b0 + i0 * a0 + d0 * xj; r0 = t;
      t = r1 * a1 - i1 * b1 + c1 * xj; i1 = r1 * b1 + i1 * a1 + d1 * xj; r1 = t;
      t = r2 * a2 - i2 * b2 + c2 * xj; i2 = r2 * b2 + i2 * a2 + d2 * xj; r2 = t;
      t = r3 * a3 - i3 * b3 + c3 * xj; i3 = r3 * b3 + i3 * a3 + d3 * xj; r3 = t;
    }
    sr[n] = r0; si[n] = i0; sr[n + 1] = r1; si[n + 1] = i1; sr[n + 2] = r2; si[n + 2] = i2; sr[n + 3] = r3; si[n + 3] = i3;
  }
  for (; n < N; n++) {
    let r = sr[n], i = si[n];
    const a = ar[n], b = ai[n], c = br[n], d = bi[n];
    for (let j = 0; j < T; j++) {
      const t = r * a - i * b + c * x[j];
      i = r * b + i * a + d * x[j];
      r = t;
    }
    sr[n] = r;
    si[n] = i;
  }
}

/** Head h's kernel taps K[0..T) = 2·Re(Σ_n C·dB·dA^l): the Vandermonde sum, powers by repeated multiplication. */
function headTaps(m: ModeRows, T: number, out: Float64Array): void {
  const { N, cr, ci, br, bi, wr, wi } = m;
  for (let n = 0; n < N; n++) {
    wr[n] = cr[n] * br[n] - ci[n] * bi[n];
    wi[n] = cr[n] * bi[n] + ci[n] * br[n];
  }
  out.fill(0, 0, T);
  addVandermonde(m, T, out);
}

/** The kernels [H, L] as f32. */
export function diagSsmKernelKernel(ssm: DiagSsmHost, L: number, out: Float32Array): void {
  const row = new Float64Array(L);
  const m = new ModeRows(ssm.N);
  for (let h = 0; h < ssm.H; h++) {
    m.setHead(ssm, h);
    headTaps(m, L, row);
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
 *   s ← dA^Tc·s + Σ_j dA^{Tc−1−j}·dB·x[j]
 * `withOutput` skips the first line when the carried state is known to be zero.
 */
function passState(m: ModeRows, st: Float64Array, so: number, x: Float64Array, Tc: number, z: Float64Array, withOutput: boolean): void {
  const { N, ar, ai, cr, ci, sr, si, wr, wi } = m;
  for (let n = 0; n < N; n++) {
    sr[n] = st[so + 2 * n];
    si[n] = st[so + 2 * n + 1];
  }
  if (withOutput) {
    for (let n = 0; n < N; n++) {
      // w = C·dA·s
      const car = cr[n] * ar[n] - ci[n] * ai[n], cai = cr[n] * ai[n] + ci[n] * ar[n];
      wr[n] = car * sr[n] - cai * si[n];
      wi[n] = car * si[n] + cai * sr[n];
    }
    addVandermonde(m, Tc, z);
  }
  advanceState(m, x, Tc);
  for (let n = 0; n < N; n++) {
    st[so + 2 * n] = sr[n];
    st[so + 2 * n + 1] = si[n];
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
  const modes = Array.from({ length: HB }, () => new ModeRows(N));
  for (let h0 = 0; h0 < H; h0 += HB) {
    const hb = Math.min(HB, H - h0);
    for (let i = 0; i < hb; i++) {
      modes[i].setHead(ssm, h0 + i);
      headTaps(modes[i], T, taps);
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
              passState(modes[i], st, ((i * P + d1) * P + d2) * N * 2, x, Tc, z, carried);
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
