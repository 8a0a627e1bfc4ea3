import { test } from "node:test";
import assert from "node:assert/strict";
import { referenceKernels, WasmBackwardKernels } from "../../src/autograd/kernels.js";
import type { ScanHost } from "../../src/autograd/rules/mamba.js";
import { causalAttentionKernel } from "../../src/backends/cpu/kernels/attention.js";
import { gelu } from "../../src/backends/cpu/kernels/elementwise.js";
import { relativeL2 } from "../fixtures.js";
import { randomValues } from "./gradcheck.js";

// The WebAssembly backward kernels against the TypeScript references they replace, on random inputs
// (sizes that are and are not multiples of the SIMD tiles), including every optional input and output.
const wasm = WasmBackwardKernels.create();
const ref = referenceKernels;

function close(name: string, got: Float32Array | null, want: Float32Array | null, tol = 1e-5): void {
  assert.equal(got === null, want === null, `${name}: present in one result only`);
  if (!got || !want) return;
  assert.equal(got.length, want.length, `${name}: length`);
  // All-zero references (no gradient flows there) must come back all zero.
  const err = want.every((v) => v === 0) ? Math.max(0, ...got.map(Math.abs)) : relativeL2(got, want);
  assert.ok(err < tol, `${name}: relative L2 error ${err.toExponential(2)} (tolerance ${tol})`);
}

test("wasm linearBackward matches the reference (∂x, ∂w, ∂b)", { skip: !wasm && "no WebAssembly SIMD" }, async () => {
  for (const [M, K, N] of [[1, 1, 1], [5, 3, 7], [64, 64, 256], [37, 19, 13], [1344, 64, 128], [8, 9, 4]]) {
    const x = randomValues(M * K, M + K), w = randomValues(N * K, N), g = randomValues(M * N, 7 * M + N);
    for (const want of [{ x: true, w: true, b: true }, { x: false, w: true, b: false }, { x: true, w: false, b: true }]) {
      const a = wasm!.linearBackward(x, w, M, K, N, g, want), b = await ref.linearBackward(x, w, M, K, N, g, want);
      close(`gx ${M}x${K}x${N}`, a.gx, b.gx);
      close(`gw ${M}x${K}x${N}`, a.gw, b.gw);
      close(`gb ${M}x${K}x${N}`, a.gb, b.gb);
    }
  }
});

test("wasm selectiveScanBackward matches the reference, with and without D, z, Δ bias, softplus, states", { skip: !wasm && "no WebAssembly SIMD" }, () => {
  const Bsz = 2, L = 7, E = 6, N = 8;
  let seed = 1;
  const r = (n: number, scale = 1, offset = 0) => randomValues(n, seed++, scale).map((v) => v + offset);
  for (const full of [true, false]) {
    for (const withG of [true, false]) {
      const p: ScanHost = {
        u: r(Bsz * L * E), delta: r(Bsz * L * E, 0.5, full ? 0 : 0.6), A: r(E * N, 0.5, -1), B: r(Bsz * L * N), C: r(Bsz * L * N),
        D: full ? r(E) : null, z: full ? r(Bsz * L * E, 2) : null, deltaBias: full ? r(E, 0.5) : null, deltaSoftplus: full,
        state: full ? r(Bsz * E * N) : null,
      };
      const g = withG ? r(Bsz * L * E) : null;
      const gState = full || !withG ? r(Bsz * E * N) : null;
      const a = wasm!.selectiveScanBackward(p, Bsz, L, E, N, g, gState), b = ref.selectiveScanBackward(p, Bsz, L, E, N, g, gState);
      for (const k of Object.keys(b) as (keyof typeof b)[]) close(`${k} (full ${full}, g ${withG})`, a[k], b[k], 2e-5);
    }
  }
});

test("wasm selectiveScanBackward falls back to the reference when N is not a multiple of 4", { skip: !wasm && "no WebAssembly SIMD" }, () => {
  const Bsz = 1, L = 3, E = 2, N = 3;
  const p: ScanHost = {
    u: randomValues(L * E, 1), delta: randomValues(L * E, 2, 0.3).map((v) => v + 0.5), A: randomValues(E * N, 3).map((v) => v - 1.5),
    B: randomValues(L * N, 4), C: randomValues(L * N, 5), D: null, z: null, deltaBias: null, deltaSoftplus: false, state: null,
  };
  const g = randomValues(L * E, 6);
  assert.deepEqual(wasm!.selectiveScanBackward(p, Bsz, L, E, N, g, null), ref.selectiveScanBackward(p, Bsz, L, E, N, g, null));
});

test("fast unaryBackward: GELU's derivative matches the erfc reference, at 0, in the tails and everywhere between", () => {
  const kernels = wasm ?? ref;
  const x = Float32Array.from([0, 1e-4, -1e-4, 1e-3, -2e-3, 0.5, -0.5, 3, -3, 8, -8, 12, -12, ...randomValues(1000, 9, 6)]);
  const y = x.map(gelu);
  const g = randomValues(x.length, 10).map((v) => v + 2);
  for (const op of ["gelu", "silu", "relu"] as const) {
    const yy = op === "gelu" ? y : op === "silu" ? x.map((v) => v / (1 + Math.exp(-v))) : x.map((v) => Math.max(v, 0));
    const a = kernels.unaryBackward(op, x, yy, g), b = ref.unaryBackward(op, x, yy, g);
    for (let i = 0; i < x.length; i++) assert.ok(Math.abs(a[i] - b[i]) <= 1e-6 * (1 + Math.abs(b[i])), `${op}'(${x[i]}): ${a[i]} vs ${b[i]}`);
  }
});

test("wasm ssdBackward matches the reference: groups, D per head and per channel, dt bias/softplus/clamp, states", { skip: !wasm && "no WebAssembly SIMD" }, () => {
  let seed = 100;
  const r = (n: number, scale = 1, offset = 0) => randomValues(n, seed++, scale).map((v) => v + offset);
  const d = { Bsz: 2, L: 9, H: 4, P: 3, G: 2, N: 8 };
  const { Bsz, L, H, P, G, N } = d;
  for (const variant of ["full", "bare", "perChannelD"] as const) {
    const full = variant !== "bare";
    const p = {
      x: r(Bsz * L * H * P), dt: r(Bsz * L * H, 1, full ? 0 : 0.5), A: r(H, 0.5, -1), B: r(Bsz * L * G * N), C: r(Bsz * L * G * N),
      D: variant === "full" ? r(H) : variant === "perChannelD" ? r(H * P) : null, dtBias: full ? r(H, 0.5) : null, dtSoftplus: full,
      dtMin: full ? 0.3 : 0, dtMax: full ? 1.5 : Infinity, state: full ? r(Bsz * H * P * N) : null,
    };
    const gy = r(Bsz * L * H * P), gState = full ? r(Bsz * H * P * N) : null;
    const want = { x: true, dt: true, A: true, B: true, C: true, D: true, dtBias: true, state: true };
    const a = wasm!.ssdBackward(p, d, gy, gState, want), b = ref.ssdBackward(p, d, gy, gState, want);
    for (const k of Object.keys(b) as (keyof typeof b)[]) close(`${k} (${variant})`, a[k], b[k], 2e-5);
    const some = { ...want, x: false, B: false, dtBias: false };
    const c = wasm!.ssdBackward(p, d, null, gState ?? r(Bsz * H * P * N), some);
    assert.equal(c.gx, null);
    assert.equal(c.gB, null);
  }
});

test("fast GELU forward matches the CPU kernel's double-precision GELU to f32 rounding", () => {
  const kernels = wasm ?? ref;
  if (kernels === ref) return;
  const x = Float32Array.from([0, 1e-6, -1e-6, 0.5, -0.5, 1, -1, 3, -3, 6, -6, 9, -9, 20, -20, ...randomValues(2000, 11, 8)]);
  const y = kernels.unaryForward("gelu", x)!;
  for (let i = 0; i < x.length; i++) {
    const want = gelu(x[i]);
    // The f32 rounding of x²/2 inside exp costs about 6e-8·x² relative in the negative tail (where |y| is tiny).
    const tol = 5e-7 + 1.2e-7 * x[i] * x[i];
    assert.ok(Math.abs(y[i] - want) <= tol * Math.abs(want) + 1e-30, `gelu(${x[i]}) = ${y[i]}, want ${want}`);
  }
  assert.equal(kernels.unaryForward("silu", x), null, "other ops stay with the CPU backend");
});

test("wasm causalAttentionBackward matches the reference: grouped heads, query offsets (KV cache), blind queries", { skip: !wasm && "no WebAssembly SIMD" }, () => {
  let seed = 300;
  const r = (n: number, scale = 1) => randomValues(n, seed++, scale);
  for (const [Bsz, L, T, Hq, Hkv, D, Dv, starts] of [
    [2, 5, 5, 4, 4, 8, 8, [0, 0]], [2, 3, 7, 4, 2, 4, 8, [4, 2]], [1, 4, 4, 2, 1, 12, 4, [-2]], [3, 6, 6, 1, 1, 16, 16, [0, 0, 0]],
  ] as [number, number, number, number, number, number, number, number[]][]) {
    const q = r(Bsz * L * Hq * D), k = r(Bsz * T * Hkv * D), v = r(Bsz * T * Hkv * Dv), out = r(Bsz * L * Hq * Dv), g = r(Bsz * L * Hq * Dv);
    const qStart = Int32Array.from(starts);
    const scale = 1 / Math.sqrt(D);
    for (const want of [{ q: true, k: true, v: true }, { q: false, k: true, v: false }]) {
      const a = wasm!.causalAttentionBackward(q, k, v, out, qStart, Bsz, L, T, Hq, Hkv, D, Dv, scale, g, want);
      const b = ref.causalAttentionBackward(q, k, v, out, qStart, Bsz, L, T, Hq, Hkv, D, Dv, scale, g, want);
      const what = `B${Bsz} L${L} T${T} Hq${Hq} Hkv${Hkv} D${D} Dv${Dv}`;
      close(`gq ${what}`, a.gq, b.gq);
      close(`gk ${what}`, a.gk, b.gk);
      close(`gv ${what}`, a.gv, b.gv);
    }
  }
});

test("wasm causalConv1dBackward matches the reference: silu or none, bias, initial state, final-state gradient, L < K-1", { skip: !wasm && "no WebAssembly SIMD" }, () => {
  let seed = 500;
  const r = (n: number) => randomValues(n, seed++);
  for (const [Bsz, L, C, K] of [[2, 7, 8, 4], [1, 2, 4, 4], [3, 5, 12, 1], [2, 6, 4, 3]]) {
    const S = K - 1;
    for (const full of [true, false]) {
      const x = r(Bsz * L * C), w = r(C * K), bias = full ? r(C) : null, state = full && S > 0 ? r(Bsz * S * C) : null;
      const g = r(Bsz * L * C), gState = full && S > 0 ? r(Bsz * S * C) : null;
      const activation = full ? "silu" as const : null;
      const want = { x: true, w: true, bias: full, state: full };
      const a = wasm!.causalConv1dBackward(x, Bsz, L, C, w, K, bias, state, activation, g, gState, want);
      const b = ref.causalConv1dBackward(x, Bsz, L, C, w, K, bias, state, activation, g, gState, want);
      for (const k of Object.keys(b) as (keyof typeof b)[]) close(`${k} B${Bsz} L${L} C${C} K${K} full ${full}`, a[k], b[k]);
    }
  }
});

test("wasm attentionForward matches the CPU kernel: grouped heads, query offsets, blind queries", { skip: !wasm && "no WebAssembly SIMD" }, () => {
  let seed = 700;
  const r = (n: number) => randomValues(n, seed++, 2);
  for (const [Bsz, L, T, Hq, Hkv, D, Dv, starts] of [
    [2, 5, 5, 4, 4, 8, 8, [0, 0]], [2, 3, 7, 4, 2, 4, 8, [4, 2]], [1, 4, 4, 2, 1, 12, 4, [-2]], [1, 3, 3, 2, 2, 6, 4, [0]],
  ] as [number, number, number, number, number, number, number, number[]][]) {
    const q = r(Bsz * L * Hq * D), k = r(Bsz * T * Hkv * D), v = r(Bsz * T * Hkv * Dv), qStart = Int32Array.from(starts);
    const got = wasm!.attentionForward(q, k, v, qStart, Bsz, L, T, Hq, Hkv, D, Dv, 0.3);
    if (D % 4 !== 0) {
      assert.equal(got, null, "head sizes not a multiple of 4 stay with the CPU kernel");
      continue;
    }
    const want = new Float32Array(Bsz * L * Hq * Dv);
    causalAttentionKernel(q, k, v, qStart, Bsz, L, T, Hq, Hkv, D, Dv, 0.3, want);
    close(`attention B${Bsz} L${L} T${T} Hq${Hq} Hkv${Hkv} D${D}`, got, want);
  }
});
