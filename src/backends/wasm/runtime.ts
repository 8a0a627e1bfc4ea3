// The WebAssembly side of the fast CPU backend: the kernels module (compiled once), one shared linear
// memory that every thread's instance imports, and a small allocator over it. Weights live in that
// memory for as long as their tensors do, so kernels on any thread read them in place; activations are
// copied into a per-op arena and results copied out.
import { WASM_BASE64 } from "./kernels-wasm.js";

/** The kernels every instance exports, in the order the thread pool numbers them. */
export const KERNEL_NAMES = [
  "linear_f32", "linear_f16", "linear_bf16", "selective_scan", "causal_conv1d", "ssd_step", "ssd_chunked", "linear_q8",
  "causal_attention", "unary_f32", "gated_rms_norm", "fft_conv", "add_norm",
] as const;
export type KernelName = (typeof KERNEL_NAMES)[number];

export interface KernelExports {
  linearScratchBytes(K: number): number;
  linearQ8ScratchBytes(K: number): number;
  selectiveScanScratchBytes(E: number): number;
  ssdChunkedScratchBytes(Q: number, P: number, N: number): number;
  q16Bytes(M: number, K: number): number;
  attentionScratchBytes(T: number): number;
  fftConvScratchBytes(n: number, L: number, P: number): number;
  quantize_q16(x: number, M: number, K: number, xq: number): void;
}

const PAGE = 65536;
/** 4 GiB: the most a 32-bit memory can address. */
const MAX_PAGES = 65536;
const ALIGN = 64;

function decodeBase64(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(new ArrayBuffer(bin.length));
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

let compiled: WebAssembly.Module | null | undefined;

/**
 * The compiled kernels, or null where this runtime lacks WebAssembly SIMD or shared memory (browsers
 * without cross-origin isolation): the CPU backend then keeps its TypeScript kernels.
 */
export function kernelsModule(): WebAssembly.Module | null {
  if (compiled === undefined) compiled = compileOrNull((bytes) => new WebAssembly.Module(bytes));
  return compiled;
}

/** The module's bytes compiled by `compile`, or null where shared memory or WebAssembly is missing or it fails. */
function compileOrNull<T>(compile: (bytes: Uint8Array<ArrayBuffer>) => T): T | null {
  try {
    if (typeof SharedArrayBuffer === "undefined" || typeof WebAssembly === "undefined") return null;
    return compile(decodeBase64(WASM_BASE64));
  } catch {
    return null;
  }
}

/**
 * kernelsModule compiled off the calling thread: browsers refuse synchronous compilation of modules over
 * 4 KB on a page's main thread, so that is the way in there.
 */
export async function kernelsModuleAsync(): Promise<WebAssembly.Module | null> {
  if (compiled !== undefined) return compiled;
  // Callers that arrive while the compilation runs share it (rather than each compiling the module again).
  compiling ??= (async () => {
    const pending = compileOrNull((bytes) => WebAssembly.compile(bytes));
    const module = pending ? await pending.catch(() => null) : null;
    compiled ??= module;
    return compiled;
  })();
  return compiling;
}

let compiling: Promise<WebAssembly.Module | null> | null = null;

/** instantiate without blocking (browsers also refuse synchronous instantiation of large modules on a page). */
export async function instantiateAsync(module: WebAssembly.Module, memory: WebAssembly.Memory): Promise<WebAssembly.Instance> {
  return WebAssembly.instantiate(module, { env: { memory } });
}

export function instantiate(module: WebAssembly.Module, memory: WebAssembly.Memory): WebAssembly.Instance {
  return new WebAssembly.Instance(module, { env: { memory } });
}

interface FreeBlock { offset: number; size: number }

/**
 * First-fit allocator with coalescing over a shared WebAssembly.Memory that grows on demand. Offsets
 * are 64-byte aligned. The module has no static data (scripts/build-wasm.mjs checks), so all of memory
 * past the first page is the allocator's.
 */
export class WasmHeap {
  readonly memory: WebAssembly.Memory;
  private free: FreeBlock[] = [];
  /** The first 64 KiB stay unused: a null page, so that offset 0 means "no buffer" to the kernels. */
  private top = PAGE;
  private f32View: Float32Array;
  private u16View: Uint16Array;

  constructor(initialBytes = 16 << 20) {
    const pages = Math.ceil(initialBytes / PAGE);
    this.memory = new WebAssembly.Memory({ initial: pages, maximum: MAX_PAGES, shared: true });
    this.f32View = new Float32Array(this.memory.buffer);
    this.u16View = new Uint16Array(this.memory.buffer);
  }

  /** Bytes allocated from the top (freed blocks included). */
  get size(): number {
    return this.top;
  }

  /** A byte offset of `bytes` free bytes, or -1 when the 4 GiB address space cannot hold them. */
  alloc(bytes: number): number {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    for (let i = 0; i < this.free.length; i++) {
      const b = this.free[i];
      if (b.size < size) continue;
      const offset = b.offset;
      if (b.size === size) this.free.splice(i, 1);
      else { b.offset += size; b.size -= size; }
      return offset;
    }
    const end = this.top + size;
    if (end > MAX_PAGES * PAGE) return -1;
    const have = this.memory.buffer.byteLength;
    if (end > have) {
      try {
        this.memory.grow(Math.ceil((end - have) / PAGE));
      } catch {
        return -1;
      }
    }
    const offset = this.top;
    this.top = end;
    return offset;
  }

  release(offset: number, bytes: number): void {
    const size = Math.max(ALIGN, Math.ceil(bytes / ALIGN) * ALIGN);
    let i = 0;
    while (i < this.free.length && this.free[i].offset < offset) i++;
    this.free.splice(i, 0, { offset, size });
    // Merge with the next and previous neighbours, then give a free tail back to the top.
    const next = this.free[i + 1];
    if (next && offset + size === next.offset) {
      this.free[i].size += next.size;
      this.free.splice(i + 1, 1);
    }
    const prev = this.free[i - 1];
    if (prev && prev.offset + prev.size === offset) {
      prev.size += this.free[i].size;
      this.free.splice(i, 1);
      i--;
    }
    const last = this.free[this.free.length - 1];
    if (last && last.offset + last.size === this.top) {
      this.top = last.offset;
      this.free.pop();
    }
  }

  /** f32 view of the whole memory (renewed after growth; older views stay valid for their range). */
  get f32(): Float32Array {
    if (this.f32View.buffer.byteLength !== this.memory.buffer.byteLength) {
      this.f32View = new Float32Array(this.memory.buffer);
      this.u16View = new Uint16Array(this.memory.buffer);
    }
    return this.f32View;
  }

  get u16(): Uint16Array {
    void this.f32;
    return this.u16View;
  }
}

/**
 * Bump allocation for one op's inputs, outputs and scratch, reset at the start of every op. Its block
 * grows (doubling) when an op needs more.
 */
export class Arena {
  private base = 0;
  private capacity = 0;
  private used = 0;

  constructor(private readonly heap: WasmHeap) {}

  /** Starts an op that needs at most `bytes` (rounded up per buffer; callers overestimate a little). */
  begin(bytes: number): boolean {
    this.used = 0;
    if (bytes <= this.capacity) return true;
    const want = Math.max(bytes, 1 << 20, this.capacity * 2);
    if (this.capacity) this.heap.release(this.base, this.capacity);
    this.capacity = 0;
    const offset = this.heap.alloc(want);
    if (offset < 0) return false;
    this.base = offset;
    this.capacity = want;
    return true;
  }

  /** Byte offset of `bytes` fresh bytes (64-byte aligned). */
  take(bytes: number): number {
    const offset = this.base + this.used;
    this.used += Math.ceil(Math.max(bytes, 1) / ALIGN) * ALIGN;
    if (this.used > this.capacity) throw new Error(`wasm arena overflow (${this.used} > ${this.capacity} bytes)`);
    return offset;
  }

  /** Copies floats in; returns their byte offset. */
  put(values: Float32Array): number {
    const offset = this.take(values.length * 4);
    this.heap.f32.set(values, offset >>> 2); // >>>: offsets reach 4 GiB
    return offset;
  }

  /** Bytes an op's buffers of these float counts take, with alignment slack. */
  static bytesFor(...floatCounts: number[]): number {
    let total = 0;
    for (const n of floatCounts) total += Math.ceil(Math.max(n * 4, 1) / ALIGN) * ALIGN;
    return total;
  }
}
