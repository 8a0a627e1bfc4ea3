import { check, shapeString } from "../errors.js";
import type { DiagSsmConvArgs, DiagSsmParams, FftConvArgs, GatedConvInput, ShiftSsmArgs } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { backendOf, expectFloat, expectShape } from "./validate.js";

/**
 * Long convolutions and the SSMs of H3 / S4D: FFT convolution with explicit kernels, the diagonal SSM's
 * kernel, its convolution with state passing and its recurrent step, and H3's shift SSM.
 * The gated layout (u, v, q, headDim) is described at GatedConvInput in backends/backend.ts.
 */

/** Checks u/v/q/D and returns the head count H. */
function checkGated(op: string, a: GatedConvInput): number {
  check(a.u.rank === 3, `${op}: u must be [batch, length, channels], got ${shapeString(a.u.shape)}`);
  expectFloat(op, "u", a.u);
  const P = a.headDim;
  const C = a.u.shape[2];
  check(Number.isInteger(P) && P > 0 && C % P === 0, `${op}: head dim ${P} does not divide the ${C} channels`);
  if (a.v) expectShape(op, "v", a.v, a.u.shape);
  if (a.q) expectShape(op, "q", a.q, a.u.shape);
  check(P === 1 || (a.v !== null && a.q !== null), `${op}: head dim ${P} > 1 needs both v (outer product) and q (gate)`);
  const H = C / P;
  if (a.D) expectShape(op, "D", a.D, [H]);
  return H;
}

function checkDiagSsm(op: string, p: DiagSsmParams, H: number): void {
  check(p.A.rank === 3 && p.A.shape[0] === H && p.A.shape[2] === 2,
    `${op}: A has shape ${shapeString(p.A.shape)}, expected [${H}, modes, 2] (complex as real, imaginary)`);
  const N = p.A.shape[1];
  expectShape(op, "logDt", p.logDt, [H]);
  expectShape(op, "B", p.B, [H, N, 2]);
  expectShape(op, "C", p.C, [H, N, 2]);
  check(p.discretization === "bilinear" || p.discretization === "zoh", `${op}: unknown discretization '${String(p.discretization)}'`);
}

/** Causal long convolution of every head with its kernel [H, K] (one FFT block), skip and gate fused. */
export function fftConv(args: FftConvArgs): Tensor {
  const b = backendOf("fftConv", args.u, args.v, args.q, args.D, args.kernel);
  const H = checkGated("fftConv", args);
  check(args.kernel.rank === 2 && args.kernel.shape[0] === H && args.kernel.shape[1] >= 1,
    `fftConv: kernel has shape ${shapeString(args.kernel.shape)}, expected [${H}, taps]`);
  return b.fftConv(args);
}

/** The diagonal SSMs' convolution kernels [H, length]. */
export function diagSsmKernel(ssm: DiagSsmParams, length: number): Tensor {
  const b = backendOf("diagSsmKernel", ssm.logDt, ssm.A, ssm.B, ssm.C);
  checkDiagSsm("diagSsmKernel", ssm, ssm.A.shape[0]);
  check(Number.isInteger(length) && length >= 0, `diagSsmKernel: length must be a non-negative integer, got ${length}`);
  return b.diagSsmKernel(ssm, length);
}

function checkDiagSsmConv(op: string, a: DiagSsmConvArgs) {
  const b = backendOf(op, a.u, a.v, a.q, a.D, a.state, a.ssm.logDt, a.ssm.A, a.ssm.B, a.ssm.C);
  const H = checkGated(op, a);
  checkDiagSsm(op, a.ssm, H);
  const P = a.headDim;
  if (a.state) expectShape(op, "state", a.state, [a.u.shape[0], H, P, P, a.ssm.A.shape[1], 2]);
  check(Number.isInteger(a.chunkSize) && a.chunkSize > 0, `${op}: chunk size must be a positive integer, got ${a.chunkSize}`);
  return b;
}

/** The diagonal SSM over whole sequences (FFT convolution, state passed between chunks); returns the final state. */
export function diagSsmConv(args: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
  return checkDiagSsmConv("diagSsmConv", args).diagSsmConv(args);
}

/** One recurrent step of the diagonal SSM (u is [B, 1, H·P]). */
export function diagSsmStep(args: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
  const b = checkDiagSsmConv("diagSsmStep", args);
  check(args.u.shape[1] === 1, `diagSsmStep: one step takes length 1, got ${args.u.shape[1]}`);
  return b.diagSsmStep(args);
}

/** FIR taps [C, N] of the shift SSM with input and output vectors B, C [C, N]. */
export function shiftSsmTaps(B: Tensor, C: Tensor): Tensor {
  const b = backendOf("shiftSsmTaps", B, C);
  check(B.rank === 2, `shiftSsmTaps: B must be [channels, d_state], got ${shapeString(B.shape)}`);
  expectShape("shiftSsmTaps", "C", C, B.shape);
  return b.shiftSsmTaps(B, C);
}

/** H3's shift SSM over [B, L, C] from a carried state [B, C, N] (L = 1 is one recurrent step). */
export function shiftSsm(args: ShiftSsmArgs): { y: Tensor; state: Tensor } {
  const b = backendOf("shiftSsm", args.u, args.taps, args.B, args.C, args.D, args.state);
  check(args.u.rank === 3, `shiftSsm: u must be [batch, length, channels], got ${shapeString(args.u.shape)}`);
  const [Bsz, , C] = args.u.shape;
  check(args.B.rank === 2 && args.B.shape[0] === C, `shiftSsm: B has shape ${shapeString(args.B.shape)}, expected [${C}, d_state]`);
  const N = args.B.shape[1];
  if (args.taps) expectShape("shiftSsm", "taps", args.taps, [C, N]);
  expectShape("shiftSsm", "C", args.C, [C, N]);
  if (args.D) expectShape("shiftSsm", "D", args.D, [C]);
  if (args.state) expectShape("shiftSsm", "state", args.state, [Bsz, C, N]);
  return b.shiftSsm(args);
}
