import { nextPowerOfTwo, realFftPlan, type RealFft } from "./fft.js";

/**
 * Long causal convolutions over channels-last data, FlashConv-style: each (batch row, head) is read
 * once, transformed, multiplied by the kernel's spectrum, transformed back, given its skip term and
 * gate, and written once; the intermediate sequences live in per-head scratch rows, never in tensors.
 *
 * Layout (H3's, which also covers a plain per-channel convolution with P = 1): inputs u, v, q are
 * [B, L, H·P] with channel h·P + d. The convolution input of head h is the outer product
 * x[d1, d2] = u[h, d1] · v[h, d2] (just u when there is no v); each of those P² sequences is convolved
 * with head h's kernel, gets D[h]·x added, and the output channel h·P + d2 is Σ_d1 q[h, d1] · z[d1, d2]
 * (just z when there is no q).
 */

export interface GatedConvDims {
  B: number;
  L: number;
  H: number;
  P: number;
}

export interface GatedConvInputs {
  u: Float32Array;
  v: Float32Array | null;
  q: Float32Array | null;
}

/** Heads handled together, so that gathers and scatters of channels-last rows use whole cache lines. */
export function headBlockSize(P: number, H: number): number {
  return Math.max(1, Math.min(H, Math.floor(32 / P)));
}

/** The FFT size for a causal convolution of T outputs with a kernel of T taps: no circular wrap-around. */
export function fftSizeFor(T: number): number {
  return Math.max(4, nextPowerOfTwo(2 * T - 1));
}

/** f64 rows of a block of heads over one time chunk: [head in block][d][t] for u, v, q and the output. */
export class HeadBlockRows {
  readonly u: Float64Array[];
  readonly v: Float64Array[] | null;
  readonly q: Float64Array[] | null;
  readonly acc: Float64Array[];

  constructor(rows: number, T: number, hasV: boolean, hasQ: boolean) {
    const make = () => Array.from({ length: rows }, () => new Float64Array(T));
    this.u = make();
    this.v = hasV ? make() : null;
    this.q = hasQ ? make() : null;
    this.acc = make();
  }

  /** Gathers channels [h0·P, (h0+hb)·P) of rows t0..t0+Tc of batch row b. */
  load(inp: GatedConvInputs, d: GatedConvDims, b: number, h0: number, hb: number, t0: number, Tc: number): void {
    const C = d.H * d.P;
    const c0 = h0 * d.P;
    const width = hb * d.P;
    for (let j = 0; j < Tc; j++) {
      const base = (b * d.L + t0 + j) * C + c0;
      for (let c = 0; c < width; c++) {
        this.u[c][j] = inp.u[base + c];
        if (this.v) this.v[c][j] = inp.v![base + c];
        if (this.q) this.q[c][j] = inp.q![base + c];
      }
    }
    for (let c = 0; c < width; c++) this.acc[c].fill(0, 0, Tc);
  }

  store(y: Float32Array, d: GatedConvDims, b: number, h0: number, hb: number, t0: number, Tc: number): void {
    const C = d.H * d.P;
    const c0 = h0 * d.P;
    const width = hb * d.P;
    for (let j = 0; j < Tc; j++) {
      const base = (b * d.L + t0 + j) * C + c0;
      for (let c = 0; c < width; c++) y[base + c] = this.acc[c][j];
    }
  }

  /** x = u[d1] ⊙ v[d2] for head i of the block (x = u[d1] without v). */
  product(i: number, P: number, d1: number, d2: number, Tc: number, x: Float64Array): void {
    const u = this.u[i * P + d1];
    if (!this.v) {
      x.set(u.subarray(0, Tc));
      return;
    }
    const v = this.v[i * P + d2];
    for (let j = 0; j < Tc; j++) x[j] = u[j] * v[j];
  }

  /** Output channel d2 of head i gains q[d1] ⊙ z (or is z, without q). */
  accumulate(i: number, P: number, d1: number, d2: number, Tc: number, z: Float64Array): void {
    const acc = this.acc[i * P + d2];
    if (!this.q) {
      acc.set(z.subarray(0, Tc));
      return;
    }
    const q = this.q[i * P + d1];
    for (let j = 0; j < Tc; j++) acc[j] += q[j] * z[j];
  }
}

/** Scratch for FFT convolutions of one size. */
export class SpectralConvolver {
  readonly plan: RealFft;
  private readonly buf: Float64Array;
  private readonly re: Float64Array;
  private readonly im: Float64Array;

  constructor(readonly n: number) {
    this.plan = realFftPlan(n);
    this.buf = new Float64Array(n);
    this.re = new Float64Array(this.plan.bins);
    this.im = new Float64Array(this.plan.bins);
  }

  /** Spectrum of `taps` (K ≤ n/2 values), zero-padded to n, into (re, im) of n/2 + 1 bins. */
  spectrum(taps: ArrayLike<number>, K: number, re: Float64Array, im: Float64Array): void {
    const buf = this.buf;
    for (let i = 0; i < K; i++) buf[i] = taps[i];
    buf.fill(0, K);
    this.plan.forward(buf, re, im);
  }

  /** z[0..Tc) = causal convolution of x[0..Tc) with the kernel whose spectrum is (kRe, kIm); Tc ≤ n/2. */
  convolve(x: Float64Array, Tc: number, kRe: Float64Array, kIm: Float64Array, z: Float64Array): void {
    const { buf, re, im, plan } = this;
    buf.set(x.subarray(0, Tc));
    buf.fill(0, Tc);
    plan.forward(buf, re, im);
    for (let k = 0; k < plan.bins; k++) {
      const ar = re[k], ai = im[k], br = kRe[k], bi = kIm[k];
      re[k] = ar * br - ai * bi;
      im[k] = ar * bi + ai * br;
    }
    plan.inverse(re, im, buf);
    z.set(buf.subarray(0, Tc));
  }
}

/**
 * y = causal conv(x, kernel[h]) + D[h]·x, gated as described above, with explicit kernels [H, K]
 * (taps beyond L never reach an output and are ignored): one FFT block of the whole sequence.
 */
export function fftConvKernel(
  inp: GatedConvInputs, d: GatedConvDims, kernel: Float32Array, K: number, D: Float32Array | null, y: Float32Array,
): void {
  const { B, L, H, P } = d;
  if (L === 0) return;
  const taps = Math.min(K, L);
  const conv = new SpectralConvolver(fftSizeFor(L));
  const HB = headBlockSize(P, H);
  const rows = new HeadBlockRows(HB * P, L, inp.v !== null, inp.q !== null);
  const bins = conv.plan.bins;
  const kRe = Array.from({ length: HB }, () => new Float64Array(bins));
  const kIm = Array.from({ length: HB }, () => new Float64Array(bins));
  const x = new Float64Array(L);
  const z = new Float64Array(L);
  for (let h0 = 0; h0 < H; h0 += HB) {
    const hb = Math.min(HB, H - h0);
    for (let i = 0; i < hb; i++) conv.spectrum(kernel.subarray((h0 + i) * K, (h0 + i) * K + taps), taps, kRe[i], kIm[i]);
    for (let b = 0; b < B; b++) {
      rows.load(inp, d, b, h0, hb, 0, L);
      for (let i = 0; i < hb; i++) {
        const skip = D ? D[h0 + i] : 0;
        for (let d1 = 0; d1 < P; d1++) {
          for (let d2 = 0; d2 < P; d2++) {
            rows.product(i, P, d1, d2, L, x);
            conv.convolve(x, L, kRe[i], kIm[i], z);
            for (let j = 0; j < L; j++) z[j] += skip * x[j];
            rows.accumulate(i, P, d1, d2, L, z);
          }
        }
      }
      rows.store(y, d, b, h0, hb, 0, L);
    }
  }
}

/** The reference twin of fftConvKernel: the same result by the O(L·K) direct sum, in f64. */
export function directConvKernel(
  inp: GatedConvInputs, d: GatedConvDims, kernel: Float32Array, K: number, D: Float32Array | null, y: Float32Array,
): void {
  const { B, L, H, P } = d;
  const C = H * P;
  const at = (a: Float32Array, b: number, t: number, c: number) => a[(b * L + t) * C + c];
  const x = new Float64Array(L);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      const acc = Array.from({ length: P }, () => new Float64Array(L));
      for (let d1 = 0; d1 < P; d1++) {
        for (let d2 = 0; d2 < P; d2++) {
          for (let t = 0; t < L; t++) x[t] = at(inp.u, b, t, h * P + d1) * (inp.v ? at(inp.v, b, t, h * P + d2) : 1);
          for (let t = 0; t < L; t++) {
            let s = (D ? D[h] : 0) * x[t];
            for (let j = 0; j <= t && j < K; j++) s += kernel[h * K + j] * x[t - j];
            acc[d2][t] += inp.q ? at(inp.q, b, t, h * P + d1) * s : s;
          }
        }
      }
      for (let d2 = 0; d2 < P; d2++) for (let t = 0; t < L; t++) y[(b * L + t) * C + h * P + d2] = acc[d2][t];
    }
  }
}
