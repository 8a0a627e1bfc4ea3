/**
 * Our own FFTs, in float64 (JS numbers are doubles; f64 keeps a 2^17-point convolution of f32 data far
 * below f32 rounding). Sizes are powers of two: long convolutions pad to one, which is all they need.
 *
 * - `ComplexFft`: Stockham autosort (no bit reversal, unit-stride inner loops), radix 4, with one
 *   radix-2 stage when log2(n) is odd.
 * - `RealFft`: a real sequence of n points through one complex FFT of n/2 points (even samples as real
 *   parts, odd as imaginary) plus one twiddle pass; spectra hold the n/2 + 1 non-redundant bins.
 *
 * Plans (twiddle tables and work buffers) are cached per size: a plan is not re-entrant, which is fine
 * for the single-threaded CPU backend.
 */

function isPowerOfTwo(n: number): boolean {
  return Number.isInteger(n) && n >= 1 && (n & (n - 1)) === 0;
}

/** The smallest power of two ≥ n (n ≥ 1). */
export function nextPowerOfTwo(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/** In-place complex DFT of a power-of-two length, forward (e^{-2πi jk/n}) or inverse (unnormalised). */
export class ComplexFft {
  /** cos(2πk/n) and sin(2πk/n) for k < n: every stage reads its twiddles from these by stride. */
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly workRe: Float64Array;
  private readonly workIm: Float64Array;

  constructor(readonly n: number) {
    if (!isPowerOfTwo(n)) throw new Error(`ComplexFft: size ${n} is not a power of two`);
    this.cos = new Float64Array(n);
    this.sin = new Float64Array(n);
    for (let k = 0; k < n; k++) {
      const a = (2 * Math.PI * k) / n;
      this.cos[k] = Math.cos(a);
      this.sin[k] = Math.sin(a);
    }
    this.workRe = new Float64Array(n);
    this.workIm = new Float64Array(n);
  }

  transform(re: Float64Array, im: Float64Array, inverse: boolean): void {
    const n = this.n;
    if (n === 1) return;
    // Forward twiddles are e^{-iθ}: the sine enters with sign -1; the inverse conjugates them.
    const sign = inverse ? 1 : -1;
    let xr = re, xi = im, yr = this.workRe, yi = this.workIm;
    // Invariant: len · s = n. A stage splits each length-`len` sub-transform (stride s) into radix parts.
    let len = n;
    let s = 1;
    while (len > 1) {
      if (len % 4 === 0) {
        this.radix4(xr, xi, yr, yi, len, s, sign);
        len /= 4;
        s *= 4;
      } else {
        this.radix2(xr, xi, yr, yi, len, s, sign);
        len /= 2;
        s *= 2;
      }
      const tr = xr; xr = yr; yr = tr;
      const ti = xi; xi = yi; yi = ti;
    }
    if (xr !== re) {
      re.set(xr);
      im.set(xi);
    }
  }

  private radix2(xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array, len: number, s: number, sign: number): void {
    const m = len / 2;
    const { cos, sin } = this;
    for (let p = 0; p < m; p++) {
      const wr = cos[p * s], wi = sign * sin[p * s];
      const a0 = s * p, b0 = s * (p + m), o0 = s * 2 * p, o1 = o0 + s;
      for (let q = 0; q < s; q++) {
        const ar = xr[a0 + q], ai = xi[a0 + q];
        const br = xr[b0 + q], bi = xi[b0 + q];
        yr[o0 + q] = ar + br;
        yi[o0 + q] = ai + bi;
        const dr = ar - br, di = ai - bi;
        yr[o1 + q] = dr * wr - di * wi;
        yi[o1 + q] = dr * wi + di * wr;
      }
    }
  }

  private radix4(xr: Float64Array, xi: Float64Array, yr: Float64Array, yi: Float64Array, len: number, s: number, sign: number): void {
    const m = len / 4;
    const { cos, sin } = this;
    for (let p = 0; p < m; p++) {
      const w1r = cos[p * s], w1i = sign * sin[p * s];
      const w2r = cos[2 * p * s], w2i = sign * sin[2 * p * s];
      const w3r = cos[3 * p * s], w3i = sign * sin[3 * p * s];
      const a0 = s * p, b0 = a0 + s * m, c0 = b0 + s * m, d0 = c0 + s * m;
      const o0 = s * 4 * p, o1 = o0 + s, o2 = o1 + s, o3 = o2 + s;
      for (let q = 0; q < s; q++) {
        const ar = xr[a0 + q], ai = xi[a0 + q];
        const br = xr[b0 + q], bi = xi[b0 + q];
        const cr = xr[c0 + q], ci = xi[c0 + q];
        const dr = xr[d0 + q], di = xi[d0 + q];
        const apcR = ar + cr, apcI = ai + ci;
        const amcR = ar - cr, amcI = ai - ci;
        const bpdR = br + dr, bpdI = bi + di;
        // j·(b − d) with j = ∓i: the forward transform rotates by −i, the inverse by +i.
        const bmdR = br - dr, bmdI = bi - di;
        const jR = -sign * bmdI, jI = sign * bmdR;
        yr[o0 + q] = apcR + bpdR;
        yi[o0 + q] = apcI + bpdI;
        const t1r = amcR + jR, t1i = amcI + jI;
        yr[o1 + q] = t1r * w1r - t1i * w1i;
        yi[o1 + q] = t1r * w1i + t1i * w1r;
        const t2r = apcR - bpdR, t2i = apcI - bpdI;
        yr[o2 + q] = t2r * w2r - t2i * w2i;
        yi[o2 + q] = t2r * w2i + t2i * w2r;
        const t3r = amcR - jR, t3i = amcI - jI;
        yr[o3 + q] = t3r * w3r - t3i * w3i;
        yi[o3 + q] = t3r * w3i + t3i * w3r;
      }
    }
  }
}

/** Real-input FFT of a power-of-two length n ≥ 2, through a complex FFT of n/2 points. */
export class RealFft {
  readonly bins: number;
  private readonly half: ComplexFft;
  /** cos/sin(2πk/n) for k ≤ n/2: the twiddles that merge the even and odd half-spectra. */
  private readonly cos: Float64Array;
  private readonly sin: Float64Array;
  private readonly zr: Float64Array;
  private readonly zi: Float64Array;

  constructor(readonly n: number) {
    if (!isPowerOfTwo(n) || n < 2) throw new Error(`RealFft: size ${n} is not a power of two ≥ 2`);
    const m = n / 2;
    this.bins = m + 1;
    this.half = new ComplexFft(m);
    this.cos = new Float64Array(m + 1);
    this.sin = new Float64Array(m + 1);
    for (let k = 0; k <= m; k++) {
      this.cos[k] = Math.cos((2 * Math.PI * k) / n);
      this.sin[k] = Math.sin((2 * Math.PI * k) / n);
    }
    this.zr = new Float64Array(m);
    this.zi = new Float64Array(m);
  }

  /** x (n real samples) → bins 0..n/2 of its DFT in (outRe, outIm). */
  forward(x: Float64Array, outRe: Float64Array, outIm: Float64Array): void {
    const m = this.n / 2;
    const { zr, zi, cos, sin } = this;
    for (let k = 0; k < m; k++) {
      zr[k] = x[2 * k];
      zi[k] = x[2 * k + 1];
    }
    this.half.transform(zr, zi, false);
    // With Z = DFT(even + i·odd): E[k] = (Z[k] + conj Z[m−k]) / 2, O[k] = (Z[k] − conj Z[m−k]) / 2i,
    // and X[k] = E[k] + e^{−2πik/n} O[k] (Z is m-periodic, so Z[m] = Z[0]).
    for (let k = 0; k <= m; k++) {
      const a = k === m ? 0 : k;
      const b = k === 0 ? 0 : m - k;
      const ar = zr[a], ai = zi[a], br = zr[b], bi = -zi[b];
      const er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
      // (Z[k] − conj Z[m−k]) / 2i = (d) · (−i/2): (dr + i·di)(−i) = di − i·dr
      const or = 0.5 * (ai - bi), oi = -0.5 * (ar - br);
      const wr = cos[k], wi = -sin[k];
      outRe[k] = er + (or * wr - oi * wi);
      outIm[k] = ei + (or * wi + oi * wr);
    }
  }

  /** Bins 0..n/2 of a real signal's spectrum → the n samples (normalised: inverse(forward(x)) = x). */
  inverse(re: Float64Array, im: Float64Array, x: Float64Array): void {
    const m = this.n / 2;
    const { zr, zi, cos, sin } = this;
    // X[k + m] = conj X[m − k] for a real signal, so E[k] = (X[k] + conj X[m−k]) / 2 and
    // O[k] = (X[k] − conj X[m−k]) / 2 · e^{+2πik/n}; then Z[k] = E[k] + i·O[k].
    for (let k = 0; k < m; k++) {
      const ar = re[k], ai = im[k], br = re[m - k], bi = -im[m - k];
      const er = 0.5 * (ar + br), ei = 0.5 * (ai + bi);
      const dr = 0.5 * (ar - br), di = 0.5 * (ai - bi);
      const wr = cos[k], wi = sin[k];
      const or = dr * wr - di * wi, oi = dr * wi + di * wr;
      zr[k] = er - oi;
      zi[k] = ei + or;
    }
    this.half.transform(zr, zi, true);
    const scale = 1 / m;
    for (let k = 0; k < m; k++) {
      x[2 * k] = zr[k] * scale;
      x[2 * k + 1] = zi[k] * scale;
    }
  }
}

const realPlans = new Map<number, RealFft>();

/** The cached real-FFT plan of size n (a power of two ≥ 2). */
export function realFftPlan(n: number): RealFft {
  let plan = realPlans.get(n);
  if (!plan) {
    plan = new RealFft(n);
    realPlans.set(n, plan);
  }
  return plan;
}
