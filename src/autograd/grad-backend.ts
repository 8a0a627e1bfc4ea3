import type { AttentionArgs, Backend, BinaryOp, CausalConv1dArgs, DiagSsmConvArgs, DiagSsmParams, FftConvArgs } from "../backends/backend.js";
import type { RopeArgs, SelectiveScanArgs, ShiftSsmArgs, SsdArgs, UnaryOp } from "../backends/backend.js";
import { CpuBackend } from "../backends/cpu/index.js";
import { HippoError } from "../errors.js";
import type { DType, HostArray } from "../tensor/dtype.js";
import { Tensor } from "../tensor/tensor.js";
import { hostF32, hostI32 } from "./host.js";
import { binaryBackward, embeddingBackward, layerNormBackward, linearBackward, rmsNormBackward, sliceLastBackward, unaryBackward } from "./rules/basic.js";
import { Tape, type Grad } from "./tape.js";

/**
 * The CPU backend with reverse-mode autodiff: every op computes through the wrapped CPU backend and,
 * while a tape records, leaves a node with its backward rule. Models built on this backend need no
 * change to be trained: their layers call the same op table. Tensors made here share the CPU tensors'
 * storage (typed arrays), so parameters can be updated in place by an optimizer between steps.
 */
export class GradBackend implements Backend {
  readonly name = "cpu";
  /** The tape ops record onto, or null (inference, no recording). */
  tape: Tape | null = null;

  constructor(readonly inner: CpuBackend = new CpuBackend()) {}

  // ---- plumbing -----------------------------------------------------------------------------------

  /** The same storage as a fresh CPU tensor (fresh, so the CPU backend's per-tensor caches never go stale). */
  private cpu(t: Tensor): Tensor;
  private cpu(t: Tensor | null): Tensor | null;
  private cpu(t: Tensor | null): Tensor | null {
    return t ? new Tensor(this.inner, t.shape, t.dtype, t.storage) : null;
  }

  private wrap(t: Tensor): Tensor {
    return new Tensor(this, t.shape, t.dtype, t.storage);
  }

  needsGrad(t: Tensor | null | undefined): boolean {
    return !!this.tape && this.tape.requiresGrad(t);
  }

  /** Records a node (when recording and any input needs a gradient). */
  record(op: string, inputs: readonly (Tensor | null)[], outputs: readonly Tensor[], backward: (g: readonly Grad[]) => Grad[]): void {
    this.tape?.record({ op, inputs, outputs, backward });
  }

  /** An op without a backward rule: fine for inference, an error if a gradient would have to flow through it. */
  private noGrad(op: string, inputs: readonly (Tensor | null)[]): void {
    if (inputs.some((t) => this.needsGrad(t))) {
      throw new HippoError(`autograd: op '${op}' has no backward rule (it is used for decoding, not training)`);
    }
  }

  /** Makes a tensor of this backend from host values (for ops defined outside the op table, such as losses). */
  fromHost(data: Float32Array, shape: readonly number[]): Tensor {
    return new Tensor(this, [...shape], "f32", data);
  }

  // ---- storage ------------------------------------------------------------------------------------

  upload(data: HostArray, shape: readonly number[], dtype: DType): Tensor {
    return this.wrap(this.inner.upload(data, shape, dtype));
  }

  zeros(shape: readonly number[], dtype?: DType): Tensor {
    return this.wrap(this.inner.zeros(shape, dtype));
  }

  read(t: Tensor): Promise<Float32Array | Int32Array> {
    return this.inner.read(this.cpu(t));
  }

  release(_t: Tensor): void {
    // Host arrays are reclaimed by the garbage collector (and may still be needed by the tape).
  }

  // ---- dense ops ----------------------------------------------------------------------------------

  embedding(table: Tensor, ids: Tensor): Tensor {
    const y = this.wrap(this.inner.embedding(this.cpu(table), this.cpu(ids)));
    const [V, D] = table.shape;
    const idv = hostI32(ids);
    this.record("embedding", [table, ids], [y], ([g]) => [embeddingBackward(idv, V, D, g!), null]);
    return y;
  }

  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    const y = this.wrap(this.inner.linear(this.cpu(x), this.cpu(weight), this.cpu(bias)));
    const [N, K] = weight.shape;
    const M = x.size / K;
    const want = { x: this.needsGrad(x), w: this.needsGrad(weight), b: this.needsGrad(bias) };
    const xs = hostF32(x), ws = want.x ? hostF32(weight) : new Float32Array(0);
    this.record("linear", [x, weight, bias], [y], ([g]) => {
      const r = linearBackward(xs, ws, M, K, N, g!, want);
      return [r.gx, r.gw, r.gb];
    });
    return y;
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    const y = this.wrap(this.inner.rmsNorm(this.cpu(x), this.cpu(weight), eps));
    const xs = hostF32(x), ws = hostF32(weight);
    this.record("rmsNorm", [x, weight], [y], ([g]) => {
      const r = rmsNormBackward(xs, ws, weight.size, eps, g!);
      return [r.gx, r.gw];
    });
    return y;
  }

  layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
    const y = this.wrap(this.inner.layerNorm(this.cpu(x), this.cpu(weight), this.cpu(bias), eps));
    const xs = hostF32(x), ws = hostF32(weight);
    this.record("layerNorm", [x, weight, bias], [y], ([g]) => {
      const r = layerNormBackward(xs, ws, weight.size, eps, g!);
      return [r.gx, r.gw, r.gb];
    });
    return y;
  }

  unary(op: UnaryOp, x: Tensor): Tensor {
    const y = this.wrap(this.inner.unary(op, this.cpu(x)));
    const xs = hostF32(x), ys = hostF32(y);
    this.record(`unary:${op}`, [x], [y], ([g]) => [unaryBackward(op, xs, ys, g!)]);
    return y;
  }

  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
    const y = this.wrap(this.inner.binary(op, this.cpu(a), this.cpu(b)));
    const want = { a: this.needsGrad(a), b: this.needsGrad(b) };
    const as = hostF32(a), bs = hostF32(b);
    this.record(`binary:${op}`, [a, b], [y], ([g]) => {
      const r = binaryBackward(op, as, bs, g!, want);
      return [r.ga, r.gb];
    });
    return y;
  }

  // ---- shape ops ----------------------------------------------------------------------------------

  sliceLast(x: Tensor, start: number, length: number): Tensor {
    const y = this.wrap(this.inner.sliceLast(this.cpu(x), start, length));
    const W = x.shape[x.rank - 1];
    this.record("sliceLast", [x], [y], ([g]) => [sliceLastBackward(g!, W, start, length)]);
    return y;
  }

  selectPositions(x: Tensor, positions: Tensor): Tensor {
    const y = this.wrap(this.inner.selectPositions(this.cpu(x), this.cpu(positions)));
    const [B, L] = x.shape;
    const inner = x.size / (B * L);
    const pos = hostI32(positions).slice();
    this.record("selectPositions", [x, positions], [y], ([g]) => {
      const gx = new Float32Array(x.size);
      for (let b = 0; b < B; b++) gx.set(g!.subarray(b * inner, (b + 1) * inner), (b * L + pos[b]) * inner);
      return [gx, null];
    });
    return y;
  }

  concat0(parts: readonly Tensor[]): Tensor {
    const y = this.wrap(this.inner.concat0(parts.map((p) => this.cpu(p))));
    this.record("concat0", parts, [y], ([g]) => {
      let offset = 0;
      return parts.map((p) => g!.slice(offset, (offset += p.size)));
    });
    return y;
  }

  slice0(x: Tensor, start: number, length: number): Tensor {
    const y = this.wrap(this.inner.slice0(this.cpu(x), start, length));
    const inner = x.size / x.shape[0];
    this.record("slice0", [x], [y], ([g]) => {
      const gx = new Float32Array(x.size);
      gx.set(g!, start * inner);
      return [gx];
    });
    return y;
  }

  reshape(x: Tensor, shape: readonly number[]): Tensor {
    const y = this.wrap(this.inner.reshape(this.cpu(x), shape));
    this.record("reshape", [x], [y], ([g]) => [g]);
    return y;
  }

  toFloat32(x: Tensor): Tensor {
    const y = this.wrap(this.inner.toFloat32(this.cpu(x)));
    this.record("toFloat32", [x], [y], ([g]) => [g]);
    return y;
  }

  // ---- decoding-only ops (no gradients) -----------------------------------------------------------

  resizeAxis1(x: Tensor, length: number): Tensor {
    this.noGrad("resizeAxis1", [x]);
    return this.wrap(this.inner.resizeAxis1(this.cpu(x), length));
  }

  writeAxis1(cache: Tensor, fresh: Tensor, offsets: Tensor): Tensor {
    this.noGrad("writeAxis1", [cache, fresh]);
    return this.wrap(this.inner.writeAxis1(this.cpu(cache), this.cpu(fresh), this.cpu(offsets)));
  }

  selectiveStateUpdate(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    this.noGrad("selectiveStateUpdate", [a.u, a.delta, a.A, a.B, a.C, a.D, a.z, a.deltaBias, a.state]);
    return this.wrapPair(this.inner.selectiveStateUpdate(this.cpuArgs(a)));
  }

  ssdStep(a: SsdArgs): { y: Tensor; state: Tensor } {
    this.noGrad("ssdStep", [a.x, a.dt, a.A, a.B, a.C, a.D, a.dtBias, a.state]);
    return this.wrapPair(this.inner.ssdStep(this.cpuArgs(a)));
  }

  diagSsmStep(a: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
    this.noGrad("diagSsmStep", [a.u, a.v, a.q, a.D, a.state, a.ssm.logDt, a.ssm.A, a.ssm.B, a.ssm.C]);
    return this.wrapPair(this.inner.diagSsmStep({ ...this.cpuArgs(a), ssm: this.cpuArgs(a.ssm) }));
  }

  // ---- ops whose backward rules live in rules/ (sequence mixers) -----------------------------------

  gatedRmsNorm(y: Tensor, z: Tensor, weight: Tensor, groupSize: number, eps: number): Tensor {
    this.noGrad("gatedRmsNorm", [y, z, weight]);
    return this.wrap(this.inner.gatedRmsNorm(this.cpu(y), this.cpu(z), this.cpu(weight), groupSize, eps));
  }

  causalConv1d(a: CausalConv1dArgs): { y: Tensor; state: Tensor } {
    this.noGrad("causalConv1d", [a.x, a.weight, a.bias, a.state]);
    return this.wrapPair(this.inner.causalConv1d(this.cpuArgs(a)));
  }

  selectiveScan(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    this.noGrad("selectiveScan", [a.u, a.delta, a.A, a.B, a.C, a.D, a.z, a.deltaBias, a.state]);
    return this.wrapPair(this.inner.selectiveScan(this.cpuArgs(a)));
  }

  ssdChunked(a: SsdArgs): { y: Tensor; state: Tensor } {
    this.noGrad("ssdChunked", [a.x, a.dt, a.A, a.B, a.C, a.D, a.dtBias, a.state]);
    return this.wrapPair(this.inner.ssdChunked(this.cpuArgs(a)));
  }

  causalAttention(a: AttentionArgs): Tensor {
    this.noGrad("causalAttention", [a.q, a.k, a.v]);
    return this.wrap(this.inner.causalAttention(this.cpuArgs(a)));
  }

  rope(a: RopeArgs): Tensor {
    this.noGrad("rope", [a.x]);
    return this.wrap(this.inner.rope(this.cpuArgs(a)));
  }

  fftConv(a: FftConvArgs): Tensor {
    this.noGrad("fftConv", [a.u, a.v, a.q, a.D, a.kernel]);
    return this.wrap(this.inner.fftConv(this.cpuArgs(a)));
  }

  diagSsmKernel(p: DiagSsmParams, length: number): Tensor {
    this.noGrad("diagSsmKernel", [p.logDt, p.A, p.B, p.C]);
    return this.wrap(this.inner.diagSsmKernel(this.cpuArgs(p), length));
  }

  diagSsmConv(a: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
    this.noGrad("diagSsmConv", [a.u, a.v, a.q, a.D, a.state, a.ssm.logDt, a.ssm.A, a.ssm.B, a.ssm.C]);
    return this.wrapPair(this.inner.diagSsmConv({ ...this.cpuArgs(a), ssm: this.cpuArgs(a.ssm) }));
  }

  shiftSsmTaps(B: Tensor, C: Tensor): Tensor {
    this.noGrad("shiftSsmTaps", [B, C]);
    return this.wrap(this.inner.shiftSsmTaps(this.cpu(B), this.cpu(C)));
  }

  shiftSsm(a: ShiftSsmArgs): { y: Tensor; state: Tensor } {
    this.noGrad("shiftSsm", [a.u, a.taps, a.B, a.C, a.D, a.state]);
    return this.wrapPair(this.inner.shiftSsm(this.cpuArgs(a)));
  }

  // ---- helpers for argument records ---------------------------------------------------------------

  /** An op's argument record with every tensor field swapped for its CPU alias. */
  cpuArgs<T extends object>(a: T): T {
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a)) out[k] = v instanceof Tensor ? this.cpu(v) : v;
    return out as T;
  }

  wrapPair(r: { y: Tensor; state: Tensor }): { y: Tensor; state: Tensor } {
    return { y: this.wrap(r.y), state: this.wrap(r.state) };
  }
}
