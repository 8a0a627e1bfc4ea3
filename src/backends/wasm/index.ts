// The fast CPU backend: the reference CpuBackend with its hot kernels (linear with f32/f16/bf16/q8
// weights, selective scan, causal conv, SSD) replaced by WebAssembly SIMD ones that split their rows
// across threads. Everything else, and any case the wasm kernels do not cover (weights that do not fit
// the 4 GiB memory, f16 weights holding infinities or NaNs), runs the TypeScript kernels it inherits.
import { check, shapeString } from "../../errors.js";
import type { DType, HostData } from "../../tensor/dtype.js";
import { Q8Matrix } from "../../tensor/q8.js";
import { Tensor } from "../../tensor/tensor.js";
import type { AttentionArgs, CausalConv1dArgs, FftConvArgs, NormSpec, SelectiveScanArgs, SsdArgs, UnaryOp } from "../backend.js";
import { fftSizeFor } from "../cpu/kernels/long-conv.js";
import { CpuBackend } from "../cpu/index.js";
import { ThreadPool, type Job } from "./pool.js";
import { FftTables } from "./fft-tables.js";
import { Residency } from "./residency.js";
import { Arena, instantiate, instantiateAsync, kernelsModule, kernelsModuleAsync, WasmHeap, type KernelExports, type KernelName } from "./runtime.js";

/** Float tensors at least this large (rank ≥ 2) are uploaded into wasm memory: the weight matrices. */
const RESIDENT_MIN_SIZE = 4096;
/** Non-resident weights up to this many bytes are copied into the arena per call; larger ones use the TS kernel. */
const COPY_WEIGHT_MAX_BYTES = 64 << 20;
/** Elements from which addNorm runs the wasm kernel (see WasmCpuBackend.addNorm). */
const ADD_NORM_MIN_ELEMENTS = 16384;
/**
 * Below this much work (multiply-adds, or state elements times steps for scans) a kernel runs on the
 * calling thread: waking a helper costs some microseconds, as much as ~100K multiply-adds.
 */
const THREAD_MIN_WORK = 1 << 18;
/** Work units per scan state element and step: an exp and ~10 vector operations, about 16 multiply-adds' worth. */
const SCAN_WORK_PER_ELEMENT = 16;
/** Per state element of Mamba-2's step: read, scale and write it back, and two products, ~2 multiply-adds' worth. */
const SSD_STEP_WORK_PER_ELEMENT = 2;
/**
 * Below this many multiply-adds a linear keeps the TypeScript kernel: the copies in and out cost about as
 * much as the product, and the reference sums in f64 where the wasm kernels sum in f32 (blocked), which
 * matters only for tiny problems with heavy cancellation.
 */
const WASM_MIN_MACS = 1 << 16;

/**
 * Bytes of slack after a resident q8 matrix: the integer dot form reads each row's short last block as a
 * whole block of 32 (against zero x), so the last row may read up to 31 bytes past the values.
 */
const Q8_SLACK = 32;

/** Where a kernel writes an output: offset, and the resident view when it is one. */
interface Out { offset: number; view: Float32Array | null }

/** Unary ops with a wasm kernel, by the kernel's op number (exp stays TypeScript: exp4 clamps at ±88). */
const UNARY_OPS: Partial<Record<UnaryOp, number>> = { silu: 0, gelu: 1, gelu_tanh: 2, softplus: 3 };

const LINEAR_KERNEL: Partial<Record<DType, KernelName>> = { f32: "linear_f32", f16: "linear_f16", bf16: "linear_bf16" };

/** True when any f16 value is an infinity or NaN (exponent 31): the wasm widening assumes finite values. */
function hasF16NonFinite(bits: Uint16Array): boolean {
  for (let i = 0; i < bits.length; i++) if ((bits[i] & 0x7c00) === 0x7c00) return true;
  return false;
}

export class WasmCpuBackend extends CpuBackend {
  override readonly name = "cpu";
  private readonly heap: WasmHeap;
  private readonly arena: Arena;
  private readonly k: KernelExports;
  private readonly pool: ThreadPool;
  private readonly res: Residency;
  private readonly fftTables: FftTables;
  /**
   * KV caches appended in place (see writeAxis1): each view of a block → the block (its full-capacity
   * view, which the entry keeps reachable, and how many rows have been written).
   */
  private readonly kvBlocks = new WeakMap<object, { base: Float32Array; rows: number }>();
  /** Linear problems smaller than this (M·N·K) use the TypeScript kernel; tests set 0 to reach the wasm one. */
  minWasmMacs = WASM_MIN_MACS;
  /** Kernels with less work than this run on the calling thread; tests set 0 to split every kernel. */
  minThreadWork = THREAD_MIN_WORK;
  /** addNorm runs the wasm kernel from this many elements (tests lower it). */
  minAddNormElements = ADD_NORM_MIN_ELEMENTS;

  private constructor(module: WebAssembly.Module, heap: WasmHeap, instance: WebAssembly.Instance) {
    super();
    this.heap = heap;
    this.arena = new Arena(this.heap);
    this.k = instance.exports as unknown as KernelExports;
    this.pool = new ThreadPool(module, this.heap.memory, instance.exports);
    this.res = new Residency(this.heap);
    this.fftTables = new FftTables(this.heap);
  }

  /** The fast backend, or null where WebAssembly SIMD with shared memory is not available. */
  static create(threads = 1): WasmCpuBackend | null {
    const module = kernelsModule();
    if (!module) return null;
    const heap = new WasmHeap();
    const b = new WasmCpuBackend(module, heap, instantiate(module, heap.memory));
    b.setThreads(threads);
    return b;
  }

  /**
   * The fast backend made without blocking — the way in on a browser page, whose main thread may not
   * compile or instantiate large modules synchronously. Threads beyond the first are Web Workers, on
   * cross-origin-isolated pages only (shared memory); they join the work once started (`readyHelpers`).
   * Null where WebAssembly SIMD with shared memory is not available.
   */
  static async createAsync(threads = 1): Promise<WasmCpuBackend | null> {
    const module = await kernelsModuleAsync();
    if (!module) return null;
    const heap = new WasmHeap();
    const b = new WasmCpuBackend(module, heap, await instantiateAsync(module, heap.memory));
    b.setThreads(threads);
    return b;
  }

  /** Helper threads started and taking chunks (browsers start them some time after setThreads). */
  get readyHelpers(): number {
    return this.pool.readyHelpers;
  }

  /** Chunks of kernel work that helper threads have run (shows that the threads share the work). */
  get helperChunks(): number {
    return this.pool.helperChunks;
  }

  /** Threads the kernels use, this one included. */
  get threads(): number {
    return this.pool.threads;
  }

  /** Sets the kernel threads (1: no workers). Workers never keep the process alive. */
  setThreads(n: number): void {
    this.pool.setThreads(n);
  }

  /** Stops the worker threads; the backend keeps working on one thread. */
  dispose(): void {
    this.pool.dispose();
  }

  /** Bytes of wasm memory in use by resident tensors and the arena (for tests and benchmarks). */
  get wasmBytes(): number {
    return this.heap.size;
  }

  /** A q8 matrix whose values and scales live in wasm memory (the original where they do not fit). */
  private uploadQ8(q: Q8Matrix, shape: readonly number[]): Tensor {
    const vBytes = q.values.length + Q8_SLACK, sBytes = q.scales.length * 4;
    const vo = this.heap.alloc(vBytes);
    const so = vo < 0 ? -1 : this.heap.alloc(sBytes);
    if (so < 0) {
      if (vo >= 0) this.heap.release(vo, vBytes);
      return super.upload(q, shape, "q8");
    }
    const values = new Int8Array(this.heap.memory.buffer, vo, q.values.length);
    const scales = new Float32Array(this.heap.memory.buffer, so, q.scales.length);
    values.set(q.values);
    scales.set(q.scales);
    const m = new Q8Matrix(values, scales, q.rows, q.cols);
    this.res.add(m, { offset: vo, bytes: vBytes, scales: so, scaleBytes: sBytes });
    const t = super.upload(m, shape, "q8");
    this.res.hold(t);
    return t;
  }

  override upload(data: HostData, shape: readonly number[], dtype: DType): Tensor {
    if (dtype === "q8" && data instanceof Q8Matrix && shape.length === 2 && shape[0] === data.rows && shape[1] === data.cols) return this.uploadQ8(data, shape);
    const t = super.upload(data, shape, dtype);
    if (dtype !== "f32" && dtype !== "f16" && dtype !== "bf16") return t;
    if (shape.length < 2 || t.size < RESIDENT_MIN_SIZE) return t;
    if (dtype === "f16" && hasF16NonFinite(data as Uint16Array)) return t;
    const bytes = t.size * (dtype === "f32" ? 4 : 2);
    const offset = this.heap.alloc(bytes);
    if (offset < 0) return t;
    const view = dtype === "f32" ? new Float32Array(this.heap.memory.buffer, offset, t.size) : new Uint16Array(this.heap.memory.buffer, offset, t.size);
    view.set(data as Float32Array & Uint16Array);
    this.res.add(view, { offset, bytes });
    const resident = new Tensor(this, [...shape], dtype, view);
    this.res.hold(resident);
    return resident;
  }

  /** Op outputs go to wasm memory (zeroed, as the TypeScript kernels expect) when large enough. */
  protected override alloc(n: number): Float32Array {
    return this.res.f32(n, true) ?? new Float32Array(n);
  }

  protected override make(shape: readonly number[], data: Float32Array): Tensor {
    const t = super.make(shape, data);
    this.res.hold(t);
    return t;
  }

  override reshape(x: Tensor, shape: readonly number[]): Tensor {
    const t = super.reshape(x, shape);
    this.res.hold(t);
    return t;
  }

  override release(t: Tensor): void {
    this.res.release(t);
  }

  /** Byte offset of a tensor's storage in wasm memory, or -1. */
  private residentOffset(t: Tensor): number {
    t.assertAlive();
    return this.res.get(t.storage as object)?.offset ?? -1;
  }

  /** Offset of a float tensor's f32 values for a kernel: its own storage when resident, else a copy in the arena. */
  private input(t: Tensor): number {
    if (t.dtype === "f32") {
      const o = this.residentOffset(t);
      if (o >= 0) return o;
    }
    return this.arena.put(this.f32(t));
  }

  private inputOpt(t: Tensor | null): number {
    return t ? this.input(t) : 0;
  }

  /** A kernel's output: a resident view it fills in place, or arena space copied out by result(). */
  private output(n: number): Out {
    const view = this.res.f32(n, false);
    if (view) return { offset: this.res.get(view)!.offset, view };
    return { offset: this.arena.take(n * 4), view: null };
  }

  /** An output that starts as a copy of `init` (kernels update states in place), or zeros. */
  private outputFrom(init: Tensor | null, n: number): Out {
    const o = this.output(n);
    if (init) this.heap.f32.set(this.f32(init), o.offset >>> 2);
    else this.heap.f32.fill(0, o.offset >>> 2, (o.offset >>> 2) + n);
    return o;
  }

  private result(o: Out, n: number): Float32Array {
    return o.view ?? this.readOut(o.offset, n);
  }

  /** q8 linear: x quantized to int16 per block of 32, then integer dot products (few rows) or integer tiles (many). */
  private linearQ8(x: Tensor, weight: Tensor, bias: Tensor | null, M: number, N: number, K: number): Tensor {
    const r = this.res.get(weight.storage as object);
    if (!r || M * N * K < Math.max(1, this.minWasmMacs)) return super.linear(x, weight, bias);
    const scratchStride = M < 4 ? 0 : this.k.linearQ8ScratchBytes(K);
    const threads = M * N * K < this.minThreadWork ? 1 : this.pool.threads;
    const qBytes = this.k.q16Bytes(M, K);
    if (!this.arena.begin(Arena.bytesFor(x.size, N, M * N, qBytes / 4) + threads * (scratchStride + 64))) return super.linear(x, weight, bias);
    const xo = this.input(x);
    const bo = this.inputOpt(bias);
    const out = this.output(M * N);
    const xq = this.arena.take(qBytes);
    const scratch = this.arena.take(threads * scratchStride);
    this.k.quantize_q16(xo, M, K, xq); // O(M·K), once for all threads
    this.run({ kernel: "linear_q8", args: [xq, M, K, r.offset, r.scales!, N, bo, out.offset], total: N, align: 8, scratch, scratchStride }, threads);
    return this.make([...x.shape.slice(0, -1), N], this.result(out, M * N));
  }

  private readOut(offset: number, n: number): Float32Array {
    // Not slice(): V8 slices typed arrays over shared memory element by element (~0.5 GB/s here).
    const out = new Float32Array(n);
    out.set(this.heap.f32.subarray(offset >>> 2, (offset >>> 2) + n));
    return out;
  }

  private run(job: Job, threads?: number): void {
    this.pool.run(job, threads);
  }

  override linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    const kernel = LINEAR_KERNEL[weight.dtype];
    const [N, K] = weight.shape;
    const M = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    if (weight.dtype === "q8" && K > 0) return this.linearQ8(x, weight, bias, M, N, K);
    let wOffset = kernel ? this.residentOffset(weight) : -1;
    const wBytes = weight.size * (weight.dtype === "f32" ? 4 : 2);
    if (!kernel || K === 0 || M * N * K < Math.max(1, this.minWasmMacs) || (wOffset < 0 && (wBytes > COPY_WEIGHT_MAX_BYTES || (weight.dtype === "f16" && hasF16NonFinite(weight.storage as Uint16Array))))) {
      return super.linear(x, weight, bias);
    }
    const scratchStride = this.k.linearScratchBytes(K);
    const threads = M * N * K < this.minThreadWork ? 1 : this.pool.threads;
    if (!this.arena.begin(Arena.bytesFor(x.size, N, M * N, wOffset < 0 ? wBytes / 4 : 0) + threads * (scratchStride + 64))) {
      return super.linear(x, weight, bias);
    }
    if (wOffset < 0) {
      wOffset = this.arena.take(wBytes);
      if (weight.dtype === "f32") this.heap.f32.set(weight.storage as Float32Array, wOffset >>> 2);
      else this.heap.u16.set(weight.storage as Uint16Array, wOffset >>> 1);
    }
    const xo = this.input(x);
    const bo = this.inputOpt(bias);
    const out = this.output(M * N);
    const scratch = this.arena.take(threads * scratchStride);
    this.run({ kernel, args: [xo, M, K, wOffset, N, bo, out.offset], total: N, align: 8, scratch, scratchStride }, threads);
    return this.make([...x.shape.slice(0, -1), N], this.result(out, M * N));
  }

  override causalConv1d(a: CausalConv1dArgs): { y: Tensor; state: Tensor } {
    const [B, L, C] = a.x.shape;
    const K = a.weight.shape[1];
    const S = K - 1;
    const threads = B * L * C * K < this.minThreadWork ? 1 : this.pool.threads;
    const stride = K * C * 4 + 64;
    if (!this.arena.begin(Arena.bytesFor(a.x.size, C * K, C, B * S * C, a.x.size, B * S * C) + threads * stride)) return super.causalConv1d(a);
    const xo = this.input(a.x);
    const wo = this.input(a.weight);
    const bo = this.inputOpt(a.bias);
    const so = this.inputOpt(a.state);
    const y = this.output(a.x.size);
    const st = this.output(B * S * C);
    const scratch = this.arena.take(threads * stride);
    this.run({ kernel: "causal_conv1d", args: [xo, wo, bo, so, a.activation === "silu" ? 1 : 0, y.offset, st.offset, B, L, C, K], total: C, align: 4, scratch, scratchStride: stride }, threads);
    return { y: this.make(a.x.shape, this.result(y, a.x.size)), state: this.make([B, S, C], this.result(st, B * S * C)) };
  }

  private scan(a: SelectiveScanArgs, L: number): { y: Tensor; state: Tensor } {
    const [B, , E] = a.u.shape;
    const N = a.A.shape[1];
    const threads = B * L * E * N * SCAN_WORK_PER_ELEMENT < this.minThreadWork ? 1 : this.pool.threads;
    const stride = this.k.selectiveScanScratchBytes(E);
    const n = B * L * E;
    if (!this.arena.begin(Arena.bytesFor(n, n, E * N, B * L * N, B * L * N, E, n, E, B * E * N, n) + threads * (stride + 64))) {
      return L === 1 ? super.selectiveStateUpdate(a) : super.selectiveScan(a);
    }
    const u = this.input(a.u);
    const delta = this.input(a.delta);
    const A = this.input(a.A);
    const Bm = this.input(a.B);
    const Cm = this.input(a.C);
    const D = this.inputOpt(a.D);
    const z = this.inputOpt(a.z);
    const bias = this.inputOpt(a.deltaBias);
    // The kernel reads the entering state in place and writes the new one (no copy of the old state).
    const state = a.state ? this.output(B * E * N) : this.outputFrom(null, B * E * N);
    const stateIn = a.state ? this.input(a.state) : state.offset;
    const y = this.output(n);
    const scratch = this.arena.take(threads * stride);
    this.run({
      kernel: "selective_scan", args: [u, delta, A, Bm, Cm, D, z, bias, a.deltaSoftplus ? 1 : 0, stateIn, state.offset, y.offset, B, L, E, N],
      total: E, align: 4, scratch, scratchStride: stride,
    }, threads);
    return { y: this.make(a.u.shape, this.result(y, n)), state: this.make([B, E, N], this.result(state, B * E * N)) };
  }

  override selectiveScan(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    return this.scan(a, a.u.shape[1]);
  }

  override selectiveStateUpdate(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    return this.scan(a, 1);
  }

  private ssd(a: SsdArgs, chunked: boolean): { y: Tensor; state: Tensor } {
    const [B, L, H, P] = a.x.shape;
    const [, , G, N] = a.B.shape;
    const steps = chunked ? L : 1;
    const Q = Math.max(1, Math.min(a.chunkSize, steps));
    const threads = B * steps * H * P * N * (chunked ? 1 : SSD_STEP_WORK_PER_ELEMENT) < this.minThreadWork ? 1 : this.pool.threads;
    const stride = chunked ? this.k.ssdChunkedScratchBytes(Q, P, N) + 64 : 0;
    const n = a.x.size;
    const fallback = () => (chunked ? super.ssdChunked(a) : super.ssdStep(a));
    if (a.D && a.D.size !== H && a.D.size !== H * P) return fallback();
    if (!this.arena.begin(Arena.bytesFor(n, B * steps * H, H, B * steps * G * N, B * steps * G * N, H * P, H, B * H * P * N, n) + threads * stride)) {
      return fallback();
    }
    const x = this.input(a.x);
    const dt = this.input(a.dt);
    const A = this.input(a.A);
    const Bm = this.input(a.B);
    const Cm = this.input(a.C);
    const D = this.inputOpt(a.D);
    const dMode = a.D ? (a.D.size === H ? 1 : 2) : 0;
    const bias = this.inputOpt(a.dtBias);
    const sn = B * H * P * N;
    // The chunked kernel updates the state in place chunk after chunk (so it starts from a copy); the
    // step reads the entering state where it is and writes the new one (Mamba-2's state is ~0.8 MB a layer).
    const copyIn = chunked || !a.state;
    const state = copyIn ? this.outputFrom(a.state, sn) : this.output(sn);
    const stateIn = copyIn ? state.offset : this.input(a.state!);
    const y = this.output(n);
    const common = [x, dt, A, Bm, Cm, D, dMode, bias, a.dtSoftplus ? 1 : 0, a.dtMin, a.dtMax];
    if (chunked) {
      const scratch = this.arena.take(threads * stride);
      // One chunk per thread: each call computes C·Bᵀ for its groups, which more chunks would repeat.
      this.run({ kernel: "ssd_chunked", args: [...common, state.offset, y.offset, B, L, H, P, G, N, Q], total: H, align: 1, scratch, scratchStride: stride, grain: 1 }, threads);
    } else {
      this.run({ kernel: "ssd_step", args: [...common, stateIn, state.offset, y.offset, B, H, P, G, N], total: H, align: 1 }, threads);
    }
    return { y: this.make(a.x.shape, this.result(y, n)), state: this.make([B, H, P, N], this.result(state, sn)) };
  }

  override ssdChunked(a: SsdArgs): { y: Tensor; state: Tensor } {
    return this.ssd(a, true);
  }

  override ssdStep(a: SsdArgs): { y: Tensor; state: Tensor } {
    return this.ssd(a, false);
  }

  /**
   * The KV-cache append. One sequence appending at its end writes the new rows into spare capacity
   * behind the cache (grown by half when full), so a decoded token costs its own rows instead of a copy
   * of the whole cache (quadratic over a generation); the result is a longer view of the same block. An
   * append is in place only where nothing was appended behind that cache before (a step redone from the
   * same state copies). Otherwise (batches, writes inside the cache): a copy inside wasm memory with
   * copyWithin (a memmove; TypedArray.set between shared views goes element by element, ~3× slower),
   * only the gaps zeroed.
   */
  override writeAxis1(cache: Tensor, fresh: Tensor, offsets: Tensor): Tensor {
    const [B, T] = cache.shape;
    const L = fresh.shape[1];
    const inner = fresh.shape.slice(2).reduce((a, b) => a * b, 1);
    const off = offsets.storage as Int32Array;
    let length = 0;
    for (let b = 0; b < B; b++) {
      check(off[b] >= 0 && off[b] <= T, () => `writeAxis1: offset ${off[b]} outside [0, ${T}]`);
      length = Math.max(length, off[b] + L);
    }
    if (B === 1 && off[0] === T && cache.dtype === "f32" && fresh.dtype === "f32") return this.appendRows(cache, fresh, T, L, inner);
    const out = this.res.f32(B * length * inner, false);
    if (!out || cache.dtype !== "f32" || fresh.dtype !== "f32") return super.writeAxis1(cache, fresh, offsets);
    const f = this.heap.f32;
    const o = out.byteOffset >>> 2;
    const copy = (t: Tensor, from: number, count: number, to: number) => {
      const r = this.residentOffset(t);
      if (r >= 0) f.copyWithin(o + to, (r >>> 2) + from, (r >>> 2) + from + count);
      else f.set((t.storage as Float32Array).subarray(from, from + count), o + to);
    };
    for (let b = 0; b < B; b++) {
      copy(cache, b * T * inner, off[b] * inner, b * length * inner);
      copy(fresh, b * L * inner, L * inner, (b * length + off[b]) * inner);
      f.fill(0, o + (b * length + off[b] + L) * inner, o + (b + 1) * length * inner);
    }
    return this.make([B, length, ...cache.shape.slice(2)], out);
  }

  /** writeAxis1 for one sequence appending L rows of `inner` floats at its end T (see writeAxis1). */
  private appendRows(cache: Tensor, fresh: Tensor, T: number, L: number, inner: number): Tensor {
    const n = (T + L) * inner;
    let block = this.kvBlocks.get(cache.storage as object);
    if (!block || block.rows !== T || block.base.length < n) {
      const capacity = (T + L + Math.max(64, Math.ceil((T + L) / 2))) * inner;
      const base = this.res.f32(capacity, false) ?? new Float32Array(capacity);
      base.set((cache.storage as Float32Array).subarray(0, T * inner));
      block = { base, rows: T };
    }
    block.base.set((fresh.storage as Float32Array).subarray(0, L * inner), T * inner);
    block.rows = T + L;
    const view = block.base.subarray(0, n);
    this.kvBlocks.set(view, block);
    this.res.alias(view, block.base);
    return this.make([1, T + L, ...cache.shape.slice(2)], view);
  }

  override causalAttention(a: AttentionArgs): Tensor {
    const [B, L, Hq, D] = a.q.shape;
    const [, T, Hkv, Dv] = a.v.shape;
    const threads = B * L * T * Hq * (D + Dv) < this.minThreadWork ? 1 : this.pool.threads;
    const stride = this.k.attentionScratchBytes(T) + 64;
    if (!this.arena.begin(Arena.bytesFor(a.q.size, a.k.size, a.v.size, B, B * L * Hq * Dv) + threads * stride)) return super.causalAttention(a);
    const q = this.input(a.q);
    const k = this.input(a.k);
    const v = this.input(a.v);
    const qs = this.arena.take(B * 4);
    new Int32Array(this.heap.memory.buffer, qs, B).set(a.queryStart.storage as Int32Array);
    const out = this.output(B * L * Hq * Dv);
    const scratch = this.arena.take(threads * stride);
    this.run({ kernel: "causal_attention", args: [q, k, v, qs, B, L, T, Hq, Hkv, D, Dv, a.scale, out.offset], total: Hq, align: 1, scratch, scratchStride: stride }, threads);
    return this.make([B, L, Hq, Dv], this.result(out, B * L * Hq * Dv));
  }

  override unary(op: UnaryOp, x: Tensor): Tensor {
    const code = UNARY_OPS[op];
    const n = x.size;
    if (code === undefined || n < 64 || !this.arena.begin(Arena.bytesFor(n, n))) return super.unary(op, x);
    const xo = this.input(x);
    const out = this.output(n);
    // ~16 units of work per value (an exp and a polynomial per four lanes).
    this.run({ kernel: "unary_f32", args: [code, xo, out.offset], total: n, align: 4 }, n * 16 < this.minThreadWork ? 1 : undefined);
    return this.make(x.shape, this.result(out, n));
  }

  /**
   * The residual add and the norm after it in one pass ([512, 768]: 1.8 → 0.75 ms at 2 threads); null (the
   * two ops, composed by ops/addNorm) below minAddNormElements, where the TypeScript ops are faster (one
   * decoding row: ~7 µs against ~12 with the copies in and out of wasm memory).
   */
  addNorm(a: Tensor, b: Tensor, norm: NormSpec): { sum: Tensor; normed: Tensor } | null {
    const n = a.size;
    const D = norm.weight.size;
    if (n < this.minAddNormElements || D === 0 || n % D !== 0 || !this.arena.begin(Arena.bytesFor(n, n, D, D, n, n))) return null;
    const ao = this.input(a);
    const bo = this.input(b);
    const wo = this.input(norm.weight);
    const biasOffset = norm.kind === "layer" ? this.inputOpt(norm.bias) : 0;
    const sum = this.output(n);
    const out = this.output(n);
    this.run({ kernel: "add_norm", args: [ao, bo, wo, biasOffset, D, norm.eps, norm.kind === "layer" ? 1 : 0, sum.offset, out.offset], total: n / D, align: 1 },
      n * 4 < this.minThreadWork ? 1 : undefined);
    return { sum: this.make(a.shape, this.result(sum, n)), normed: this.make(a.shape, this.result(out, n)) };
  }

  override gatedRmsNorm(y: Tensor, z: Tensor, weight: Tensor, groupSize: number, eps: number): Tensor {
    const n = y.size;
    const W = weight.size;
    if (groupSize <= 0 || n % groupSize !== 0 || W % groupSize !== 0 || z.size !== n || !this.arena.begin(Arena.bytesFor(n, n, W, n))) {
      return super.gatedRmsNorm(y, z, weight, groupSize, eps);
    }
    const yo = this.input(y);
    const zo = this.input(z);
    const wo = this.input(weight);
    const out = this.output(n);
    this.run({ kernel: "gated_rms_norm", args: [yo, zo, wo, W, groupSize, eps, out.offset], total: n / groupSize, align: 1 }, n * 8 < this.minThreadWork ? 1 : undefined);
    return this.make(y.shape, this.result(out, n));
  }

  override fftConv(a: FftConvArgs): Tensor {
    const [B, L, C] = a.u.shape;
    const P = a.headDim;
    const H = C / P;
    const K = a.kernel.shape[1];
    const n = fftSizeFor(L);
    const tables = L > 0 && Number.isInteger(H) ? this.fftTables.get(n) : null;
    const stride = this.k.fftConvScratchBytes(n, L, P) + 64;
    if (!tables || !this.arena.begin(Arena.bytesFor(a.u.size, a.v?.size ?? 0, a.q?.size ?? 0, H * K, H) + this.pool.threads * stride)) return super.fftConv(a);
    const u = this.input(a.u);
    const v = this.inputOpt(a.v);
    const q = this.inputOpt(a.q);
    const kernel = this.input(a.kernel);
    const D = this.inputOpt(a.D);
    const y = this.output(a.u.size);
    const work = B * H * P * P * n * Math.log2(n);
    const threads = work < this.minThreadWork ? 1 : this.pool.threads;
    const scratch = this.arena.take(threads * stride);
    this.run({
      kernel: "fft_conv", args: [u, v, q, kernel, K, D, y.offset, B, L, H, P, n, tables.twRe, tables.twIm, tables.rev],
      total: H, align: 1, scratch, scratchStride: stride,
    }, threads);
    return this.make(a.u.shape, this.result(y, a.u.size));
  }

  override toString(): string {
    return `WasmCpuBackend(${this.threads} thread${this.threads === 1 ? "" : "s"}, ${shapeString([this.heap.size])} bytes)`;
  }
}
