// Which tensor storage lives in wasm memory, and when its blocks are given back. Weights are placed there
// at upload; activations (op outputs) too, so the next kernel reads them in place instead of copying them
// in, and kernels write their outputs in place instead of copying them out. A block is freed as soon as
// the last tensor of this backend holding it is disposed (reshapes share storage, so each holder counts;
// disposing a model frees its weights), or else when the garbage collector takes its storage.
import type { Tensor } from "../../tensor/tensor.js";
import type { WasmHeap } from "./runtime.js";

/** A block of wasm memory owned by a tensor's storage; q8 matrices own a second one for their scales. */
export interface Resident {
  offset: number;
  bytes: number;
  scales?: number;
  scaleBytes?: number;
  /** Live tensors of this backend holding this block. */
  holders: number;
  freed: boolean;
}

/**
 * Activations smaller than this many floats (64 KB: decoding's vectors) stay in JS memory: copying them
 * costs a microsecond or two, less than registering a block with the FinalizationRegistry and
 * unregistering it (about 10% of a decoded token's time when every activation was resident).
 */
const ACTIVATION_MIN_FLOATS = 16384;
/** Past this much wasm memory, new activations stay in JS memory (the address space is 4 GiB). */
const ACTIVATION_HEAP_LIMIT = 3 * 2 ** 30;

export class Residency {
  private readonly byStorage = new WeakMap<object, Resident>();
  private readonly holders = new WeakMap<Tensor, Resident>();
  private readonly reclaim = new FinalizationRegistry<Resident>((r) => this.free(r));

  constructor(private readonly heap: WasmHeap) {}

  /** Records storage placed in wasm memory; its blocks are freed when the storage is collected. */
  add(storage: object, block: Omit<Resident, "holders" | "freed">): Resident {
    const r: Resident = { ...block, holders: 0, freed: false };
    this.byStorage.set(storage, r);
    this.reclaim.register(storage, r, r);
    return r;
  }

  get(storage: object): Resident | undefined {
    return this.byStorage.get(storage);
  }

  /**
   * Registers `view` (a view of the start of `of`'s block) as the same block: tensors holding it count as
   * holders. `of` must stay reachable while `view` is (its collection frees the block).
   */
  alias(view: object, of: object): void {
    const r = this.byStorage.get(of);
    if (r) this.byStorage.set(view, r);
  }

  /**
   * A view of n floats in wasm memory for an activation, zeroed if asked, or null when it should stay in
   * JS memory (small, or wasm memory is full).
   */
  f32(n: number, zero: boolean): Float32Array | null {
    if (n < ACTIVATION_MIN_FLOATS || this.heap.size > ACTIVATION_HEAP_LIMIT) return null;
    const offset = this.heap.alloc(n * 4);
    if (offset < 0) return null;
    const view = new Float32Array(this.heap.memory.buffer, offset, n);
    if (zero) view.fill(0);
    this.add(view, { offset, bytes: n * 4 });
    return view;
  }

  /** Counts t as a holder of its storage's block (when its storage is in wasm memory). */
  hold(t: Tensor): void {
    const r = this.byStorage.get(t.storage as object);
    if (!r || this.holders.has(t)) return;
    r.holders++;
    this.holders.set(t, r);
  }

  /** t was disposed: frees its block when no other holder is left. */
  release(t: Tensor): void {
    const r = this.holders.get(t);
    if (!r) return;
    this.holders.delete(t);
    if (--r.holders === 0) {
      this.byStorage.delete(t.storage as object);
      this.reclaim.unregister(r);
      this.free(r);
    }
  }

  private free(r: Resident): void {
    if (r.freed) return;
    r.freed = true;
    this.heap.release(r.offset, r.bytes);
    if (r.scales !== undefined) this.heap.release(r.scales, r.scaleBytes!);
  }
}
