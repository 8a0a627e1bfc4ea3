import { check, shapeString } from "../../errors.js";
import type { DType, HostArray, HostData } from "../../tensor/dtype.js";
import { widenBf16, widenF16 } from "../../tensor/half.js";
import { dequantizeQ8Rows, Q8Matrix } from "../../tensor/q8.js";
import { Tensor } from "../../tensor/tensor.js";
import type { AttentionArgs, Backend, BinaryOp, CausalConv1dArgs, RopeArgs, SelectiveScanArgs, SsdArgs, UnaryOp } from "../backend.js";
import type { DiagSsmConvArgs, DiagSsmParams, FftConvArgs, GatedConvInput, ShiftSsmArgs } from "../backend.js";
import { causalAttentionKernel, ropeKernel } from "./kernels/attention.js";
import { ssdChunkedKernel, ssdStepKernel, type SsdBuffers, type SsdDims } from "./kernels/ssd.js";
import { causalConv1dKernel } from "./kernels/conv.js";
import { binaryKernel, unaryKernel } from "./kernels/elementwise.js";
import { linearKernel } from "./kernels/linear.js";
import { linearQ8Kernel } from "./kernels/linear-q8.js";
import { gatedRmsNormKernel, layerNormKernel, rmsNormKernel } from "./kernels/norm.js";
import { selectiveScanKernel, selectiveStateUpdateKernel, type ScanBuffers } from "./kernels/scan.js";
import { diagSsmConvKernel, diagSsmKernelKernel, diagSsmRecurrenceKernel, discretizeDiagSsm, type DiagSsmHost } from "./kernels/diag-ssm.js";
import { fftConvKernel, type GatedConvDims, type GatedConvInputs } from "./kernels/long-conv.js";
import { shiftSsmKernel, shiftSsmTapsKernel } from "./kernels/shift-ssm.js";

/**
 * CPU tensors hold a typed array: Float32Array (f32), Uint16Array (f16/bf16 bits) or Int32Array (i32), or a
 * Q8Matrix (q8).
 */
function host(t: Tensor): HostArray {
  t.assertAlive();
  return t.storage as HostArray;
}

function hostQ8(t: Tensor): Q8Matrix {
  t.assertAlive();
  return t.storage as Q8Matrix;
}

/** The reference backend: plain TypeScript kernels, computed eagerly. */
export class CpuBackend implements Backend {
  readonly name: string = "cpu";

  upload(data: HostData, shape: readonly number[], dtype: DType): Tensor {
    if (dtype === "q8" || data instanceof Q8Matrix) {
      check(dtype === "q8" && data instanceof Q8Matrix, `upload: q8 tensors need a Q8Matrix and a Q8Matrix needs dtype q8, got ${dtype} and a ${data.constructor.name}`);
      check(shape.length === 2 && shape[0] === data.rows && shape[1] === data.cols,
        `upload: q8 matrix [${data.rows}, ${data.cols}] given shape ${shapeString(shape)}`);
      return new Tensor(this, [...shape], dtype, data);
    }
    const expected = dtype === "f32" ? Float32Array : dtype === "i32" ? Int32Array : Uint16Array;
    check(data instanceof expected, `upload: ${dtype} tensor needs a ${expected.name}, got ${data.constructor.name}`);
    const t = new Tensor(this, [...shape], dtype, data);
    check(t.size === data.length, `upload: shape ${shapeString(shape)} needs ${t.size} values, got ${data.length}`);
    return t;
  }

  zeros(shape: readonly number[], dtype: DType = "f32"): Tensor {
    check(dtype !== "q8", `zeros: q8 tensors are made by quantizing weights, not as zeros (shape ${shapeString(shape)})`);
    const n = shape.reduce((a, b) => a * b, 1);
    const data = dtype === "f32" ? new Float32Array(n) : dtype === "i32" ? new Int32Array(n) : new Uint16Array(n);
    return new Tensor(this, [...shape], dtype, data);
  }

  async read(t: Tensor): Promise<Float32Array | Int32Array> {
    return this.floats(t, true);
  }

  release(_t: Tensor): void {
    // Typed arrays are reclaimed by the garbage collector; nothing to do.
  }

  /** f32 view of a tensor (widened copy for f16/bf16); `copy` forces a copy for f32 too. */
  protected floats(t: Tensor, copy = false): Float32Array | Int32Array {
    if (t.dtype === "q8") {
      const q = hostQ8(t);
      const out = new Float32Array(t.size);
      dequantizeQ8Rows(q, 0, q.rows, out, 0);
      return out;
    }
    const data = host(t);
    if (t.dtype === "f32" || t.dtype === "i32") {
      if (!copy) return data as Float32Array;
      // new + set, not slice(): V8 slices arrays over shared memory (the wasm backend's) element by element.
      const out = t.dtype === "f32" ? new Float32Array(t.size) : new Int32Array(t.size);
      out.set(data as Float32Array & Int32Array);
      return out;
    }
    const out = new Float32Array(t.size);
    (t.dtype === "f16" ? widenF16 : widenBf16)(data as Uint16Array, 0, out, 0, t.size);
    return out;
  }

  protected f32(t: Tensor): Float32Array {
    check(t.dtype !== "i32", () => `expected a float tensor, got i32 ${shapeString(t.shape)}`);
    return this.floats(t) as Float32Array;
  }

  protected opt(t: Tensor | null): Float32Array | null {
    return t ? this.f32(t) : null;
  }

  /** A fresh zeroed f32 buffer for an op's output (the wasm backend places large ones in its memory). */
  protected alloc(n: number): Float32Array {
    return new Float32Array(n);
  }

  protected make(shape: readonly number[], data: Float32Array): Tensor {
    return new Tensor(this, [...shape], "f32", data);
  }

  embedding(table: Tensor, ids: Tensor): Tensor {
    const [V, D] = table.shape;
    const idv = host(ids) as Int32Array;
    const out = this.alloc(idv.length * D);
    const src = host(table);
    for (let i = 0; i < idv.length; i++) {
      const id = idv[i];
      check(id >= 0 && id < V, `token id ${id} is outside the vocabulary [0, ${V})`);
      if (table.dtype === "q8") dequantizeQ8Rows(hostQ8(table), id, 1, out, i * D);
      else if (table.dtype === "f32") out.set((src as Float32Array).subarray(id * D, id * D + D), i * D);
      else (table.dtype === "f16" ? widenF16 : widenBf16)(src as Uint16Array, id * D, out, i * D, D);
    }
    return this.make([...ids.shape, D], out);
  }

  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    const [N, K] = weight.shape;
    const M = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const out = this.alloc(M * N);
    if (weight.dtype === "q8") linearQ8Kernel(this.f32(x), M, K, hostQ8(weight), N, this.opt(bias), out);
    else linearKernel(this.f32(x), M, K, { dtype: weight.dtype, data: host(weight) as Float32Array | Uint16Array }, N, this.opt(bias), out);
    return this.make([...x.shape.slice(0, -1), N], out);
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    const out = this.alloc(x.size);
    rmsNormKernel(this.f32(x), this.f32(weight), weight.size, eps, out);
    return this.make(x.shape, out);
  }

  layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
    const out = this.alloc(x.size);
    layerNormKernel(this.f32(x), this.f32(weight), this.opt(bias), weight.size, eps, out);
    return this.make(x.shape, out);
  }

  unary(op: UnaryOp, x: Tensor): Tensor {
    const out = this.alloc(x.size);
    unaryKernel(op, this.f32(x), out);
    return this.make(x.shape, out);
  }

  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
    const out = this.alloc(a.size);
    binaryKernel(op, this.f32(a), this.f32(b), out);
    return this.make(a.shape, out);
  }

  sliceLast(x: Tensor, start: number, length: number): Tensor {
    const W = x.shape[x.rank - 1];
    const rows = x.size / W;
    const src = this.f32(x);
    const out = this.alloc(rows * length);
    for (let r = 0; r < rows; r++) out.set(src.subarray(r * W + start, r * W + start + length), r * length);
    return this.make([...x.shape.slice(0, -1), length], out);
  }

  selectPositions(x: Tensor, positions: Tensor): Tensor {
    const [B, L] = x.shape;
    const inner = x.size / (B * L);
    const src = this.f32(x);
    const pos = host(positions) as Int32Array;
    const out = this.alloc(B * inner);
    for (let b = 0; b < B; b++) {
      const p = pos[b];
      check(p >= 0 && p < L, `selectPositions: position ${p} outside [0, ${L})`);
      out.set(src.subarray((b * L + p) * inner, (b * L + p + 1) * inner), b * inner);
    }
    return this.make([B, ...x.shape.slice(2)], out);
  }

  concat0(parts: readonly Tensor[]): Tensor {
    const total = parts.reduce((n, p) => n + p.size, 0);
    const out = this.alloc(total);
    let offset = 0;
    for (const p of parts) {
      out.set(this.f32(p), offset);
      offset += p.size;
    }
    const rows = parts.reduce((n, p) => n + p.shape[0], 0);
    return this.make([rows, ...parts[0].shape.slice(1)], out);
  }

  slice0(x: Tensor, start: number, length: number): Tensor {
    const inner = x.size / x.shape[0];
    const out = this.alloc(length * inner);
    out.set(this.f32(x).subarray(start * inner, (start + length) * inner));
    return this.make([length, ...x.shape.slice(1)], out);
  }

  reshape(x: Tensor, shape: readonly number[]): Tensor {
    // Typed arrays are immutable here (ops never write into inputs), so sharing is safe.
    if (x.dtype === "q8") {
      // q8 blocks run along each row: only reshapes that keep the row length keep the layout.
      check(shape[shape.length - 1] === x.shape[x.rank - 1], `reshape: a q8 tensor ${shapeString(x.shape)} keeps its last dimension, got ${shapeString(shape)}`);
    }
    return new Tensor(this, [...shape], x.dtype, host(x));
  }

  toFloat32(x: Tensor): Tensor {
    const values = this.floats(x, true);
    return this.make(x.shape, values instanceof Float32Array ? values : Float32Array.from(values));
  }

  causalConv1d(a: CausalConv1dArgs): { y: Tensor; state: Tensor } {
    const [B, L, C] = a.x.shape;
    const K = a.weight.shape[1];
    const y = this.alloc(a.x.size);
    const state = this.alloc(B * (K - 1) * C);
    causalConv1dKernel(this.f32(a.x), B, L, C, this.f32(a.weight), K, this.opt(a.bias), this.opt(a.state), a.activation, y, state);
    return { y: this.make(a.x.shape, y), state: this.make([B, K - 1, C], state) };
  }

  private scanBuffers(a: SelectiveScanArgs): ScanBuffers {
    return {
      u: this.f32(a.u), delta: this.f32(a.delta), A: this.f32(a.A), B: this.f32(a.B), C: this.f32(a.C),
      D: this.opt(a.D), z: this.opt(a.z), deltaBias: this.opt(a.deltaBias), deltaSoftplus: a.deltaSoftplus,
      state: this.opt(a.state),
    };
  }

  selectiveScan(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    const [B, L, E] = a.u.shape;
    const N = a.A.shape[1];
    const y = this.alloc(a.u.size);
    const state = this.alloc(B * E * N);
    selectiveScanKernel(this.scanBuffers(a), B, L, E, N, y, state);
    return { y: this.make(a.u.shape, y), state: this.make([B, E, N], state) };
  }

  selectiveStateUpdate(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    const [B, , E] = a.u.shape;
    const N = a.A.shape[1];
    const y = this.alloc(a.u.size);
    const state = this.alloc(B * E * N);
    selectiveStateUpdateKernel(this.scanBuffers(a), B, E, N, y, state);
    return { y: this.make(a.u.shape, y), state: this.make([B, E, N], state) };
  }

  resizeAxis1(x: Tensor, length: number): Tensor {
    const [B, T] = x.shape;
    const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
    const src = this.f32(x);
    const out = this.alloc(B * length * inner);
    const keep = Math.min(T, length) * inner;
    for (let b = 0; b < B; b++) out.set(src.subarray(b * T * inner, b * T * inner + keep), b * length * inner);
    return this.make([B, length, ...x.shape.slice(2)], out);
  }

  writeAxis1(cache: Tensor, fresh: Tensor, offsets: Tensor): Tensor {
    const [B, T] = cache.shape;
    const L = fresh.shape[1];
    const inner = fresh.shape.slice(2).reduce((a, b) => a * b, 1);
    const off = host(offsets) as Int32Array;
    let length = 0;
    for (let b = 0; b < B; b++) length = Math.max(length, off[b] + L);
    const out = this.alloc(B * length * inner);
    const src = this.f32(cache);
    const add = this.f32(fresh);
    for (let b = 0; b < B; b++) {
      check(off[b] >= 0 && off[b] <= T, `writeAxis1: offset ${off[b]} outside [0, ${T}]`);
      out.set(src.subarray(b * T * inner, (b * T + off[b]) * inner), b * length * inner);
      out.set(add.subarray(b * L * inner, (b + 1) * L * inner), (b * length + off[b]) * inner);
    }
    return this.make([B, length, ...cache.shape.slice(2)], out);
  }

  gatedRmsNorm(y: Tensor, z: Tensor, weight: Tensor, groupSize: number, eps: number): Tensor {
    const out = this.alloc(y.size);
    gatedRmsNormKernel(this.f32(y), this.f32(z), this.f32(weight), groupSize, eps, out);
    return this.make(y.shape, out);
  }

  private ssdBuffers(a: SsdArgs): { p: SsdBuffers; d: SsdDims } {
    const [Bsz, L, H, P] = a.x.shape;
    const [, , G, N] = a.B.shape;
    return {
      p: {
        x: this.f32(a.x), dt: this.f32(a.dt), A: this.f32(a.A), B: this.f32(a.B), C: this.f32(a.C), D: this.opt(a.D),
        dtBias: this.opt(a.dtBias), dtSoftplus: a.dtSoftplus, dtMin: a.dtMin, dtMax: a.dtMax, state: this.opt(a.state),
      },
      d: { Bsz, L, H, P, G, N },
    };
  }

  ssdChunked(a: SsdArgs): { y: Tensor; state: Tensor } {
    const { p, d } = this.ssdBuffers(a);
    const y = this.alloc(a.x.size);
    const state = this.alloc(d.Bsz * d.H * d.P * d.N);
    ssdChunkedKernel(p, d, a.chunkSize, y, state);
    return { y: this.make(a.x.shape, y), state: this.make([d.Bsz, d.H, d.P, d.N], state) };
  }

  ssdStep(a: SsdArgs): { y: Tensor; state: Tensor } {
    const { p, d } = this.ssdBuffers(a);
    const y = this.alloc(a.x.size);
    const state = this.alloc(d.Bsz * d.H * d.P * d.N);
    ssdStepKernel(p, d, y, state);
    return { y: this.make(a.x.shape, y), state: this.make([d.Bsz, d.H, d.P, d.N], state) };
  }

  causalAttention(a: AttentionArgs): Tensor {
    const [B, L, Hq, D] = a.q.shape;
    const [, T, Hkv, Dv] = a.v.shape;
    const out = this.alloc(B * L * Hq * Dv);
    causalAttentionKernel(this.f32(a.q), this.f32(a.k), this.f32(a.v), host(a.queryStart) as Int32Array, B, L, T, Hq, Hkv, D, Dv, a.scale, out);
    return this.make([B, L, Hq, Dv], out);
  }

  rope(a: RopeArgs): Tensor {
    const [B, L, H, D] = a.x.shape;
    const out = this.alloc(a.x.size);
    ropeKernel(this.f32(a.x), host(a.start) as Int32Array, B, L, H, D, a.rotaryDim, a.base, a.positionScale, a.interleaved, out);
    return this.make(a.x.shape, out);
  }

  private gatedInput(a: GatedConvInput): { inp: GatedConvInputs; dims: GatedConvDims } {
    const [B, L, C] = a.u.shape;
    return {
      inp: { u: this.f32(a.u), v: this.opt(a.v), q: this.opt(a.q) },
      dims: { B, L, H: C / a.headDim, P: a.headDim },
    };
  }

  /**
   * Discretised SSMs by their A tensor: tensors are immutable, so while A, B, C, logDt and the rule are the
   * same objects the f64 discretisation can be reused (each decoding step would otherwise redo it).
   */
  private readonly discretized = new WeakMap<Tensor, { p: DiagSsmParams; host: DiagSsmHost }>();

  private diagSsm(p: DiagSsmParams): DiagSsmHost {
    const hit = this.discretized.get(p.A);
    if (hit && hit.p.logDt === p.logDt && hit.p.B === p.B && hit.p.C === p.C && hit.p.discretization === p.discretization) return hit.host;
    const [H, N] = p.A.shape;
    const host = discretizeDiagSsm(this.f32(p.logDt), this.f32(p.A), this.f32(p.B), this.f32(p.C), H, N, p.discretization);
    this.discretized.set(p.A, { p: { ...p }, host });
    return host;
  }

  fftConv(a: FftConvArgs): Tensor {
    const { inp, dims } = this.gatedInput(a);
    const y = this.alloc(a.u.size);
    fftConvKernel(inp, dims, this.f32(a.kernel), a.kernel.shape[1], this.opt(a.D), y);
    return this.make(a.u.shape, y);
  }

  diagSsmKernel(p: DiagSsmParams, length: number): Tensor {
    const ssm = this.diagSsm(p);
    const out = new Float32Array(ssm.H * length);
    diagSsmKernelKernel(ssm, length, out);
    return this.make([ssm.H, length], out);
  }

  private diagSsmRun(a: DiagSsmConvArgs, step: boolean): { y: Tensor; state: Tensor } {
    const { inp, dims } = this.gatedInput(a);
    const ssm = this.diagSsm(a.ssm);
    const y = this.alloc(a.u.size);
    const stateShape = [dims.B, dims.H, dims.P, dims.P, ssm.N, 2];
    const state = this.alloc(stateShape.reduce((x, d) => x * d, 1));
    if (step) diagSsmRecurrenceKernel(ssm, inp, dims, this.opt(a.D), this.opt(a.state), y, state);
    else diagSsmConvKernel(ssm, inp, dims, this.opt(a.D), this.opt(a.state), a.chunkSize, y, state);
    return { y: this.make(a.u.shape, y), state: this.make(stateShape, state) };
  }

  diagSsmConv(a: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
    return this.diagSsmRun(a, false);
  }

  diagSsmStep(a: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
    return this.diagSsmRun(a, true);
  }

  shiftSsmTaps(B: Tensor, C: Tensor): Tensor {
    const [Ch, N] = B.shape;
    const taps = new Float32Array(Ch * N);
    shiftSsmTapsKernel(this.f32(B), this.f32(C), Ch, N, taps);
    return this.make([Ch, N], taps);
  }

  /** FIR taps derived from (B, C), kept while those tensors live (they are immutable). */
  private readonly shiftTaps = new WeakMap<Tensor, { C: Tensor; taps: Float32Array }>();

  private tapsOf(B: Tensor, C: Tensor): Float32Array {
    const hit = this.shiftTaps.get(B);
    if (hit && hit.C === C) return hit.taps;
    const [Ch, N] = B.shape;
    const taps = new Float32Array(Ch * N);
    shiftSsmTapsKernel(this.f32(B), this.f32(C), Ch, N, taps);
    this.shiftTaps.set(B, { C, taps });
    return taps;
  }

  shiftSsm(a: ShiftSsmArgs): { y: Tensor; state: Tensor } {
    const [Bsz, L, Ch] = a.u.shape;
    const N = a.B.shape[1];
    const y = this.alloc(a.u.size);
    const state = this.alloc(Bsz * Ch * N);
    const taps = a.taps ? this.f32(a.taps) : this.tapsOf(a.B, a.C);
    shiftSsmKernel(this.f32(a.u), taps, this.f32(a.B), this.f32(a.C), this.opt(a.D), this.opt(a.state),
      { Bsz, L, Ch, N }, y, state);
    return { y: this.make(a.u.shape, y), state: this.make([Bsz, Ch, N], state) };
  }
}
