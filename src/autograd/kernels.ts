import type { UnaryOp } from "../backends/backend.js";
import { Arena, instantiate, kernelsModule, WasmHeap } from "../backends/wasm/runtime.js";
import { sumRows } from "./host.js";
import { causalAttentionBackward } from "./rules/attention.js";
import { linearBackward, unaryBackward } from "./rules/basic.js";
import { addConvStateGrad, causalConv1dBackward, selectiveScanBackward, type ScanGrads, type ScanHost } from "./rules/mamba.js";
import { ssdBackward, ssdEffectiveDt, ssdRawDtGrads, type SsdGrads, type SsdWant } from "./rules/ssd.js";
import type { SsdBuffers, SsdDims } from "../backends/cpu/kernels/ssd.js";

/**
 * The kernels whose cost dominates a training step (backward rules, and the GELU and attention forwards
 * that the CPU backend computes in f64), behind one interface so GradBackend can run either the
 * TypeScript references (`referenceKernels`: rules/ and, for forwards, the CPU backend) or WebAssembly
 * SIMD twins (`WasmBackwardKernels`), or those with a linear layer's backward on the GPU
 * (`WebGpuBackwardKernels`, webgpu-kernels.ts). All take and return host arrays; tests check that they agree.
 */
export type LinearWant = Parameters<typeof linearBackward>[6];
export type LinearGrads = ReturnType<typeof linearBackward>;

export interface BackwardKernels {
  readonly name: string;
  /** May answer later: the WebGPU kernels read their products back from the GPU. */
  linearBackward(
    x: Float32Array, w: Float32Array, M: number, K: number, N: number, g: Float32Array, want: LinearWant,
  ): LinearGrads | Promise<LinearGrads>;
  selectiveScanBackward: typeof selectiveScanBackward;
  causalConv1dBackward: typeof causalConv1dBackward;
  ssdBackward: typeof ssdBackward;
  causalAttentionBackward: typeof causalAttentionBackward;
  unaryBackward: typeof unaryBackward;
  /** An elementwise op's forward where these kernels have a faster one, else null (the CPU backend's kernel runs). */
  unaryForward(op: UnaryOp, x: Float32Array): Float32Array | null;
  /** Causal attention's forward (causalAttentionKernel's arguments) where these kernels have a faster one, else null. */
  attentionForward(
    q: Float32Array, k: Float32Array, v: Float32Array, qStart: Int32Array,
    Bsz: number, L: number, T: number, Hq: number, Hkv: number, D: number, Dv: number, scale: number,
  ): Float32Array | null;
}

export const referenceKernels: BackwardKernels = {
  name: "reference", linearBackward, selectiveScanBackward, causalConv1dBackward, ssdBackward, causalAttentionBackward, unaryBackward,
  unaryForward: () => null, attentionForward: () => null,
};

interface TrainExports {
  matmul_strided(a: number, sai: number, sap: number, b: number, c: number, I: number, J: number, P: number): void;
  selective_scan_backward(...args: number[]): void;
  selectiveScanBackwardScratchBytes(L: number, E: number, N: number): number;
  ssd_backward(...args: number[]): void;
  ssdBackwardScratchBytes(L: number, P: number, N: number): number;
  attention_backward(...args: number[]): void;
  attention_forward(...args: number[]): void;
  gelu_forward(x: number, y: number, n: number): void;
  gelu_backward(x: number, g: number, gx: number, n: number): void;
  attentionBackwardScratchBytes(T: number, Hq: number, D: number): number;
  causal_conv1d_backward(...args: number[]): void;
}

/** Above this much scratch (all states of one sequence and head) the SSD backward keeps the reference. */
const SSD_MAX_SCRATCH_BYTES = 256 << 20;

/**
 * The WebAssembly SIMD training kernels (assembly/train.ts), on the calling thread, in a wasm memory of
 * their own: inputs are copied into a per-call arena and results copied out. They sum in f32 where the
 * references sum some terms in f64, so results agree to float rounding, not bit for bit.
 */
export class WasmBackwardKernels implements BackwardKernels {
  readonly name = "wasm";
  private readonly heap = new WasmHeap(4 << 20);
  private readonly arena = new Arena(this.heap);
  private readonly k: TrainExports;

  private constructor(module: WebAssembly.Module) {
    this.k = instantiate(module, this.heap.memory).exports as unknown as TrainExports;
  }

  /** The kernels, or null where WebAssembly SIMD with shared memory is missing. */
  static create(): WasmBackwardKernels | null {
    const module = kernelsModule();
    return module ? new WasmBackwardKernels(module) : null;
  }

  private begin(bytes: number): void {
    if (!this.arena.begin(bytes)) throw new Error(`backward kernels: cannot allocate ${bytes} bytes of WebAssembly memory`);
  }

  private put(a: Float32Array): number {
    return this.arena.put(a);
  }

  private putOpt(a: Float32Array | null): number {
    return a ? this.arena.put(a) : 0;
  }

  private out(offset: number, n: number): Float32Array {
    return this.heap.f32.slice(offset >> 2, (offset >> 2) + n);
  }

  private outF64(offset: number, n: number): Float32Array {
    return Float32Array.from(new Float64Array(this.heap.memory.buffer, offset, n));
  }

  /** As rules/basic.ts linearBackward: ∂x = g·w and ∂w = gᵀ·x without transposes. */
  linearBackward = (
    x: Float32Array, w: Float32Array, M: number, K: number, N: number, g: Float32Array,
    want: LinearWant,
  ): LinearGrads => {
    const arena = this.arena;
    this.begin(Arena.bytesFor(M * N, want.x ? N * K + M * K : 0, want.w ? M * K + N * K : 0));
    const go = want.x || want.w ? this.put(g) : 0;
    let gx: Float32Array | null = null, gw: Float32Array | null = null;
    if (want.x) {
      const wo = this.put(w), out = arena.take(M * K * 4);
      this.k.matmul_strided(go, N, 1, wo, out, M, K, N);
      gx = this.out(out, M * K);
    }
    if (want.w) {
      const xo = this.put(x), out = arena.take(N * K * 4);
      this.k.matmul_strided(go, 1, N, xo, out, N, K, M);
      gw = this.out(out, N * K);
    }
    return { gx, gw, gb: want.b ? sumRows(g, N) : null };
  };

  /** As rules/mamba.ts selectiveScanBackward (N a multiple of 4; otherwise the reference runs). */
  selectiveScanBackward = (
    p: ScanHost, Bsz: number, L: number, E: number, N: number, g: Float32Array | null, gState: Float32Array | null,
  ): ScanGrads => {
    if (N % 4 !== 0) return selectiveScanBackward(p, Bsz, L, E, N, g, gState);
    const n = Bsz * L * E, nBN = Bsz * L * N, EN = E * N;
    const scratchBytes = this.k.selectiveScanBackwardScratchBytes(L, E, N);
    const a = this.arena;
    this.begin(Arena.bytesFor(n, n, EN, nBN, nBN, E, n, E, Bsz * EN, n, Bsz * EN, n, n, nBN, nBN, n, Bsz * EN, 2 * EN, 2 * E, 2 * E) + scratchBytes + 64);
    const args = [
      this.put(p.u), this.put(p.delta), this.put(p.A), this.put(p.B), this.put(p.C), this.putOpt(p.D), this.putOpt(p.z),
      this.putOpt(p.deltaBias), p.deltaSoftplus ? 1 : 0, this.putOpt(p.state), this.putOpt(g), this.putOpt(gState), Bsz, L, E, N,
    ];
    const gu = a.take(n * 4), gdelta = a.take(n * 4), gB = a.take(nBN * 4), gC = a.take(nBN * 4);
    const gz = p.z ? a.take(n * 4) : 0;
    const gstate = p.state ? a.take(Bsz * EN * 4) : 0;
    const gA = a.take(EN * 8), gD = p.D ? a.take(E * 8) : 0, gBias = p.deltaBias ? a.take(E * 8) : 0;
    for (const [o, len] of [[gA, EN], [gD, E], [gBias, E]]) if (o) new Float64Array(this.heap.memory.buffer, o, len).fill(0);
    const scratch = a.take(scratchBytes);
    this.k.selective_scan_backward(...args, gu, gdelta, gB, gC, gz, gstate, gA, gD, gBias, scratch);
    return {
      gu: this.out(gu, n), gdelta: this.out(gdelta, n), gA: this.outF64(gA, EN), gB: this.out(gB, nBN), gC: this.out(gC, nBN),
      gD: gD ? this.outF64(gD, E) : null, gz: gz ? this.out(gz, n) : null,
      gdeltaBias: gBias ? this.outF64(gBias, E) : null, gstate: gstate ? this.out(gstate, Bsz * EN) : null,
    };
  };

  /** As rules/mamba.ts causalConv1dBackward (channels a multiple of 4; otherwise the reference runs). */
  causalConv1dBackward = (
    x: Float32Array, Bsz: number, L: number, C: number,
    w: Float32Array, K: number, bias: Float32Array | null, state: Float32Array | null, activation: "silu" | null,
    g: Float32Array | null, gState: Float32Array | null,
    want: { x: boolean; w: boolean; bias: boolean; state: boolean },
  ): { gx: Float32Array | null; gw: Float32Array | null; gbias: Float32Array | null; gstate: Float32Array | null } => {
    if (C % 4 !== 0 || !g) return causalConv1dBackward(x, Bsz, L, C, w, K, bias, state, activation, g, gState, want);
    const S = K - 1;
    const nS = state ? Bsz * S * C : 0;
    const a = this.arena;
    this.begin(Arena.bytesFor(x.length, K * C, C, nS, g.length, x.length, nS, 2 * K * C, 2 * C, (K + 1) * C) + 64);
    const wT = new Float32Array(K * C);
    for (let c = 0; c < C; c++) for (let j = 0; j < K; j++) wT[j * C + c] = w[c * K + j];
    const zeros = (bytes: number) => {
      const o = a.take(bytes);
      new Uint8Array(this.heap.memory.buffer, o, bytes).fill(0);
      return o;
    };
    const args = [this.put(x), this.put(wT), this.putOpt(bias), this.putOpt(state), activation === "silu" ? 1 : 0, this.put(g), Bsz, L, C, K];
    const gx = zeros(x.length * 4), gs = state ? zeros(nS * 4) : 0, gwT = zeros(K * C * 8), gb = zeros(C * 8);
    this.k.causal_conv1d_backward(...args, gx, gs, gwT, gb, a.take((K + 1) * C * 4));
    const gxs = this.out(gx, x.length), gss = gs ? this.out(gs, nS) : null;
    if (gState) addConvStateGrad(gState, gxs, gss, Bsz, L, C, S);
    let gw: Float32Array | null = null;
    if (want.w) {
      const t64 = new Float64Array(this.heap.memory.buffer, gwT, K * C);
      gw = new Float32Array(C * K);
      for (let c = 0; c < C; c++) for (let j = 0; j < K; j++) gw[c * K + j] = t64[j * C + c];
    }
    return { gx: want.x ? gxs : null, gw, gbias: want.bias ? this.outF64(gb, C) : null, gstate: want.state ? gss : null };
  };

  /** As rules/ssd.ts ssdBackward (N a multiple of 4 and the states of a sequence within bounds; otherwise the reference runs). */
  ssdBackward = (p: SsdBuffers, d: SsdDims, gy: Float32Array | null, gStateOut: Float32Array | null, want: SsdWant): SsdGrads => {
    const { Bsz, L, H, P, G, N } = d;
    const scratchBytes = this.k.ssdBackwardScratchBytes(L, P, N);
    if (N % 4 !== 0 || scratchBytes > SSD_MAX_SCRATCH_BYTES) return ssdBackward(p, d, gy, gStateOut, want);
    const rows = Bsz * L * H, nx = p.x.length, nB = p.B.length, ns = Bsz * H * P * N;
    const { dtEff, dtDeriv } = ssdEffectiveDt(p, rows, H);
    const a = this.arena;
    this.begin(Arena.bytesFor(nx, rows, H, nB, nB, p.D?.length ?? 0, ns, nx, ns, nx, rows, 2 * H, nB, nB, 2 * (p.D?.length ?? 0), ns) + scratchBytes + 64);
    const dMode = p.D ? (p.D.length === H ? 1 : 2) : 0;
    const args = [
      this.put(p.x), this.put(dtEff), this.put(p.A), this.put(p.B), this.put(p.C), this.putOpt(p.D), dMode, this.putOpt(p.state),
      this.putOpt(gy), this.putOpt(gStateOut), Bsz, L, H, P, G, N,
    ];
    const zeros = (bytes: number) => {
      const o = a.take(bytes);
      this.heap.f32.fill(0, o >> 2, (o + bytes) >> 2);
      return o;
    };
    const gx = a.take(nx * 4), gdtEff = a.take(rows * 4), gA = zeros(H * 8);
    const gB = want.B ? zeros(nB * 4) : 0, gC = want.C ? zeros(nB * 4) : 0;
    const gD = p.D && want.D ? zeros(p.D.length * 8) : 0;
    const gState = want.state && p.state ? a.take(ns * 4) : 0;
    this.k.ssd_backward(...args, gx, gdtEff, gA, gB, gC, gD, gState, a.take(scratchBytes));
    const dts = want.dt || want.dtBias ? ssdRawDtGrads(this.out(gdtEff, rows), dtDeriv, H, want, p.dtBias !== null) : { gdt: null, gdtBias: null };
    return {
      gx: want.x ? this.out(gx, nx) : null, ...dts, gA: want.A ? this.outF64(gA, H) : null,
      gB: gB ? this.out(gB, nB) : null, gC: gC ? this.out(gC, nB) : null, gD: gD ? this.outF64(gD, p.D!.length) : null,
      gState: gState ? this.out(gState, ns) : null,
    };
  };

  /** As rules/attention.ts causalAttentionBackward (head sizes multiples of 4; otherwise the reference runs). */
  causalAttentionBackward = (
    q: Float32Array, k: Float32Array, v: Float32Array, out: Float32Array, qStart: Int32Array,
    Bsz: number, L: number, T: number, Hq: number, Hkv: number, D: number, Dv: number, scale: number,
    g: Float32Array, want: { q: boolean; k: boolean; v: boolean },
  ): { gq: Float32Array | null; gk: Float32Array | null; gv: Float32Array | null } => {
    if (D % 4 !== 0 || Dv % 4 !== 0) return causalAttentionBackward(q, k, v, out, qStart, Bsz, L, T, Hq, Hkv, D, Dv, scale, g, want);
    const scratchBytes = this.k.attentionBackwardScratchBytes(T, Hq, D);
    const a = this.arena;
    this.begin(Arena.bytesFor(q.length, k.length, v.length, out.length, Bsz, g.length, q.length, k.length, v.length) + scratchBytes + 64);
    const qo = this.put(q), ko = this.put(k), vo = this.put(v), oo = this.put(out);
    const so = a.take(Bsz * 4);
    new Int32Array(this.heap.memory.buffer, so, Bsz).set(qStart);
    const go = this.put(g);
    const zeros = (n: number) => {
      const o = a.take(n * 4);
      this.heap.f32.fill(0, o >> 2, (o >> 2) + n);
      return o;
    };
    const gq = want.q ? a.take(q.length * 4) : 0, gk = want.k ? zeros(k.length) : 0, gv = want.v ? zeros(v.length) : 0;
    this.k.attention_backward(qo, ko, vo, oo, so, Bsz, L, T, Hq, Hkv, D, Dv, scale, go, gq, gk, gv, a.take(scratchBytes));
    if (gq) {
      // Queries that see no key get no gradient (the kernel skips them): zero what it left unwritten.
      for (let b = 0; b < Bsz; b++) {
        const blind = Math.min(L, Math.max(0, -qStart[b]));
        if (blind > 0) this.heap.f32.fill(0, (gq >> 2) + b * L * Hq * D, (gq >> 2) + (b * L + blind) * Hq * D);
      }
    }
    return { gq: gq ? this.out(gq, q.length) : null, gk: gk ? this.out(gk, k.length) : null, gv: gv ? this.out(gv, v.length) : null };
  };

  /** As the CPU backend's causalAttentionKernel, in f32 (head sizes multiples of 4; otherwise null: the CPU kernel runs). */
  attentionForward = (
    q: Float32Array, k: Float32Array, v: Float32Array, qStart: Int32Array,
    Bsz: number, L: number, T: number, Hq: number, Hkv: number, D: number, Dv: number, scale: number,
  ): Float32Array | null => {
    if (D % 4 !== 0 || Dv % 4 !== 0) return null;
    const n = Bsz * L * Hq * Dv;
    const scratchBytes = this.k.attentionBackwardScratchBytes(T, Hq, Dv);
    this.begin(Arena.bytesFor(q.length, k.length, v.length, Bsz, n) + scratchBytes + 64);
    const qo = this.put(q), ko = this.put(k), vo = this.put(v);
    const so = this.arena.take(Bsz * 4);
    new Int32Array(this.heap.memory.buffer, so, Bsz).set(qStart);
    const out = this.arena.take(n * 4);
    this.k.attention_forward(qo, ko, vo, so, Bsz, L, T, Hq, Hkv, D, Dv, scale, out, this.arena.take(scratchBytes));
    return this.out(out, n);
  };

  /**
   * Exact (erf) GELU on four lanes with erfc from a Chebyshev fit (Numerical Recipes' erfcc) instead of
   * the CPU kernel's double-precision series: agrees to about 1e-6 relative (f32 rounding of −x²/2
   * inside exp dominates in the far tail), many times faster.
   */
  unaryForward = (op: UnaryOp, x: Float32Array): Float32Array | null => {
    if (op !== "gelu") return null;
    return this.elementwise(x.length, [x], (offsets, out, n) => this.k.gelu_forward(offsets[0], out, n));
  };

  /** As rules/basic.ts unaryBackward; GELU's derivative Φ(x) + x·φ(x) runs on four lanes as unaryForward does. */
  unaryBackward = (op: UnaryOp, x: Float32Array, y: Float32Array, g: Float32Array): Float32Array => {
    if (op !== "gelu") return unaryBackward(op, x, y, g);
    return this.elementwise(x.length, [x, g], (offsets, out, n) => this.k.gelu_backward(offsets[0], offsets[1], out, n));
  };

  /** Runs an elementwise kernel over `inputs` (each n values, zero-padded to a multiple of 4); returns its n outputs. */
  private elementwise(n: number, inputs: Float32Array[], kernel: (offsets: number[], out: number, padded: number) => void): Float32Array {
    const padded = (n + 3) & ~3;
    this.begin(Arena.bytesFor(...inputs.map(() => padded), padded) + 64);
    const offsets = inputs.map((a) => {
      const o = this.arena.take(padded * 4);
      this.heap.f32.set(a, o >> 2);
      this.heap.f32.fill(0, (o >> 2) + n, (o >> 2) + padded);
      return o;
    });
    const out = this.arena.take(padded * 4);
    kernel(offsets, out, padded);
    return this.out(out, n);
  }
}
