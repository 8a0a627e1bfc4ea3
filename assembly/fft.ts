// Long causal convolution by FFT for the heads h in [h0, h1): the same gated, channels-last operation
// as the TypeScript fftConvKernel (src/backends/cpu/kernels/long-conv.ts). Inputs u, v, q are
// [B, L, H·P]; head h convolves each x = u[d1]·v[d2] (just u without v) with its kernel [K] (taps past L
// ignored), adds D[h]·x, and output channel h·P + d2 gets Σ_d1 q[d1]·z (just z without q).
//
// Complex radix-2 FFTs of size n ≥ 2L − 1 in f64 (f64x2: two butterflies per vector) on split
// real/imaginary arrays; f32 transforms missed the reference's 1e-5 on some outputs near zero. The kernel is real, so
// two sequences ride in one transform (x1 + i·x2): the product with the kernel's spectrum transforms back
// to conv(x1) + i·conv(x2). Twiddles come from the host (this module has no sin/cos and no static data):
// for each stage of half-size h, h contiguous values cos(πj/h) and −sin(πj/h) at offset h − 1, so four
// butterflies read their twiddles with one load; the host also passes the bit-reversal permutation.

/** Scratch bytes one thread needs: transform arrays and two kernel spectra (f64), P output rows (f32). */
export function fftConvScratchBytes(n: i32, L: i32, P: i32): i32 {
  return ((6 * n) << 3) + ((P * L + 16) << 2);
}

/**
 * Heads h and h + 1 with one channel each (P = 1), in one transform: z = x_h + i·x_{h+1}. Their kernels
 * differ, so the two spectra are separated by conjugate symmetry, X_h[k] = (Z[k] + conj Z[−k])/2 and
 * X_{h+1}[k] = (Z[k] − conj Z[−k])/(2i), each multiplied by its kernel's spectrum (separated the same
 * way once per pair), and recombined as Y_h + i·Y_{h+1}, whose inverse is y_h + i·y_{h+1}: three
 * transforms for two heads instead of six.
 */
function twoHeads(
  u: usize, v: usize, q: usize, kernel: usize, K: i32, D: usize, y: usize, B: i32, L: i32, C: i32,
  n: i32, twRe: usize, twIm: usize, rev: usize, h: i32, scratch: usize,
): void {
  const re = scratch, im = re + (<usize>n << 3);
  const k1r = im + (<usize>n << 3), k1i = k1r + (<usize>n << 3), k2r = k1i + (<usize>n << 3), k2i = k2r + (<usize>n << 3);
  const taps = min(K, L);
  const mask = n - 1;
  memory.fill(re, 0, <usize>n << 3);
  memory.fill(im, 0, <usize>n << 3);
  for (let j = 0; j < taps; j++) {
    store<f64>(re + (<usize>j << 3), <f64>load<f32>(kernel + ((<usize>(h * K + j)) << 2)));
    store<f64>(im + (<usize>j << 3), <f64>load<f32>(kernel + ((<usize>((h + 1) * K + j)) << 2)));
  }
  fft(re, im, n, twRe, twIm, rev, false);
  for (let k = 0; k < n; k++) {
    const o = <usize>k << 3, oo = <usize>((n - k) & mask) << 3;
    const zr = load<f64>(re + o), zi = load<f64>(im + o), wr = load<f64>(re + oo), wi = load<f64>(im + oo);
    store<f64>(k1r + o, 0.5 * (zr + wr)); store<f64>(k1i + o, 0.5 * (zi - wi));
    store<f64>(k2r + o, 0.5 * (zi + wi)); store<f64>(k2i + o, 0.5 * (wr - zr));
  }
  const inv: f64 = 1.0 / <f64>n;
  const s1: f64 = D ? <f64>load<f32>(D + (<usize>h << 2)) : 0;
  const s2: f64 = D ? <f64>load<f32>(D + (<usize>(h + 1) << 2)) : 0;
  for (let b = 0; b < B; b++) {
    memory.fill(re, 0, <usize>n << 3);
    memory.fill(im, 0, <usize>n << 3);
    for (let t = 0; t < L; t++) {
      store<f64>(re + (<usize>t << 3), xAt(u, v, b, t, L, C, h, h));
      store<f64>(im + (<usize>t << 3), xAt(u, v, b, t, L, C, h + 1, h + 1));
    }
    fft(re, im, n, twRe, twIm, rev, false);
    // W[k] and W[−k] both need Z[k] and Z[−k]: done together, in place.
    for (let k = 0; k <= n >> 1; k++) {
      const kk = (n - k) & mask;
      const o = <usize>k << 3, oo = <usize>kk << 3;
      const zr = load<f64>(re + o), zi = load<f64>(im + o), wr = load<f64>(re + oo), wi = load<f64>(im + oo);
      for (let side = 0; side < 2; side++) {
        if (side == 1 && kk == k) break;
        const ar = side == 0 ? zr : wr, ai = side == 0 ? zi : wi, cr = side == 0 ? wr : zr, ci = side == 0 ? wi : zi;
        const p = side == 0 ? o : oo;
        const x1r = 0.5 * (ar + cr), x1i = 0.5 * (ai - ci), x2r = 0.5 * (ai + ci), x2i = 0.5 * (cr - ar);
        const a1r = load<f64>(k1r + p), a1i = load<f64>(k1i + p), a2r = load<f64>(k2r + p), a2i = load<f64>(k2i + p);
        const y1r = x1r * a1r - x1i * a1i, y1i = x1r * a1i + x1i * a1r;
        const y2r = x2r * a2r - x2i * a2i, y2i = x2r * a2i + x2i * a2r;
        store<f64>(re + p, y1r - y2i);
        store<f64>(im + p, y1i + y2r);
      }
    }
    fft(re, im, n, twRe, twIm, rev, true);
    for (let t = 0; t < L; t++) {
      const row = <usize>(b * L + t) * C;
      let z1 = load<f64>(re + (<usize>t << 3)) * inv + s1 * xAt(u, v, b, t, L, C, h, h);
      let z2 = load<f64>(im + (<usize>t << 3)) * inv + s2 * xAt(u, v, b, t, L, C, h + 1, h + 1);
      if (q) {
        z1 *= <f64>load<f32>(q + ((row + h) << 2));
        z2 *= <f64>load<f32>(q + ((row + h + 1) << 2));
      }
      store<f32>(y + ((row + h) << 2), <f32>z1);
      store<f32>(y + ((row + h + 1) << 2), <f32>z2);
    }
  }
}

/** In-place complex FFT of re/im [n] f64 (n a power of two ≥ 4); inverse: conjugate twiddles, unscaled. */
function fft(re: usize, im: usize, n: i32, twRe: usize, twIm: usize, rev: usize, inverse: bool): void {
  for (let i = 0; i < n; i++) {
    const j = load<i32>(rev + (<usize>i << 2));
    if (i < j) {
      const a = re + (<usize>i << 3), b = re + (<usize>j << 3);
      const t = load<f64>(a); store<f64>(a, load<f64>(b)); store<f64>(b, t);
      const c = im + (<usize>i << 3), d = im + (<usize>j << 3);
      const u = load<f64>(c); store<f64>(c, load<f64>(d)); store<f64>(d, u);
    }
  }
  // Half-size 1: twiddle 1.
  for (let i = 0; i < n; i += 2) {
    const p = <usize>i << 3;
    const ar = load<f64>(re + p), ai = load<f64>(im + p), br = load<f64>(re + p, 8), bi = load<f64>(im + p, 8);
    store<f64>(re + p, ar + br); store<f64>(im + p, ai + bi);
    store<f64>(re + p, ar - br, 8); store<f64>(im + p, ai - bi, 8);
  }
  const sv = f64x2.splat(inverse ? -1.0 : 1.0);
  for (let h = 2; h < n; h <<= 1) {
    const tr0 = twRe + (<usize>(h - 1) << 3), ti0 = twIm + (<usize>(h - 1) << 3);
    const hb = <usize>h << 3;
    for (let i = 0; i < n; i += h << 1) {
      const pr = re + (<usize>i << 3), pi = im + (<usize>i << 3);
      for (let j = 0; j < h; j += 2) {
        const o = <usize>j << 3;
        const wr = v128.load(tr0 + o), wi = f64x2.mul(sv, v128.load(ti0 + o));
        const br = v128.load(pr + hb + o), bi = v128.load(pi + hb + o);
        const tr = f64x2.sub(f64x2.mul(br, wr), f64x2.mul(bi, wi));
        const ti = f64x2.add(f64x2.mul(br, wi), f64x2.mul(bi, wr));
        const ar = v128.load(pr + o), ai = v128.load(pi + o);
        v128.store(pr + o, f64x2.add(ar, tr)); v128.store(pi + o, f64x2.add(ai, ti));
        v128.store(pr + hb + o, f64x2.sub(ar, tr)); v128.store(pi + hb + o, f64x2.sub(ai, ti));
      }
    }
  }
}

/** x_t of sequence (d1, d2) of head h, batch row b: u[d1]·v[d2], or u[d1] without v. */
@inline function xAt(u: usize, v: usize, b: i32, t: i32, L: i32, C: i32, c1: i32, c2: i32): f64 {
  const row = <usize>(b * L + t) * C;
  const x = <f64>load<f32>(u + ((row + c1) << 2));
  return v ? x * <f64>load<f32>(v + ((row + c2) << 2)) : x;
}

export function fft_conv(
  u: usize, v: usize, q: usize, kernel: usize, K: i32, D: usize, y: usize, B: i32, L: i32, H: i32, P: i32,
  n: i32, twRe: usize, twIm: usize, rev: usize, h0: i32, h1: i32, scratch: usize,
): void {
  const C = H * P;
  const re = scratch, im = re + (<usize>n << 3), kre = im + (<usize>n << 3), kim = kre + (<usize>n << 3);
  const acc = kim + (<usize>n << 3); // [P, L] f32
  const taps = min(K, L);
  const inv: f64 = 1.0 / <f64>n;
  const S = P * P; // sequences per head
  let h = h0;
  if (P == 1) for (; h + 2 <= h1; h += 2) twoHeads(u, v, q, kernel, K, D, y, B, L, C, n, twRe, twIm, rev, h, scratch);
  for (; h < h1; h++) {
    // The kernel's spectrum (full n bins: the pairs below need both halves).
    memory.fill(kre, 0, <usize>n << 3);
    memory.fill(kim, 0, <usize>n << 3);
    for (let j = 0; j < taps; j++) store<f64>(kre + (<usize>j << 3), <f64>load<f32>(kernel + ((<usize>(h * K + j)) << 2)));
    fft(kre, kim, n, twRe, twIm, rev, false);
    const skip: f64 = D ? <f64>load<f32>(D + (<usize>h << 2)) : 0;
    for (let b = 0; b < B; b++) {
      memory.fill(acc, 0, (<usize>P * L) << 2);
      for (let s = 0; s < S; s += 2) {
        const two = s + 1 < S;
        const a1 = s / P, a2 = s % P, b1 = (s + 1) / P, b2 = (s + 1) % P;
        memory.fill(re, 0, <usize>n << 3);
        memory.fill(im, 0, <usize>n << 3);
        for (let t = 0; t < L; t++) {
          store<f64>(re + (<usize>t << 3), xAt(u, v, b, t, L, C, h * P + a1, h * P + a2));
          if (two) store<f64>(im + (<usize>t << 3), xAt(u, v, b, t, L, C, h * P + b1, h * P + b2));
        }
        fft(re, im, n, twRe, twIm, rev, false);
        for (let k = 0; k < n; k += 2) {
          const o = <usize>k << 3;
          const ar = v128.load(re + o), ai = v128.load(im + o), br = v128.load(kre + o), bi = v128.load(kim + o);
          v128.store(re + o, f64x2.sub(f64x2.mul(ar, br), f64x2.mul(ai, bi)));
          v128.store(im + o, f64x2.add(f64x2.mul(ar, bi), f64x2.mul(ai, br)));
        }
        fft(re, im, n, twRe, twIm, rev, true);
        const count = two ? 2 : 1;
        for (let pair = 0; pair < count; pair++) {
          const src = pair == 0 ? re : im;
          const d1 = pair == 0 ? a1 : b1, d2 = pair == 0 ? a2 : b2;
          const out = acc + ((<usize>d2 * L) << 2);
          for (let t = 0; t < L; t++) {
            const x = xAt(u, v, b, t, L, C, h * P + d1, h * P + d2);
            const z = load<f64>(src + (<usize>t << 3)) * inv + skip * x;
            const o = out + (<usize>t << 2);
            if (q) store<f32>(o, <f32>(<f64>load<f32>(o) + <f64>load<f32>(q + ((<usize>(b * L + t) * C + h * P + d1) << 2)) * z));
            else store<f32>(o, <f32>z);
          }
        }
      }
      for (let d2 = 0; d2 < P; d2++) {
        const src = acc + ((<usize>d2 * L) << 2);
        for (let t = 0; t < L; t++) store<f32>(y + ((<usize>(b * L + t) * C + h * P + d2) << 2), load<f32>(src + (<usize>t << 2)));
      }
    }
  }
}
