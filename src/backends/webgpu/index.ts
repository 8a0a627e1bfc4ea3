import type {} from "webgpu";
import { check, HippoError, shapeString } from "../../errors.js";
import type { DType, HostData } from "../../tensor/dtype.js";
import { widenBf16, widenF16 } from "../../tensor/half.js";
import { untrack } from "../../tensor/scope.js";
import { Tensor } from "../../tensor/tensor.js";
import type {
  AttentionArgs, Backend, BinaryOp, CausalConv1dArgs, DiagSsmConvArgs, DiagSsmParams, FftConvArgs, NormSpec, RopeArgs,
  SelectiveScanArgs, ShiftSsmArgs, SsdArgs, UnaryOp,
} from "../backend.js";
import type { TokenSampler, TokenSamplingOptions } from "../sampling.js";
import type { CapturedStep, StepCapture, StepGraphHandle } from "../step-capture.js";
import { requestDevice, type GpuHandle } from "./gpu.js";
import type { OpTimer } from "../profiling.js";
import { GpuOpTimer } from "./op-timer.js";
import { CapturedCommands, GpuRuntime, StepGraph, writesBuffer, type Kernel, type KernelSpec } from "./runtime.js";
import {
  attentionGrid, attentionSpec, attentionTiledSpec, decodeAttentionGrid, decodeAttentionSpec, ropeSpec, useDecodeAttention, useTiledAttention,
} from "./kernels/attention.js";
import { causalConv1dSpec } from "./kernels/conv.js";
import {
  binarySpec, copySpec, embeddingSpec, fillSpec, gatherViewSpec, resizeAxis1Spec, selectPositionsSpec, sliceLastSpec, unarySpec, widenSpec,
  writeAxis1Spec, appendAxis1Spec,
} from "./kernels/elementwise.js";
import {
  DIAG_CHUNK, diagCarrySpec, diagDiscretizeSpec, diagKernelSpec, diagLocalSpec, diagOutputSpec, diagStepSpec, directConvSpec, shiftSsmSpec,
  shiftSsmStepSpec, shiftSsmTiledSpec, shiftTapsSpec,
} from "./kernels/h3.js";
import {
  MATVEC_ROWS, MATVEC_SG_ROWS, matmulKey, matmulSpec, type MatmulOptions, matvecColumnsPerWorkgroup, matvecSpec, matvecSubgroupSpec, splitKFor, splitKSumKey, splitKSumSpec, TILED_BATCHED_MIN_COLUMNS, TILED_MIN_COLUMNS, TILED_MIN_ROWS, TILED_WIDE_MIN_ROWS, tileFor, tileGrid, isLargeTile, type MatvecPrologue,
} from "./kernels/linear.js";
import { gatedRmsNormSpec, rowNormSpec } from "./kernels/norm.js";
import { sampleSpec } from "./kernels/sampling.js";
import { scanCarrySpec, scanStepProjSpec, scanLocalSpec, scanOutputSpec } from "./kernels/scan.js";
import { SSD_CHUNK, ssdChunkCbSpec, ssdChunkOutSpec, ssdChunkOutTiledSpec, ssdChunkStateSpec, ssdChunkStateTiledSpec, ssdDtSpec, ssdStatePassSpec, ssdStepSpec, ssdStepSubgroupKey, ssdStepSubgroupSpec } from "./kernels/ssd.js";
import { grid, type WeightDType } from "./kernels/wgsl.js";

/**
 * A column slice of wider rows, sharing its source's buffer: logical element e (row-major over the tensor's
 * shape) sits at off + floor(e / width)·stride + e % width. Reshapes keep the mapping.
 */
export interface GpuView {
  off: number;
  stride: number;
  width: number;
}

/**
 * An op recorded but not run (decoding one sequence: the residual add + RMSNorm): the linear layer that
 * reads its output computes it on the fly while it reads its input, and writes the op's other outputs on
 * the way (matvecSubgroupSpec's prologues); anything else that touches one of its tensors runs the op's
 * own kernel first (storageOf). A record holds aliases of what it reads, so no buffer it needs is reused
 * before it settles.
 */
interface PendingOp {
  /** The storage whose values a linear layer may compute as it reads them. */
  readonly input: GpuShared;
  /**
   * Dispatches linear(input, weight, bias) into `out` with the op computed on the fly (rows = `M`); false
   * where the fused kernel does not apply (the caller then runs the op and the plain linear).
   */
  fuseLinear(M: number, weight: Tensor, bias: Tensor | null, out: Tensor): boolean;
  /** Runs the op's own kernel (every output) unless it has settled. */
  run(): void;
  /** The last tensor sharing `shared` is being released. */
  lastRelease(shared: GpuShared): void;
}

/** What the tensors sharing one buffer share: how many use it, and a pending op that writes it. */
interface GpuShared {
  refs: number;
  pending?: PendingOp;
  /**
   * A KV cache with spare capacity (see writeAxis1): per batch row, how many entries on axis 1 hold
   * values some tensor of this buffer may rely on. Absent: unknown (the next append copies).
   */
  kvFill?: Int32Array;
}

/** A tensor's GPU storage. Reshapes and slices share the buffer; `shared.refs` counts the tensors using it. */
export interface GpuStorage {
  buffer: GPUBuffer;
  /** Bytes of data (f16/bf16 are packed two per 32-bit word). */
  bytes: number;
  shared: GpuShared;
  /** Host copy of small i32 tensors made by upload/zeros (ids, positions): ops whose output shape
   *  depends on their values (writeAxis1) and range checks read it. */
  host: Int32Array | null;
  /** Set for zero-copy column slices (sliceLast of f32 data). */
  view?: GpuView;
}

const HOST_SHADOW_LIMIT = 1 << 16;
/** Time steps per chunk of the chunked scans (selective scan, diagonal SSM). */
const SCAN_CHUNK = 64;
/** From this length on the shift SSM's outputs go through the tiled kernel (32 steps per workgroup). */
const SHIFT_TILED_MIN_LENGTH = 32;
/** Entries a KV cache gets beyond what it needs when a decoding append must copy it (see writeAxis1). */
const KV_RESERVE_ROWS = 256;

function bytesFor(n: number, dtype: DType): number {
  return dtype === "f16" || dtype === "bf16" ? Math.ceil(n / 2) * 4 : n * 4;
}

/** A tensor's storage with its data in place (a pending op that writes it runs first). */
function storageOf(t: Tensor): GpuStorage {
  const s = rawStorageOf(t);
  s.shared.pending?.run();
  return s;
}

/** A tensor's storage as it is (its buffer may still await a pending op). */
function rawStorageOf(t: Tensor): GpuStorage {
  t.assertAlive();
  return t.storage as GpuStorage;
}

type Params = Record<string, number | boolean>;

/** A norm done inside the tiled kernel: its prologue, parameters (eps among them) and extra buffers. */
interface TiledNorm {
  prologue: Exclude<MatvecPrologue, "none">;
  params: Params & { eps: number };
  /** Bound after x: the gate or the residual's second term, then the norm weight. */
  before: (GPUBuffer | null)[];
  /** Bound after out: the residual sum the kernel writes. */
  after: (GPUBuffer | null)[];
}

/**
 * The WebGPU backend: the op table as WGSL kernels recorded into one pending command encoder. Ops return at
 * once; `read` submits and maps. Weights stay in their stored dtype (f16/bf16 packed in u32, widened in the
 * shaders); everything is computed in f32.
 */
export class WebGpuBackend implements Backend, TokenSampler, StepCapture {
  readonly name = "webgpu";
  readonly rt: GpuRuntime;
  private readonly packed = new WeakMap<Tensor, { other: Tensor | null; buffer: GPUBuffer }>();
  private readonly discretized = new WeakMap<Tensor, { p: DiagSsmParams; buffer: GPUBuffer }>();
  private readonly invFreqs = new Map<string, GPUBuffer>();

  /** Use subgroup operations where kernels have such a variant (when the device offers them). */
  useSubgroups: boolean;
  /**
   * Rows of x from which products of TILED_BATCHED_MIN_COLUMNS columns or more take the tiled kernel (K
   * split across workgroups where its tiles are few) instead of the subgroup matvec, which passes over
   * the weights once per 8 rows; and from which the widest products (TILED_MIN_COLUMNS, the LM head) do.
   * Every product of more than MATVEC_SG_ROWS rows is tiled.
   */
  tiledMinRows = TILED_MIN_ROWS;
  tiledWideMinRows = TILED_WIDE_MIN_ROWS;
  /** Split K across workgroups where a tiled product has few output tiles (splitKFor). */
  splitK = true;
  /** Batched decoding's norms (an RMSNorm after a residual add, Mamba-2's gated norm) inside the tiled product that reads them. */
  fuseNormIntoTiled = true;
  /**
   * An activation inside the 128×128-tile products (prefill) too, not only in batched decoding's smaller
   * tiles. With the store as a loop, H3-125M's fc1 + GELU at 8192 rows took 33 ms on an H100 (session 14)
   * against ~1.3 ms for the product; with the store unrolled (matmulSpec) H3-125M's prefill at 8192 tokens
   * ran 89,019 tok/s fused against 88,671 with the activation's own pass (H100, session 15).
   */
  fuseActIntoLargeTiles = true;
  /**
   * Batched decoding's tiled products of 33–64 rows, not only the LM head's width, on 64×128 tiles of 8×8
   * per thread (SKINNY_TILE) instead of 64×64 tiles of 4×4. Off: on an H100 (session 15) the projections
   * were no faster alone (mamba's in_proj at 64 rows 28.9 µs split against 32.4; out_proj 29.1 against
   * 23.7) and whole steps slower (mamba-130m 2.96 against 2.75 ms, mamba2-130m 3.83 against 3.50).
   */
  skinnyTiles = false;
  /**
   * (b, h, p) rows a subgroup of the decoding SSD step takes (ssdStepSubgroupSpec; where it divides P):
   * 2 took mamba2-130m's batch-64 step from 3.50 to 3.17 ms on an H100 (session 15).
   */
  ssdStepRows = 2;
  /** Spare entries (at least) a KV cache is given when a one-token append copies it (tests lower it). */
  kvReserveRows = KV_RESERVE_ROWS;

  constructor(readonly handle: GpuHandle) {
    this.rt = new GpuRuntime(handle.device);
    this.useSubgroups = handle.features.includes("subgroups");
  }

  /** A backend on the best adapter, or null when there is no WebGPU adapter. */
  static async create(): Promise<WebGpuBackend | null> {
    const handle = await requestDevice();
    return handle ? new WebGpuBackend(handle) : null;
  }

  get description(): string {
    const a = this.handle.adapterInfo;
    return [a.vendor, a.architecture, a.description].filter((s) => s).join(" ") || "unknown adapter";
  }

  /**
   * GPU-clock op timing for OpProfiler (hippo bench) when the adapter offers `timestamp-query`; null
   * otherwise (the profiler then falls back to the host clock and says so).
   */
  opTimer(): OpTimer | null {
    return this.handle.features.includes("timestamp-query") ? new GpuOpTimer(this.rt) : null;
  }

  /** Submits recorded work (ops do not need this; benchmarks and interactive use may). */
  flush(): void {
    this.rt.flush();
  }

  /** Waits until the GPU has finished everything recorded so far. */
  sync(): Promise<void> {
    return this.rt.sync();
  }

  destroy(): void {
    this.rt.destroy();
  }

  beginStepCapture(): void {
    this.rt.beginCapture();
  }

  endStepCapture(outputs: readonly Tensor[]): CapturedStep | null {
    // Deferred ops that write an output run inside the capture.
    for (const t of outputs) this.buf(t);
    const commands = this.rt.endCapture();
    return commands ? new GpuCapturedStep(this.rt, commands) : null;
  }

  // ---------------------------------------------------------------------------------------------------
  // Plumbing.

  private kernel(key: string, spec: () => KernelSpec): Kernel {
    return this.rt.kernel(spec, key);
  }

  private run(k: Kernel, params: Params, buffers: readonly (GPUBuffer | null)[], groups: readonly number[]): void {
    const names = k.spec.params;
    const values: number[] = new Array(names.length);
    for (let i = 0; i < names.length; i++) {
      const v = params[names[i][0]];
      if (v === undefined) throw new Error(`${k.spec.key}: parameter '${names[i][0]}' missing`);
      values[i] = typeof v === "boolean" ? (v ? 1 : 0) : v;
    }
    this.rt.dispatch(k, values, buffers, groups);
  }

  private make(shape: readonly number[], dtype: DType = "f32"): Tensor {
    const n = shape.reduce((a, b) => a * b, 1);
    const bytes = bytesFor(n, dtype);
    const storage: GpuStorage = { buffer: this.rt.alloc(Math.max(bytes, 4)), bytes, shared: { refs: 1 }, host: null };
    return new Tensor(this, [...shape], dtype, storage);
  }

  private buf(t: Tensor): GPUBuffer {
    if (t.backend !== this) throw new HippoError(`tensor on backend '${t.backend.name}' used with the webgpu backend`);
    return storageOf(t).buffer;
  }

  private opt(t: Tensor | null, temps: Tensor[]): GPUBuffer | null {
    return t ? this.f32(t, temps) : null;
  }

  /** The tensor's buffer as dense f32 values (f16/bf16 widened, views gathered into a temporary the caller releases). */
  private f32(t: Tensor, temps: Tensor[]): GPUBuffer {
    if (t.dtype === "f32" && !storageOf(t).view) return this.buf(t);
    if (t.dtype === "f32") {
      const dense = this.materialize(t);
      temps.push(dense);
      return this.buf(dense);
    }
    check(t.dtype !== "i32", `expected a float tensor, got i32 ${shapeString(t.shape)}`);
    const wide = this.toFloat32(t);
    temps.push(wide);
    return this.buf(wide);
  }

  /**
   * An f32 input as (buffer, off, stride) with rows of `width` elements, for kernels that read column slices in
   * place; a view with other rows (or a non-f32 tensor) is made dense first.
   */
  private strided(t: Tensor, width: number, temps: Tensor[]): { buf: GPUBuffer; off: number; stride: number } {
    const v = t.dtype === "f32" ? storageOf(t).view : undefined;
    if (v && v.width === width) return { buf: this.buf(t), off: v.off, stride: v.stride };
    return { buf: this.f32(t, temps), off: 0, stride: width };
  }

  private materialize(t: Tensor): Tensor {
    const v = storageOf(t).view!;
    const out = this.make(t.shape);
    const n = t.size;
    if (n > 0) this.run(this.kernel("gather-view", gatherViewSpec), { n, off: v.off, stride: v.stride, width: v.width }, [this.buf(t), this.buf(out)], grid(n));
    return out;
  }

  private done(temps: Tensor[]): void {
    for (const t of temps) t.dispose();
  }

  private hostInts(t: Tensor): Int32Array | null {
    return storageOf(t).host;
  }

  // ---------------------------------------------------------------------------------------------------
  // Memory.

  upload(data: HostData, shape: readonly number[], dtype: DType): Tensor {
    if (dtype === "q8") {
      throw new HippoError(`webgpu backend: q8 (8-bit) weights ${shapeString(shape)} are not supported yet; ` +
        "run quantized models with --backend cpu (or load them without --quantize)");
    }
    const expected = dtype === "f32" ? Float32Array : dtype === "i32" ? Int32Array : Uint16Array;
    check(data instanceof expected, `upload: ${dtype} tensor needs a ${expected.name}, got ${data.constructor.name}`);
    const t = this.make(shape, dtype);
    check(t.size === data.length, `upload: shape ${shapeString(shape)} needs ${t.size} values, got ${data.length}`);
    this.rt.write(storageOf(t).buffer, data);
    if (dtype === "i32" && data.length <= HOST_SHADOW_LIMIT) storageOf(t).host = (data as Int32Array).slice();
    return t;
  }

  zeros(shape: readonly number[], dtype: DType = "f32"): Tensor {
    const t = this.make(shape, dtype);
    const s = storageOf(t);
    const words = s.bytes / 4;
    if (words > 0) this.run(this.kernel("fill", fillSpec), { n: words, value: 0 }, [s.buffer], grid(words));
    if (dtype === "i32" && t.size <= HOST_SHADOW_LIMIT) s.host = new Int32Array(t.size);
    return t;
  }

  async read(t: Tensor): Promise<Float32Array | Int32Array> {
    if (storageOf(t).view) {
      const dense = this.materialize(t);
      try {
        return await this.read(dense);
      } finally {
        dense.dispose();
      }
    }
    const s = storageOf(t);
    const bytes = await this.rt.readBytes(s.buffer, s.bytes);
    if (t.dtype === "f32") return new Float32Array(bytes);
    if (t.dtype === "i32") return new Int32Array(bytes);
    const out = new Float32Array(t.size);
    (t.dtype === "f16" ? widenF16 : widenBf16)(new Uint16Array(bytes, 0, t.size), 0, out, 0, t.size);
    return out;
  }

  release(t: Tensor): void {
    const s = t.storage as GpuStorage;
    if (s.shared.refs === 1) s.shared.pending?.lastRelease(s.shared);
    if (--s.shared.refs === 0) this.rt.releaseBuffer(s.buffer);
  }

  // ---------------------------------------------------------------------------------------------------
  // Dense ops.

  embedding(table: Tensor, ids: Tensor): Tensor {
    const [V, D] = table.shape;
    const host = this.hostInts(ids);
    if (host) {
      for (const id of host) check(id >= 0 && id < V, `token id ${id} is outside the vocabulary [0, ${V})`);
    }
    const out = this.make([...ids.shape, D]);
    const dtype = table.dtype as WeightDType;
    const n = out.size;
    this.run(this.kernel(`embedding-${dtype}`, () => embeddingSpec(dtype)), { n, dim: D, vocab: V },
      [this.buf(table), this.buf(ids), this.buf(out)], grid(n));
    return out;
  }

  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor {
    return this.product(x, weight, bias, null)!;
  }

  /**
   * The activation inside the product's kernel (subgroup matvec, tiled store, split-K sum); declined for
   * the workgroup-memory matvec, prefill's 128×128 tiles (see fuseActIntoLargeTiles) and an input with a
   * pending add-norm.
   */
  linearActivation(x: Tensor, weight: Tensor, bias: Tensor | null, op: UnaryOp): Tensor | null {
    return this.product(x, weight, bias, op);
  }

  /** Which kernel an M-row product with N output columns takes. */
  private productKernel(M: number, N: number): "tiled" | "subgroup-matvec" | "matvec" {
    const tiled = M > MATVEC_SG_ROWS || (M >= this.tiledWideMinRows && N >= TILED_MIN_COLUMNS) ||
      (M >= this.tiledMinRows && N >= TILED_BATCHED_MIN_COLUMNS);
    if (tiled) return "tiled";
    const columnBlocks = Math.ceil(N / matvecColumnsPerWorkgroup());
    if (this.useSubgroups && M <= MATVEC_SG_ROWS && columnBlocks <= 65535) return "subgroup-matvec";
    return M <= MATVEC_ROWS ? "matvec" : "tiled";
  }

  /**
   * Whether a norm feeding an M-row product is done inside the tiled kernel (matmulSpec's prologue):
   * batched decoding's rows only (in prefill the norm's pass is small beside its products), and not for
   * the LM head's 16K+ columns: every column tile computes the norm's input again, and there are hundreds.
   */
  private tiledNormFuses(M: number, N: number): boolean {
    return this.fuseNormIntoTiled && M > 1 && M <= MATVEC_SG_ROWS && N < TILED_MIN_COLUMNS && this.productKernel(M, N) === "tiled";
  }

  /** linear, then `act` when given; null (nothing run) where a kernel with `act` inside does not apply. */
  private product(x: Tensor, weight: Tensor, bias: Tensor | null, act: UnaryOp | null): Tensor | null {
    const [N, K] = weight.shape;
    const M = x.shape.slice(0, -1).reduce((a, b) => a * b, 1);
    const shared = rawStorageOf(x).shared;
    const pending = shared.pending?.input === shared;
    const dtype = weight.dtype as WeightDType;
    const columnBlocks = Math.ceil(N / matvecColumnsPerWorkgroup());
    const kernel = this.productKernel(M, N);
    const subgroupMatvec = kernel === "subgroup-matvec";
    const plainMatvec = kernel === "matvec";
    const largeTiles = kernel === "tiled" && isLargeTile(tileFor(M, N, this.skinnyTiles));
    if (act && (pending || plainMatvec || (largeTiles && !this.fuseActIntoLargeTiles) || M === 0 || N === 0)) return null;
    const out = this.make([...x.shape.slice(0, -1), N]);
    if (M === 0 || N === 0) return out;
    if (pending && shared.pending!.fuseLinear(M, weight, bias, out)) return out;
    const temps: Tensor[] = [];
    const { buf: xb, off: x_off, stride: x_stride } = this.strided(x, K, temps);
    const bb = this.opt(bias, temps);
    const vec4 = K % 4 === 0 && x_off % 4 === 0 && x_stride % 4 === 0;
    const tail = act ? `-${act}` : "";
    if (subgroupMatvec) {
      const rows = Math.min(M, MATVEC_ROWS);
      const k = this.kernel(`matvec-sg-${dtype}-${rows}-${vec4}${tail}`, () => matvecSubgroupSpec(dtype, rows, vec4, "none", act));
      this.run(k, { N, K, has_bias: bb !== null, x_off, x_stride, M }, [xb, this.buf(weight), bb, this.buf(out)], [columnBlocks, Math.ceil(M / rows)]);
    } else if (plainMatvec) {
      const k = this.kernel(`matvec-${dtype}-${M}-${vec4}`, () => matvecSpec(dtype, M, vec4));
      this.run(k, { N, K, has_bias: bb !== null, x_off, x_stride }, [xb, this.buf(weight), bb, this.buf(out)], grid(N, matvecColumnsPerWorkgroup()));
    } else {
      this.tiledLinear(dtype, M, N, K, { has_bias: bb !== null, x_off, x_stride }, xb, this.buf(weight), bb, out, act);
    }
    this.done(temps);
    return out;
  }

  /**
   * The tiled matmul into `out`, its K split across workgroups where the output alone has too few tiles;
   * `act` applied where the sums end (the tile's store, or the sum of the split partials). With `norm`,
   * x is the un-normed input of a norm done inside the kernel (matmulSpec's prologue): its parameters,
   * the buffers bound after x and after out.
   */
  private tiledLinear(
    dtype: WeightDType, M: number, N: number, K: number, params: { has_bias: boolean; x_off: number; x_stride: number },
    xb: GPUBuffer, wb: GPUBuffer, bb: GPUBuffer | null, out: Tensor, act: UnaryOp | null = null, norm?: TiledNorm,
  ): void {
    const shape = tileFor(M, N, this.skinnyTiles);
    const tiles = tileGrid(shape, M, N);
    const { splits, kChunk } = this.splitK ? splitKFor(M, N, K, shape) : { splits: 1, kChunk: K };
    const prologue = norm?.prologue ?? "none";
    const before = norm?.before ?? [], after = norm?.after ?? [];
    const kernelOf = (o: MatmulOptions) => this.kernel(matmulKey(dtype, shape, o), () => matmulSpec(dtype, shape, o));
    if (splits === 1) {
      const k = kernelOf({ act, prologue });
      this.run(k, { M, N, K, ...params, ...norm?.params }, [xb, ...before, wb, bb, this.buf(out), ...after], tiles);
      return;
    }
    const part = this.make([splits, M, N]);
    const ss = norm ? this.make([splits, M]) : null;
    const k = kernelOf({ splitK: true, prologue });
    this.run(k, { M, N, K, ...params, k_chunk: kChunk, ...norm?.params }, [xb, ...before, wb, null, this.buf(part), ...after, ...(ss ? [this.buf(ss)] : [])], [...tiles, splits]);
    this.run(this.kernel(splitKSumKey(act, norm !== undefined), () => splitKSumSpec(act, norm !== undefined)),
      { n: M * N, N, splits, has_bias: params.has_bias, ...(norm ? { K, eps: norm.params.eps } : {}) },
      [this.buf(part), bb, ...(ss ? [this.buf(ss)] : []), this.buf(out)], grid(M * N));
    part.dispose();
    ss?.dispose();
  }

  addNorm(a: Tensor, b: Tensor, norm: NormSpec): { sum: Tensor; normed: Tensor } {
    const D = norm.weight.size;
    const rows = a.size / Math.max(1, D);
    const sum = this.make(a.shape);
    const normed = this.make(a.shape);
    // Decoding: an RMSNorm is left pending for the linear layer that reads `normed` (one dispatch and a
    // pass per layer fewer): one sequence's in the subgroup matvec, a batch's in the tiled product (see
    // deferAddNorm). Not a LayerNorm, nor a few rows into the matvec: there the fused matvec costs more
    // than the dispatch it saves (H100: 64 µs against 39 + ~15 for in_proj at 8 rows; see MatvecPrologue).
    const oneRow = this.useSubgroups && rows === 1 && D % 4 === 0;
    const deferrable = (oneRow || (this.fuseNormIntoTiled && rows > 1 && rows <= MATVEC_SG_ROWS)) && norm.kind === "rms" &&
      [a, b, norm.weight].every((t) => t.dtype === "f32" && !rawStorageOf(t).view);
    if (deferrable) {
      this.deferAddNorm(a, b, norm.weight, norm.eps, sum, normed);
      return { sum, normed };
    }
    const temps: Tensor[] = [];
    if (rows > 0) {
      const bias = norm.kind === "layer" ? this.opt(norm.bias, temps) : null;
      this.addNormKernel(rows, D, norm.eps, norm.kind === "layer",
        [this.f32(a, temps), this.f32(b, temps), this.f32(norm.weight, temps), bias, this.buf(sum), this.buf(normed)]);
    }
    this.done(temps);
    return { sum, normed };
  }

  /** The add-norm kernel over [a, b, weight, bias | null, sum out, normed out]. */
  private addNormKernel(rows: number, D: number, eps: number, layer: boolean, buffers: (GPUBuffer | null)[]): void {
    this.run(this.kernel("add-norm", () => rowNormSpec(true)), { rows, D, eps, layer, has_bias: buffers[3] !== null }, buffers, grid(rows, 1));
  }

  /**
   * Aliases of `tensors`, kept alive by a pending op writing `outputs`: `detach` marks the outputs settled
   * (false if they were), after which the op may dispatch into them; `free` then drops the aliases.
   */
  private hold(tensors: readonly Tensor[], outputs: readonly GpuShared[]): { aliases: Tensor[]; detach: () => boolean; free: () => void } {
    // Out of every scope: a tidy ending before the op settles must not free what it still reads.
    const aliases = tensors.map((t) => untrack(this.reshape(t, t.shape)));
    let detached = false;
    return {
      aliases,
      detach: () => {
        if (detached) return false;
        detached = true;
        for (const o of outputs) delete o.pending;
        return true;
      },
      free: () => {
        for (const t of aliases) if (!t.isDisposed) t.dispose();
      },
    };
  }

  /** The subgroup matvec with a prologue (matvecSubgroupSpec) over M rows, or false where it does not apply. */
  private prologueMatvec(
    prologue: MatvecPrologue, M: number, weight: Tensor, bias: Tensor | null, out: Tensor, params: Params,
    before: (GPUBuffer | null)[], after: (GPUBuffer | null)[],
  ): boolean {
    const [N] = weight.shape;
    const columnBlocks = Math.ceil(N / matvecColumnsPerWorkgroup());
    if (M > MATVEC_SG_ROWS || columnBlocks > 65535) return false;
    const rows = Math.min(M, MATVEC_ROWS);
    const dtype = weight.dtype as WeightDType;
    const k = this.kernel(`matvec-sg-${dtype}-${rows}-v4-${prologue}`, () => matvecSubgroupSpec(dtype, rows, true, prologue));
    const temps: Tensor[] = [];
    const bb = this.opt(bias, temps);
    this.run(k, { ...params, N, K: weight.shape[1], has_bias: bb !== null, M }, [...before, this.buf(weight), bb, this.buf(out), ...after],
      [columnBlocks, Math.ceil(M / rows)]);
    this.done(temps);
    return true;
  }

  /** The tiled product of `weight` over x with a norm prologue (tiledLinear with `norm`); true once run. */
  private normedTiled(weight: Tensor, bias: Tensor | null, out: Tensor, M: number, x: { buf: GPUBuffer; off: number; stride: number }, norm: TiledNorm): true {
    const [N, K] = weight.shape;
    const temps: Tensor[] = [];
    const bb = this.opt(bias, temps);
    this.tiledLinear(weight.dtype as WeightDType, M, N, K, { has_bias: bb !== null, x_off: x.off, x_stride: x.stride }, x.buf, this.buf(weight), bb, out, null, norm);
    this.done(temps);
    return true;
  }

  /**
   * An RMSNorm's addNorm left pending (dense f32 inputs): the linear layer reading `normed` computes it as
   * it reads, in the subgroup matvec for one row (D % 4 = 0) or the tiled kernel for a batch taking it
   * (tiledNormFuses); anything else reading either output first runs the add-norm kernel.
   */
  private deferAddNorm(a: Tensor, b: Tensor, weight: Tensor, eps: number, sum: Tensor, normed: Tensor): void {
    const D = weight.size;
    const rows = a.size / D;
    const sumShared = rawStorageOf(sum).shared, normedShared = rawStorageOf(normed).shared;
    const { aliases: [ha, hb, hw, hsum], detach, free } = this.hold([a, b, weight, sum], [sumShared, normedShared]);
    let sumWritten = false;
    const pending: PendingOp = {
      input: normedShared,
      fuseLinear: (M, w, bias, out) => {
        const inputs = [this.buf(ha), this.buf(hb), this.buf(hw)];
        const sumBuffer = rawStorageOf(hsum).buffer;
        const ok = this.tiledNormFuses(M, w.shape[0])
          ? this.normedTiled(w, bias, out, M, { buf: inputs[0], off: 0, stride: D },
            { prologue: "add-rms-norm", params: { eps }, before: inputs.slice(1), after: [sumBuffer] })
          : M === 1 && this.prologueMatvec("add-rms-norm", M, w, bias, out, { x_off: 0, x_stride: D, eps }, inputs, [sumBuffer]);
        if (ok && !sumWritten) {
          sumWritten = true;
          delete sumShared.pending;
        }
        return ok;
      },
      run: () => {
        if (!detach()) return;
        this.addNormKernel(rows, D, eps, false,
          [this.buf(ha), this.buf(hb), this.buf(hw), null, rawStorageOf(hsum).buffer, rawStorageOf(normed).buffer]);
        free();
      },
      lastRelease: (shared) => {
        // Nothing reads the normed values any more: only a sum not yet written needs the kernel.
        if (shared !== normedShared) return;
        if (!sumWritten) pending.run();
        else if (detach()) free();
      },
    };
    sumShared.pending = pending;
    normedShared.pending = pending;
  }

  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor {
    const D = weight.size;
    const rows = x.size / Math.max(1, D);
    const out = this.make(x.shape);
    const temps: Tensor[] = [];
    if (rows > 0) {
      this.run(this.kernel("row-norm", () => rowNormSpec(false)), { rows, D, eps, layer: false, has_bias: false },
        [this.f32(x, temps), this.f32(weight, temps), null, this.buf(out)], grid(rows, 1));
    }
    this.done(temps);
    return out;
  }

  layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor {
    const D = weight.size;
    const rows = x.size / Math.max(1, D);
    const out = this.make(x.shape);
    const temps: Tensor[] = [];
    const bb = this.opt(bias, temps);
    if (rows > 0) {
      this.run(this.kernel("row-norm", () => rowNormSpec(false)), { rows, D, eps, layer: true, has_bias: bb !== null },
        [this.f32(x, temps), this.f32(weight, temps), bb, this.buf(out)], grid(rows, 1));
    }
    this.done(temps);
    return out;
  }

  gatedRmsNorm(y: Tensor, z: Tensor, weight: Tensor, groupSize: number, eps: number): Tensor {
    const rows = y.size / groupSize;
    const out = this.make(y.shape);
    const temps: Tensor[] = [];
    const E = z.shape[z.rank - 1];
    const zv = z.dtype === "f32" ? storageOf(z).view : undefined;
    const zb = zv ? this.buf(z) : this.f32(z, temps);
    const { off: z_off, stride: z_stride, width: z_width } = zv ?? { off: 0, stride: E, width: E };
    if (rows > 0) {
      this.run(this.kernel("gated-rms-norm", gatedRmsNormSpec), { rows, group: groupSize, wlen: weight.size, eps, z_off, z_stride, z_width },
        [this.f32(y, temps), zb, this.f32(weight, temps), this.buf(out)], grid(rows, 1));
    }
    this.done(temps);
    return out;
  }

  /**
   * One norm group: a batch whose product is tiled computes the norm in the tiled kernel (tiledNormFuses);
   * one sequence (subgroups, 16-byte aligned rows) in the subgroup matvec as it reads its input. Otherwise
   * the two ops: the matvec over several rows lost (H100, mamba2-130m at 64 rows: 10.8K tok/s unfused
   * against 5.9K fused, each column recomputing silu of every input; even at 8 rows).
   */
  gatedNormLinear(y: Tensor, z: Tensor, normWeight: Tensor, groupSize: number, eps: number, weight: Tensor, bias: Tensor | null): Tensor {
    const K = weight.shape[1];
    const M = y.size / Math.max(1, K);
    const tiled = groupSize === K && this.tiledNormFuses(M, weight.shape[0]);
    if (tiled || (this.useSubgroups && groupSize === K && M === 1 && K % 4 === 0)) {
      const temps: Tensor[] = [];
      const ys = this.strided(y, K, temps), zs = this.strided(z, K, temps);
      const gb = this.f32(normWeight, temps);
      const out = this.make([...y.shape.slice(0, -1), weight.shape[0]]);
      const params = { z_off: zs.off, z_stride: zs.stride, eps };
      const aligned = [ys.off, ys.stride, zs.off, zs.stride].every((v) => v % 4 === 0);
      const fused = tiled
        ? this.normedTiled(weight, bias, out, M, ys, { prologue: "gated-norm", params, before: [zs.buf, gb], after: [] })
        : aligned && this.prologueMatvec("gated-norm", M, weight, bias, out, { x_off: ys.off, x_stride: ys.stride, ...params }, [ys.buf, zs.buf, gb], []);
      this.done(temps);
      if (fused) return out;
      out.dispose();
    }
    return this.linear(this.gatedRmsNorm(y, z, normWeight, groupSize, eps), weight, bias);
  }

  unary(op: UnaryOp, x: Tensor): Tensor {
    const out = this.make(x.shape);
    const temps: Tensor[] = [];
    const n = x.size;
    if (n > 0) this.run(this.kernel(`unary-${op}`, () => unarySpec(op)), { n }, [this.f32(x, temps), this.buf(out)], grid(n));
    this.done(temps);
    return out;
  }

  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor {
    const out = this.make(a.shape);
    const temps: Tensor[] = [];
    const n = a.size;
    if (n > 0) {
      this.run(this.kernel(`binary-${op}`, () => binarySpec(op)), { n, nb: b.size }, [this.f32(a, temps), this.f32(b, temps), this.buf(out)], grid(n));
    }
    this.done(temps);
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Shapes and copies.

  private copyWords(src: GPUBuffer, srcOff: number, dst: GPUBuffer, dstOff: number, n: number): void {
    if (n > 0) this.run(this.kernel("copy", copySpec), { n, src_off: srcOff, dst_off: dstOff }, [src, dst], grid(n));
  }

  /** Column slices of f32 data are zero-copy views of the source buffer; kernels read them in place. */
  sliceLast(x: Tensor, start: number, length: number): Tensor {
    const W = x.shape[x.rank - 1];
    const sv = x.dtype === "f32" ? storageOf(x).view : undefined;
    if (x.dtype === "f32" && (!sv || sv.width === W) && x.size > 0 && length > 0) {
      const s = storageOf(x);
      s.shared.refs++;
      const view: GpuView = { off: (sv?.off ?? 0) + start, stride: sv?.stride ?? W, width: length };
      return new Tensor(this, [...x.shape.slice(0, -1), length], "f32", { ...s, view } satisfies GpuStorage);
    }
    const rows = W === 0 ? 0 : x.size / W;
    const out = this.make([...x.shape.slice(0, -1), length]);
    const temps: Tensor[] = [];
    const n = rows * length;
    if (n > 0) {
      this.run(this.kernel("slice-last", sliceLastSpec), { n, width: W, start, len: length }, [this.f32(x, temps), this.buf(out)], grid(n));
    }
    this.done(temps);
    return out;
  }

  selectPositions(x: Tensor, positions: Tensor): Tensor {
    const [B, L] = x.shape;
    const inner = B * L === 0 ? 0 : x.size / (B * L);
    const host = this.hostInts(positions);
    if (host) for (const p of host) check(p >= 0 && p < L, `selectPositions: position ${p} outside [0, ${L})`);
    const out = this.make([B, ...x.shape.slice(2)]);
    const temps: Tensor[] = [];
    const n = B * inner;
    if (n > 0) {
      this.run(this.kernel("select-positions", selectPositionsSpec), { n, len: L, inner },
        [this.f32(x, temps), this.buf(positions), this.buf(out)], grid(n));
    }
    this.done(temps);
    return out;
  }

  concat0(parts: readonly Tensor[]): Tensor {
    const rows = parts.reduce((n, p) => n + p.shape[0], 0);
    const out = this.make([rows, ...parts[0].shape.slice(1)]);
    const temps: Tensor[] = [];
    let offset = 0;
    for (const p of parts) {
      this.copyWords(this.f32(p, temps), 0, this.buf(out), offset, p.size);
      offset += p.size;
    }
    this.done(temps);
    return out;
  }

  slice0(x: Tensor, start: number, length: number): Tensor {
    const inner = x.shape[0] === 0 ? 0 : x.size / x.shape[0];
    const out = this.make([length, ...x.shape.slice(1)]);
    const temps: Tensor[] = [];
    this.copyWords(this.f32(x, temps), start * inner, this.buf(out), 0, length * inner);
    this.done(temps);
    return out;
  }

  reshape(x: Tensor, shape: readonly number[]): Tensor {
    const s = rawStorageOf(x); // a pending add-norm stays pending for the reshaped tensor too
    s.shared.refs++;
    return new Tensor(this, [...shape], x.dtype, { ...s } satisfies GpuStorage);
  }

  toFloat32(x: Tensor): Tensor {
    const out = this.make(x.shape);
    const n = x.size;
    if (n === 0) return out;
    if (x.dtype === "f32") {
      const temps: Tensor[] = [];
      this.copyWords(this.f32(x, temps), 0, this.buf(out), 0, n);
      this.done(temps);
    }
    else {
      const dtype = x.dtype === "i32" ? "i32" : (x.dtype as WeightDType);
      this.run(this.kernel(`widen-${dtype}`, () => widenSpec(dtype)), { n }, [this.buf(x), this.buf(out)], grid(n));
    }
    return out;
  }

  resizeAxis1(x: Tensor, length: number): Tensor {
    const [B, T] = x.shape;
    const inner = x.shape.slice(2).reduce((a, b) => a * b, 1);
    const out = this.make([B, length, ...x.shape.slice(2)]);
    const temps: Tensor[] = [];
    const n = out.size;
    if (n > 0) {
      this.run(this.kernel("resize-axis1", resizeAxis1Spec), { n, t_in: T, t_out: length, inner }, [this.f32(x, temps), this.buf(out)], grid(n));
    }
    this.done(temps);
    return out;
  }

  /**
   * The KV-cache append, made for decoding: the result may be longer on axis 1 than max(offset) + L (the
   * entries past a row's offset + L are zeros or stale). A one-token append that has to copy the cache
   * gives it spare entries (kvReserveRows, or half its length if more); later appends write into them in
   * place and return a tensor of the same buffer and shape — a step costs its own entries instead of a
   * copy of the cache, and decoding steps keep one shape (so a captured step can be replayed, see
   * toGraph). In place only where no tensor of that buffer may rely on the entries written (kvFill: a
   * step redone from an older state copies).
   */
  writeAxis1(cache: Tensor, fresh: Tensor, offsets: Tensor): Tensor {
    const [B, T] = cache.shape;
    const L = fresh.shape[1];
    const inner = fresh.shape.slice(2).reduce((a, b) => a * b, 1);
    const off = this.hostInts(offsets);
    if (!off) throw new HippoError("writeAxis1: the webgpu backend needs offsets uploaded from the host (their values set the output length)");
    let need = 0;
    for (let b = 0; b < B; b++) {
      check(off[b] >= 0 && off[b] <= T, `writeAxis1: offset ${off[b]} outside [0, ${T}]`);
      need = Math.max(need, off[b] + L);
    }
    const temps: Tensor[] = [];
    const s = storageOf(cache);
    const fill = s.shared.kvFill;
    if (cache.dtype === "f32" && !s.view && need <= T && fill && fill.length === B && fill.every((f, b) => f <= off[b])) {
      const n = B * L * inner;
      if (n > 0) {
        this.run(this.kernel("append-axis1", appendAxis1Spec), { n, t_cache: T, l_fresh: L, inner },
          [this.f32(fresh, temps), this.buf(offsets), s.buffer], grid(n));
      }
      for (let b = 0; b < B; b++) fill[b] = off[b] + L;
      this.done(temps);
      s.shared.refs++;
      return new Tensor(this, [...cache.shape], "f32", { ...s } satisfies GpuStorage);
    }
    // Room for kvReserveRows more tokens, or half as many as it holds: a long generation copies O(log n) times.
    const length = L === 1 ? need + Math.max(this.kvReserveRows, need >> 1) : need;
    const out = this.make([B, length, ...cache.shape.slice(2)]);
    const n = out.size;
    if (n > 0) {
      this.run(this.kernel("write-axis1", writeAxis1Spec), { n, t_cache: T, l_fresh: L, t_out: length, inner },
        [this.f32(cache, temps), this.f32(fresh, temps), this.buf(offsets), this.buf(out)], grid(n));
    }
    storageOf(out).shared.kvFill = Int32Array.from(off, (o) => o + L);
    this.done(temps);
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // Sequence ops.

  causalConv1d(a: CausalConv1dArgs): { y: Tensor; state: Tensor } {
    const [B, L, C] = a.x.shape;
    const K = a.weight.shape[1];
    const y = this.make(a.x.shape);
    const state = this.make([B, K - 1, C]);
    const temps: Tensor[] = [];
    const n = B * L * C + B * (K - 1) * C;
    const bias = this.opt(a.bias, temps);
    const st = this.opt(a.state, temps);
    const x = this.strided(a.x, C, temps);
    if (n > 0) this.convKernel(a, x, [x.buf, this.f32(a.weight, temps), bias, st, this.buf(y), this.buf(state)]);
    this.done(temps);
    return { y, state };
  }

  /** The causal-conv1d kernel over [x (at x.off, rows x.stride apart), weight, bias | null, state | null, y out, state out]. */
  private convKernel(a: CausalConv1dArgs, x: { off: number; stride: number }, buffers: (GPUBuffer | null)[]): void {
    const [B, L, C] = a.x.shape;
    const K = a.weight.shape[1];
    this.run(this.kernel("causal-conv1d", causalConv1dSpec),
      { B, L, C, K, has_bias: buffers[2] !== null, has_state: buffers[3] !== null, silu: a.activation === "silu", x_off: x.off, x_stride: x.stride },
      buffers, grid(B * L * C + B * (K - 1) * C));
  }

  /** [first (E) | second (E)] packed into one buffer, cached while the tensors live (D and Δ bias of a layer). */
  private packPair(first: Tensor | null, second: Tensor | null, E: number): GPUBuffer | null {
    const key = first ?? second;
    if (!key) return null;
    const other = first ? second : null;
    const hit = this.packed.get(key);
    if (hit && hit.other === other && !key.isDisposed && !other?.isDisposed) return hit.buffer;
    const buffer = this.rt.alloc(8 * E);
    this.run(this.kernel("fill", fillSpec), { n: 2 * E, value: 0 }, [buffer], grid(2 * E));
    const temps: Tensor[] = [];
    if (first) this.copyWords(this.f32(first, temps), 0, buffer, 0, E);
    if (second) this.copyWords(this.f32(second, temps), 0, buffer, E, E);
    this.done(temps);
    if (hit) this.rt.releaseBuffer(hit.buffer);
    this.packed.set(key, { other, buffer });
    return buffer;
  }

  readonly fusesDeltaProjection = true;

  /**
   * A decoding step with dt_proj fused (scan-step-proj) when delta, B and C are column ranges of one f32
   * buffer, as x_proj's split output is; otherwise dt_proj as a product, then the plain step.
   */
  private scanStepProjected(a: SelectiveScanArgs, W: Tensor): { y: Tensor; state: Tensor } {
    const [B, , E] = a.u.shape;
    const [N, R] = [a.A.shape[1], W.shape[1]];
    const temps: Tensor[] = [];
    const d = this.strided(a.delta, R, temps), b = this.strided(a.B, N, temps), c = this.strided(a.C, N, temps);
    if (d.buf !== b.buf || d.buf !== c.buf) {
      this.done(temps);
      const delta = this.linear(a.delta, W, null);
      try {
        return this.scan({ ...a, delta, deltaProj: null }, 1);
      } finally {
        delta.dispose();
      }
    }
    const y = this.make(a.u.shape);
    const state = this.make([B, E, N]);
    const u = this.strided(a.u, E, temps), z = a.z ? this.strided(a.z, E, temps) : null, st = this.opt(a.state, temps);
    if (B * E > 0) {
      this.run(this.kernel("scan-step-proj", scanStepProjSpec), {
        B, E, N, R, has_dbias: a.deltaBias !== null, softplus: a.deltaSoftplus, has_d: a.D !== null, has_z: z !== null,
        has_state: st !== null, u_off: u.off, u_stride: u.stride, d_off: d.off, d_stride: d.stride, b_off: b.off, b_stride: b.stride,
        c_off: c.off, c_stride: c.stride, z_off: z?.off ?? 0, z_stride: z?.stride ?? E,
      }, [u.buf, d.buf, this.f32(a.A, temps), this.packPair(a.D, a.deltaBias, E), this.f32(W, temps), z?.buf ?? null, st,
        this.buf(y), this.buf(state)], grid(B * E, 16));
    }
    this.done(temps);
    return { y, state };
  }

  private scan(a: SelectiveScanArgs, maxChunk: number): { y: Tensor; state: Tensor } {
    const [B, L, E] = a.u.shape;
    const N = a.A.shape[1];
    const y = this.make(a.u.shape);
    const state = this.make([B, E, N]);
    const temps: Tensor[] = [];
    const u = this.strided(a.u, E, temps), delta = this.strided(a.delta, E, temps), A = this.f32(a.A, temps);
    const Bm = this.strided(a.B, N, temps), Cm = this.strided(a.C, N, temps), st = this.opt(a.state, temps);
    const z = a.z ? this.strided(a.z, E, temps) : null;
    const de = this.packPair(a.D, a.deltaBias, E);
    const chunk = Math.max(1, Math.min(maxChunk, L));
    const nChunks = Math.max(1, Math.ceil(L / chunk));
    const base = {
      B, L, E, chunk, n_chunks: nChunks, has_dbias: a.deltaBias !== null, softplus: a.deltaSoftplus,
      u_off: u.off, u_stride: u.stride, d_off: delta.off, d_stride: delta.stride, b_off: Bm.off, b_stride: Bm.stride,
      c_off: Cm.off, c_stride: Cm.stride, z_off: z?.off ?? 0, z_stride: z?.stride ?? E,
    };
    if (B * E === 0) {
      this.done(temps);
      return { y, state };
    }
    let hIn = st;
    let carried: GPUBuffer | null = null;
    if (nChunks > 1) {
      const threads = B * nChunks * E;
      carried = this.rt.alloc(threads * N * 4);
      const sums = this.rt.alloc(threads * 4);
      this.run(this.kernel(`scan-local-${N}`, () => scanLocalSpec(N)), base, [u.buf, delta.buf, A, Bm.buf, de, carried, sums], grid(threads, 64));
      this.run(this.kernel("scan-carry", scanCarrySpec), { B, E, N, n_chunks: nChunks, has_state: st !== null },
        [A, sums, st, carried], grid(B * E * N));
      this.rt.releaseBuffer(sums);
      hIn = carried;
    }
    this.run(this.kernel(`scan-output-${N}`, () => scanOutputSpec(N)),
      { ...base, has_h: hIn !== null, has_d: a.D !== null, has_z: z !== null },
      [u.buf, delta.buf, A, Bm.buf, Cm.buf, de, z?.buf ?? null, hIn, this.buf(y), this.buf(state)], grid(B * nChunks * E, 64));
    if (carried) this.rt.releaseBuffer(carried);
    this.done(temps);
    return { y, state };
  }

  selectiveScan(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    return this.scan(a, SCAN_CHUNK);
  }

  selectiveStateUpdate(a: SelectiveScanArgs): { y: Tensor; state: Tensor } {
    return a.deltaProj ? this.scanStepProjected(a, a.deltaProj) : this.scan(a, 1);
  }

  ssdChunked(a: SsdArgs): { y: Tensor; state: Tensor } {
    const [B, L, H, P] = a.x.shape;
    const [, , G, N] = a.B.shape;
    const y = this.make(a.x.shape);
    const state = this.make([B, H, P, N]);
    const temps: Tensor[] = [];
    const x = this.strided(a.x, H * P, temps), dt = this.strided(a.dt, H, temps), A = this.f32(a.A, temps);
    const Bm = this.strided(a.B, G * N, temps), Cm = this.strided(a.C, G * N, temps), D = this.opt(a.D, temps);
    const bias = this.opt(a.dtBias, temps), st = this.opt(a.state, temps);
    const views = { x_off: x.off, x_stride: x.stride, b_off: Bm.off, b_stride: Bm.stride, c_off: Cm.off, c_stride: Cm.stride };
    if (B * H * P === 0 || L === 0) {
      this.done(temps);
      return { y, state };
    }
    const chunk = Math.min(SSD_CHUNK, L);
    const nChunks = Math.ceil(L / chunk);
    const dims = { B, L, H, P, G, N, chunk, n_chunks: nChunks };
    const dtEff = this.rt.alloc(B * L * H * 4);
    const S = this.rt.alloc(B * L * H * 4);
    this.run(this.kernel("ssd-dt", ssdDtSpec), {
      B, L, H, chunk, n_chunks: nChunks, has_bias: bias !== null, softplus: a.dtSoftplus,
      dt_min: a.dtMin, dt_max: Math.min(a.dtMax, 3.4e38), dt_off: dt.off, dt_stride: dt.stride,
    }, [dt.buf, A, bias, dtEff, S], grid(B * nChunks * H, 64));
    const groups = grid(B * nChunks * H, 1);
    const hs = this.rt.alloc(B * nChunks * H * P * N * 4);
    const state1 = P <= 64 ? this.kernel("ssd-chunk-state-tiled", ssdChunkStateTiledSpec) : this.kernel("ssd-chunk-state", ssdChunkStateSpec);
    this.run(state1, { ...dims, ...views }, [x.buf, Bm.buf, dtEff, S, hs], groups);
    this.run(this.kernel("ssd-state-pass", ssdStatePassSpec), { ...dims, has_state: st !== null }, [S, st, hs, this.buf(state)], grid(B * H * P * N));
    const outParams = { ...dims, ...views, has_h: true, has_d: D !== null, d_per_p: a.D !== null && a.D.size !== H };
    if (P <= 64) {
      // C·Bᵀ once per group and chunk (chunks are at most 64 steps here), read by each of the group's heads.
      const cb = this.rt.alloc(B * nChunks * G * 64 * 64 * 4);
      this.run(this.kernel("ssd-chunk-cb", ssdChunkCbSpec), { ...dims, ...views }, [Bm.buf, Cm.buf, cb], grid(B * nChunks * G, 1));
      this.run(this.kernel("ssd-chunk-out-tiled", ssdChunkOutTiledSpec), outParams, [x.buf, cb, Cm.buf, dtEff, S, hs, D, this.buf(y)], groups);
      this.rt.releaseBuffer(cb);
    } else {
      this.run(this.kernel("ssd-chunk-out", ssdChunkOutSpec), outParams, [x.buf, Bm.buf, Cm.buf, dtEff, S, hs, D, this.buf(y)], groups);
    }
    for (const b of [dtEff, S, hs]) this.rt.releaseBuffer(b);
    this.done(temps);
    return { y, state };
  }

  ssdStep(a: SsdArgs): { y: Tensor; state: Tensor } {
    const [B, , H, P] = a.x.shape;
    const [, , G, N] = a.B.shape;
    const y = this.make(a.x.shape);
    const state = this.make([B, H, P, N]);
    const temps: Tensor[] = [];
    const D = this.opt(a.D, temps), bias = this.opt(a.dtBias, temps), st = this.opt(a.state, temps);
    const x = this.strided(a.x, H * P, temps), dt = this.strided(a.dt, H, temps);
    const Bm = this.strided(a.B, G * N, temps), Cm = this.strided(a.C, G * N, temps);
    const n = B * H * P;
    if (n > 0) {
      const sg = this.useSubgroups && N % 4 === 0;
      const rows = sg && P % this.ssdStepRows === 0 ? this.ssdStepRows : 1;
      this.run(sg ? this.kernel(ssdStepSubgroupKey(rows), () => ssdStepSubgroupSpec(rows)) : this.kernel("ssd-step", ssdStepSpec), {
        B, H, P, G, N, has_bias: bias !== null, softplus: a.dtSoftplus, dt_min: a.dtMin, dt_max: Math.min(a.dtMax, 3.4e38),
        has_state: st !== null, has_d: D !== null, d_per_p: a.D !== null && a.D.size !== H, dt_off: dt.off, dt_stride: dt.stride,
        x_off: x.off, x_stride: x.stride, b_off: Bm.off, b_stride: Bm.stride, c_off: Cm.off, c_stride: Cm.stride,
      }, [x.buf, dt.buf, this.f32(a.A, temps), Bm.buf, Cm.buf, D, bias, st, this.buf(y), this.buf(state)], grid(n / rows, 8));
    }
    this.done(temps);
    return { y, state };
  }

  causalAttention(a: AttentionArgs): Tensor {
    const [B, L, Hq, D] = a.q.shape;
    const [, T, Hkv, Dv] = a.v.shape;
    const out = this.make([B, L, Hq, Dv]);
    const temps: Tensor[] = [];
    if (out.size > 0) {
      const buffers = [this.f32(a.q, temps), this.f32(a.k, temps), this.f32(a.v, temps), this.buf(a.queryStart), this.buf(out)];
      if (useDecodeAttention(L, T)) {
        this.run(this.kernel(`attention-decode-${D}-${Dv}`, () => decodeAttentionSpec(D, Dv)), { L, T, Hq, Hkv, scale: a.scale },
          buffers, decodeAttentionGrid(B, L, Hq));
      } else if (useTiledAttention(L, Dv)) {
        this.run(this.kernel(`attention-tiled-${D}-${Dv}`, () => attentionTiledSpec(D, Dv)), { L, T, Hq, Hkv, scale: a.scale }, buffers, attentionGrid(B, L, Hq));
      } else {
        this.run(this.kernel(`attention-${D}-${Dv}`, () => attentionSpec(D, Dv)), { L, T, Hq, Hkv, scale: a.scale }, buffers, attentionGrid(B, L, Hq));
      }
    }
    this.done(temps);
    return out;
  }

  rope(a: RopeArgs): Tensor {
    const [B, L, H, D] = a.x.shape;
    const half = a.rotaryDim / 2;
    const key = `${a.base}/${a.rotaryDim}`;
    let freqs = this.invFreqs.get(key);
    if (!freqs) {
      // As torch computes inv_freq: in f32 from the f64 power.
      const f = new Float32Array(Math.max(1, half));
      for (let i = 0; i < half; i++) f[i] = 1 / Math.pow(a.base, (2 * i) / a.rotaryDim);
      freqs = this.rt.alloc(f.byteLength);
      this.rt.write(freqs, f);
      this.invFreqs.set(key, freqs);
    }
    const out = this.make(a.x.shape);
    const temps: Tensor[] = [];
    const n = a.x.size;
    // Positions / scale as torch rounds them, from the host's copy of the starts (integers are exact in f32).
    const starts = this.hostInts(a.start);
    let positions: Tensor | null = null;
    if (a.positionScale !== 1 && starts) {
      const pos = new Float32Array(B * L);
      for (let b = 0; b < B; b++) for (let t = 0; t < L; t++) pos[b * L + t] = (starts[b] + t) / a.positionScale;
      positions = this.upload(pos, [B * L], "f32");
      temps.push(positions);
    }
    if (n > 0) {
      this.run(this.kernel("rope", ropeSpec), {
        B, L, H, D, half, inv_scale: 1 / a.positionScale, scaled: a.positionScale !== 1, host_pos: positions !== null, interleaved: a.interleaved,
      }, [this.f32(a.x, temps), this.buf(a.start), freqs, positions ? this.buf(positions) : null, this.buf(out)], grid(n));
    }
    this.done(temps);
    return out;
  }

  // ---------------------------------------------------------------------------------------------------
  // H3: long convolutions and the diagonal / shift SSMs.

  fftConv(a: FftConvArgs): Tensor {
    const [B, L, C] = a.u.shape;
    const P = a.headDim;
    const H = C / P;
    const K = a.kernel.shape[1];
    const y = this.make(a.u.shape);
    const temps: Tensor[] = [];
    const v = this.opt(a.v, temps), q = this.opt(a.q, temps), D = this.opt(a.D, temps);
    if (y.size > 0) {
      this.run(this.kernel("direct-conv", directConvSpec), { B, L, H, P, K, has_v: v !== null, has_q: q !== null, has_d: D !== null },
        [this.f32(a.u, temps), v, q, this.f32(a.kernel, temps), D, this.buf(y)], grid(y.size, 64));
    }
    this.done(temps);
    return y;
  }

  /** The discretised SSM [H, N, 8] (dA, dB, C as complex), cached while its parameter tensors are the same objects. */
  private discretize(p: DiagSsmParams): GPUBuffer {
    const hit = this.discretized.get(p.A);
    if (hit && hit.p.logDt === p.logDt && hit.p.B === p.B && hit.p.C === p.C && hit.p.discretization === p.discretization && !p.A.isDisposed) {
      return hit.buffer;
    }
    const [H, N] = p.A.shape;
    const buffer = this.rt.alloc(Math.max(4, H * N * 32));
    const temps: Tensor[] = [];
    if (H * N > 0) {
      this.run(this.kernel("diag-discretize", diagDiscretizeSpec), { H, N, zoh: p.discretization === "zoh" },
        [this.f32(p.logDt, temps), this.f32(p.A, temps), this.f32(p.B, temps), this.f32(p.C, temps), buffer], grid(H * N, 64));
    }
    this.done(temps);
    if (hit) this.rt.releaseBuffer(hit.buffer);
    this.discretized.set(p.A, { p: { ...p }, buffer });
    return buffer;
  }

  diagSsmKernel(p: DiagSsmParams, length: number): Tensor {
    const [H, N] = p.A.shape;
    const out = this.make([H, length]);
    const disc = this.discretize(p);
    if (out.size > 0) this.run(this.kernel("diag-kernel", diagKernelSpec), { H, N, len: length }, [disc, this.buf(out)], grid(out.size));
    return out;
  }

  private diagRun(a: DiagSsmConvArgs, maxChunk: number): { y: Tensor; state: Tensor } {
    const [B, L, C] = a.u.shape;
    const P = a.headDim;
    const H = C / P;
    const N = a.ssm.A.shape[1];
    const y = this.make(a.u.shape);
    const state = this.make([B, H, P, P, N, 2]);
    const temps: Tensor[] = [];
    const disc = this.discretize(a.ssm);
    const u = this.f32(a.u, temps), v = this.opt(a.v, temps), q = this.opt(a.q, temps), D = this.opt(a.D, temps), st = this.opt(a.state, temps);
    if (B * H === 0) {
      this.done(temps);
      return { y, state };
    }
    if (L === 0) {
      if (st) this.copyWords(st, 0, this.buf(state), 0, state.size);
      else this.run(this.kernel("fill", fillSpec), { n: state.size, value: 0 }, [this.buf(state)], grid(state.size));
      this.done(temps);
      return { y, state };
    }
    if (L === 1) {
      this.run(this.kernel("diag-step", diagStepSpec), { H, P, N, has_v: v !== null, has_q: q !== null, has_h: st !== null, has_d: D !== null },
        [u, v, q, disc, st, D, this.buf(y), this.buf(state)], [Math.ceil((H * P) / 8), B]);
      this.done(temps);
      return { y, state };
    }
    const chunk = Math.max(1, Math.min(maxChunk, L));
    const nChunks = Math.ceil(L / chunk);
    const dims = { B, L, H, P, N, chunk, n_chunks: nChunks };
    let hIn = st;
    let carried: GPUBuffer | null = null;
    if (nChunks > 1) {
      const channels = B * H * P * P;
      carried = this.rt.alloc(channels * nChunks * N * 8);
      this.run(this.kernel(`diag-local-${N}`, () => diagLocalSpec(N)), { ...dims, has_v: v !== null }, [u, v, disc, carried], grid(channels * nChunks, 64));
      this.run(this.kernel("diag-carry", diagCarrySpec), { ...dims, has_state: st !== null }, [disc, st, carried], grid(channels * N));
      hIn = carried;
    }
    this.run(this.kernel(`diag-output-${N}`, () => diagOutputSpec(N)),
      { ...dims, has_v: v !== null, has_q: q !== null, has_h: hIn !== null, has_d: D !== null },
      [u, v, q, disc, hIn, D, this.buf(y), this.buf(state)], grid(B * H * P * nChunks, 64));
    if (carried) this.rt.releaseBuffer(carried);
    this.done(temps);
    return { y, state };
  }

  diagSsmConv(a: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
    return this.diagRun(a, DIAG_CHUNK);
  }

  diagSsmStep(a: DiagSsmConvArgs): { y: Tensor; state: Tensor } {
    return this.diagRun(a, 1);
  }

  shiftSsmTaps(B: Tensor, C: Tensor): Tensor {
    const [Ch, N] = B.shape;
    const out = this.make([Ch, N]);
    this.tapsInto(B, C, this.buf(out));
    return out;
  }

  /** Taps derived from (B, C) when the caller passes none, kept while those tensors live. */
  private readonly shiftTaps = new WeakMap<Tensor, { C: Tensor; taps: GPUBuffer }>();

  private tapsOf(B: Tensor, C: Tensor): GPUBuffer {
    const hit = this.shiftTaps.get(B);
    if (hit && hit.C === C && !B.isDisposed && !C.isDisposed) return hit.taps;
    const [Ch, N] = B.shape;
    const taps = this.rt.alloc(Math.max(4, Ch * N * 4));
    this.tapsInto(B, C, taps);
    if (hit) this.rt.releaseBuffer(hit.taps);
    this.shiftTaps.set(B, { C, taps });
    return taps;
  }

  private tapsInto(B: Tensor, C: Tensor, out: GPUBuffer): void {
    const [Ch, N] = B.shape;
    const temps: Tensor[] = [];
    if (Ch * N > 0) this.run(this.kernel("shift-taps", shiftTapsSpec), { C: Ch, N }, [this.f32(B, temps), this.f32(C, temps), out], grid(Ch * N));
    this.done(temps);
  }

  shiftSsm(a: ShiftSsmArgs): { y: Tensor; state: Tensor } {
    const [B, L, Ch] = a.u.shape;
    const N = a.B.shape[1];
    const temps: Tensor[] = [];
    const taps = a.taps ? this.f32(a.taps, temps) : this.tapsOf(a.B, a.C);
    const y = this.make(a.u.shape);
    const state = this.make([B, Ch, N]);
    const D = this.opt(a.D, temps), st = this.opt(a.state, temps);
    // Long sequences: outputs by the tiled kernel, then the state alone (decoding keeps one dispatch).
    const tiled = L >= SHIFT_TILED_MIN_LENGTH && N > 0;
    const n = (tiled ? 0 : B * L * Ch) + B * Ch * N;
    if (tiled && B * Ch > 0) {
      this.run(this.kernel("shift-ssm-tiled", shiftSsmTiledSpec), { L, C: Ch, N, has_d: D !== null, has_state: st !== null },
        [this.f32(a.u, temps), taps, this.f32(a.C, temps), D, st, this.buf(y)], [Math.ceil(Ch / 64), Math.ceil(L / 32), B]);
    }
    if (L === 1 && N > 0 && B * Ch > 0) {
      this.run(this.kernel("shift-ssm-step", shiftSsmStepSpec), { C: Ch, N, has_d: D !== null, has_state: st !== null },
        [this.f32(a.u, temps), taps, this.f32(a.B, temps), this.f32(a.C, temps), D, st, this.buf(y), this.buf(state)], [Math.ceil(Ch / 8), B]);
    } else if (n > 0 && N > 0) {
      this.run(this.kernel("shift-ssm", shiftSsmSpec), { B, L, C: Ch, N, has_d: D !== null, has_state: st !== null, skip_y: tiled },
        [this.f32(a.u, temps), taps, this.f32(a.B, temps), this.f32(a.C, temps), D, st, this.buf(y), this.buf(state)], grid(n));
    }
    this.done(temps);
    return { y, state };
  }

  // ---------------------------------------------------------------------------------------------------
  // Sampling (TokenSampler): decoding reads back token ids, not logits.

  sampleTokens(logits: Tensor, opts: TokenSamplingOptions, uniforms: Float32Array): Tensor {
    check(logits.rank === 2, `sampleTokens: logits must be [batch, vocab], got ${shapeString(logits.shape)}`);
    const [B, V] = logits.shape;
    check(uniforms.length === B, `sampleTokens: ${uniforms.length} uniform numbers for ${B} rows`);
    const ids = this.make([B], "i32");
    const temps: Tensor[] = [];
    const u = this.upload(uniforms, [B], "f32");
    temps.push(u);
    if (B > 0 && V > 0) {
      this.run(this.kernel("sample-tokens", sampleSpec), {
        V, temperature: opts.temperature, top_k: opts.topK, top_p: opts.topP, min_p: opts.minP,
      }, [this.f32(logits, temps), this.buf(u), this.buf(ids)], [B]);
    }
    this.done(temps);
    return ids;
  }
}

/** A captured decode step of the WebGPU backend (see StepCapture). */
class GpuCapturedStep implements CapturedStep {
  constructor(private readonly rt: GpuRuntime, readonly commands: CapturedCommands) {}

  get writeBytes(): number[] {
    return this.commands.writeBytes;
  }

  matches(other: CapturedStep): boolean {
    return other instanceof GpuCapturedStep && this.commands.sameShapeAs(other.commands);
  }

  toGraph(pairs: readonly (readonly [input: Tensor, output: Tensor])[]): StepGraphHandle | null {
    // The reversed graph is the captured one with each input buffer and its output buffer swapped. That
    // computes the same thing the other way as long as the step only reads its inputs (they were live all
    // through it, so no intermediate shared their buffers); buffers an output had before it was written
    // were intermediates, which may as well use the input's buffer. A pair of one buffer is a KV cache the
    // step appended to in place (writeAxis1): both directions write it, at the offsets each replay uploads.
    const swap = new Map<GPUBuffer, GPUBuffer>();
    const inPlace: boolean[] = [];
    const caches: GpuShared[] = [];
    for (const [input, output] of pairs) {
      const a = storageOf(input), b = storageOf(output);
      if (a.view || b.view || a.bytes !== b.bytes || a.buffer.size !== b.buffer.size || swap.has(a.buffer) || swap.has(b.buffer)) return null;
      if (a.buffer === b.buffer) {
        if (!a.shared.kvFill || a.shared !== b.shared) return null;
        inPlace.push(true);
        caches.push(a.shared);
        continue;
      }
      if (this.commands.commands.some((c) => writesBuffer(c, a.buffer))) return null;
      swap.set(a.buffer, b.buffer);
      swap.set(b.buffer, a.buffer);
      inPlace.push(false);
    }
    return new AlternatingGraphs(new StepGraph(this.rt, this.commands.commands, swap), new StepGraph(this.rt, this.commands.commands), inPlace, caches);
  }
}

/** Replays alternating between a step graph that reads a captured step's outputs and one that reads its inputs. */
class AlternatingGraphs implements StepGraphHandle {
  private replays = 0;

  constructor(
    private readonly reversed: StepGraph, private readonly captured: StepGraph,
    readonly inPlace: readonly boolean[], private readonly caches: readonly GpuShared[],
  ) {}

  replay(writes: readonly ArrayBufferView[]): void {
    (this.replays % 2 === 0 ? this.reversed : this.captured).replay(writes);
    this.replays++;
  }

  dispose(): void {
    this.reversed.dispose();
    this.captured.dispose();
    // Replays appended to these caches where the host did not see: the next append copies.
    for (const shared of this.caches) delete shared.kvFill;
  }
}
