import type { AttentionArgs, Backend, BinaryOp, CausalConv1dArgs, DiagSsmConvArgs, DiagSsmParams, FftConvArgs } from "../backends/backend.js";
import type { RopeArgs, SelectiveScanArgs, ShiftSsmArgs, SsdArgs, UnaryOp } from "../backends/backend.js";
import { CpuBackend } from "../backends/cpu/index.js";
import { WasmCpuBackend } from "../backends/wasm/index.js";
import type { WebGpuBackend } from "../backends/webgpu/index.js";
import { HippoError } from "../errors.js";
import type { DType, HostArray } from "../tensor/dtype.js";
import { untrack } from "../tensor/scope.js";
import { Tensor } from "../tensor/tensor.js";
import { hostF32, hostI32, hostOptional } from "./host.js";
import { ropeBackward } from "./rules/attention.js";
import { binaryBackward, embeddingBackward, layerNormBackward, rmsNormBackward, sliceLastBackward } from "./rules/basic.js";
import { gatedRmsNormBackward } from "./rules/mamba.js";
import { diagSsmConvBackward, diagSsmKernelBackward, fftConvBackward, shiftSsmBackward, shiftSsmTapsBackward, type DiagSsmHostParams } from "./rules/h3.js";
import { referenceKernels, WasmBackwardKernels, type BackwardKernels } from "./kernels.js";
import { Tape, type Grad } from "./tape.js";
import { WebGpuBackwardKernels } from "./webgpu-kernels.js";

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

  constructor(readonly inner: CpuBackend = new CpuBackend(), readonly kernels: BackwardKernels = referenceKernels) {}

  /**
   * Autograd over the fast CPU kernels (WebAssembly SIMD, `threads` threads) where the runtime has them,
   * else over the reference. The plain `new GradBackend()` is the reference the fast path is tested against.
   */
  static fast(threads = 1): GradBackend {
    return new GradBackend(WasmCpuBackend.create(threads) ?? new CpuBackend(), WasmBackwardKernels.create() ?? referenceKernels);
  }

  /**
   * As `fast`, with the backward products of linear layers on a WebGPU device (WebGpuBackwardKernels);
   * every forward and every other backward rule stays on the CPU.
   */
  static withWebGpu(gpu: WebGpuBackend, threads = 1, minGpuMacs?: number): GradBackend {
    const cpu = GradBackend.fast(threads);
    return new GradBackend(cpu.inner, new WebGpuBackwardKernels(gpu, cpu.kernels, minGpuMacs));
  }

  // ---- plumbing -----------------------------------------------------------------------------------

  /** The same storage as a fresh CPU tensor (fresh, so the CPU backend's per-tensor caches never go stale). */
  private cpu(t: Tensor): Tensor;
  private cpu(t: Tensor | null): Tensor | null;
  private cpu(t: Tensor | null): Tensor | null {
    return t ? new Tensor(this.inner, t.shape, t.dtype, t.storage) : null;
  }

  /**
   * The inner backend's output as a tensor of this backend. The inner tensor leaves every scope: a tidy
   * disposing it would give its storage back to the inner backend (the wasm backend reuses freed blocks
   * of its memory at once) while this tensor and the tape still read it. Both go to the garbage collector.
   */
  private wrap(t: Tensor): Tensor {
    untrack(t);
    this.made?.push(t);
    return new Tensor(this, t.shape, t.dtype, t.storage);
  }

  /** Inner tensors made inside `stepMemory` (null outside it). */
  private made: Tensor[] | null = null;

  /**
   * Runs fn (a training step, an evaluation), then gives the inner backend back the storage of every tensor
   * made meanwhile — activations, values the tape saved, gradients: nothing made inside may be used after
   * it returns. Outside it that storage waits for the garbage collector, which does not see the wasm
   * backend's memory fill up (a small model's process grew to GBs).
   */
  async stepMemory<T>(fn: () => Promise<T>): Promise<T> {
    if (this.made) return fn(); // nested: the outermost call releases
    const made: Tensor[] = [];
    this.made = made;
    try {
      return await fn();
    } finally {
      this.made = null;
      for (const t of made) t.dispose();
    }
  }

  needsGrad(t: Tensor | null | undefined): boolean {
    return !!this.tape && this.tape.requiresGrad(t);
  }

  /** Records a node (when recording and any input needs a gradient). */
  record(
    op: string, inputs: readonly (Tensor | null)[], outputs: readonly Tensor[], backward: (g: readonly Grad[]) => Grad[] | Promise<Grad[]>,
  ): void {
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
    this.record("linear", [x, weight, bias], [y], async ([g]) => {
      const r = await this.kernels.linearBackward(xs, ws, M, K, N, g!, want);
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
    const fast = x.dtype === "f32" ? this.kernels.unaryForward(op, hostF32(x)) : null;
    const y = fast ? this.fromHost(fast, x.shape) : this.wrap(this.inner.unary(op, this.cpu(x)));
    const xs = hostF32(x), ys = hostF32(y);
    this.record(`unary:${op}`, [x], [y], ([g]) => [this.kernels.unaryBackward(op, xs, ys, g!)]);
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

  // ---- KV-cache shape ops (differentiable: attention in training appends to an empty cache) --------

  resizeAxis1(x: Tensor, length: number): Tensor {
    const y = this.wrap(this.inner.resizeAxis1(this.cpu(x), length));
    const [B, T] = x.shape;
    const inner = x.size / (B * T);
    const keep = Math.min(T, length) * inner;
    this.record("resizeAxis1", [x], [y], ([g]) => {
      const gx = new Float32Array(x.size);
      for (let b = 0; b < B; b++) gx.set(g!.subarray(b * length * inner, b * length * inner + keep), b * T * inner);
      return [gx];
    });
    return y;
  }

  /** KV-cache append; in training the cache is empty and this just places the fresh keys/values. */
  writeAxis1(cache: Tensor, fresh: Tensor, offsets: Tensor): Tensor {
    const y = this.wrap(this.inner.writeAxis1(this.cpu(cache), this.cpu(fresh), this.cpu(offsets)));
    const [B, T] = cache.shape;
    const [, L] = fresh.shape;
    const length = y.shape[1];
    const inner = fresh.size / (B * L);
    const off = hostI32(offsets).slice();
    this.record("writeAxis1", [cache, fresh, offsets], [y], ([g]) => {
      const gc = new Float32Array(cache.size);
      const gf = new Float32Array(fresh.size);
      for (let b = 0; b < B; b++) {
        gc.set(g!.subarray(b * length * inner, (b * length + off[b]) * inner), b * T * inner);
        gf.set(g!.subarray((b * length + off[b]) * inner, (b * length + off[b] + L) * inner), b * L * inner);
      }
      return [gc, gf, null];
    });
    return y;
  }

  // ---- decoding-only ops (no gradients) -----------------------------------------------------------

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
    const out = this.wrap(this.inner.gatedRmsNorm(this.cpu(y), this.cpu(z), this.cpu(weight), groupSize, eps));
    if (![y, z, weight].some((t) => this.needsGrad(t))) return out;
    const want = { y: this.needsGrad(y), z: this.needsGrad(z), w: this.needsGrad(weight) };
    const ys = hostF32(y), zs = hostF32(z), ws = hostF32(weight);
    this.record("gatedRmsNorm", [y, z, weight], [out], ([g]) => {
      const r = gatedRmsNormBackward(ys, zs, ws, groupSize, eps, g!, want);
      return [r.gy, r.gz, r.gw];
    });
    return out;
  }

  causalConv1d(a: CausalConv1dArgs): { y: Tensor; state: Tensor } {
    const r = this.wrapPair(this.inner.causalConv1d(this.cpuArgs(a)));
    if (![a.x, a.weight, a.bias, a.state].some((t) => this.needsGrad(t))) return r;
    const [B, L, C] = a.x.shape;
    const K = a.weight.shape[1];
    const want = { x: this.needsGrad(a.x), w: this.needsGrad(a.weight), bias: this.needsGrad(a.bias), state: this.needsGrad(a.state) };
    const xs = hostF32(a.x), ws = hostF32(a.weight), bs = hostOptional(a.bias), ss = hostOptional(a.state);
    const activation = a.activation;
    this.record("causalConv1d", [a.x, a.weight, a.bias, a.state], [r.y, r.state], ([gy, gState]) => {
      const g = this.kernels.causalConv1dBackward(xs, B, L, C, ws, K, bs, ss, activation, gy, gState, want);
      return [g.gx, g.gw, g.gbias, g.gstate];
    });
    return r;
  }

  selectiveScan(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    const r = this.wrapPair(this.inner.selectiveScan(this.cpuArgs(a)));
    const inputs = [a.u, a.delta, a.A, a.B, a.C, a.D, a.z, a.deltaBias, a.state];
    if (!inputs.some((t) => this.needsGrad(t))) return r;
    const [B, L, E] = a.u.shape;
    const N = a.A.shape[1];
    const p = {
      u: hostF32(a.u), delta: hostF32(a.delta), A: hostF32(a.A), B: hostF32(a.B), C: hostF32(a.C),
      D: hostOptional(a.D), z: hostOptional(a.z), deltaBias: hostOptional(a.deltaBias), deltaSoftplus: a.deltaSoftplus,
      state: hostOptional(a.state),
    };
    this.record("selectiveScan", inputs, [r.y, r.state], ([gy, gState]) => {
      const g = this.kernels.selectiveScanBackward(p, B, L, E, N, gy, gState);
      return [g.gu, g.gdelta, g.gA, g.gB, g.gC, g.gD, g.gz, g.gdeltaBias, g.gstate];
    });
    return r;
  }

  ssdChunked(a: SsdArgs): { y: Tensor; state: Tensor } {
    const r = this.wrapPair(this.inner.ssdChunked(this.cpuArgs(a)));
    const inputs = [a.x, a.dt, a.A, a.B, a.C, a.D, a.dtBias, a.state];
    if (!inputs.some((t) => this.needsGrad(t))) return r;
    const [Bsz, L, H, P] = a.x.shape;
    const [, , G, N] = a.B.shape;
    const want = {
      x: this.needsGrad(a.x), dt: this.needsGrad(a.dt), A: this.needsGrad(a.A), B: this.needsGrad(a.B), C: this.needsGrad(a.C),
      D: this.needsGrad(a.D), dtBias: this.needsGrad(a.dtBias), state: this.needsGrad(a.state),
    };
    const p = {
      x: hostF32(a.x), dt: hostF32(a.dt), A: hostF32(a.A), B: hostF32(a.B), C: hostF32(a.C), D: hostOptional(a.D),
      dtBias: hostOptional(a.dtBias), dtSoftplus: a.dtSoftplus, dtMin: a.dtMin, dtMax: a.dtMax, state: hostOptional(a.state),
    };
    this.record("ssdChunked", inputs, [r.y, r.state], ([gy, gState]) => {
      const g = this.kernels.ssdBackward(p, { Bsz, L, H, P, G, N }, gy, gState, want);
      return [g.gx, g.gdt, g.gA, g.gB, g.gC, g.gD, g.gdtBias, g.gState];
    });
    return r;
  }

  causalAttention(a: AttentionArgs): Tensor {
    const [B, L, Hq, D] = a.q.shape;
    const [, T, Hkv, Dv] = a.v.shape;
    const allF32 = [a.q, a.k, a.v].every((t) => t.dtype === "f32");
    const fast = allF32 ? this.kernels.attentionForward(hostF32(a.q), hostF32(a.k), hostF32(a.v), hostI32(a.queryStart), B, L, T, Hq, Hkv, D, Dv, a.scale) : null;
    const y = fast ? this.fromHost(fast, [B, L, Hq, Dv]) : this.wrap(this.inner.causalAttention(this.cpuArgs(a)));
    if (![a.q, a.k, a.v].some((t) => this.needsGrad(t))) return y;
    const want = { q: this.needsGrad(a.q), k: this.needsGrad(a.k), v: this.needsGrad(a.v) };
    const qs = hostF32(a.q), ks = hostF32(a.k), vs = hostF32(a.v), ys = hostF32(y), start = hostI32(a.queryStart).slice();
    const scale = a.scale;
    this.record("causalAttention", [a.q, a.k, a.v], [y], ([g]) => {
      const r = this.kernels.causalAttentionBackward(qs, ks, vs, ys, start, B, L, T, Hq, Hkv, D, Dv, scale, g!, want);
      return [r.gq, r.gk, r.gv];
    });
    return y;
  }

  rope(a: RopeArgs): Tensor {
    const y = this.wrap(this.inner.rope(this.cpuArgs(a)));
    if (!this.needsGrad(a.x)) return y;
    const [B, L, H, D] = a.x.shape;
    const start = hostI32(a.start).slice();
    const { rotaryDim, base, positionScale, interleaved } = a;
    this.record("rope", [a.x], [y], ([g]) => [ropeBackward(g!, start, B, L, H, D, rotaryDim, base, positionScale, interleaved)]);
    return y;
  }

  fftConv(a: FftConvArgs): Tensor {
    const y = this.wrap(this.inner.fftConv(this.cpuArgs(a)));
    const inputs = [a.u, a.v, a.q, a.D, a.kernel];
    if (!inputs.some((t) => this.needsGrad(t))) return y;
    const [B, L, C] = a.u.shape;
    const dims = { B, L, H: C / a.headDim, P: a.headDim };
    const inp = { u: hostF32(a.u), v: hostOptional(a.v), q: hostOptional(a.q) };
    const ks = hostF32(a.kernel), K = a.kernel.shape[1], Ds = hostOptional(a.D);
    const want = { u: this.needsGrad(a.u), v: this.needsGrad(a.v), q: this.needsGrad(a.q), D: this.needsGrad(a.D), kernel: this.needsGrad(a.kernel) };
    this.record("fftConv", inputs, [y], ([g]) => {
      const r = fftConvBackward(inp, dims, ks, K, Ds, g!, want);
      return [r.gu, r.gv, r.gq, r.gD, r.gKernel];
    });
    return y;
  }

  diagSsmKernel(p: DiagSsmParams, length: number): Tensor {
    const y = this.wrap(this.inner.diagSsmKernel(this.cpuArgs(p), length));
    const inputs = [p.logDt, p.A, p.B, p.C];
    if (!inputs.some((t) => this.needsGrad(t))) return y;
    const hp = this.diagSsmHost(p);
    this.record("diagSsmKernel", inputs, [y], ([g]) => {
      const r = diagSsmKernelBackward(hp, length, g!);
      return [r.gLogDt, r.gA, r.gB, r.gC];
    });
    return y;
  }

  /** Host copies of a diagonal SSM's parameters for its backward rules. */
  private diagSsmHost(p: DiagSsmParams): DiagSsmHostParams {
    const [H, N] = p.A.shape;
    return { logDt: hostF32(p.logDt), A: hostF32(p.A), B: hostF32(p.B), C: hostF32(p.C), H, N, discretization: p.discretization };
  }

  diagSsmConv(a: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
    const r = this.wrapPair(this.inner.diagSsmConv({ ...this.cpuArgs(a), ssm: this.cpuArgs(a.ssm) }));
    const inputs = [a.u, a.v, a.q, a.D, a.state, a.ssm.logDt, a.ssm.A, a.ssm.B, a.ssm.C];
    if (!inputs.some((t) => this.needsGrad(t))) return r;
    const [B, L, C] = a.u.shape;
    const dims = { B, L, H: C / a.headDim, P: a.headDim };
    const inp = { u: hostF32(a.u), v: hostOptional(a.v), q: hostOptional(a.q) };
    const Ds = hostOptional(a.D), ss = hostOptional(a.state), hp = this.diagSsmHost(a.ssm);
    const want = {
      u: this.needsGrad(a.u), v: this.needsGrad(a.v), q: this.needsGrad(a.q), D: this.needsGrad(a.D), state: this.needsGrad(a.state),
      ssm: [a.ssm.logDt, a.ssm.A, a.ssm.B, a.ssm.C].some((t) => this.needsGrad(t)), kernel: false,
    };
    this.record("diagSsmConv", inputs, [r.y, r.state], ([gy, gState]) => {
      const g = diagSsmConvBackward(hp, inp, dims, Ds, ss, gy, gState, want);
      return [g.gu, g.gv, g.gq, g.gD, g.gInitial, g.ssm?.gLogDt ?? null, g.ssm?.gA ?? null, g.ssm?.gB ?? null, g.ssm?.gC ?? null];
    });
    return r;
  }

  shiftSsmTaps(B: Tensor, C: Tensor): Tensor {
    const y = this.wrap(this.inner.shiftSsmTaps(this.cpu(B), this.cpu(C)));
    if (!this.needsGrad(B) && !this.needsGrad(C)) return y;
    const [Ch, N] = B.shape;
    const bs = hostF32(B), cs = hostF32(C);
    this.record("shiftSsmTaps", [B, C], [y], ([g]) => {
      const r = shiftSsmTapsBackward(bs, cs, Ch, N, g!);
      return [r.gB, r.gC];
    });
    return y;
  }

  shiftSsm(a: ShiftSsmArgs): { y: Tensor; state: Tensor } {
    const r = this.wrapPair(this.inner.shiftSsm(this.cpuArgs(a)));
    const inputs = [a.u, a.taps, a.B, a.C, a.D, a.state];
    if (!inputs.some((t) => this.needsGrad(t))) return r;
    const [Bsz, L, Ch] = a.u.shape;
    const N = a.B.shape[1];
    const us = hostF32(a.u), ts = hostOptional(a.taps), bs = hostF32(a.B), cs = hostF32(a.C), ds = hostOptional(a.D), ss = hostOptional(a.state);
    const want = {
      u: this.needsGrad(a.u), taps: this.needsGrad(a.taps), B: this.needsGrad(a.B), C: this.needsGrad(a.C), D: this.needsGrad(a.D),
      state: this.needsGrad(a.state),
    };
    this.record("shiftSsm", inputs, [r.y, r.state], ([gy, gState]) => {
      const g = shiftSsmBackward(us, ts, bs, cs, ds, ss, { Bsz, L, Ch, N }, gy, gState, want);
      return [g.gu, g.gTaps, g.gB, g.gC, g.gD, g.gState];
    });
    return r;
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
