import type { KernelSpec } from "../runtime.js";
import type { UnaryOp } from "../../backend.js";
import { ACTIVATIONS, bindType, eachOf, loadFn, MAIN_1D, squareTile, SUBGROUP_KERNEL, tileProduct, type TileShape, UNARY_EXPR, type WeightDType } from "./wgsl.js";

/**
 * out [M, N] = x [M, K] · w [N, K]ᵀ + bias, weights f32 or f16/bf16 packed in u32.
 *
 * - matvec (M ≤ MATVEC_ROWS, decoding): a 32-lane group per output column streams its weight row once,
 *   in 16-byte (f32) or 8-byte (f16/bf16) pieces when K % 4 = 0, for all M rows at once.
 * - tiled (larger M, prefill): BM×BN output tiles, BK-deep slices of x and w staged in workgroup memory,
 *   each thread accumulating a TM×TN block in registers (TileShape).
 */

export const MATVEC_ROWS = 8;
/** Rows the subgroup matvec takes, in blocks of MATVEC_ROWS (batched decoding). */
export const MATVEC_SG_ROWS = 64;
const GROUPS_PER_WG = 8;

export function matvecColumnsPerWorkgroup(): number {
  return GROUPS_PER_WG;
}

/** vec4 of weights at element k (multiple of 4) of the flat weight array. */
function loadW4(dtype: WeightDType): string {
  if (dtype === "f32") return "fn load_w4(e: u32) -> vec4<f32> { return w4[e / 4u]; }\n";
  if (dtype === "f16") {
    return `fn load_w4(e: u32) -> vec4<f32> {
  let q = w4[e / 4u];
  return vec4<f32>(unpack2x16float(q.x), unpack2x16float(q.y));
}\n`;
  }
  return `fn load_w4(e: u32) -> vec4<f32> {
  let q = w4[e / 4u];
  return vec4<f32>(bitcast<f32>(q.x << 16u), bitcast<f32>(q.x & 0xffff0000u), bitcast<f32>(q.y << 16u), bitcast<f32>(q.y & 0xffff0000u));
}\n`;
}

export function matvecSpec(dtype: WeightDType, rows: number, vec4: boolean): KernelSpec {
  const M = rows;
  const wType = vec4 ? (dtype === "f32" ? "vec4<f32>" : "vec2<u32>") : bindType(dtype);
  const accInit = Array.from({ length: M }, () => "0.0").join(", ");
  const inner = vec4
    ? `for (var k = lane * 4u; k < p.K; k = k + 128u) {
      let wv = load_w4(n * p.K + k);
      for (var m = 0u; m < ${M}u; m = m + 1u) { acc[m] = acc[m] + dot(wv, xv[(p.x_off + m * p.x_stride + k) / 4u]); }
    }`
    : `for (var k = lane; k < p.K; k = k + 32u) {
      let wv = load_w(n * p.K + k);
      for (var m = 0u; m < ${M}u; m = m + 1u) { acc[m] = acc[m] + wv * xv[p.x_off + m * p.x_stride + k]; }
    }`;
  return {
    key: `matvec-${dtype}-${M}-${vec4 ? "v4" : "s"}`,
    params: [["N", "u32"], ["K", "u32"], ["has_bias", "u32"], ["x_off", "u32"], ["x_stride", "u32"]],
    workgroupSize: 256,
    bindings: [
      { name: "xv", type: vec4 ? "vec4<f32>" : "f32" },
      { name: vec4 ? "w4" : "w", type: wType },
      { name: "bias", type: "f32" },
      { name: "out", type: "f32", write: true },
    ],
    body: `${vec4 ? loadW4(dtype) : loadFn("load_w", "w", dtype)}
var<workgroup> partial: array<f32, ${256 * M}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = lid / 32u;
  let lane = lid % 32u;
  let n = (wid.y * nwg.x + wid.x) * ${GROUPS_PER_WG}u + g;
  var acc = array<f32, ${M}>(${accInit});
  if (n < p.N) {
    ${inner}
  }
  for (var m = 0u; m < ${M}u; m = m + 1u) { partial[m * 256u + lid] = acc[m]; }
  workgroupBarrier();
  for (var s = 16u; s > 0u; s = s / 2u) {
    if (lane < s) {
      for (var m = 0u; m < ${M}u; m = m + 1u) { partial[m * 256u + lid] = partial[m * 256u + lid] + partial[m * 256u + lid + s]; }
    }
    workgroupBarrier();
  }
  if (lane == 0u && n < p.N) {
    var b = 0.0;
    if (p.has_bias != 0u) { b = bias[n]; }
    for (var m = 0u; m < ${M}u; m = m + 1u) { out[m * p.N + n] = partial[m * 256u + lid] + b; }
  }
}`,
  };
}

/**
 * The tiled kernel's shape for an M×N output: T×T per thread on 16×16 threads — 128×128 tiles for
 * prefill, 64×64 from 64 rows, and below 64 rows 32×32 (batched decoding's LM head on an H100: 190–200 µs
 * at 8–32 rows against 230 with 64×64 tiles) — except SKINNY_TILE for 33–64 rows of the LM head's width
 * (TILED_MIN_COLUMNS), or of any width with `skinnyAll`. GPU-only on an H100 (session 15, 64 rows,
 * 50,280 × 768): 188 µs against 230 with 64×64 tiles.
 */
export function tileFor(M: number, N: number, skinnyAll = false): TileShape {
  if (M > 32 && M <= 64 && (skinnyAll || N >= TILED_MIN_COLUMNS)) return SKINNY_TILE;
  return squareTile(M >= 256 && N >= 256 ? 8 : M >= 64 ? 4 : 2);
}

/**
 * 64×128 tiles, 8×8 per thread on 8×16 threads (128). A 4×4 block per thread (64×64 tiles) reads 8
 * words of workgroup memory per 16 multiply-adds, so those reads bound it at half the FMA rate; 8×8 reads
 * 16 per 64, as prefill's 128×128 tiles do, while 64 rows fill the tile.
 */
export const SKINNY_TILE: TileShape = { TM: 8, TN: 8, TY: 8, TX: 16 };

/** Whether a shape is the 128×128-tile prefill kernel's (see the backend's fuseActIntoLargeTiles). */
export const isLargeTile = (s: TileShape): boolean => s.TY === 16 && s.TX === 16 && s.TM === 8 && s.TN === 8;

/** Rows and columns of a shape's output tile. */
export const tileRows = (s: TileShape): number => s.TY * s.TM;
export const tileColumns = (s: TileShape): number => s.TX * s.TN;
/** Workgroups (x: column tiles, y: row tiles) covering an M×N output with tiles of this shape. */
export const tileGrid = (s: TileShape, M: number, N: number): [number, number] => [Math.ceil(N / tileColumns(s)), Math.ceil(M / tileRows(s))];

/**
 * Products this wide (the LM head) take the tiled kernel from TILED_WIDE_MIN_ROWS rows: the subgroup
 * matvec re-reads the weights once per 8 rows. GPU-only times on an H100 (session 11, `--micro-decode`,
 * 50,280 × 768): at 8 rows matvec 92 µs, tiled 212; 16 rows 176 / 222; 32 rows 335 / 216; 64 rows 657 / 229.
 * (Session 9 put the switch at 8 rows from timings that included recording each product on the host.)
 */
export const TILED_MIN_COLUMNS = 16384;
export const TILED_WIDE_MIN_ROWS = 32;

/**
 * Products of TILED_MIN_ROWS rows (batched decoding at 64 sequences) with TILED_BATCHED_MIN_COLUMNS
 * columns or more take the tiled kernel, K split where its tiles are few; narrower ones (x_proj's 80)
 * stay matvecs, and every product of more rows is tiled. H100, GPU-only, 64 rows (session 11): 3072 × 768
 * matvec 45 µs, split tiled 27–31; 768 × 1536 26 / 22.5; 80 × 1536 12.7 / 14–18. At 32 rows the two were
 * within 1 µs, so the switch is at 64.
 */
export const TILED_MIN_ROWS = MATVEC_SG_ROWS;
export const TILED_BATCHED_MIN_COLUMNS = 512;

/**
 * What the subgroup matvec computes its input from, on the fly (decoding; vec4 form only):
 * - "gated-norm": Mamba-2's gated RMSNorm of (x = y, z): v = y·silu(z), z a strided view;
 * - "add-rms-norm": RMSNorm of the residual sum v = x + b (b dense), which workgroup 0 also writes out.
 * The norms are over the whole row: Σv² is summed beside Σ w·(v·g) and the total scaled by its 1/rms at
 * the end. Every subgroup recomputes its input for each output column, so a prologue pays only where
 * that is cheap: a few loads per element, a single row (see the backend's addNorm). Measured on an H100
 * (session 8) and dropped: Mamba's conv step inside x_proj (each of x_proj's 80 columns recomputed the
 * conv of every channel: 122 µs per layer against 25 µs for the conv kernel alone) and LayerNorm's
 * (its mean and 1/σ found again by every workgroup of each of the three projections that read it).
 */
export type MatvecPrologue = "none" | "gated-norm" | "add-rms-norm";

/** WGSL: the input's 4 elements at (row, k), k a multiple of 4. */
function inputAt(prologue: MatvecPrologue): string {
  const x = "xv[(p.x_off + row * p.x_stride + k) / 4u]";
  if (prologue === "none") return `fn input_at(row: u32, k: u32) -> vec4<f32> { return ${x}; }`;
  if (prologue === "add-rms-norm") {
    return `fn input_at(row: u32, k: u32) -> vec4<f32> { return ${x} + bv4[(row * p.K + k) / 4u]; }`;
  }
  return `fn input_at(row: u32, k: u32) -> vec4<f32> {
  let zv = zv4[(p.z_off + row * p.z_stride + k) / 4u];
  return ${x} * zv / (vec4<f32>(1.0) + exp(-zv));
}`;
}

/** WGSL run by workgroup 0 of each block of rows first: the outputs a prologue also materialises. */
function writeOutputs(prologue: MatvecPrologue, M: number): string {
  if (prologue !== "add-rms-norm") return "";
  return `
  if (wg == 0u) {
    for (var m = 0u; m < ${M}u && m0 + m < p.M; m = m + 1u) {
      let row = m0 + m;
      for (var k4 = lid; k4 < p.K / 4u; k4 = k4 + 256u) { sum_out[row * p.K / 4u + k4] = input_at(row, 4u * k4); }
    }
  }`;
}

/**
 * The matvec with subgroup reductions (feature `subgroups`): each subgroup takes the output columns whose
 * marker invocation it holds (so no assumption about how invocations form subgroups), its lanes stream the weight row in 16- or 8-byte pieces and `subgroupAdd` sums them: no barriers.
 */
export function matvecSubgroupSpec(dtype: WeightDType, rows: number, vec4: boolean, prologue: MatvecPrologue = "none", act: UnaryOp | null = null): KernelSpec {
  const M = rows;
  const normed = prologue === "gated-norm" || prologue === "add-rms-norm";
  if (prologue !== "none" && !vec4) throw new Error(`matvecSubgroupSpec: the ${prologue} prologue needs the vec4 form`);
  const wType = vec4 ? (dtype === "f32" ? "vec4<f32>" : "vec2<u32>") : bindType(dtype);
  const accInit = Array.from({ length: M }, () => "0.0").join(", ");
  const row = "min(m0 + m, p.M - 1u)";
  const step = (k: string) => normed
    ? `for (var m = 0u; m < ${M}u; m = m + 1u) {
          let v = input_at(${row}, ${k});
          ss[m] = ss[m] + dot(v, v);
          acc[m] = acc[m] + dot(w_${k}, v * gv4[${k} / 4u]);
        }`
    : `for (var m = 0u; m < ${M}u; m = m + 1u) { acc[m] = acc[m] + dot(w_${k}, input_at(${row}, ${k})); }`;
  // Four weight loads issued before their products: a 768- or 1536-long row is only 6–12 steps of a
  // subgroup, and one load in flight per step leaves the row's time to memory latency.
  const inner = vec4
    ? `var k = lane * 4u;
      let s4 = sgs * 4u;
      for (; k + 3u * s4 < p.K; k = k + 4u * s4) {
        let k1 = k + s4;
        let k2 = k1 + s4;
        let k3 = k2 + s4;
        let w_k = load_w4(n * p.K + k);
        let w_k1 = load_w4(n * p.K + k1);
        let w_k2 = load_w4(n * p.K + k2);
        let w_k3 = load_w4(n * p.K + k3);
        ${step("k")}
        ${step("k1")}
        ${step("k2")}
        ${step("k3")}
      }
      for (; k < p.K; k = k + s4) {
        let w_k = load_w4(n * p.K + k);
        ${step("k")}
      }`
    : `for (var k = lane; k < p.K; k = k + sgs) {
        let wv = load_w(n * p.K + k);
        for (var m = 0u; m < ${M}u; m = m + 1u) { acc[m] = acc[m] + wv * xv[p.x_off + ${row} * p.x_stride + k]; }
      }`;
  const total = normed ? "subgroupAdd(acc[m]) * inverseSqrt(subgroupAdd(ss[m]) / f32(p.K) + p.eps)" : "subgroupAdd(acc[m])";
  return {
    key: `matvec-sg-${dtype}-${M}-${vec4 ? "v4" : "s"}${prologue !== "none" ? `-${prologue}` : ""}${act ? `-${act}` : ""}`,
    params: [
      ["N", "u32"], ["K", "u32"], ["has_bias", "u32"], ["x_off", "u32"], ["x_stride", "u32"], ["M", "u32"],
      ...(prologue === "gated-norm" ? [["z_off", "u32"], ["z_stride", "u32"]] as const : []),
      ...(normed ? [["eps", "f32"]] as const : []),
    ],
    workgroupSize: 256,
    bindings: [
      { name: "xv", type: vec4 ? "vec4<f32>" : "f32" },
      ...(prologue === "gated-norm" ? [{ name: "zv4", type: "vec4<f32>" }] as const : []),
      ...(prologue === "add-rms-norm" ? [{ name: "bv4", type: "vec4<f32>" }] as const : []),
      ...(normed ? [{ name: "gv4", type: "vec4<f32>" }] as const : []),
      { name: vec4 ? "w4" : "w", type: wType },
      { name: "bias", type: "f32" },
      { name: "out", type: "f32", write: true },
      ...(prologue === "add-rms-norm" ? [{ name: "sum_out", type: "vec4<f32>", write: true }] as const : []),
    ],
    ...SUBGROUP_KERNEL,
    body: `${vec4 ? loadW4(dtype) : loadFn("load_w", "w", dtype)}
${vec4 ? inputAt(prologue) : ""}
${activation(act)}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) lane: u32) {
  // Columns in blocks along x; rows of x in blocks of ${M} along y (batched decoding).
  let wg = wid.x;
  let m0 = wid.y * ${M}u;${writeOutputs(prologue, M)}
  for (var r = 0u; r < ${GROUPS_PER_WG}u; r = r + 1u) {
    // Row r belongs to the subgroup holding invocation r·(256 / rows): exactly one, however the
    // invocations are grouped.
    if (!subgroupAny(lid == r * ${256 / GROUPS_PER_WG}u)) { continue; }
    let n = wg * ${GROUPS_PER_WG}u + r;
    if (n >= p.N) { break; }
    var acc = array<f32, ${M}>(${accInit});${normed ? `\n    var ss = array<f32, ${M}>(${accInit});` : ""}
    ${inner}
    var b = 0.0;
    if (p.has_bias != 0u) { b = bias[n]; }
    for (var m = 0u; m < ${M}u; m = m + 1u) {
      let total = ${total};
      if (lane == 0u && m0 + m < p.M) { out[(m0 + m) * p.N + n] = act(total + b); }
    }
  }
}`,
  };
}

/** Depth of the K slices the tiled kernel stages in workgroup memory. */
export const MATMUL_BK = 16;

/** What a tiled kernel (matmulSpec) does besides the product. */
export interface MatmulOptions {
  /** Sum one K slice per workgroup z into partials (splitKSumSpec adds them). */
  splitK?: boolean;
  /** The unary op applied where the sum ends (not with splitK: the sum kernel applies it). */
  act?: UnaryOp | null;
  prologue?: MatvecPrologue;
}

/** The kernel key of matmulSpec(dtype, shape, options): square 16×16-thread shapes by their T alone. */
export function matmulKey(dtype: WeightDType, shape: TileShape, o: MatmulOptions = {}): string {
  const prologue = o.prologue ?? "none";
  const { TM, TN, TY, TX } = shape;
  const name = TM === TN && TY === 16 && TX === 16 ? `${TM}` : `${TM}x${TN}-${TY}x${TX}`;
  return `matmul-${dtype}-${name}${o.splitK ? "-sk" : ""}${o.act && !o.splitK ? `-${o.act}` : ""}${prologue !== "none" ? `-${prologue}` : ""}`;
}

/**
 * The tiled kernel. With `splitK`, workgroup z of the grid sums only K slice [z·k_chunk, (z + 1)·k_chunk)
 * and writes its partial product, without bias, to out[z] ([splits, M, N]); splitKSumSpec adds the
 * partials. For few rows (batched decoding) the output alone has too few tiles to fill the GPU.
 *
 * With a norm `prologue` (see MatvecPrologue) the kernel reads the norm's inputs and stages g·v, v the
 * un-normed row (y·silu(z), or the residual sum a + b, which the workgroups of tile column 0 also write
 * to sum_out). A row's 1/rms is a scale of the whole row, so it comes out of the sum over K: each
 * workgroup also sums v² over its rows and K range, and the tile's store (or, split, the sum of the
 * partials, from the rows' Σv² partials in ss[z, m]) multiplies by 1/rms. The norm needs no pass of its
 * own and its output is never written.
 */
export function matmulSpec(dtype: WeightDType, shape: TileShape, o: MatmulOptions = {}): KernelSpec {
  const splitK = o.splitK ?? false;
  const act = splitK ? null : o.act ?? null;
  const prologue = o.prologue ?? "none";
  const { TM, TN, TY, TX } = shape;
  const threads = TY * TX;
  const BM = tileRows(shape);
  const BN = tileColumns(shape);
  const BK = MATMUL_BK;
  const loadsA = (BM * BK) / threads;
  const loadsB = (BN * BK) / threads;
  if (!Number.isInteger(loadsA) || !Number.isInteger(loadsB) || threads % BK !== 0) {
    throw new Error(`matmulSpec: tile ${BM}×${BN} on ${TY}×${TX} threads does not stage in whole loads per thread`);
  }
  const normed = prologue !== "none";
  // One K slice staged by `loads` passes of all threads: thread lid's pass l takes slice column c of tile
  // row or column r (neighbouring threads read neighbouring k).
  const staging = (loads: number, body: string) => `for (var l = 0u; l < ${loads}u; l = l + 1u) {
      let idx = lid + l * ${threads}u;
      let r = idx / BK;
      let c = idx % BK;
      let k = k0 + c;
      ${body}
    }`;
  const kRange = splitK
    ? `let k_begin = wid.z * p.k_chunk;
  let k_end = min(p.K, k_begin + p.k_chunk);`
    : `let k_begin = 0u;
  let k_end = p.K;`;
  // The store is unrolled, every acc index a constant. As a loop with an activation (gelu_tanh) in its
  // body, the 8×8 kernel ran 25× slower on an H100 (session 14: H3-125M's fc1 at 8192 rows 33 ms against
  // 1.3), most likely because the compiler kept the loop and so put acc, indexed dynamically, in local
  // memory for the whole kernel.
  const storeOne = (i: number, j: number) => {
    const value = `acc[${i}][${j}]`;
    const write = splitK
      ? `out[(wid.z * p.M + m) * p.N + n] = ${value};`
      : `var b = 0.0;
      if (p.has_bias != 0u) { b = bias[n]; }
      out[m * p.N + n] = act(${normed ? `${value} * rstd[${i}]` : value} + b);`;
    return `{ let n = n0 + tx + ${TX * j}u;
      if (n < p.N) {
      ${write}
    } }`;
  };
  const store = eachOf(TM, (i) => `{ let m = m0 + ty + ${TY * i}u;
    if (m < p.M) {
    ${eachOf(TN, (j) => storeOne(i, j))}
  } }`);
  const x = "xv[p.x_off + row * p.x_stride + k]";
  const staged = prologue === "none" ? `a = ${x};`
    : `let v = ${prologue === "gated-norm" ? `silu_gate(${x}, zv[p.z_off + row * p.z_stride + k])` : `${x} + bv[row * p.K + k]`};${
      prologue === "add-rms-norm" ? "\n        if (wid.x == 0u) { sum_out[row * p.K + k] = v; }" : ""}
        ssq[l] = ssq[l] + v * v;
        a = gv[k] * v;`;
  // Σv² of each row: load slot l of thread lid summed row lid/BK + l·(threads/BK) over the columns
  // k ≡ lid (mod BK) of each slice; As is free once the K loop has ended (its last barrier).
  const rowNorms = normed ? `
  for (var l = 0u; l < ${loadsA}u; l = l + 1u) { As[(lid / BK + ${threads / BK}u * l) * BK + lid % BK] = ssq[l]; }
  workgroupBarrier();
  var rstd: array<f32, ${TM}>;
  ${eachOf(TM, (i) => `{
    var t = 0.0;
    for (var c = 0u; c < BK; c = c + 1u) { t = t + As[(ty + ${TY * i}u) * BK + c]; }
    ${splitK ? `let m = m0 + ty + ${TY * i}u;
    if (wid.x == 0u && tx == 0u && m < p.M) { ss[wid.z * p.M + m] = t; }` : `rstd[${i}] = inverseSqrt(t / f32(p.K) + p.eps);`}
  }`)}` : "";
  return {
    key: matmulKey(dtype, shape, o),
    params: [
      ["M", "u32"], ["N", "u32"], ["K", "u32"], ["has_bias", "u32"], ["x_off", "u32"], ["x_stride", "u32"],
      ...(splitK ? [["k_chunk", "u32"]] as const : []),
      ...(prologue === "gated-norm" ? [["z_off", "u32"], ["z_stride", "u32"]] as const : []),
      ...(normed ? [["eps", "f32"]] as const : []),
    ],
    workgroupSize: threads,
    bindings: [
      { name: "xv", type: "f32" },
      ...(prologue === "gated-norm" ? [{ name: "zv", type: "f32" }] as const : []),
      ...(prologue === "add-rms-norm" ? [{ name: "bv", type: "f32" }] as const : []),
      ...(normed ? [{ name: "gv", type: "f32" }] as const : []),
      { name: "w", type: bindType(dtype) },
      { name: "bias", type: "f32" },
      { name: "out", type: "f32", write: true },
      ...(prologue === "add-rms-norm" ? [{ name: "sum_out", type: "f32", write: true }] as const : []),
      ...(normed && splitK ? [{ name: "ss", type: "f32", write: true }] as const : []),
    ],
    body: `${loadFn("load_w", "w", dtype)}
${splitK ? "" : activation(act)}
${prologue === "gated-norm" ? "fn silu_gate(y: f32, z: f32) -> f32 { return y * z / (1.0 + exp(-z)); }" : ""}
const BM: u32 = ${BM}u;
const BN: u32 = ${BN}u;
const BK: u32 = ${BK}u;
const BMP: u32 = ${BM + 1}u;
const BNP: u32 = ${BN + 1}u;
var<workgroup> As: array<f32, ${BK * (BM + 1)}>;
var<workgroup> Bs: array<f32, ${BK * (BN + 1)}>;
@compute @workgroup_size(${threads})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let m0 = wid.y * BM;
  let n0 = wid.x * BN;
  let tx = lid % ${TX}u;
  let ty = lid / ${TX}u;
  var acc: array<array<f32, ${TN}>, ${TM}>; // zero-initialised, as every WGSL var${normed ? `
  var ssq: array<f32, ${loadsA}>;` : ""}
  ${kRange}
  for (var k0 = k_begin; k0 < k_end; k0 = k0 + BK) {
    ${staging(loadsA, `var a = 0.0;
      if (m0 + r < p.M && k < k_end) {
        let row = m0 + r;
        ${staged}
      }
      As[c * BMP + r] = a;`)}
    ${staging(loadsB, `var b = 0.0;
      if (n0 + r < p.N && k < k_end) { b = load_w((n0 + r) * p.K + k); }
      Bs[c * BNP + r] = b;`)}
    workgroupBarrier();
    ${tileProduct(shape)}
    workgroupBarrier();
  }${rowNorms}
  ${store}
}`,
  };
}

/**
 * Workgroups a split-K product aims for: a few per multiprocessor of a large GPU (an H100 has 132). On an
 * H200 (session 10, with the interleaved tiles of tileProduct, against neither, same call) prefill 512 of
 * mamba-130m and H3-125M went from 35.6 to 23.4 and from 25.9 to 18.4 ms; at 2048 tokens mamba-130m
 * 39.8 → 37.5 ms but H3-125M 33.7 → 41.0 ms (its 768-wide products have 96 tiles at 2048 rows, split 3 ways).
 */
const SPLIT_K_TARGET_WORKGROUPS = 264;
/** K steps (MATMUL_BK each) a split-K slice keeps at least: shorter slices cost more in partials than they gain. */
const SPLIT_K_MIN_STEPS = 4;

/** K slices for the tiled kernel of this shape on an M×N×K product: { splits, kChunk } (splits 1: no split). */
export function splitKFor(M: number, N: number, K: number, shape: TileShape): { splits: number; kChunk: number } {
  const [columnTiles, rowTiles] = tileGrid(shape, M, N);
  const tiles = columnTiles * rowTiles;
  const most = Math.max(1, Math.floor(K / (SPLIT_K_MIN_STEPS * MATMUL_BK)));
  return kSlices(K, Math.min(most, Math.max(1, Math.round(SPLIT_K_TARGET_WORKGROUPS / tiles))));
}

/** K cut into about `wanted` slices of whole MATMUL_BK steps: { splits, kChunk } (the last slice may be short). */
export function kSlices(K: number, wanted: number): { splits: number; kChunk: number } {
  const kChunk = Math.ceil(K / wanted / MATMUL_BK) * MATMUL_BK;
  return { splits: Math.ceil(K / kChunk), kChunk };
}

/** The kernel key of splitKSumSpec(act, normed). */
export function splitKSumKey(act: UnaryOp | null = null, normed = false): string {
  return `splitk-sum${act ? `-${act}` : ""}${normed ? "-normed" : ""}`;
}

/**
 * out[m, n] = act(bias[n] + Σ_z part[z, m, n]): the split-K partials of matmulSpec summed; `normed`, the
 * sum scaled by row m's 1/rms from its Σv² partials ss[z, m] (a norm prologue's).
 */
export function splitKSumSpec(act: UnaryOp | null = null, normed = false): KernelSpec {
  return {
    key: splitKSumKey(act, normed),
    params: [["n", "u32"], ["N", "u32"], ["splits", "u32"], ["has_bias", "u32"], ...(normed ? [["K", "u32"], ["eps", "f32"]] as const : [])],
    workgroupSize: 256,
    bindings: [
      { name: "part", type: "f32" }, { name: "bias", type: "f32" },
      ...(normed ? [{ name: "ss", type: "f32" }] as const : []),
      { name: "out", type: "f32", write: true },
    ],
    body: `${activation(act)}
${MAIN_1D}
  if (i >= p.n) { return; }
  var s = 0.0;
  for (var z = 0u; z < p.splits; z = z + 1u) { s = s + part[z * p.n + i]; }${normed ? `
  let M = p.n / p.N;
  let m = i / p.N;
  var t = 0.0;
  for (var z = 0u; z < p.splits; z = z + 1u) { t = t + ss[z * M + m]; }
  s = s * inverseSqrt(t / f32(p.K) + p.eps);` : ""}
  if (p.has_bias != 0u) { s = s + bias[i % p.N]; }
  out[i] = act(s);
}`,
  };
}

/** WGSL `fn act(x: f32) -> f32`: the unary op a product ends with (identity for none). */
function activation(op: UnaryOp | null): string {
  return op ? `${ACTIVATIONS}\nfn act(x: f32) -> f32 { return ${UNARY_EXPR[op]}; }` : "fn act(x: f32) -> f32 { return x; }";
}

