import { MAP_READ, USAGE } from "./gpu.js";

/**
 * The GPU side of the WebGPU backend: one pending command encoder that ops record dispatches into, a
 * buffer pool, per-dispatch uniform parameters, and pipelines compiled once per kernel variant.
 *
 * - Ops never block: they record into the pending encoder (one compute pass kept open across dispatches;
 *   WebGPU orders dispatches, so a buffer released by one op can be reused by the next at once).
 * - `flush()` submits; `read()` submits and maps a staging copy (the only await).
 * - Uniform parameters live in a ring buffer, 256 bytes per dispatch, bound with a dynamic offset; a batch's
 *   slots are written once, just before the submit that reads them, and reused once that submit completed.
 * - Bind groups are cached by (layout, buffers): a decoding step allocates the same pooled buffers in the
 *   same order every token, so its bind groups are built once.
 */

export type BufferType = "f32" | "u32" | "i32" | "vec4<f32>" | "vec2<u32>" | "vec4<u32>";

export interface BindingSpec {
  name: string;
  type: BufferType;
  /** read-only storage, or read_write. */
  write?: boolean;
}

export type ParamType = "u32" | "i32" | "f32";

export interface KernelSpec {
  /** Unique per variant (the pipeline cache key). */
  key: string;
  params: readonly (readonly [string, ParamType])[];
  bindings: readonly BindingSpec[];
  workgroupSize: number | readonly [number, number, number];
  /** WGSL after the generated declarations; must define `@compute fn main(...)`. */
  body: string;
  /** WGSL extensions the body needs (`enable …;`), e.g. "subgroups". */
  enables?: readonly string[];
  /** Other global directives, e.g. "diagnostic(off, subgroup_uniformity)". */
  directives?: readonly string[];
}

export interface Kernel {
  spec: KernelSpec;
  pipeline: GPUComputePipeline;
  layout: GPUBindGroupLayout;
  /** Binding signature ("rrw"): kernels with equal signatures share layouts and bind groups. */
  layoutKey: string;
  id: number;
}

/** One command of a captured step (see GpuRuntime.beginCapture). */
export type CapturedCommand =
  | { kind: "dispatch"; kernel: Kernel; params: Uint32Array; buffers: GPUBuffer[]; groups: [number, number, number] }
  | { kind: "copy"; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; bytes: number }
  /** Host bytes written into `dst`; a replay takes new bytes of the same length. */
  | { kind: "write"; dst: GPUBuffer; dstOffset: number; bytes: number };

/** The commands one captured step recorded, in order. */
export class CapturedCommands {
  constructor(readonly commands: readonly CapturedCommand[]) {}

  /** Byte lengths of the step's host writes, in order. */
  get writeBytes(): number[] {
    return this.commands.flatMap((c) => (c.kind === "write" ? [c.bytes] : []));
  }

  /**
   * Whether `other` recorded the same kernels with the same parameters, grids, copies and buffer sizes —
   * the buffers themselves may differ. Two consecutive decode steps that match do not depend on the
   * position (an attention layer's key count, say, would change a parameter).
   */
  sameShapeAs(other: CapturedCommands): boolean {
    const a = this.commands, b = other.commands;
    if (a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) {
      const x = a[i], y = b[i];
      if (x.kind !== y.kind) return false;
      if (x.kind === "dispatch" && y.kind === "dispatch") {
        if (x.kernel !== y.kernel || x.groups.some((g, j) => g !== y.groups[j])) return false;
        if (x.params.some((v, j) => v !== y.params[j])) return false;
        if (x.buffers.some((buf, j) => buf.size !== y.buffers[j].size)) return false;
      } else if (x.kind === "copy" && y.kind === "copy") {
        if (x.srcOffset !== y.srcOffset || x.dstOffset !== y.dstOffset || x.bytes !== y.bytes) return false;
        if (x.src.size !== y.src.size || x.dst.size !== y.dst.size) return false;
      } else if (x.kind === "write" && y.kind === "write") {
        if (x.dstOffset !== y.dstOffset || x.bytes !== y.bytes || x.dst.size !== y.dst.size) return false;
      }
    }
    return true;
  }
}

/**
 * A captured step made replayable: its commands with some buffers renamed (see `rename`), its own uniform
 * buffer (the parameters never change), bind groups built once, and an upload buffer per host write.
 * Replaying records only Dawn's own calls. Every buffer it names is pinned in the runtime (not handed out
 * again) until `dispose`.
 */
export class StepGraph {
  private readonly commands: CapturedCommand[];
  private readonly uniforms: GPUBuffer;
  private readonly bindGroups: GPUBindGroup[] = [];
  private readonly uploads: GPUBuffer[] = [];
  readonly pinned: GPUBuffer[];
  private disposed = false;

  /** `rename` maps buffers of the captured commands to the ones this graph uses instead. */
  constructor(private readonly rt: GpuRuntime, captured: readonly CapturedCommand[], rename: ReadonlyMap<GPUBuffer, GPUBuffer> = new Map()) {
    const to = (b: GPUBuffer) => rename.get(b) ?? b;
    this.commands = captured.map((c): CapturedCommand => {
      if (c.kind === "dispatch") return { ...c, buffers: c.buffers.map(to) };
      if (c.kind === "copy") return { ...c, src: to(c.src), dst: to(c.dst) };
      return { ...c, dst: to(c.dst) };
    });
    const device = rt.device;
    const align = rt.uniformAlign;
    const dispatches = this.commands.filter((c) => c.kind === "dispatch");
    this.uniforms = device.createBuffer({ size: Math.max(align, dispatches.length * align), usage: USAGE.UNIFORM | USAGE.COPY_DST });
    const words = new Uint32Array((dispatches.length * align) / 4);
    const cache = new Map<string, GPUBindGroup>();
    dispatches.forEach((c, i) => {
      words.set(c.params, (i * align) / 4);
      const key = `${c.kernel.layoutKey}|${c.buffers.map(bufferId).join(",")}`;
      let bg = cache.get(key);
      if (!bg) {
        bg = device.createBindGroup({
          layout: c.kernel.layout,
          entries: [
            { binding: 0, resource: { buffer: this.uniforms, offset: 0, size: align } },
            ...c.buffers.map((buffer, j) => ({ binding: j + 1, resource: { buffer } })),
          ],
        });
        cache.set(key, bg);
      }
      this.bindGroups.push(bg);
    });
    if (dispatches.length > 0) device.queue.writeBuffer(this.uniforms, 0, words);
    const named = new Set<GPUBuffer>();
    for (const c of this.commands) {
      if (c.kind === "dispatch") for (const b of c.buffers) named.add(b);
      else if (c.kind === "copy") { named.add(c.src); named.add(c.dst); }
      else {
        named.add(c.dst);
        this.uploads.push(device.createBuffer({ size: Math.ceil(c.bytes / 4) * 4, usage: USAGE.COPY_SRC | USAGE.COPY_DST }));
      }
    }
    named.delete(rt.dummy);
    this.pinned = [...named];
    rt.pin(this.pinned);
  }

  /** Host writes in the order captured, each of the captured length. */
  replay(writes: readonly ArrayBufferView[]): void {
    if (this.disposed) throw new Error("StepGraph: replayed after dispose");
    this.rt.replay(this.commands, this.bindGroups, this.uploads, writes);
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.rt.unpin(this.pinned);
    this.rt.destroyAfterPending(this.uniforms, ...this.uploads);
  }
}

/** Whether a captured command writes `buffer` (a read_write binding, a copy's or a write's destination). */
export function writesBuffer(c: CapturedCommand, buffer: GPUBuffer): boolean {
  if (c.kind === "dispatch") return c.buffers.some((b, j) => b === buffer && c.kernel.spec.bindings[j].write === true);
  return c.dst === buffer;
}

/** A ring of per-dispatch uniform slots: its buffer, a host shadow, and which bytes the GPU may still read. */
class UniformRing {
  readonly buffer: GPUBuffer;
  readonly shadow: ArrayBuffer;
  readonly u32: Uint32Array;
  readonly i32: Int32Array;
  readonly f32: Float32Array;
  /** Absolute byte counters: slots [tail, head) are in use (recorded or in flight); head − tail ≤ size. */
  head = 0;
  tail = 0;
  /** Start of the slots recorded since the last submit. */
  batchStart = 0;

  constructor(device: GPUDevice, readonly size: number, readonly id: number) {
    this.buffer = device.createBuffer({ size, usage: USAGE.UNIFORM | USAGE.COPY_DST });
    this.shadow = new ArrayBuffer(size);
    this.u32 = new Uint32Array(this.shadow);
    this.i32 = new Int32Array(this.shadow);
    this.f32 = new Float32Array(this.shadow);
  }
}

/** A copy of the bytes, zero-padded to a multiple of 4 (queue.writeBuffer's unit). */
function padTo4(bytes: Uint8Array): Uint8Array<ArrayBuffer> {
  const padded = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4);
  padded.set(bytes);
  return padded;
}

/** Pool size classes: 4 steps per power of two, at least 256 bytes. */
export function sizeClass(bytes: number): number {
  const b = Math.max(256, bytes);
  const p = 2 ** Math.floor(Math.log2(b));
  const step = p / 4;
  return Math.ceil(b / step) * step;
}

let nextBufferId = 1;
const bufferIds = new WeakMap<GPUBuffer, number>();
function bufferId(b: GPUBuffer): number {
  let id = bufferIds.get(b);
  if (id === undefined) {
    id = nextBufferId++;
    bufferIds.set(b, id);
  }
  return id;
}

export function wgslDeclarations(spec: KernelSpec): string {
  const lines: string[] = [...(spec.enables ?? []).map((e) => `enable ${e};`), ...(spec.directives ?? []).map((d) => `${d};`)];
  const fields = spec.params.map(([n, t]) => `  ${n}: ${t},`);
  if (fields.length === 0) fields.push("  _unused: u32,");
  lines.push(`struct Params {\n${fields.join("\n")}\n}`);
  lines.push("@group(0) @binding(0) var<uniform> p: Params;");
  spec.bindings.forEach((b, i) => {
    lines.push(`@group(0) @binding(${i + 1}) var<storage, ${b.write ? "read_write" : "read"}> ${b.name}: array<${b.type}>;`);
  });
  const [x, y, z] = typeof spec.workgroupSize === "number" ? [spec.workgroupSize, 1, 1] : spec.workgroupSize;
  lines.push(`const WG_X: u32 = ${x}u;\nconst WG_Y: u32 = ${y}u;\nconst WG_Z: u32 = ${z}u;`);
  return lines.join("\n") + "\n";
}

/**
 * Where one op's GPU time is summed: the dispatches and copies recorded while it is the runtime's current
 * sink add their timestamped durations; `end()` resolves with the total once every one of them was read back.
 */
export class GpuTimeSink {
  ms = 0;
  private outstanding = 0;
  private ended = false;
  private resolve: ((ms: number) => void) | null = null;

  /** One more timed command belongs to this sink. */
  expect(): void {
    this.outstanding++;
  }

  add(ms: number): void {
    this.ms += ms;
    this.outstanding--;
    if (this.ended && this.outstanding === 0) this.resolve?.(this.ms);
  }

  /** No more commands will be added; resolves with the op's GPU milliseconds. */
  end(): Promise<number> | number {
    this.ended = true;
    if (this.outstanding === 0) return this.ms;
    return new Promise((resolve) => (this.resolve = resolve));
  }
}

interface TimedCommand {
  label: string;
  sink: GpuTimeSink | null;
}

/**
 * Per-command GPU times from timestamp queries (feature `timestamp-query`): while enabled, every dispatch
 * runs in its own compute pass whose begin and end are timestamped, and every buffer copy is bracketed by
 * two empty timestamped passes; times are summed per kernel key ("copy" for copies) and, when a sink is
 * current, into that sink. It changes what it measures a little (a pass per dispatch).
 */
class DispatchProfiler {
  private readonly querySet: GPUQuerySet;
  private readonly resolve: GPUBuffer;
  private commands: TimedCommand[] = [];
  private pending: Promise<void>[] = [];
  readonly totals = new Map<string, { ms: number; count: number }>();
  /** The op whose commands are being recorded (see GpuTimeSink). */
  sink: GpuTimeSink | null = null;
  static readonly CAPACITY = 2048;

  constructor(private readonly device: GPUDevice) {
    this.querySet = device.createQuerySet({ type: "timestamp", count: 2 * DispatchProfiler.CAPACITY });
    this.resolve = device.createBuffer({ size: 16 * DispatchProfiler.CAPACITY, usage: 0x200 /* QUERY_RESOLVE */ | USAGE.COPY_SRC });
  }

  get full(): boolean {
    return this.commands.length >= DispatchProfiler.CAPACITY;
  }

  /** Query indices [begin, end] for the next timed command. */
  next(label: string): [number, number] {
    const i = this.commands.length;
    this.commands.push({ label, sink: this.sink });
    this.sink?.expect();
    return [2 * i, 2 * i + 1];
  }

  /** Timestamp writes for the next dispatch's own pass. */
  dispatchPass(label: string): GPUComputePassTimestampWrites {
    const [begin, end] = this.next(label);
    return { querySet: this.querySet, beginningOfPassWriteIndex: begin, endOfPassWriteIndex: end };
  }

  /** Records `record` (copies) between two empty passes whose timestamps bound it. */
  bracket(encoder: GPUCommandEncoder, label: string, record: () => void): void {
    const [begin, end] = this.next(label);
    encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, endOfPassWriteIndex: begin } }).end();
    record();
    encoder.beginComputePass({ timestampWrites: { querySet: this.querySet, beginningOfPassWriteIndex: end } }).end();
  }

  /** Resolves this batch's timestamps into a readback buffer (before the submit). */
  resolveInto(encoder: GPUCommandEncoder): (() => void) | null {
    const n = this.commands.length;
    if (n === 0) return null;
    const commands = this.commands;
    this.commands = [];
    const read = this.device.createBuffer({ size: 16 * n, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0);
    encoder.copyBufferToBuffer(this.resolve, 0, read, 0, 16 * n);
    return () => {
      this.pending.push(read.mapAsync(MAP_READ).then(() => {
        const t = new BigUint64Array(read.getMappedRange());
        commands.forEach(({ label, sink }, j) => {
          const raw = Number(t[2 * j + 1] - t[2 * j]) / 1e6;
          // Timestamps of different passes may be reordered or reset by the driver: such spans count 0.
          const ms = raw > 0 && raw < 1e5 ? raw : 0;
          const e = this.totals.get(label) ?? { ms: 0, count: 0 };
          e.ms += ms;
          e.count++;
          this.totals.set(label, e);
          sink?.add(ms);
        });
        read.unmap();
        read.destroy();
      }));
    };
  }

  async settle(): Promise<void> {
    while (this.pending.length > 0) {
      const p = this.pending;
      this.pending = [];
      await Promise.all(p);
    }
  }

  destroy(): void {
    this.querySet.destroy();
    this.resolve.destroy();
  }
}

export class GpuRuntime {
  private encoder: GPUCommandEncoder | null = null;
  private pass: GPUComputePassEncoder | null = null;
  /** The pipeline last set in the open pass. */
  private passPipeline: GPUComputePipeline | null = null;
  private recorded = 0;
  private readonly kernels = new Map<string, Kernel>();
  private readonly layouts = new Map<string, GPUBindGroupLayout>();
  private readonly bindGroups = new Map<string, GPUBindGroup>();
  private readonly free = new Map<number, GPUBuffer[]>();
  /** Pooled buffers in the order they were released (a Set iterates in insertion order): eviction order. */
  private readonly pooledOrder = new Set<GPUBuffer>();
  private freeBytes = 0;
  /** Buffers to destroy once the pending encoder has been submitted. */
  private doomed: GPUBuffer[] = [];
  private ring: UniformRing;
  private nextRingId = 1;
  private readonly stagingFree = new Map<number, GPUBuffer[]>();
  /** Small buffers standing in for absent optional inputs. */
  readonly dummy: GPUBuffer;
  readonly uniformAlign: number;
  /** Dispatches recorded since the runtime started (for tests and benchmarks). */
  dispatchCount = 0;
  submitCount = 0;
  /** Step graphs replayed (see StepGraph). */
  replayCount = 0;
  /** Bytes allocated from the device (pooled or live). */
  allocatedBytes = 0;
  /**
   * Released buffers beyond this many bytes are destroyed rather than pooled. A forward pass keeps its
   * intermediates until it returns (several GB for a 130M model at 8K tokens); re-creating them each pass
   * costs far more than keeping them, so the pool holds up to 16 GiB by default.
   */
  poolLimitBytes = 16 * 2 ** 30;
  private lost: string | null = null;
  /** The one dynamic offset of a dispatch, passed as a typed array (no array built per dispatch). */
  private readonly dynamicOffset = new Uint32Array(1);
  private profiler: DispatchProfiler | null = null;
  /**
   * Benchmarks only: how many times to record each dispatch of a kernel (by key; 1 when unset). Running a
   * kernel twice inside the real step measures what it costs there (bench --ablate), where timestamps
   * around single dispatches add more than the small kernels take.
   */
  repeatDispatch: ((key: string) => number) | null = null;
  /** Commands of the step being captured (null: not capturing); `captureBroken` says why it cannot replay. */
  private captured: CapturedCommand[] | null = null;
  private captureBroken: string | null = null;
  /** Buffers named by live step graphs (how many), and those of them released meanwhile (pooled on unpin). */
  private readonly pins = new Map<GPUBuffer, number>();
  private readonly releasedWhilePinned = new Set<GPUBuffer>();

  constructor(readonly device: GPUDevice) {
    this.uniformAlign = Math.max(256, device.limits.minUniformBufferOffsetAlignment);
    this.dummy = this.createBuffer(256);
    this.ring = new UniformRing(device, 1 << 20, this.nextRingId++);
    device.lost?.then((info) => { this.lost = `${info.reason}: ${info.message}`; }).catch(() => {});
    device.onuncapturederror = (ev: GPUUncapturedErrorEvent) => {
      if (this.errors.length < 8) this.errors.push(ev.error.message);
    };
  }

  /** Validation / out-of-memory errors the device reported since the last read (a bug if any). */
  private errors: string[] = [];

  get isLost(): string | null {
    return this.lost;
  }

  // ---------------------------------------------------------------------------------------------------
  // Buffers.

  private createBuffer(bytes: number): GPUBuffer {
    this.allocatedBytes += bytes;
    return this.device.createBuffer({ size: bytes, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST });
  }

  /** A storage buffer of at least `bytes` (from the pool when one of its size class is free). */
  alloc(bytes: number): GPUBuffer {
    const size = sizeClass(bytes);
    const list = this.free.get(size);
    const hit = list?.pop();
    if (hit) {
      this.freeBytes -= size;
      this.pooledOrder.delete(hit);
      return hit;
    }
    return this.createBuffer(size);
  }

  /**
   * Returns a buffer to the pool (reuse is safe: later dispatches run after earlier ones). Over the pool's
   * limit, the pooled buffers released longest ago are destroyed to make room: after a long prefill the
   * pool holds activations of shapes that may not come again, and what was freed last is what the next
   * run of the same work (the next decode step, the next prompt of that length) asks for.
   */
  releaseBuffer(buffer: GPUBuffer): void {
    if (this.pins.has(buffer)) {
      this.releasedWhilePinned.add(buffer);
      return;
    }
    const size = buffer.size;
    if (size > this.poolLimitBytes) {
      this.destroyLater(buffer);
      return;
    }
    for (const old of this.pooledOrder) {
      if (this.freeBytes + size <= this.poolLimitBytes) break;
      const list = this.free.get(old.size)!;
      list.splice(list.lastIndexOf(old), 1);
      if (list.length === 0) this.free.delete(old.size);
      this.pooledOrder.delete(old);
      this.freeBytes -= old.size;
      this.destroyLater(old);
    }
    let list = this.free.get(size);
    if (!list) {
      list = [];
      this.free.set(size, list);
    }
    list.push(buffer);
    this.pooledOrder.add(buffer);
    this.freeBytes += size;
  }

  /**
   * Destroys a buffer once the pending work that may use it is submitted. Cached bind groups that name it
   * stay (their keys hold buffer ids that are never reused, so they are never hit again) until the cache
   * is cleared: dropping the whole cache here would rebuild every decode bind group after each eviction.
   */
  private destroyLater(buffer: GPUBuffer): void {
    this.allocatedBytes -= buffer.size;
    this.doomed.push(buffer);
  }

  /** Destroys every pooled buffer (after the pending work is submitted). */
  trim(): void {
    for (const list of this.free.values()) {
      for (const b of list) this.destroyLater(b);
    }
    this.pooledOrder.clear();
    this.free.clear();
    this.freeBytes = 0;
    this.dropBindGroups();
    this.flush();
  }

  private dropBindGroups(): void {
    this.bindGroups.clear();
  }

  /** Keeps buffers out of the pool while a step graph names them (pooled ones are taken out of it). */
  pin(buffers: readonly GPUBuffer[]): void {
    for (const b of buffers) {
      const n = this.pins.get(b) ?? 0;
      this.pins.set(b, n + 1);
      if (n === 0 && this.pooledOrder.has(b)) {
        const list = this.free.get(b.size)!;
        list.splice(list.lastIndexOf(b), 1);
        if (list.length === 0) this.free.delete(b.size);
        this.pooledOrder.delete(b);
        this.freeBytes -= b.size;
        this.releasedWhilePinned.add(b);
      }
    }
  }

  unpin(buffers: readonly GPUBuffer[]): void {
    for (const b of buffers) {
      const n = this.pins.get(b);
      if (n === undefined) continue;
      if (n > 1) {
        this.pins.set(b, n - 1);
        continue;
      }
      this.pins.delete(b);
      if (this.releasedWhilePinned.delete(b)) this.releaseBuffer(b);
    }
  }

  /** Destroys buffers once the pending work is submitted. */
  destroyAfterPending(...buffers: GPUBuffer[]): void {
    this.doomed.push(...buffers);
  }

  // ---------------------------------------------------------------------------------------------------
  // Capturing a step for replay.

  /**
   * Starts recording the commands that follow (they still run as usual) so they can be replayed as a
   * StepGraph. Not while profiling (its per-dispatch passes are not part of the step).
   */
  beginCapture(): void {
    this.captured = [];
    this.captureBroken = this.profiler ? "profiling" : null;
  }

  /** Ends a capture: the commands, or null when the step did something a replay cannot repeat (a read). */
  endCapture(): CapturedCommands | null {
    const commands = this.captured;
    this.captured = null;
    return commands && !this.captureBroken ? new CapturedCommands(commands) : null;
  }

  /** Records a step graph's replay into the pending encoder (see StepGraph.replay). */
  replay(commands: readonly CapturedCommand[], bindGroups: readonly GPUBindGroup[], uploads: readonly GPUBuffer[], writes: readonly ArrayBufferView[]): void {
    if (uploads.length !== writes.length) throw new Error(`step replay: ${writes.length} host writes given, the step makes ${uploads.length}`);
    if (this.captured) this.captureBroken = "a replay";
    // The upload buffers are written through the queue: the previous replay, which read them, goes first.
    if (this.hasPendingWork) this.flush();
    writes.forEach((data, i) => {
      let bytes = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
      if (Math.ceil(bytes.byteLength / 4) * 4 !== uploads[i].size) {
        throw new Error(`step replay: host write ${i} has ${bytes.byteLength} bytes, the step wrote ${uploads[i].size}`);
      }
      // Dawn refuses views of shared memory; queue.writeBuffer's unit is 4 bytes.
      if (bytes.byteLength % 4 !== 0 || (typeof SharedArrayBuffer !== "undefined" && data.buffer instanceof SharedArrayBuffer)) bytes = padTo4(bytes);
      this.device.queue.writeBuffer(uploads[i], 0, bytes);
    });
    let d = 0, w = 0;
    for (const c of commands) {
      if (c.kind === "dispatch") {
        const pass = this.ensurePass();
        if (this.passPipeline !== c.kernel.pipeline) {
          pass.setPipeline(c.kernel.pipeline);
          this.passPipeline = c.kernel.pipeline;
        }
        this.dynamicOffset[0] = d * this.uniformAlign;
        pass.setBindGroup(0, bindGroups[d], this.dynamicOffset, 0, 1);
        const times = this.repeatDispatch?.(c.kernel.spec.key) ?? 1;
        for (let t = 0; t < times; t++) pass.dispatchWorkgroups(c.groups[0], c.groups[1], c.groups[2]);
        d++;
      } else if (c.kind === "copy") {
        this.copyEncoder().copyBufferToBuffer(c.src, c.srcOffset, c.dst, c.dstOffset, c.bytes);
      } else {
        this.copyEncoder().copyBufferToBuffer(uploads[w++], 0, c.dst, c.dstOffset, Math.ceil(c.bytes / 4) * 4);
      }
    }
    this.recorded += commands.length;
    this.dispatchCount += d;
    this.replayCount++;
  }

  // ---------------------------------------------------------------------------------------------------
  // Recording.

  private ensurePass(): GPUComputePassEncoder {
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    if (!this.pass) {
      this.pass = this.encoder.beginComputePass();
      this.passPipeline = null;
    }
    return this.pass;
  }

  /** The pending encoder with no compute pass open (for copies). */
  private copyEncoder(): GPUCommandEncoder {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    if (!this.encoder) this.encoder = this.device.createCommandEncoder();
    return this.encoder;
  }

  get hasPendingWork(): boolean {
    return this.recorded > 0;
  }

  /** Starts per-dispatch GPU timing (needs the `timestamp-query` feature); see DispatchProfiler. */
  startProfile(): void {
    this.flush();
    this.profiler = new DispatchProfiler(this.device);
  }

  /** Stops timing and returns GPU milliseconds and dispatch counts per kernel key. */
  async stopProfile(): Promise<Map<string, { ms: number; count: number }>> {
    this.flush();
    const p = this.profiler;
    this.profiler = null;
    if (!p) return new Map();
    await this.device.queue.onSubmittedWorkDone();
    await p.settle();
    p.destroy();
    return p.totals;
  }

  get profiling(): boolean {
    return this.profiler !== null;
  }

  /**
   * Makes `sink` collect the GPU time of the commands recorded from now until the next call (null: none).
   * Only while profiling.
   */
  timeInto(sink: GpuTimeSink | null): void {
    if (this.profiler) this.profiler.sink = sink;
  }

  /** Submits pending work and waits until every timestamp recorded so far has been read back. */
  async settleProfile(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
    await this.profiler?.settle();
  }

  kernel(spec: KernelSpec | (() => KernelSpec), key?: string): Kernel {
    const k = key ?? (spec as KernelSpec).key;
    const hit = this.kernels.get(k);
    if (hit) return hit;
    const s = typeof spec === "function" ? spec() : spec;
    const layoutKey = s.bindings.map((b) => (b.write ? "w" : "r")).join("");
    let layout = this.layouts.get(layoutKey);
    if (!layout) {
      const entries: GPUBindGroupLayoutEntry[] = [
        { binding: 0, visibility: 4 /* COMPUTE */, buffer: { type: "uniform", hasDynamicOffset: true } },
        ...s.bindings.map((b, i): GPUBindGroupLayoutEntry => ({
          binding: i + 1, visibility: 4, buffer: { type: b.write ? "storage" : "read-only-storage" },
        })),
      ];
      layout = this.device.createBindGroupLayout({ entries });
      this.layouts.set(layoutKey, layout);
    }
    const code = wgslDeclarations(s) + s.body;
    const module = this.device.createShaderModule({ code, label: s.key });
    const pipeline = this.device.createComputePipeline({
      layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
      compute: { module, entryPoint: "main" },
      label: s.key,
    });
    const kernel: Kernel = { spec: s, pipeline, layout, layoutKey, id: this.kernels.size + 1 };
    this.kernels.set(k, kernel);
    return kernel;
  }

  /** A free uniform slot: flushes when the ring is full of recorded work, grows it when in-flight work fills it. */
  private uniformSlot(): { ring: UniformRing; offset: number } {
    let ring = this.ring;
    if (ring.head + this.uniformAlign - ring.tail > ring.size) {
      this.flush();
      ring = this.ring;
      if (ring.head + this.uniformAlign - ring.tail > ring.size) {
        // The GPU still reads all of it: a larger ring (the old one is destroyed once its work is done).
        this.doomed.push(ring.buffer);
        ring = this.ring = new UniformRing(this.device, ring.size * 2, this.nextRingId++);
        this.dropBindGroups();
      }
    }
    const offset = ring.head % ring.size;
    ring.head += this.uniformAlign;
    return { ring, offset };
  }

  /**
   * Records one dispatch. `params` follow the kernel's param list; `buffers` its bindings (null: the dummy
   * buffer, for absent optional inputs the kernel does not read); `groups` workgroup counts.
   */
  dispatch(kernel: Kernel, params: readonly number[], buffers: readonly (GPUBuffer | null)[], groups: readonly number[]): void {
    const spec = kernel.spec;
    if (buffers.length !== spec.bindings.length) throw new Error(`${spec.key}: ${buffers.length} buffers for ${spec.bindings.length} bindings`);
    if (params.length !== spec.params.length) throw new Error(`${spec.key}: ${params.length} params for ${spec.params.length}`);
    const [gx, gy = 1, gz = 1] = groups;
    if (gx === 0 || gy === 0 || gz === 0) return;
    const max = this.device.limits.maxComputeWorkgroupsPerDimension;
    if (gx > max || gy > max || gz > max) throw new Error(`${spec.key}: grid ${gx}×${gy}×${gz} exceeds ${max} workgroups per dimension`);
    const { ring, offset } = this.uniformSlot();
    const base = offset / 4;
    const types = spec.params;
    for (let i = 0; i < types.length; i++) {
      const t = types[i][1];
      if (t === "f32") ring.f32[base + i] = params[i];
      else if (t === "i32") ring.i32[base + i] = params[i];
      else ring.u32[base + i] = params[i];
    }
    const bufs: GPUBuffer[] = new Array(buffers.length);
    let bgKey = `${kernel.layoutKey}|${ring.id}`;
    for (let i = 0; i < buffers.length; i++) {
      const b = buffers[i] ?? this.dummy;
      bufs[i] = b;
      bgKey += `,${bufferId(b)}`;
    }
    if (this.captured) {
      const words = new Uint32Array(types.length);
      words.set(ring.u32.subarray(base, base + types.length));
      this.captured.push({ kind: "dispatch", kernel, params: words, buffers: bufs, groups: [gx, gy, gz] });
    }
    let bg = this.bindGroups.get(bgKey);
    if (!bg) {
      bg = this.device.createBindGroup({
        layout: kernel.layout,
        entries: [
          { binding: 0, resource: { buffer: ring.buffer, offset: 0, size: this.uniformAlign } },
          ...bufs.map((buffer, i) => ({ binding: i + 1, resource: { buffer } })),
        ],
      });
      if (this.bindGroups.size > 20000) this.bindGroups.clear();
      this.bindGroups.set(bgKey, bg);
    }
    if (this.profiler) {
      if (this.profiler.full) this.flush();
      const encoder = this.copyEncoder();
      const timed = encoder.beginComputePass({ timestampWrites: this.profiler.dispatchPass(spec.key) });
      timed.setPipeline(kernel.pipeline);
      timed.setBindGroup(0, bg, [offset]);
      timed.dispatchWorkgroups(gx, gy, gz);
      timed.end();
    } else {
      const pass = this.ensurePass();
      if (this.passPipeline !== kernel.pipeline) {
        pass.setPipeline(kernel.pipeline);
        this.passPipeline = kernel.pipeline;
      }
      this.dynamicOffset[0] = offset;
      pass.setBindGroup(0, bg, this.dynamicOffset, 0, 1);
      const times = this.repeatDispatch?.(spec.key) ?? 1;
      for (let t = 0; t < times; t++) pass.dispatchWorkgroups(gx, gy, gz);
    }
    this.recorded++;
    this.dispatchCount++;
  }

  /** Copies bytes between buffers in queue order. */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (bytes === 0) return;
    this.captured?.push({ kind: "copy", src, srcOffset, dst, dstOffset, bytes });
    this.recordCopy(src, srcOffset, dst, dstOffset, bytes);
  }

  private recordCopy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    if (this.profiler) {
      if (this.profiler.full) this.flush();
      const encoder = this.copyEncoder();
      this.profiler.bracket(encoder, "copy", () => encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes));
    } else {
      this.copyEncoder().copyBufferToBuffer(src, srcOffset, dst, dstOffset, bytes);
    }
    this.recorded++;
  }

  /** Writes host bytes into a buffer, ordered after everything recorded so far. */
  write(dst: GPUBuffer, data: ArrayBufferView, dstOffset = 0): void {
    const bytes = Math.ceil(data.byteLength / 4) * 4;
    if (bytes === 0) return;
    this.captured?.push({ kind: "write", dst, dstOffset, bytes: data.byteLength });
    let src = new Uint8Array(data.buffer as ArrayBuffer, data.byteOffset, data.byteLength);
    if (!this.hasPendingWork) {
      // Dawn refuses views of shared memory (the wasm CPU backend's arrays live in one): copy those first.
      if (typeof SharedArrayBuffer !== "undefined" && data.buffer instanceof SharedArrayBuffer) src = src.slice();
      if (bytes === data.byteLength) this.device.queue.writeBuffer(dst, dstOffset, src);
      else {
        const padded = new Uint8Array(bytes);
        padded.set(src);
        this.device.queue.writeBuffer(dst, dstOffset, padded);
      }
      return;
    }
    // queue.writeBuffer would overtake the pending commands; stage the bytes and copy them in order instead.
    const staging = this.device.createBuffer({ size: bytes, usage: USAGE.COPY_SRC, mappedAtCreation: true });
    new Uint8Array(staging.getMappedRange()).set(src);
    staging.unmap();
    this.recordCopy(staging, 0, dst, dstOffset, bytes);
    this.doomed.push(staging);
  }

  /** Submits everything recorded. */
  flush(): void {
    if (this.pass) {
      this.pass.end();
      this.pass = null;
    }
    const ring = this.ring;
    // This batch's uniform slots, written just before the submit that reads them (in one or two pieces).
    const from = ring.batchStart, to = ring.head;
    if (to > from) {
      const a = from % ring.size;
      const b = to % ring.size;
      if (a < b) this.device.queue.writeBuffer(ring.buffer, a, ring.shadow, a, b - a);
      else {
        this.device.queue.writeBuffer(ring.buffer, a, ring.shadow, a, ring.size - a);
        if (b > 0) this.device.queue.writeBuffer(ring.buffer, 0, ring.shadow, 0, b);
      }
    }
    ring.batchStart = to;
    const afterSubmit = this.encoder && this.profiler ? this.profiler.resolveInto(this.encoder) : null;
    if (this.encoder) {
      this.device.queue.submit([this.encoder.finish()]);
      afterSubmit?.();
      this.submitCount++;
      this.encoder = null;
    }
    this.recorded = 0;
    const doomed = this.doomed;
    this.doomed = [];
    if (to === from && doomed.length === 0) return;
    this.device.queue.onSubmittedWorkDone().then(() => {
      // Submissions complete in order: every slot before `to` is free again.
      ring.tail = Math.max(ring.tail, to);
      for (const b of doomed) b.destroy();
    }, () => {});
  }

  /** Copies `bytes` of a buffer to the host (submits the pending work and waits for it). */
  async readBytes(src: GPUBuffer, bytes: number): Promise<ArrayBuffer> {
    const size = Math.max(4, Math.ceil(bytes / 4) * 4);
    const cls = sizeClass(size);
    const staging = this.stagingFree.get(cls)?.pop() ?? this.device.createBuffer({ size: cls, usage: USAGE.MAP_READ | USAGE.COPY_DST });
    if (this.captured) this.captureBroken = "a read";
    if (bytes > 0) this.recordCopy(src, 0, staging, 0, size);
    this.flush();
    await staging.mapAsync(MAP_READ, 0, size);
    const out = staging.getMappedRange(0, size).slice(0, bytes);
    staging.unmap();
    let list = this.stagingFree.get(cls);
    if (!list) {
      list = [];
      this.stagingFree.set(cls, list);
    }
    if (list.length < 4) list.push(staging);
    else staging.destroy();
    if (this.lost) throw new Error(`WebGPU device lost (${this.lost})`);
    if (this.errors.length) {
      const first = this.errors[0];
      this.errors = [];
      throw new Error(`WebGPU error: ${first}`);
    }
    return out;
  }

  /** Waits for all submitted work. */
  async sync(): Promise<void> {
    this.flush();
    await this.device.queue.onSubmittedWorkDone();
  }

  destroy(): void {
    this.flush();
    this.device.destroy();
  }
}
