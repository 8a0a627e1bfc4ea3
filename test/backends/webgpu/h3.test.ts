// WebGPU H3 kernels against the CPU backend: shift-SSM taps and the shift SSM (parallel and one step, with
// and without a carried state), the diagonal SSM's kernel, its convolution (one chunk and chunked, head_dim
// 1 and > 1 with v and q gating, bilinear and zoh) and its step, and the explicit-kernel long convolution.
import { test } from "node:test";
import type { Backend, DiagSsmParams } from "../../../src/backends/backend.js";
import { compareOp, Inputs, type Input } from "./harness.js";
import { skip } from "./setup.js";

interface DiagInputs { logDt: Input; A: Input; B: Input; C: Input }

function diagInputs(r: Inputs, H: number, N: number): DiagInputs {
  // Re(A) < 0 (a stable SSM), |Im A| up to a few π; dt between 1e-3 and 1e-1.
  const A = r.f32([H, N, 2], -1, 1);
  const a = A.data as Float32Array;
  for (let i = 0; i < a.length; i += 2) {
    a[i] = -0.5 - Math.abs(a[i]);
    a[i + 1] *= 10;
  }
  return { logDt: r.f32([H], Math.log(1e-3), Math.log(1e-1)), A, B: r.f32([H, N, 2]), C: r.f32([H, N, 2]) };
}

function ssmOn(b: Backend, d: DiagInputs, discretization: "bilinear" | "zoh"): DiagSsmParams {
  return { logDt: d.logDt.on(b), A: d.A.on(b), B: d.B.on(b), C: d.C.on(b), discretization };
}

test("shiftSsmTaps and shiftSsm: parallel mode, one step, carried state, taps given or derived", { skip }, async () => {
  const r = new Inputs(21);
  // L = 1 runs the step kernel: lane groups of 8 channels per workgroup, modes 32 at a time (C = 19, N = 70: 3 groups, 3 rounds).
  for (const [B, L, C, N] of [[1, 37, 12, 8], [2, 1, 5, 4], [3, 1, 19, 70], [2, 3, 6, 16], [1, 20, 3, 64], [2, 100, 70, 64], [1, 45, 5, 80], [1, 33, 3, 4]]) {
    const u = r.f32([B, L, C], -2, 2);
    const Bv = r.f32([C, N]);
    const Cv = r.f32([C, N]);
    const D = r.f32([C]);
    const state = r.f32([B, C, N]);
    await compareOp(`shiftSsmTaps C${C} N${N}`, (b) => b.shiftSsmTaps(Bv.on(b), Cv.on(b)));
    for (const full of [false, true]) {
      await compareOp(`shiftSsm B${B} L${L} C${C} N${N} full=${full}`, (b) => {
        const Bt = Bv.on(b), Ct = Cv.on(b);
        const out = b.shiftSsm({ u: u.on(b), taps: full ? null : b.shiftSsmTaps(Bt, Ct), B: Bt, C: Ct, D: full ? D.on(b) : null, state: full ? state.on(b) : null });
        return [out.y, out.state];
      }, { tol: 1e-4 });
    }
  }
});

test("diagSsmKernel: the Vandermonde sums, bilinear and zoh", { skip }, async () => {
  const r = new Inputs(22);
  const d = diagInputs(r, 5, 8);
  for (const disc of ["bilinear", "zoh"] as const) {
    for (const length of [1, 37, 300]) {
      await compareOp(`diagSsmKernel ${disc} length ${length}`, (b) => b.diagSsmKernel(ssmOn(b, d, disc), length), { tol: 5e-5 });
    }
  }
});

test("diagSsmConv and diagSsmStep: head_dim 1 and 2, chunked, carried state, skip and gates", { skip }, async () => {
  const r = new Inputs(23);
  // L = 1 runs the step kernel (H·P = 15 channels over 2 workgroups, N = 40 modes in 2 rounds of lanes, P = 3).
  for (const [B, L, H, P, N] of [[1, 37, 6, 1, 8], [2, 150, 3, 1, 4], [1, 70, 2, 2, 4], [2, 1, 4, 1, 8], [1, 1, 2, 2, 4], [3, 1, 5, 3, 40]]) {
    const C = H * P;
    const d = diagInputs(r, H, N);
    const u = r.f32([B, L, C], -2, 2);
    const v = r.f32([B, L, C], -2, 2);
    const q = r.f32([B, L, C], -2, 2);
    const D = r.f32([H]);
    const state = r.f32([B, H, P, P, N, 2]);
    for (const disc of ["bilinear", "zoh"] as const) {
      for (const withState of [false, true]) {
        const run = (b: Backend, step: boolean) => {
          const args = {
            u: u.on(b), v: P > 1 ? v.on(b) : null, q: P > 1 || withState ? q.on(b) : null, headDim: P, D: withState ? D.on(b) : null,
            ssm: ssmOn(b, d, disc), state: withState ? state.on(b) : null, chunkSize: 16,
          };
          const out = step ? b.diagSsmStep(args) : b.diagSsmConv(args);
          return [out.y, out.state];
        };
        await compareOp(`diagSsmConv B${B} L${L} H${H} P${P} N${N} ${disc} state=${withState}`, (b) => run(b, false), { tol: 3e-4 });
        if (L === 1) await compareOp(`diagSsmStep B${B} H${H} P${P} ${disc} state=${withState}`, (b) => run(b, true), { tol: 3e-5 });
      }
    }
  }
});

test("fftConv: explicit kernels, gated and plain, kernels shorter and longer than the sequence", { skip }, async () => {
  const r = new Inputs(24);
  for (const [B, L, H, P, K] of [[1, 37, 4, 1, 37], [2, 20, 2, 2, 5], [1, 9, 3, 1, 50]]) {
    const C = H * P;
    const u = r.f32([B, L, C]);
    const v = r.f32([B, L, C]);
    const q = r.f32([B, L, C]);
    const kernel = r.f32([H, K]);
    const D = r.f32([H]);
    await compareOp(`fftConv B${B} L${L} H${H} P${P} K${K}`, (b) => b.fftConv({
      u: u.on(b), v: P > 1 ? v.on(b) : null, q: P > 1 ? q.on(b) : null, headDim: P, D: D.on(b), kernel: kernel.on(b),
    }), { tol: 1e-5 });
  }
});
