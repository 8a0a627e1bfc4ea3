import { realFftPlan } from "../../backends/cpu/kernels/fft.js";
import { discretizeDiagSsm, type DiagSsmHost } from "../../backends/cpu/kernels/diag-ssm.js";
import { fftSizeFor, type GatedConvDims, type GatedConvInputs } from "../../backends/cpu/kernels/long-conv.js";
import { SHORT_INPUT } from "../../backends/cpu/kernels/shift-ssm.js";

/**
 * Backward rules of H3's and S4D's sequence ops: the gated long convolution (fftConv), the diagonal SSM's
 * kernel (diagSsmKernel), the diagonal SSM as a convolution with state passing (diagSsmConv), and the
 * shift SSM (shiftSsmTaps, shiftSsm).
 *
 * Complex gradients: for a real loss f and a complex quantity w = a + ib, ḡ(w) = ∂f/∂a + i·∂f/∂b. For
 * w = φ(z) holomorphic, ḡ(z) = ḡ(w)·conj(φ'(z)); for f = Re(c·w), ḡ(w) = conj(c).
 */

// ---- gated long convolution ----------------------------------------------------------------------

export interface GatedWant {
  u: boolean;
  v: boolean;
  q: boolean;
  D: boolean;
  kernel: boolean;
}

export interface GatedGrads {
  gu: Float32Array | null;
  gv: Float32Array | null;
  gq: Float32Array | null;
  gD: Float32Array | null;
  /** [H, L] gradient of the first L kernel taps (f64; taps at or past L get none). */
  gk: Float64Array | null;
}

/**
 * Extra terms of a convolution that also carries SSM state (diagSsmConv with an initial state, or with a
 * gradient on its final state). Called once per (batch row, head, d1, d2) convolved channel.
 */
interface StateHook {
  /** Adds the carried state's free response to z (needed only for the gradient of q). */
  free(b: number, h: number, d1: number, d2: number, z: Float64Array): void;
  /** Given the channel's input x and output gradient gz: adds to gx (when given) and accumulates SSM grads. */
  backward(b: number, h: number, d1: number, d2: number, x: Float64Array, gz: Float64Array, gx: Float64Array | null): void;
}

/**
 * Reverse of the gated causal convolution (long-conv.ts): per (b, h, d1, d2), with x = u[d1]·v[d2],
 * z = k ∗ x + D·x and y[d2] = Σ_d1 q[d1]·z:
 *   gz = q[d1]·gy[d2]   gx = k ⋆ gz + D·gz (correlation)   gk[j] += Σ_t gz[t]·x[t − j]   gD += ⟨gz, x⟩
 *   gq[d1] += gy[d2]·z   gu[d1] += gx·v[d2]   gv[d2] += gx·u[d1]
 * Correlations go through the real FFT of the forward's size (2L − 1 ≤ n, so nothing wraps around); the
 * kernel's gradient is accumulated as a spectrum over batch rows and channels, one inverse per head.
 * `kernel` holds T ≤ L taps per head ([H, T]).
 */
function gatedConvBackward(
  inp: GatedConvInputs, d: GatedConvDims, kernel: ArrayLike<number>, T: number, D: Float32Array | null,
  gy: Float32Array | null, want: GatedWant, hook: StateHook | null,
): GatedGrads {
  const { B, L, H, P } = d;
  const C = H * P;
  const size = B * L * C;
  const gu = want.u ? new Float32Array(size) : null;
  const gv = want.v && inp.v ? new Float32Array(size) : null;
  const gq = want.q && inp.q ? new Float32Array(size) : null;
  const gD = want.D && D ? new Float64Array(H) : null;
  const gk = want.kernel ? new Float64Array(H * L) : null;
  if (L === 0) return { gu, gv, gq, gD: gD ? Float32Array.from(gD) : null, gk };
  const n = fftSizeFor(L);
  const plan = realFftPlan(n);
  const bins = plan.bins;
  // Kernel spectra per head.
  const kRe = new Float64Array(H * bins), kIm = new Float64Array(H * bins);
  const buf = new Float64Array(n);
  for (let h = 0; h < H; h++) {
    buf.fill(0);
    for (let j = 0; j < T; j++) buf[j] = kernel[h * T + j];
    plan.forward(buf, kRe.subarray(h * bins, (h + 1) * bins), kIm.subarray(h * bins, (h + 1) * bins));
  }
  const gkRe = gk ? new Float64Array(H * bins) : null, gkIm = gk ? new Float64Array(H * bins) : null;
  // Channel-major f64 rows of one batch row.
  const UT = new Float64Array(C * L), VT = inp.v ? new Float64Array(C * L) : null, QT = inp.q ? new Float64Array(C * L) : null;
  const GY = new Float64Array(C * L);
  const GU = gu ? new Float64Array(C * L) : null, GV = gv ? new Float64Array(C * L) : null, GQ = gq ? new Float64Array(C * L) : null;
  const x = new Float64Array(L), gz = new Float64Array(L), z = new Float64Array(L), gx = new Float64Array(L);
  const xr = new Float64Array(bins), xi = new Float64Array(bins), zr = new Float64Array(bins), zi = new Float64Array(bins);
  const tr = new Float64Array(bins), ti = new Float64Array(bins);
  const needGx = gu !== null || gv !== null;
  const needZ = GQ !== null;
  const hasGy = gy !== null;

  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const base = (b * L + t) * C;
      for (let c = 0; c < C; c++) {
        UT[c * L + t] = inp.u[base + c];
        if (VT) VT[c * L + t] = inp.v![base + c];
        if (QT) QT[c * L + t] = inp.q![base + c];
        GY[c * L + t] = hasGy ? gy![base + c] : 0;
      }
    }
    GU?.fill(0);
    GV?.fill(0);
    GQ?.fill(0);
    for (let h = 0; h < H; h++) {
      const ko = h * bins;
      const skip = D ? D[h] : 0;
      for (let d1 = 0; d1 < P; d1++) {
        const cu = (h * P + d1) * L;
        for (let d2 = 0; d2 < P; d2++) {
          const cv = (h * P + d2) * L;
          for (let t = 0; t < L; t++) {
            x[t] = VT ? UT[cu + t] * VT[cv + t] : UT[cu + t];
            gz[t] = QT ? QT[cu + t] * GY[cv + t] : GY[cv + t];
          }
          if (hasGy) {
            if (gD) {
              let s = 0;
              for (let t = 0; t < L; t++) s += gz[t] * x[t];
              gD[h] += s;
            }
            const wantX = needZ || gkRe !== null;
            if (wantX) {
              buf.set(x);
              buf.fill(0, L);
              plan.forward(buf, xr, xi);
            }
            if (needZ) {
              for (let k = 0; k < bins; k++) {
                const ar = xr[k], ai = xi[k], br = kRe[ko + k], bi = kIm[ko + k];
                tr[k] = ar * br - ai * bi;
                ti[k] = ar * bi + ai * br;
              }
              plan.inverse(tr, ti, buf);
              for (let t = 0; t < L; t++) z[t] = buf[t] + skip * x[t];
              hook?.free(b, h, d1, d2, z);
              for (let t = 0; t < L; t++) GQ![cu + t] += GY[cv + t] * z[t];
            }
            if (gkRe || needGx) {
              buf.set(gz);
              buf.fill(0, L);
              plan.forward(buf, zr, zi);
            }
            if (gkRe) {
              // Σ_t gz[t]·x[t − j]: GZ·conj(X).
              for (let k = 0; k < bins; k++) {
                gkRe[ko + k] += zr[k] * xr[k] + zi[k] * xi[k];
                gkIm![ko + k] += zi[k] * xr[k] - zr[k] * xi[k];
              }
            }
            if (needGx) {
              // Σ_t k[t − s]·gz[t]: GZ·conj(K).
              for (let k = 0; k < bins; k++) {
                const ar = zr[k], ai = zi[k], br = kRe[ko + k], bi = kIm[ko + k];
                tr[k] = ar * br + ai * bi;
                ti[k] = ai * br - ar * bi;
              }
              plan.inverse(tr, ti, buf);
              for (let t = 0; t < L; t++) gx[t] = buf[t] + skip * gz[t];
            }
          } else if (needGx) {
            // Only the final state has a gradient (gy = 0): gx comes from the hook alone.
            gx.fill(0);
          }
          if (hook) hook.backward(b, h, d1, d2, x, gz, needGx ? gx : null);
          if (needGx) {
            if (GU) for (let t = 0; t < L; t++) GU[cu + t] += VT ? gx[t] * VT[cv + t] : gx[t];
            if (GV) for (let t = 0; t < L; t++) GV[cv + t] += gx[t] * UT[cu + t];
          }
        }
      }
    }
    for (let t = 0; t < L; t++) {
      const base = (b * L + t) * C;
      for (let c = 0; c < C; c++) {
        if (GU) gu![base + c] = GU[c * L + t];
        if (GV) gv![base + c] = GV[c * L + t];
        if (GQ) gq![base + c] = GQ[c * L + t];
      }
    }
  }
  if (gk) {
    for (let h = 0; h < H; h++) {
      plan.inverse(gkRe!.subarray(h * bins, (h + 1) * bins), gkIm!.subarray(h * bins, (h + 1) * bins), buf);
      for (let j = 0; j < L; j++) gk[h * L + j] = buf[j];
    }
  }
  return { gu, gv, gq, gD: gD ? Float32Array.from(gD) : null, gk };
}

/** fftConv: gradients of u, v, q, D and the kernel [H, K] (taps at or past L get zero). */
export function fftConvBackward(
  inp: GatedConvInputs, d: GatedConvDims, kernel: Float32Array, K: number, D: Float32Array | null, gy: Float32Array, want: GatedWant,
): { gu: Float32Array | null; gv: Float32Array | null; gq: Float32Array | null; gD: Float32Array | null; gKernel: Float32Array | null } {
  const T = Math.min(K, d.L);
  const taps = new Float64Array(d.H * T);
  for (let h = 0; h < d.H; h++) for (let j = 0; j < T; j++) taps[h * T + j] = kernel[h * K + j];
  const r = gatedConvBackward(inp, d, taps, T, D, gy, want, null);
  let gKernel: Float32Array | null = null;
  if (r.gk) {
    gKernel = new Float32Array(d.H * K);
    for (let h = 0; h < d.H; h++) for (let j = 0; j < T; j++) gKernel[h * K + j] = r.gk[h * d.L + j];
  }
  return { gu: r.gu, gv: r.gv, gq: r.gq, gD: r.gD, gKernel };
}

// ---- diagonal SSM ----------------------------------------------------------------------------------

export interface DiagSsmHostParams {
  logDt: Float32Array;
  A: Float32Array;
  B: Float32Array;
  C: Float32Array;
  H: number;
  N: number;
  discretization: "bilinear" | "zoh";
}

export interface DiagSsmGrads {
  gLogDt: Float32Array;
  gA: Float32Array;
  gB: Float32Array;
  gC: Float32Array;
}

/** Gradients of the discretised modes (dA, dB and C, complex, [H·N] each), accumulated before the chain rule. */
class ModeGrads {
  readonly dAr: Float64Array; readonly dAi: Float64Array;
  readonly dBr: Float64Array; readonly dBi: Float64Array;
  readonly Cr: Float64Array; readonly Ci: Float64Array;
  constructor(size: number) {
    [this.dAr, this.dAi, this.dBr, this.dBi, this.Cr, this.Ci] = Array.from({ length: 6 }, () => new Float64Array(size));
  }
}

/**
 * Mode gradients of the kernel K[h, l] = 2·Re(Σ_n W_n·dA_n^l), W = C·dB, given gK [H, Lk]:
 * with S0 = Σ_l gK[l]·dA^l and S1 = Σ_l l·gK[l]·dA^{l−1} (Horner, both at once),
 *   ḡ(W) = 2·conj(S0),  ḡ(dA) = 2·conj(W·S1),  ḡ(C) = ḡ(W)·conj(dB),  ḡ(dB) = ḡ(W)·conj(C).
 */
function kernelModeGrads(ssm: DiagSsmHost, gK: ArrayLike<number>, Lk: number, out: ModeGrads): void {
  const { H, N } = ssm;
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < N; n++) {
      const i = h * N + n;
      const ar = ssm.dAr[i], ai = ssm.dAi[i];
      let pr = 0, pi = 0, qr = 0, qi = 0; // p = Σ gK z^l, q = p'
      for (let l = Lk - 1; l >= 0; l--) {
        const nqr = qr * ar - qi * ai + pr, nqi = qr * ai + qi * ar + pi;
        qr = nqr; qi = nqi;
        const npr = pr * ar - pi * ai + gK[h * Lk + l], npi = pr * ai + pi * ar;
        pr = npr; pi = npi;
      }
      const br = ssm.dBr[i], bi = ssm.dBi[i], cr = ssm.Cr[i], ci = ssm.Ci[i];
      const wr = cr * br - ci * bi, wi = cr * bi + ci * br;
      const gwr = 2 * pr, gwi = -2 * pi; // 2·conj(S0)
      // 2·conj(W·S1)
      out.dAr[i] += 2 * (wr * qr - wi * qi);
      out.dAi[i] -= 2 * (wr * qi + wi * qr);
      // ḡ(W)·conj(dB), ḡ(W)·conj(C)
      out.Cr[i] += gwr * br + gwi * bi;
      out.Ci[i] += gwi * br - gwr * bi;
      out.dBr[i] += gwr * cr + gwi * ci;
      out.dBi[i] += gwi * cr - gwr * ci;
    }
  }
}

/**
 * Chain rule through discretizeDiagSsm (dt = exp(logDt), x = dt·A, dB = g·B):
 *   bilinear: dA = (1 + x/2)/(1 − x/2), g = dt/(1 − x/2):  ∂dA/∂x = 1/den², ∂g/∂x = dt/(2·den²), ∂g/∂dt|_x = 1/den
 *   zoh:      dA = exp(x), g = (exp(x) − 1)/A:  ∂dA/∂A = dt·e^x, ∂dA/∂dt = A·e^x, ∂g/∂A = (dt·e^x − g)/A, ∂g/∂dt = e^x
 * For the real dt: ∂f/∂dt = Re(conj(ḡ(w))·∂w/∂dt) summed over the complex w that depend on it.
 */
function chainDiscretization(p: DiagSsmHostParams, m: ModeGrads): DiagSsmGrads {
  const { H, N } = p;
  const gLogDt = new Float32Array(H);
  const gA = new Float32Array(H * N * 2), gB = new Float32Array(H * N * 2), gC = new Float32Array(H * N * 2);
  for (let h = 0; h < H; h++) {
    const dt = Math.exp(p.logDt[h]);
    let gdt = 0;
    for (let n = 0; n < N; n++) {
      const i = h * N + n;
      const ar = p.A[2 * i], ai = p.A[2 * i + 1], br = p.B[2 * i], bi = p.B[2 * i + 1];
      const xr = dt * ar, xi = dt * ai;
      let gr: number, gi: number; // g
      let gAr: number, gAi: number; // ḡ(A) (to be completed below)
      const gdAr = m.dAr[i], gdAi = m.dAi[i], gdBr = m.dBr[i], gdBi = m.dBi[i];
      if (p.discretization === "bilinear") {
        const denR = 1 - xr / 2, denI = -xi / 2;
        const md = denR * denR + denI * denI;
        const invR = denR / md, invI = -denI / md;
        gr = dt * invR;
        gi = dt * invI;
        // ḡ(g) = ḡ(dB)·conj(B)
        const ggr = gdBr * br + gdBi * bi, ggi = gdBi * br - gdBr * bi;
        // inv² and its conjugate
        const i2r = invR * invR - invI * invI, i2i = 2 * invR * invI;
        // ḡ(x) = ḡ(dA)·conj(inv²) + ḡ(g)·conj(dt·inv²/2)
        const gxr = gdAr * i2r + gdAi * i2i + (dt / 2) * (ggr * i2r + ggi * i2i);
        const gxi = gdAi * i2r - gdAr * i2i + (dt / 2) * (ggi * i2r - ggr * i2i);
        gAr = dt * gxr;
        gAi = dt * gxi;
        // Re(conj(ḡx)·A) + Re(conj(ḡg)·inv)
        gdt += gxr * ar + gxi * ai + ggr * invR + ggi * invI;
      } else {
        const e = Math.exp(xr);
        const er = e * Math.cos(xi), ei = e * Math.sin(xi);
        const nr = er - 1, ni = ei;
        const ma = ar * ar + ai * ai;
        gr = (nr * ar + ni * ai) / ma;
        gi = (ni * ar - nr * ai) / ma;
        const ggr = gdBr * br + gdBi * bi, ggi = gdBi * br - gdBr * bi;
        // ∂g/∂A = (dt·e^x − g)/A
        const tr = dt * er - gr, ti = dt * ei - gi;
        const dgr = (tr * ar + ti * ai) / ma, dgi = (ti * ar - tr * ai) / ma;
        // ḡ(A) = ḡ(dA)·conj(dt·e^x) + ḡ(g)·conj(∂g/∂A)
        gAr = dt * (gdAr * er + gdAi * ei) + ggr * dgr + ggi * dgi;
        gAi = dt * (gdAi * er - gdAr * ei) + ggi * dgr - ggr * dgi;
        // Re(conj(ḡdA)·A·e^x) + Re(conj(ḡg)·e^x)
        const aer = ar * er - ai * ei, aei = ar * ei + ai * er;
        gdt += gdAr * aer + gdAi * aei + ggr * er + ggi * ei;
      }
      gA[2 * i] = gAr;
      gA[2 * i + 1] = gAi;
      // ḡ(B) = ḡ(dB)·conj(g)
      gB[2 * i] = gdBr * gr + gdBi * gi;
      gB[2 * i + 1] = gdBi * gr - gdBr * gi;
      gC[2 * i] = m.Cr[i];
      gC[2 * i + 1] = m.Ci[i];
    }
    gLogDt[h] = gdt * dt;
  }
  return { gLogDt, gA, gB, gC };
}

function discretize(p: DiagSsmHostParams): DiagSsmHost {
  return discretizeDiagSsm(p.logDt, p.A, p.B, p.C, p.H, p.N, p.discretization);
}

/** diagSsmKernel: gradients of logDt, A, B, C from the gradient gK [H, length] of the kernels. */
export function diagSsmKernelBackward(p: DiagSsmHostParams, length: number, gK: Float32Array): DiagSsmGrads {
  const ssm = discretize(p);
  const m = new ModeGrads(p.H * p.N);
  kernelModeGrads(ssm, gK, length, m);
  return chainDiscretization(p, m);
}

/** f64 kernels [H, L]: K[l] = 2·Re(Σ_n C·dB·dA^l), as diagSsmKernelKernel computes them. */
function diagKernelF64(ssm: DiagSsmHost, L: number): Float64Array {
  const { H, N } = ssm;
  const out = new Float64Array(H * L);
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < N; n++) {
      const i = h * N + n;
      const ar = ssm.dAr[i], ai = ssm.dAi[i];
      let r = ssm.Cr[i] * ssm.dBr[i] - ssm.Ci[i] * ssm.dBi[i];
      let im = ssm.Cr[i] * ssm.dBi[i] + ssm.Ci[i] * ssm.dBr[i];
      for (let l = 0; l < L; l++) {
        out[h * L + l] += 2 * r;
        const t = r * ar - im * ai;
        im = r * ai + im * ar;
        r = t;
      }
    }
  }
  return out;
}

export interface DiagSsmConvWant extends GatedWant {
  /** Any of logDt, A, B, C. */
  ssm: boolean;
  state: boolean;
}

/**
 * diagSsmConv. Per convolved channel (b, h, d1, d2) with input x and state s₀ (zero when null), the op is
 *   z[t] = (K ∗ x)[t] + D·x[t] + 2·Re(Σ_n C·dA^{t+1}·s₀)     s_L = dA^L·s₀ + Σ_j dA^{L−1−j}·dB·x[j]
 * (the chunking with state passing is exact, so any chunk size gives this), with K the diagSsmKernel taps.
 * The convolution part goes through the fftConv rule with K, and K's gradient through the kernel rule;
 * the state terms, with P(z) = Σ_t gz[t]·z^t, R(z) = Σ_j x[j]·z^{L−1−j} and gS = ḡ(s_L):
 *   ḡ(s₀) = 2·conj(C·dA·P(dA)) + gS·conj(dA^L)       ḡ(C) += 2·conj(s₀·dA·P(dA))
 *   ḡ(dA) += 2·conj(C·s₀·(P + dA·P')) + gS·conj(L·dA^{L−1}·s₀ + dB·R'(dA))
 *   ḡ(dB) += gS·conj(R(dA))                             ∂x[j] += Re(Σ_n conj(gS)·dB·dA^{L−1−j})
 */
export function diagSsmConvBackward(
  p: DiagSsmHostParams, inp: GatedConvInputs, d: GatedConvDims, D: Float32Array | null, state: Float32Array | null,
  gy: Float32Array | null, gState: Float32Array | null, want: DiagSsmConvWant,
): GatedGrads & { ssm: DiagSsmGrads | null; gInitial: Float32Array | null } {
  const { L } = d;
  const N = p.N;
  const ssm = discretize(p);
  const K = diagKernelF64(ssm, L);
  const modes = want.ssm ? new ModeGrads(p.H * N) : null;
  const gInitial = want.state && state ? new Float32Array(state.length) : null;
  const hook = state || gState ? makeStateHook(ssm, d, state, gState, modes, gInitial) : null;
  const r = gatedConvBackward(inp, d, K, L, D, gy, { ...want, kernel: want.ssm }, hook);
  let grads: DiagSsmGrads | null = null;
  if (modes) {
    if (r.gk) kernelModeGrads(ssm, r.gk, L, modes);
    grads = chainDiscretization(p, modes);
  }
  return { ...r, ssm: grads, gInitial };
}

function makeStateHook(
  ssm: DiagSsmHost, d: GatedConvDims, state: Float32Array | null, gState: Float32Array | null,
  modes: ModeGrads | null, gInitial: Float32Array | null,
): StateHook {
  const { H, P, L } = d;
  const N = ssm.N;
  const offset = (b: number, h: number, d1: number, d2: number) => ((((b * H + h) * P + d1) * P + d2) * N) * 2;
  return {
    free(b, h, d1, d2, z) {
      if (!state) return;
      const so = offset(b, h, d1, d2);
      for (let n = 0; n < N; n++) {
        const i = h * N + n;
        const ar = ssm.dAr[i], ai = ssm.dAi[i];
        const sr = state[so + 2 * n], si = state[so + 2 * n + 1];
        // w = C·dA·s₀, then z[t] += 2·Re(w·dA^t)
        const car = ssm.Cr[i] * ar - ssm.Ci[i] * ai, cai = ssm.Cr[i] * ai + ssm.Ci[i] * ar;
        let wr = car * sr - cai * si, wi = car * si + cai * sr;
        for (let t = 0; t < L; t++) {
          z[t] += 2 * wr;
          const tmp = wr * ar - wi * ai;
          wi = wr * ai + wi * ar;
          wr = tmp;
        }
      }
    },
    backward(b, h, d1, d2, x, gz, gx) {
      const so = offset(b, h, d1, d2);
      for (let n = 0; n < N; n++) {
        const i = h * N + n;
        const ar = ssm.dAr[i], ai = ssm.dAi[i];
        const cr = ssm.Cr[i], ci = ssm.Ci[i], br = ssm.dBr[i], bi = ssm.dBi[i];
        const sr = state ? state[so + 2 * n] : 0, si = state ? state[so + 2 * n + 1] : 0;
        let g0r = 0, g0i = 0; // ḡ(s₀)
        if (state) {
          // P(dA) and P'(dA) by Horner.
          let pr = 0, pi = 0, qr = 0, qi = 0;
          for (let t = L - 1; t >= 0; t--) {
            const nqr = qr * ar - qi * ai + pr, nqi = qr * ai + qi * ar + pi;
            qr = nqr; qi = nqi;
            const npr = pr * ar - pi * ai + gz[t], npi = pr * ai + pi * ar;
            pr = npr; pi = npi;
          }
          // dA·P
          const dpr = ar * pr - ai * pi, dpi = ar * pi + ai * pr;
          // ḡ(s₀) += 2·conj(C·dA·P)
          g0r += 2 * (cr * dpr - ci * dpi);
          g0i -= 2 * (cr * dpi + ci * dpr);
          if (modes) {
            // ḡ(C) += 2·conj(s₀·dA·P)
            modes.Cr[i] += 2 * (sr * dpr - si * dpi);
            modes.Ci[i] -= 2 * (sr * dpi + si * dpr);
            // ḡ(dA) += 2·conj(C·s₀·(P + dA·P'))
            const ur = pr + ar * qr - ai * qi, ui = pi + ar * qi + ai * qr;
            const csr = cr * sr - ci * si, csi = cr * si + ci * sr;
            modes.dAr[i] += 2 * (csr * ur - csi * ui);
            modes.dAi[i] -= 2 * (csr * ui + csi * ur);
          }
        }
        if (gState) {
          const gsr = gState[so + 2 * n], gsi = gState[so + 2 * n + 1];
          // R(dA) = Σ_j x[j]·dA^{L−1−j}, R'(dA), and dA^L, dA^{L−1}, by Horner over j ascending.
          let rr = 0, ri = 0, rdr = 0, rdi = 0;
          let powr = 1, powi = 0, pow1r = 1, pow1i = 0; // dA^L and dA^{L−1}
          for (let j = 0; j < L; j++) {
            const nrdr = rdr * ar - rdi * ai + rr, nrdi = rdr * ai + rdi * ar + ri;
            rdr = nrdr; rdi = nrdi;
            const nrr = rr * ar - ri * ai + x[j], nri = rr * ai + ri * ar;
            rr = nrr; ri = nri;
            pow1r = powr; pow1i = powi;
            const npr = powr * ar - powi * ai;
            powi = powr * ai + powi * ar;
            powr = npr;
          }
          // ḡ(s₀) += gS·conj(dA^L)
          g0r += gsr * powr + gsi * powi;
          g0i += gsi * powr - gsr * powi;
          if (modes) {
            // ḡ(dB) += gS·conj(R)
            modes.dBr[i] += gsr * rr + gsi * ri;
            modes.dBi[i] += gsi * rr - gsr * ri;
            // ḡ(dA) += gS·conj(L·dA^{L−1}·s₀ + dB·R')
            const vr = L * (pow1r * sr - pow1i * si) + (br * rdr - bi * rdi);
            const vi = L * (pow1r * si + pow1i * sr) + (br * rdi + bi * rdr);
            modes.dAr[i] += gsr * vr + gsi * vi;
            modes.dAi[i] += gsi * vr - gsr * vi;
          }
          if (gx) {
            // ∂x[j] += Re(conj(gS)·dB·dA^{L−1−j}), j from L−1 down.
            let wr = gsr * br + gsi * bi, wi = gsr * bi - gsi * br;
            for (let j = L - 1; j >= 0; j--) {
              gx[j] += wr;
              const tmp = wr * ar - wi * ai;
              wi = wr * ai + wi * ar;
              wr = tmp;
            }
          }
        }
        if (gInitial) {
          gInitial[so + 2 * n] += g0r;
          gInitial[so + 2 * n + 1] += g0i;
        }
      }
    },
  };
}

// ---- shift SSM -----------------------------------------------------------------------------------

/** taps[c, j] = Σ_i B[c, i]·C[c, i + j] → ∂B[i] = Σ_j gT[j]·C[i + j], ∂C[m] = Σ_{j ≤ m} gT[j]·B[m − j]. */
export function shiftSsmTapsBackward(
  B: Float32Array, C: Float32Array, Ch: number, N: number, gTaps: ArrayLike<number>,
): { gB: Float32Array; gC: Float32Array } {
  const gB = new Float32Array(Ch * N), gC = new Float32Array(Ch * N);
  for (let c = 0; c < Ch; c++) {
    const o = c * N;
    for (let i = 0; i < N; i++) {
      let sb = 0;
      for (let j = 0; i + j < N; j++) sb += gTaps[o + j] * C[o + i + j];
      gB[o + i] = sb;
      let sc = 0;
      for (let j = 0; j <= i; j++) sc += gTaps[o + j] * B[o + i - j];
      gC[o + i] = sc;
    }
  }
  return { gB, gC };
}

export interface ShiftSsmWant {
  u: boolean;
  taps: boolean;
  B: boolean;
  C: boolean;
  D: boolean;
  state: boolean;
}

function transposedF64(a: ArrayLike<number>, Ch: number, N: number, offset = 0): Float64Array {
  const out = new Float64Array(N * Ch);
  for (let c = 0; c < Ch; c++) for (let n = 0; n < N; n++) out[n * Ch + c] = a[offset + c * N + n];
  return out;
}

/**
 * shiftSsm, from the parallel form of shift-ssm.ts (which the recurrence for short inputs equals, with
 * the taps derived from B and C):
 *   y[t] = Σ_{j ≤ min(t, N−1)} k[j]·u[t−j] + D·u[t] + Σ_{n > t} C[n]·s₀[n−t−1]
 *   s'[n] = Σ_{m ≤ min(n, L−1)} B[n−m]·u[L−1−m] + (n ≥ L ? s₀[n−L] : 0)
 * The taps' gradient goes to the taps tensor when the forward used it (taps given and L > SHORT_INPUT),
 * otherwise through the taps rule to B and C (the op derived the taps, or ran the recurrence on B and C).
 */
export function shiftSsmBackward(
  u: Float32Array, taps: Float32Array | null, B: Float32Array, C: Float32Array, D: Float32Array | null, state: Float32Array | null,
  dims: { Bsz: number; L: number; Ch: number; N: number }, gy: Float32Array | null, gS: Float32Array | null, want: ShiftSsmWant,
): { gu: Float32Array | null; gTaps: Float32Array | null; gB: Float32Array | null; gC: Float32Array | null; gD: Float32Array | null; gState: Float32Array | null } {
  const { Bsz, L, Ch, N } = dims;
  const usesTaps = taps !== null && L > SHORT_INPUT;
  let k: ArrayLike<number>;
  if (usesTaps) k = taps!;
  else {
    const derived = new Float64Array(Ch * N);
    for (let c = 0; c < Ch; c++) {
      for (let j = 0; j < N; j++) {
        let s = 0;
        for (let i = 0; i + j < N; i++) s += B[c * N + i] * C[c * N + i + j];
        derived[c * N + j] = s;
      }
    }
    k = derived;
  }
  const wantK = usesTaps ? want.taps : want.B || want.C;
  const kT = transposedF64(k, Ch, N);
  const BT = transposedF64(B, Ch, N), CT = transposedF64(C, Ch, N);
  const gu = want.u ? new Float32Array(u.length) : null;
  const gkT = wantK ? new Float64Array(N * Ch) : null;
  const gBT = want.B ? new Float64Array(N * Ch) : null;
  const gCT = want.C ? new Float64Array(N * Ch) : null;
  const gD = want.D && D ? new Float64Array(Ch) : null;
  const gState = want.state && state ? new Float32Array(state.length) : null;
  const acc = new Float64Array(Ch);
  const gs0 = new Float64Array(N * Ch);
  for (let b = 0; b < Bsz; b++) {
    const ub = b * L * Ch;
    const sT = state ? transposedF64(state, Ch, N, b * Ch * N) : null;
    const gST = gS ? transposedF64(gS, Ch, N, b * Ch * N) : null;
    gs0.fill(0);
    if (gy) {
      for (let t = 0; t < L; t++) {
        const row = ub + t * Ch;
        // ∂u[t] = Σ_j k[j]·gy[t + j] + D·gy[t]
        if (gu) {
          for (let c = 0; c < Ch; c++) acc[c] = (D ? D[c] : 0) * gy[row + c];
          const J = Math.min(N - 1, L - 1 - t);
          for (let j = 0; j <= J; j++) {
            const src = row + j * Ch, kj = j * Ch;
            for (let c = 0; c < Ch; c++) acc[c] += kT[kj + c] * gy[src + c];
          }
          for (let c = 0; c < Ch; c++) gu[row + c] = acc[c];
        }
        if (gD) for (let c = 0; c < Ch; c++) gD[c] += gy[row + c] * u[row + c];
        // ∂k[j] += gy[t]·u[t − j]
        if (gkT) {
          const J = Math.min(t, N - 1);
          for (let j = 0; j <= J; j++) {
            const src = row - j * Ch, kj = j * Ch;
            for (let c = 0; c < Ch; c++) gkT[kj + c] += gy[row + c] * u[src + c];
          }
        }
        // Old-state terms: y[t] ∋ C[n]·s₀[n − t − 1] for n > t.
        if (sT || gState) {
          for (let n = t + 1; n < N; n++) {
            const cn = n * Ch, sn = (n - t - 1) * Ch;
            if (gCT && sT) for (let c = 0; c < Ch; c++) gCT[cn + c] += gy[row + c] * sT[sn + c];
            if (gState) for (let c = 0; c < Ch; c++) gs0[sn + c] += gy[row + c] * CT[cn + c];
          }
        }
      }
    }
    if (gST) {
      for (let n = 0; n < N; n++) {
        const gn = n * Ch;
        const M = Math.min(n, L - 1);
        for (let m = 0; m <= M; m++) {
          // s'[n] ∋ B[n − m]·u[L − 1 − m]
          const bn = (n - m) * Ch, src = ub + (L - 1 - m) * Ch;
          if (gBT) for (let c = 0; c < Ch; c++) gBT[bn + c] += gST[gn + c] * u[src + c];
          if (gu) for (let c = 0; c < Ch; c++) gu[src + c] += gST[gn + c] * BT[bn + c];
        }
        if (gState && n >= L) {
          const sn = (n - L) * Ch;
          for (let c = 0; c < Ch; c++) gs0[sn + c] += gST[gn + c];
        }
      }
    }
    if (gState) {
      const so = b * Ch * N;
      for (let c = 0; c < Ch; c++) for (let n = 0; n < N; n++) gState[so + c * N + n] = gs0[n * Ch + c];
    }
  }
  const back = (aT: Float64Array): Float32Array => {
    const out = new Float32Array(Ch * N);
    for (let c = 0; c < Ch; c++) for (let n = 0; n < N; n++) out[c * N + n] = aT[n * Ch + c];
    return out;
  };
  let gTaps: Float32Array | null = null;
  let gB = gBT ? back(gBT) : null;
  let gC = gCT ? back(gCT) : null;
  if (gkT) {
    const gk = back(gkT);
    if (usesTaps) gTaps = gk;
    else {
      const r = shiftSsmTapsBackward(B, C, Ch, N, gk);
      if (want.B) for (let i = 0; i < gB!.length; i++) gB![i] += r.gB[i];
      if (want.C) for (let i = 0; i < gC!.length; i++) gC![i] += r.gC[i];
    }
  }
  if (want.B && !gB) gB = new Float32Array(Ch * N);
  if (want.C && !gC) gC = new Float32Array(Ch * N);
  return { gu, gTaps, gB, gC, gD: gD ? Float32Array.from(gD) : null, gState };
}
