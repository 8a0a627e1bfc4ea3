import { check, shapeString } from "../errors.js";
import type { CausalConv1dArgs, MambaMixStepArgs, SelectiveScanArgs, SsdArgs } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { linear } from "./nn.js";
import { splitLast } from "./shape.js";
import { backendOf, expectShape } from "./validate.js";

/** Depthwise causal conv1d over [B, L, C] with a carried state of the K-1 previous inputs. */
export function causalConv1d(args: CausalConv1dArgs): { y: Tensor; state: Tensor } {
  const { x, weight, bias, state } = args;
  const b = backendOf("causalConv1d", x, weight, bias, state);
  check(x.rank === 3, `causalConv1d: x must be [batch, length, channels], got ${shapeString(x.shape)}`);
  const [B, , C] = x.shape;
  check(weight.rank === 2 && weight.shape[0] === C && weight.shape[1] >= 1,
    `causalConv1d: weight has shape ${shapeString(weight.shape)}, expected [${C}, kernel]`);
  if (bias) expectShape("causalConv1d", "bias", bias, [C]);
  if (state) expectShape("causalConv1d", "state", state, [B, weight.shape[1] - 1, C]);
  return b.causalConv1d(args);
}

function checkScanArgs(op: string, a: SelectiveScanArgs): void {
  check(a.u.rank === 3, `${op}: u must be [batch, length, channels], got ${shapeString(a.u.shape)}`);
  const [B, L, E] = a.u.shape;
  check(a.A.rank === 2 && a.A.shape[0] === E, `${op}: A has shape ${shapeString(a.A.shape)}, expected [${E}, d_state]`);
  const N = a.A.shape[1];
  if (a.deltaProj) {
    check(a.deltaProj.rank === 2 && a.deltaProj.shape[0] === E,
      `${op}: deltaProj has shape ${shapeString(a.deltaProj.shape)}, expected [${E}, rank]`);
    expectShape(op, "delta (low rank)", a.delta, [B, L, a.deltaProj.shape[1]]);
  } else {
    expectShape(op, "delta", a.delta, [B, L, E]);
  }
  expectShape(op, "B", a.B, [B, L, N]);
  expectShape(op, "C", a.C, [B, L, N]);
  if (a.D) expectShape(op, "D", a.D, [E]);
  if (a.z) expectShape(op, "z", a.z, [B, L, E]);
  if (a.deltaBias) expectShape(op, "deltaBias", a.deltaBias, [E]);
  if (a.state) expectShape(op, "state", a.state, [B, E, N]);
}

function scanBackend(op: string, a: SelectiveScanArgs) {
  return backendOf(op, a.u, a.delta, a.A, a.B, a.C, a.D, a.z, a.deltaBias, a.state, a.deltaProj ?? null);
}

/** The arguments with delta projected to full rank (for backends and modes that do not fuse the projection). */
function projected(a: SelectiveScanArgs): SelectiveScanArgs {
  return a.deltaProj ? { ...a, delta: linear(a.delta, a.deltaProj), deltaProj: null } : a;
}

/** Mamba's selective scan over a whole sequence; returns outputs and the state after the last step. */
export function selectiveScan(args: SelectiveScanArgs): { y: Tensor; state: Tensor } {
  const b = scanBackend("selectiveScan", args);
  checkScanArgs("selectiveScan", args);
  return b.selectiveScan(projected(args));
}

/** One recurrent step of the selective SSM (u is [B, 1, E]). */
export function selectiveStateUpdate(args: SelectiveScanArgs): { y: Tensor; state: Tensor } {
  const b = scanBackend("selectiveStateUpdate", args);
  checkScanArgs("selectiveStateUpdate", args);
  check(args.u.shape[1] === 1, `selectiveStateUpdate: one step takes length 1, got ${args.u.shape[1]}`);
  return b.selectiveStateUpdate(b.fusesDeltaProjection ? args : projected(args));
}

/**
 * A Mamba mixer's decoding step between its projections: causal conv step with silu, x_proj into (Δ low
 * rank, B, C), the selective scan step with dt_proj, softplus, D and the silu(z) gate. One fused kernel on
 * backends with mambaMixStep (where they take it), the ops composed otherwise.
 */
export function mambaMixStep(a: MambaMixStepArgs): { y: Tensor; convState: Tensor; ssmState: Tensor } {
  const b = backendOf("mambaMixStep", a.x, a.z, a.convWeight, a.convBias, a.convState, a.xProj, a.dtProj, a.dtBias, a.A, a.D, a.ssmState);
  check(a.x.rank === 3 && a.x.shape[1] === 1, `mambaMixStep: x must be [batch, 1, channels], got ${shapeString(a.x.shape)}`);
  const [B, , E] = a.x.shape;
  check(a.convWeight.rank === 2 && a.convWeight.shape[0] === E, `mambaMixStep: conv weight has shape ${shapeString(a.convWeight.shape)}, expected [${E}, kernel]`);
  const K = a.convWeight.shape[1];
  check(a.A.rank === 2 && a.A.shape[0] === E, `mambaMixStep: A has shape ${shapeString(a.A.shape)}, expected [${E}, d_state]`);
  check(a.dtProj.rank === 2 && a.dtProj.shape[0] === E, `mambaMixStep: dt_proj has shape ${shapeString(a.dtProj.shape)}, expected [${E}, rank]`);
  const [N, R] = [a.A.shape[1], a.dtProj.shape[1]];
  expectShape("mambaMixStep", "z", a.z, [B, 1, E]);
  if (a.convBias) expectShape("mambaMixStep", "conv bias", a.convBias, [E]);
  expectShape("mambaMixStep", "conv state", a.convState, [B, K - 1, E]);
  expectShape("mambaMixStep", "x_proj", a.xProj, [R + 2 * N, E]);
  expectShape("mambaMixStep", "dt bias", a.dtBias, [E]);
  expectShape("mambaMixStep", "D", a.D, [E]);
  expectShape("mambaMixStep", "ssm state", a.ssmState, [B, E, N]);
  const fused = b.mambaMixStep?.(a);
  if (fused) return fused;
  const conv = causalConv1d({ x: a.x, weight: a.convWeight, bias: a.convBias, state: a.convState, activation: "silu" });
  const [dtLow, Bm, Cm] = splitLast(linear(conv.y, a.xProj), [R, N, N]);
  const scan = selectiveStateUpdate({
    u: conv.y, delta: dtLow, deltaProj: a.dtProj, A: a.A, B: Bm, C: Cm, D: a.D, z: a.z, deltaBias: a.dtBias, deltaSoftplus: true, state: a.ssmState,
  });
  return { y: scan.y, convState: conv.state, ssmState: scan.state };
}

function checkSsdArgs(op: string, a: SsdArgs): void {
  check(a.x.rank === 4, `${op}: x must be [batch, length, heads, head_dim], got ${shapeString(a.x.shape)}`);
  const [B, L, H, P] = a.x.shape;
  check(a.B.rank === 4 && a.B.shape[0] === B && a.B.shape[1] === L, `${op}: B has shape ${shapeString(a.B.shape)}, expected [${B}, ${L}, groups, d_state]`);
  const [, , G, N] = a.B.shape;
  check(H % G === 0, `${op}: ${H} heads are not a multiple of ${G} groups`);
  expectShape(op, "C", a.C, [B, L, G, N]);
  expectShape(op, "dt", a.dt, [B, L, H]);
  expectShape(op, "A", a.A, [H]);
  if (a.D) check(a.D.rank === 1 && (a.D.shape[0] === H || a.D.shape[0] === H * P), `${op}: D has shape ${shapeString(a.D.shape)}, expected [${H}] or [${H * P}]`);
  if (a.dtBias) expectShape(op, "dtBias", a.dtBias, [H]);
  if (a.state) expectShape(op, "state", a.state, [B, H, P, N]);
  check(Number.isInteger(a.chunkSize) && a.chunkSize > 0, `${op}: chunk size must be a positive integer, got ${a.chunkSize}`);
}

function ssdBackend(op: string, a: SsdArgs) {
  return backendOf(op, a.x, a.dt, a.A, a.B, a.C, a.D, a.dtBias, a.state);
}

/** Mamba-2 SSD over a whole sequence (chunked algorithm); returns outputs and the final state. */
export function ssdChunked(args: SsdArgs): { y: Tensor; state: Tensor } {
  const b = ssdBackend("ssdChunked", args);
  checkSsdArgs("ssdChunked", args);
  return b.ssdChunked(args);
}

/** One recurrent Mamba-2 step (x is [B, 1, H, P]). */
export function ssdStep(args: SsdArgs): { y: Tensor; state: Tensor } {
  const b = ssdBackend("ssdStep", args);
  checkSsdArgs("ssdStep", args);
  check(args.x.shape[1] === 1, `ssdStep: one step takes length 1, got ${args.x.shape[1]}`);
  return b.ssdStep(args);
}
