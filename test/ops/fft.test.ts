// Our FFTs against the naive DFT, and the fftConv op against a direct convolution written here in float64,
// for sequence lengths from 1 to 20,000 (a sample of them: the direct sum is quadratic), with kernels
// shorter and longer than the sequence, skips, and H3's gating (k·v outer products, q-weighted sums).
import { test } from "node:test";
import assert from "node:assert/strict";
import { ComplexFft, RealFft, nextPowerOfTwo } from "../../src/backends/cpu/kernels/fft.js";
import { directConvKernel } from "../../src/backends/cpu/kernels/long-conv.js";
import { fftConv, tensor } from "../../src/ops/index.js";
import { assertClose, assertHippoError, Prng, readChecked } from "./helpers.js";

function naiveDft(re: ArrayLike<number>, im: ArrayLike<number>, inverse: boolean): { re: Float64Array; im: Float64Array } {
  const n = re.length;
  const outRe = new Float64Array(n);
  const outIm = new Float64Array(n);
  const sign = inverse ? 1 : -1;
  for (let k = 0; k < n; k++) {
    let sr = 0, si = 0;
    for (let j = 0; j < n; j++) {
      const a = (sign * 2 * Math.PI * ((j * k) % n)) / n;
      sr += re[j] * Math.cos(a) - im[j] * Math.sin(a);
      si += re[j] * Math.sin(a) + im[j] * Math.cos(a);
    }
    outRe[k] = sr;
    outIm[k] = si;
  }
  return { re: outRe, im: outIm };
}

function randomF64(rng: Prng, n: number): Float64Array {
  return Float64Array.from({ length: n }, () => rng.uniform(-1, 1));
}

test("ComplexFft matches the naive DFT, forward and inverse, for every power of two up to 1024", () => {
  const rng = new Prng(1);
  for (let n = 1; n <= 1024; n *= 2) {
    for (const inverse of [false, true]) {
      const re = randomF64(rng, n), im = randomF64(rng, n);
      const want = naiveDft(re, im, inverse);
      const gotRe = re.slice(), gotIm = im.slice();
      new ComplexFft(n).transform(gotRe, gotIm, inverse);
      assertClose(gotRe, want.re, `n=${n} ${inverse ? "inverse" : "forward"} re`, { tol: 1e-10 });
      assertClose(gotIm, want.im, `n=${n} ${inverse ? "inverse" : "forward"} im`, { tol: 1e-10 });
    }
  }
});

test("RealFft gives the first n/2+1 DFT bins of a real signal, and inverts exactly", () => {
  const rng = new Prng(2);
  for (let n = 2; n <= 2048; n *= 2) {
    const x = randomF64(rng, n);
    const plan = new RealFft(n);
    const re = new Float64Array(plan.bins), im = new Float64Array(plan.bins);
    plan.forward(x, re, im);
    if (n <= 512) {
      const want = naiveDft(x, new Float64Array(n), false);
      assertClose(re, want.re.subarray(0, n / 2 + 1), `n=${n} bins re`, { tol: 1e-10 });
      assertClose(im, want.im.subarray(0, n / 2 + 1), `n=${n} bins im`, { tol: 1e-10 });
    }
    const back = new Float64Array(n);
    plan.inverse(re, im, back);
    assertClose(back, x, `n=${n} round trip`, { tol: 1e-12 });
  }
});

test("nextPowerOfTwo", () => {
  assert.deepEqual([1, 2, 3, 4, 5, 1023, 1024, 1025].map(nextPowerOfTwo), [1, 2, 4, 4, 8, 1024, 1024, 2048]);
});

interface ConvCase {
  B: number; L: number; H: number; P: number; K: number;
  u: Float32Array; v: Float32Array | null; q: Float32Array | null; kernel: Float32Array; D: Float32Array | null;
}

function makeCase(rng: Prng, B: number, L: number, H: number, P: number, K: number, gated: boolean, skip: boolean): ConvCase {
  const C = H * P;
  return {
    B, L, H, P, K,
    u: rng.f32(B * L * C), v: gated ? rng.f32(B * L * C) : null, q: gated ? rng.f32(B * L * C) : null,
    // A decaying kernel, like an SSM's, keeps outputs O(1) for long sequences.
    kernel: Float32Array.from({ length: H * K }, (_, i) => rng.uniform(-1, 1) * Math.exp(-(i % K) / 50)),
    D: skip ? rng.f32(H) : null,
  };
}

/** y[b, t, h·P + d2] = Σ_d1 q[d1] · (Σ_j kernel[h, j]·x[t−j] + D[h]·x[t]), x = u[d1]·v[d2], in float64. */
function convRef(c: ConvCase): Float64Array {
  const { B, L, H, P, K } = c;
  const C = H * P;
  const y = new Float64Array(B * L * C);
  const at = (a: Float32Array, b: number, t: number, ch: number) => a[(b * L + t) * C + ch];
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let d1 = 0; d1 < P; d1++) {
        for (let d2 = 0; d2 < P; d2++) {
          const x = Float64Array.from({ length: L }, (_, t) => at(c.u, b, t, h * P + d1) * (c.v ? at(c.v, b, t, h * P + d2) : 1));
          const k = Float64Array.from(c.kernel.subarray(h * K, (h + 1) * K));
          for (let t = 0; t < L; t++) {
            let s = (c.D ? c.D[h] : 0) * x[t];
            const J = Math.min(t, K - 1);
            for (let j = 0; j <= J; j++) s += k[j] * x[t - j];
            y[(b * L + t) * C + h * P + d2] += c.q ? at(c.q, b, t, h * P + d1) * s : s;
          }
        }
      }
    }
  }
  return y;
}

async function runFftConv(c: ConvCase): Promise<Float32Array> {
  const C = c.H * c.P;
  const t = (a: Float32Array | null, shape: number[]) => (a ? tensor(a, shape) : null);
  const y = fftConv({
    u: tensor(c.u, [c.B, c.L, C]), v: t(c.v, [c.B, c.L, C]), q: t(c.q, [c.B, c.L, C]), headDim: c.P,
    D: t(c.D, [c.H]), kernel: tensor(c.kernel, [c.H, c.K]),
  });
  return readChecked(y, [c.B, c.L, C], "fftConv");
}

test("fftConv equals the direct convolution for lengths 1 … 20,000 (kernel as long as the sequence)", async () => {
  const rng = new Prng(3);
  for (const L of [1, 2, 3, 4, 5, 7, 16, 17, 31, 100, 255, 256, 257, 1000, 4097]) {
    const c = makeCase(rng, 2, L, 3, 1, L, false, true);
    assertClose(await runFftConv(c), convRef(c), `L=${L}`, { tol: 1e-5 });
  }
  // One long case, one channel (the direct sum is O(L²)).
  const c = makeCase(rng, 1, 20000, 1, 1, 20000, false, true);
  assertClose(await runFftConv(c), convRef(c), "L=20000", { tol: 1e-5 });
});

test("fftConv with kernels shorter and longer than the sequence", async () => {
  const rng = new Prng(4);
  for (const [L, K] of [[50, 1], [50, 7], [7, 50], [300, 64], [1, 5]]) {
    const c = makeCase(rng, 2, L, 4, 1, K, false, false);
    assertClose(await runFftConv(c), convRef(c), `L=${L} K=${K}`, { tol: 1e-5 });
  }
});

test("fftConv fuses H3's gating: k·v outer products per head, q-weighted sum over the head dim", async () => {
  const rng = new Prng(5);
  for (const [L, H, P] of [[37, 3, 1], [37, 2, 4], [130, 3, 2], [9, 1, 8]]) {
    const c = makeCase(rng, 2, L, H, P, L, true, true);
    assertClose(await runFftConv(c), convRef(c), `L=${L} H=${H} P=${P}`, { tol: 1e-5 });
  }
});

test("directConvKernel (the CPU reference twin) agrees with the test's own direct sum", () => {
  const rng = new Prng(6);
  const c = makeCase(rng, 2, 40, 2, 3, 25, true, true);
  const y = new Float32Array(2 * 40 * 6);
  directConvKernel({ u: c.u, v: c.v, q: c.q }, { B: 2, L: 40, H: 2, P: 3 }, c.kernel, 25, c.D, y);
  assertClose(y, convRef(c), "directConvKernel", { tol: 1e-6 });
});

test("fftConv rejects inconsistent shapes with clear errors", () => {
  const u = tensor(new Float32Array(2 * 5 * 6), [2, 5, 6]);
  const kernel = tensor(new Float32Array(6 * 5), [6, 5]);
  assertHippoError(() => fftConv({ u, v: null, q: null, headDim: 4, D: null, kernel }), "head dim 4 does not divide the 6 channels");
  assertHippoError(() => fftConv({ u, v: null, q: null, headDim: 2, D: null, kernel }), "needs both v");
  assertHippoError(() => fftConv({ u, v: null, q: null, headDim: 1, D: null, kernel: tensor(new Float32Array(10), [2, 5]) }),
    "kernel has shape [2, 5], expected [6, taps]");
  assertHippoError(() => fftConv({ u, v: tensor(new Float32Array(6), [1, 1, 6]), q: null, headDim: 1, D: null, kernel }), "v has shape");
});
