import { test } from "node:test";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import type { DiagSsmParams } from "../../src/backends/backend.js";
import * as ops from "../../src/ops/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { gradcheck, param } from "./gradcheck.js";

const backend = new GradBackend();

function both(r: { y: Tensor; state: Tensor }): Tensor {
  return backend.concat0([ops.reshape(r.y, [r.y.size]), ops.reshape(r.state, [r.state.size])]);
}

/** Gated inputs [B, L, H·P]: with P > 1 both v and q (the ops require them). */
function gated(B: number, L: number, H: number, P: number, seed: number, withV: boolean, withQ: boolean, withD: boolean) {
  const t: Record<string, Tensor> = { u: param(backend, [B, L, H * P], seed) };
  if (withV) t.v = param(backend, [B, L, H * P], seed + 1);
  if (withQ) t.q = param(backend, [B, L, H * P], seed + 2);
  if (withD) t.D = param(backend, [H], seed + 3);
  return t;
}

const gatedArgs = (t: Record<string, Tensor>, P: number) => ({ u: t.u, v: t.v ?? null, q: t.q ?? null, D: t.D ?? null, headDim: P });

test("fftConv: gated H3 form (headDim 2) and plain forms (headDim 1, with and without v, q, D)", async () => {
  const cases: [number, boolean, boolean, boolean][] = [
    [2, true, true, true], [1, false, false, false], [1, false, false, true], [1, true, false, true], [1, false, true, false], [1, true, true, true],
  ];
  for (const [P, withV, withQ, withD] of cases) {
    const H = 3, L = 11;
    const t = gated(2, L, H, P, 100 + P, withV, withQ, withD);
    // Kernels longer than L (the extra taps get zero gradient) and shorter than L.
    for (const K of [L + 3, 5]) {
      const kernel = param(backend, [H, K], 110 + K, 0.5);
      await gradcheck(backend, { ...t, kernel }, () => ops.fftConv({ ...gatedArgs(t, P), kernel }));
    }
  }
});

function ssmParams(H: number, N: number, seed: number, discretization: "zoh" | "bilinear") {
  const logDt = param(backend, [H], seed, 0.5, -1.5);
  const A = param(backend, [H, N, 2], seed + 1, 0.5);
  // Real parts negative (stable), imaginary parts spread.
  const a = A.storage as Float32Array;
  for (let i = 0; i < a.length; i += 2) {
    a[i] = -0.6 + a[i];
    a[i + 1] = 3 * a[i + 1] + (i / 2) % N;
  }
  const B = param(backend, [H, N, 2], seed + 2);
  const C = param(backend, [H, N, 2], seed + 3);
  return { logDt, A, B, C, discretization };
}

const ssmTensors = (s: ReturnType<typeof ssmParams>) => ({ logDt: s.logDt, A: s.A, B: s.B, C: s.C });

test("diagSsmKernel: gradients of logDt, A, B, C for both discretizations", async () => {
  for (const disc of ["zoh", "bilinear"] as const) {
    const s = ssmParams(3, 4, 200, disc);
    await gradcheck(backend, ssmTensors(s), () => ops.diagSsmKernel(s, 13));
  }
});

test("diagSsmConv: headDim 1 and 2, both discretizations, chunked (L > chunkSize) and not", async () => {
  for (const disc of ["zoh", "bilinear"] as const) {
    for (const [P, withV, withQ, withD, chunk] of [[1, false, false, true, 4], [2, true, true, true, 16], [1, true, true, false, 3]] as const) {
      const H = 2, L = 9;
      const t = gated(2, L, H, P, 300 + P, withV, withQ, withD);
      const s = ssmParams(H, 3, 310, disc);
      await gradcheck(backend, { ...t, ...ssmTensors(s) }, () => ops.diagSsmConv({ ...gatedArgs(t, P), ssm: s, state: null, chunkSize: chunk }).y);
    }
  }
});

test("diagSsmConv: initial state and final-state gradient", async () => {
  for (const disc of ["zoh", "bilinear"] as const) {
    for (const [P, withV, withQ] of [[1, false, false], [2, true, true], [1, false, true]] as const) {
      const H = 2, L = 7, N = 3;
      const t = gated(2, L, H, P, 400 + P, withV, withQ, true);
      const s = ssmParams(H, N, 410, disc);
      const state = param(backend, [2, H, P, P, N, 2], 420);
      const all = { ...t, ...ssmTensors(s), state };
      await gradcheck(backend, all, () => both(ops.diagSsmConv({ ...gatedArgs(t, P), ssm: s, state, chunkSize: 3 })));
      // The final state alone, without an initial state.
      await gradcheck(backend, { ...t, ...ssmTensors(s) }, () => ops.diagSsmConv({ ...gatedArgs(t, P), ssm: s, state: null, chunkSize: 4 }).state);
    }
  }
});

test("shiftSsmTaps and shiftSsm: taps derived or given, long and short inputs, state in and out", async () => {
  const Ch = 5, N = 4;
  const B = param(backend, [Ch, N], 500), C = param(backend, [Ch, N], 501), D = param(backend, [Ch], 502);
  await gradcheck(backend, { B, C }, () => ops.shiftSsmTaps(B, C));
  for (const L of [9, 3]) {
    const u = param(backend, [2, L, Ch], 510 + L), state = param(backend, [2, Ch, N], 520 + L);
    await gradcheck(backend, { u, B, C, D, state }, () => both(ops.shiftSsm({ u, taps: null, B, C, D, state })));
    await gradcheck(backend, { u, B, C }, () => ops.shiftSsm({ u, taps: null, B, C, D: null, state: null }).y);
    // Taps given as a tensor (derived through shiftSsmTaps on the tape, or a free parameter).
    await gradcheck(backend, { u, B, C, D, state }, () => both(ops.shiftSsm({ u, taps: ops.shiftSsmTaps(B, C), B, C, D, state })));
    const taps = param(backend, [Ch, N], 530);
    await gradcheck(backend, { u, taps, B, C }, () => both(ops.shiftSsm({ u, taps, B, C, D: null, state })));
  }
});
