import { check, shapeString } from "../errors.js";
import type { CausalConv1dArgs, SelectiveScanArgs, SsdArgs } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { linear } from "./nn.js";
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
