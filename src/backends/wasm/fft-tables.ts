// Twiddle factors and the bit-reversal permutation for the wasm FFT (assembly/fft.ts), which has no
// sin/cos of its own (no static data allowed): computed here in f64, once per size, kept in wasm memory.
import type { WasmHeap } from "./runtime.js";

export interface FftTable {
  /** Byte offsets: f64 cos and −sin per stage, i32 bit reversal. */
  twRe: number;
  twIm: number;
  rev: number;
}

export class FftTables {
  private readonly tables = new Map<number, FftTable>();

  constructor(private readonly heap: WasmHeap) {}

  /** Tables for transforms of size n (a power of two), or null when wasm memory is full. */
  get(n: number): FftTable | null {
    const hit = this.tables.get(n);
    if (hit) return hit;
    const twRe = this.heap.alloc(n * 8), twIm = this.heap.alloc(n * 8), rev = this.heap.alloc(n * 4);
    if (twRe < 0 || twIm < 0 || rev < 0) return null;
    const buf = this.heap.memory.buffer;
    const re = new Float64Array(buf, twRe, n), im = new Float64Array(buf, twIm, n);
    // The stage of half-size h reads cos(πj/h), −sin(πj/h) for j < h at offset h − 1 (contiguous).
    for (let h = 1; h < n; h <<= 1) {
      for (let j = 0; j < h; j++) {
        re[h - 1 + j] = Math.cos((Math.PI * j) / h);
        im[h - 1 + j] = -Math.sin((Math.PI * j) / h);
      }
    }
    const bits = Math.log2(n);
    const r = new Int32Array(buf, rev, n);
    for (let i = 0; i < n; i++) {
      let x = i, y = 0;
      for (let k = 0; k < bits; k++) {
        y = (y << 1) | (x & 1);
        x >>= 1;
      }
      r[i] = y;
    }
    const t = { twRe, twIm, rev };
    this.tables.set(n, t);
    return t;
  }
}
