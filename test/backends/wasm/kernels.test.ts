// Every WebAssembly kernel against its TypeScript twin (the reference CpuBackend) on odd shapes, all
// weight dtypes, one thread and two.
import assert from "node:assert/strict";
import { after, describe, test } from "node:test";
import type { Backend } from "../../../src/backends/backend.js";
import { CpuBackend } from "../../../src/backends/cpu/index.js";
import { WasmCpuBackend } from "../../../src/backends/wasm/index.js";
import type { DType } from "../../../src/tensor/dtype.js";
import { quantizeQ8 } from "../../../src/tensor/q8.js";
import type { Tensor } from "../../../src/tensor/tensor.js";
import { Prng } from "../../ops/helpers.js";

const ref = new CpuBackend();
const fast = WasmCpuBackend.create(1);
if (fast) {
  fast.minWasmMacs = 0; // every linear through the wasm kernels, however small
  fast.minThreadWork = 0; // and every kernel split across the threads
  fast.minAddNormElements = 0; // and every add + norm through its kernel
}
after(() => fast?.dispose());

function relErr(got: Float32Array | Int32Array, want: Float32Array | Int32Array): number {
  assert.equal(got.length, want.length);
  let num = 0, den = 0;
  for (let i = 0; i < got.length; i++) {
    assert.ok(Number.isFinite(got[i]), `value ${i} is ${got[i]}`);
    num += (got[i] - want[i]) ** 2;
    den += want[i] ** 2;
  }
  return Math.sqrt(num / Math.max(den, 1e-30));
}

async function close(got: Tensor, want: Tensor, tol: number, what: string): Promise<void> {
  assert.deepEqual(got.shape, want.shape, what);
  const e = relErr(await got.read(), await want.read());
  assert.ok(e <= tol, `${what}: relative L2 error ${e.toExponential(2)} > ${tol} (got ${Array.from((await got.read()).slice(0, 4))} want ${Array.from((await want.read()).slice(0, 4))})`);
}

/** Random finite 16-bit patterns, subnormals and zeros included. */
function halfBits(rng: Prng, n: number, dtype: "f16" | "bf16"): Uint16Array {
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) {
    const sign = rng.next() < 0.5 ? 0x8000 : 0;
    const r = rng.next();
    if (dtype === "f16") {
      const exp = r < 0.05 ? 0 : rng.int(8, 17); // 5% subnormal, else about 2^-7 .. 2
      out[i] = sign | (exp << 10) | rng.int(0, 1024);
    } else {
      const exp = r < 0.02 ? 0 : rng.int(118, 128);
      out[i] = sign | (exp << 7) | rng.int(0, 128);
    }
  }
  return out;
}

/** The same values on both backends. */
function pair(data: Float32Array | Uint16Array, shape: number[], dtype: DType = "f32"): [Tensor, Tensor] {
  return [fast!.upload(data, shape, dtype), ref.upload(data, shape, dtype)];
}

function both<T>(f: (b: Backend, i: 0 | 1) => T): [T, T] {
  return [f(fast!, 0), f(ref, 1)];
}

const THREADS = [1, 2];

describe("wasm kernels match the TypeScript kernels", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, () => {
  for (const threads of THREADS) {
    test(`linear, f32/f16/bf16 weights, odd shapes (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(7 + threads);
      const shapes = [[1, 1, 1], [1, 7, 5], [2, 9, 13], [3, 33, 17], [4, 8, 8], [5, 31, 19], [1, 129, 67], [13, 70, 37], [70, 129, 33], [1, 768, 96], [9, 64, 130]];
      for (const [M, K, N] of shapes) {
        for (const dtype of ["f32", "f16", "bf16"] as const) {
          const x = pair(rng.f32(M * K), [M, K]);
          const w = dtype === "f32" ? pair(rng.f32(N * K, -0.5, 0.5), [N, K]) : pair(halfBits(rng, N * K, dtype), [N, K], dtype);
          const bias = rng.next() < 0.5 ? pair(rng.f32(N), [N]) : null;
          const [got, want] = both((b, i) => b.linear(x[i], w[i], bias ? bias[i] : null));
          await close(got, want, 2e-6, `linear ${dtype} M=${M} K=${K} N=${N}`);
        }
      }
    });

    test(`linear, f16 weights, few rows: subnormal and zero weights, x at and beyond 2^15 (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(41 + threads);
      // M < 4 takes the dot-product form, which prescales x by 2^112 (f16 weights then skip their rebias)
      // unless some |x| ≥ 2^15, where x·2^112 would near f32 overflow. K with and without a K % 8 tail,
      // N around the 4- and 8-row groups.
      const shapes = [[1, 64, 16], [1, 37, 19], [1, 768, 67], [2, 64, 13], [2, 101, 24], [3, 72, 9]];
      const weights = {
        // ±0 and subnormals only (exponent 0).
        subnormal: () => (rng.next() < 0.5 ? 0x8000 : 0) | (rng.next() < 0.2 ? 0 : rng.int(0, 1024)),
        // Normal values, a quarter of them subnormal or zero.
        mixed: () => (rng.next() < 0.5 ? 0x8000 : 0) | (rng.next() < 0.25 ? 0 : rng.int(1, 17) << 10) | rng.int(0, 1024),
        zero: () => (rng.next() < 0.5 ? 0x8000 : 0),
      };
      // Where |x| peaks: just below 2^15 (prescaled, x·2^112 just below 2^127), 2^15 itself and beyond,
      // up to where x·2^112 would overflow (the unscaled path), in the last row (the check covers all rows).
      const peaks = [0, 32767.998, 32768, 65536, 3e6, 1e30];
      for (const [M, K, N] of shapes) {
        for (const [kind, half] of Object.entries(weights)) {
          for (const peak of peaks) {
            const xs = rng.f32(M * K, -2, 2);
            if (peak) xs[(M - 1) * K + rng.int(0, K)] = rng.next() < 0.5 ? -peak : peak;
            const bits = new Uint16Array(N * K).map(half);
            const x = pair(xs, [M, K]);
            const w = pair(bits, [N, K], "f16");
            const bias = rng.next() < 0.5 ? pair(rng.f32(N), [N]) : null;
            const [got, want] = both((b, i) => b.linear(x[i], w[i], bias ? bias[i] : null));
            await close(got, want, 2e-6, `linear f16 ${kind} weights, |x| up to ${peak}, M=${M} K=${K} N=${N}`);
          }
        }
      }
    });

    test(`linear, q8 weights, odd shapes (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(23 + threads);
      // K around the block of 32 (short last blocks, K % 16 != 0, K < 32), N around the 4-row groups and
      // the 8-row split, M on both sides of the tile threshold (4).
      const shapes = [[1, 1, 1], [1, 7, 5], [2, 33, 13], [3, 48, 17], [1, 64, 9], [4, 8, 8], [5, 31, 19], [1, 129, 67], [13, 70, 37], [70, 129, 33], [1, 768, 96], [2, 1536, 21], [9, 100, 130], [4, 3, 2], [6, 40, 16], [131, 72, 24], [260, 136, 9]];
      for (const [M, K, N] of shapes) {
        const x = pair(rng.f32(M * K, -3, 3), [M, K]);
        const q = quantizeQ8(rng.f32(N * K, -0.5, 0.5), N, K);
        const w: [Tensor, Tensor] = [fast!.upload(q, [N, K], "q8"), ref.upload(q, [N, K], "q8")];
        const bias = rng.next() < 0.5 ? pair(rng.f32(N), [N]) : null;
        const [got, want] = both((b, i) => b.linear(x[i], w[i], bias ? bias[i] : null));
        // x is quantized to int16 per block of 32 (error ≤ 1.5e-5 of the block's max) for the integer
        // products, the dot form (M < 4) and the tiles alike.
        await close(got, want, 5e-5, `linear q8 M=${M} K=${K} N=${N}`);
      }
    });

    test(`causal attention, grouped queries, odd shapes, cached prefixes (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(29 + threads);
      // [B, L, T, Hq, Hkv, D, Dv, starts]: prefill (T = L), decode (L = 1) over a cache, GQA, D and Dv
      // off the vector widths, a row whose queries see nothing (start < 0 never happens; T < start + L does).
      const cases: [number, number, number, number, number, number, number, number[]][] = [
        [1, 1, 1, 1, 1, 1, 1, [0]], [1, 7, 7, 3, 1, 5, 9, [0]], [2, 5, 9, 4, 2, 8, 16, [4, 2]], [1, 1, 13, 6, 3, 7, 19, [12]],
        [2, 17, 17, 2, 2, 64, 64, [0, 0]], [1, 3, 6, 2, 1, 33, 35, [3]], [2, 4, 4, 12, 12, 64, 64, [0, 1]],
      ];
      for (const [B, L, T, Hq, Hkv, D, Dv, starts] of cases) {
        const q = pair(rng.f32(B * L * Hq * D, -2, 2), [B, L, Hq, D]);
        const k = pair(rng.f32(B * T * Hkv * D, -2, 2), [B, T, Hkv, D]);
        const v = pair(rng.f32(B * T * Hkv * Dv), [B, T, Hkv, Dv]);
        const st = Int32Array.from(starts);
        const qs: [Tensor, Tensor] = [fast!.upload(st, [B], "i32"), ref.upload(st, [B], "i32")];
        const scale = 1 / Math.sqrt(D);
        const [got, want] = both((b, i) => b.causalAttention({ q: q[i], k: k[i], v: v[i], queryStart: qs[i], scale }));
        await close(got, want, 2e-6, `attention B=${B} L=${L} T=${T} Hq=${Hq} Hkv=${Hkv} D=${D} Dv=${Dv}`);
      }
    });

    test(`unary activations and gated RMS norm (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(31 + threads);
      for (const n of [64, 67, 1001]) {
        const values = rng.f32(n, -12, 12);
        values[0] = 0; values[1] = -30; values[2] = 30; values[3] = 1e-4;
        const x = pair(values, [n]);
        for (const op of ["silu", "gelu", "gelu_tanh", "softplus"] as const) {
          const [got, want] = both((b, i) => b.unary(op, x[i]));
          await close(got, want, 1e-6, `${op} n=${n}`);
          const g = await got.read(), w = await want.read();
          for (let i = 0; i < n; i++) assert.ok(Math.abs(g[i] - w[i]) <= 1e-6 * (1 + Math.abs(w[i])), `${op}(${values[i]}) = ${g[i]}, want ${w[i]}`);
        }
      }
      for (const [rows, groups, groupSize] of [[1, 1, 64], [3, 2, 7], [5, 4, 33], [2, 1, 1536]]) {
        const n = rows * groups * groupSize;
        const y = pair(rng.f32(n, -3, 3), [rows, groups * groupSize]);
        const z = pair(rng.f32(n, -6, 6), [rows, groups * groupSize]);
        const w = pair(rng.f32(groups * groupSize), [groups * groupSize]);
        const [got, want] = both((b, i) => b.gatedRmsNorm(y[i], z[i], w[i], groupSize, 1e-5));
        await close(got, want, 2e-6, `gated RMS norm rows=${rows} groups=${groups} size=${groupSize}`);
      }
    });

    test(`residual add + RMSNorm / LayerNorm in one pass against add then norm (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(53 + threads);
      for (const [rows, D] of [[1, 768], [3, 7], [5, 33], [64, 130], [1, 1]]) {
        const n = rows * D;
        // An offset makes LayerNorm's mean large against the spread (a one-pass variance would lose digits).
        const a = pair(rng.f32(n, 97, 103), [rows, D]);
        const b = pair(rng.f32(n, -1, 1), [rows, D]);
        const w = pair(rng.f32(D), [D]);
        const bias = pair(rng.f32(D), [D]);
        for (const kind of ["rms", "layer"] as const) {
          const got = fast!.addNorm(a[0], b[0], { kind, weight: w[0], bias: kind === "layer" ? bias[0] : null, eps: 1e-5 });
          assert.ok(got, `${kind} rows=${rows} D=${D}: the kernel took it (minAddNormElements is 0)`);
          const wantSum = ref.binary("add", a[1], b[1]);
          const wantNormed = kind === "rms" ? ref.rmsNorm(wantSum, w[1], 1e-5) : ref.layerNorm(wantSum, w[1], bias[1], 1e-5);
          await close(got.sum, wantSum, 1e-7, `${kind} add rows=${rows} D=${D}`);
          await close(got.normed, wantNormed, 3e-6, `${kind} norm rows=${rows} D=${D}`);
        }
      }
    });

    test(`FFT convolution with H3 gating, odd lengths, heads and kernels (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(37 + threads);
      // [B, L, H, P, K, gated]: P = 3 leaves one sequence of a head unpaired in the two-at-once transforms.
      for (const [B, L, H, P, K, gated] of [[1, 1, 1, 1, 1, false], [2, 7, 3, 1, 7, false], [1, 37, 2, 3, 37, true], [2, 130, 3, 2, 64, true], [1, 33, 2, 1, 50, false], [1, 300, 4, 1, 300, true]] as [number, number, number, number, number, boolean][]) {
        const C = H * P;
        const u = pair(rng.f32(B * L * C), [B, L, C]);
        const v = gated ? pair(rng.f32(B * L * C), [B, L, C]) : null;
        const q = gated ? pair(rng.f32(B * L * C), [B, L, C]) : null;
        const kernel = pair(rng.f32(H * K, -0.5, 0.5), [H, K]);
        const D = rng.next() < 0.5 ? pair(rng.f32(H), [H]) : null;
        const [got, want] = both((b, i) => b.fftConv({ u: u[i], v: v ? v[i] : null, q: q ? q[i] : null, headDim: P, D: D ? D[i] : null, kernel: kernel[i] }));
        await close(got, want, 1e-6, `fftConv B=${B} L=${L} H=${H} P=${P} K=${K}${gated ? " gated" : ""}`);
      }
    });

    test(`selective scan and state update (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(11 + threads);
      for (const [B, L, E, N] of [[1, 1, 1, 1], [2, 7, 13, 5], [1, 9, 8, 16], [2, 3, 21, 16]]) {
        for (const variant of [0, 1, 2]) {
          const full = variant !== 1;
          const u = pair(rng.f32(B * L * E), [B, L, E]);
          const delta = pair(rng.f32(B * L * E, -4, 2), [B, L, E]);
          const A = pair(rng.f32(E * N, -4, -0.1), [E, N]);
          const Bm = pair(rng.f32(B * L * N), [B, L, N]);
          const Cm = pair(rng.f32(B * L * N), [B, L, N]);
          const D = full ? pair(rng.f32(E), [E]) : null;
          const z = full ? pair(rng.f32(B * L * E, -3, 3), [B, L, E]) : null;
          const bias = variant === 2 ? pair(rng.f32(E, -6, 0), [E]) : null;
          const state = variant !== 0 ? pair(rng.f32(B * E * N), [B, E, N]) : null;
          const args = (i: 0 | 1) => ({
            u: u[i], delta: delta[i], A: A[i], B: Bm[i], C: Cm[i], D: D ? D[i] : null, z: z ? z[i] : null,
            deltaBias: bias ? bias[i] : null, deltaSoftplus: variant !== 1, state: state ? state[i] : null,
          });
          const [got, want] = both((b, i) => b.selectiveScan(args(i)));
          await close(got.y, want.y, 1e-5, `scan y B=${B} L=${L} E=${E} N=${N} v${variant}`);
          await close(got.state, want.state, 1e-5, `scan state B=${B} L=${L} E=${E} N=${N} v${variant}`);
          if (L === 1) {
            const [g1, w1] = both((b, i) => b.selectiveStateUpdate(args(i)));
            await close(g1.y, w1.y, 1e-5, `state update y E=${E} N=${N}`);
            await close(g1.state, w1.state, 1e-5, `state update state E=${E} N=${N}`);
          }
        }
      }
    });

    test(`causal conv1d (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(13 + threads);
      // K = 4 with up to 4 steps takes the taps transposed in registers (decoding); the rest the scratch layout.
      for (const [B, L, C, K] of [[1, 1, 1, 2], [2, 6, 11, 4], [1, 2, 9, 4], [2, 33, 20, 3], [2, 1, 13, 4], [1, 4, 7, 4], [1, 3, 2, 4], [1, 1, 1539, 4], [1, 5, 6, 4]]) {
        for (const variant of [0, 1]) {
          const x = pair(rng.f32(B * L * C), [B, L, C]);
          const w = pair(rng.f32(C * K), [C, K]);
          const bias = variant ? pair(rng.f32(C), [C]) : null;
          const state = variant ? pair(rng.f32(B * (K - 1) * C), [B, K - 1, C]) : null;
          const [got, want] = both((b, i) => b.causalConv1d({
            x: x[i], weight: w[i], bias: bias ? bias[i] : null, state: state ? state[i] : null, activation: variant ? "silu" : null,
          }));
          await close(got.y, want.y, 1e-6, `conv y B=${B} L=${L} C=${C} K=${K}`);
          await close(got.state, want.state, 0, `conv state B=${B} L=${L} C=${C} K=${K}`);
        }
      }
    });

    test(`SSD chunked and step (${threads} thread${threads > 1 ? "s" : ""})`, async () => {
      fast!.setThreads(threads);
      const rng = new Prng(17 + threads);
      for (const [B, L, H, P, G, N, chunk] of [[1, 1, 1, 1, 1, 1, 4], [2, 11, 3, 5, 1, 7, 4], [1, 9, 4, 8, 2, 16, 16], [2, 13, 6, 3, 3, 9, 5], [3, 1, 4, 6, 2, 19, 8], [1, 70, 4, 16, 1, 32, 32], [2, 37, 2, 12, 1, 20, 16], [1, 64, 2, 64, 1, 128, 64]]) {
        for (const variant of [0, 1]) {
          const x = pair(rng.f32(B * L * H * P), [B, L, H, P]);
          const dt = pair(rng.f32(B * L * H, -2.5, 0.5), [B, L, H]);
          const A = pair(rng.f32(H, -4, -0.5), [H]);
          const Bm = pair(rng.f32(B * L * G * N), [B, L, G, N]);
          const Cm = pair(rng.f32(B * L * G * N), [B, L, G, N]);
          const D = variant ? pair(rng.f32(H * P), [H * P]) : pair(rng.f32(H), [H]);
          const bias = variant ? pair(rng.f32(H), [H]) : null;
          const state = variant ? pair(rng.f32(B * H * P * N), [B, H, P, N]) : null;
          const args = (i: 0 | 1) => ({
            x: x[i], dt: dt[i], A: A[i], B: Bm[i], C: Cm[i], D: D[i], dtBias: bias ? bias[i] : null, dtSoftplus: true,
            dtMin: variant ? 0.01 : 0, dtMax: variant ? 0.5 : Infinity, state: state ? state[i] : null, chunkSize: chunk,
          });
          const [got, want] = both((b, i) => b.ssdChunked(args(i)));
          await close(got.y, want.y, 1e-5, `ssd y B=${B} L=${L} H=${H} P=${P} G=${G} N=${N} v${variant}`);
          await close(got.state, want.state, 1e-5, `ssd state B=${B} L=${L} H=${H} P=${P} G=${G} N=${N} v${variant}`);
          if (L === 1) {
            const [g1, w1] = both((b, i) => b.ssdStep(args(i)));
            await close(g1.y, w1.y, 1e-5, `ssd step y H=${H} P=${P} N=${N}`);
            await close(g1.state, w1.state, 1e-5, `ssd step state H=${H} P=${P} N=${N}`);
          }
        }
      }
    });
  }
});
