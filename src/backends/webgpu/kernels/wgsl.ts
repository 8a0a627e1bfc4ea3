/** WGSL pieces shared by the kernels, and the 1-D grid convention. */

export const WG = 256;

/** Workgroup counts covering n threads of `wg` each: x up to 65535, the rest in y. */
export function grid(n: number, wg = WG): [number, number] {
  const groups = Math.ceil(n / wg);
  if (groups <= 65535) return [groups, 1];
  const y = Math.ceil(groups / 65535);
  return [Math.ceil(groups / y), y];
}

/** block_sum(v, lid): Σ of v over a 256-thread workgroup (every thread must call it, in uniform control flow). */
export const BLOCK_SUM = `
var<workgroup> red: array<f32, 256>;
fn block_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s / 2u) {
    if (lid < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let total = red[0];
  workgroupBarrier();
  return total;
}
`;

/**
 * A register-tiled matmul's shape: TY×TX threads, thread (tx, ty) accumulating TM rows × TN columns of a
 * BM = TY·TM by BN = TX·TN output tile.
 */
export interface TileShape { TM: number; TN: number; TY: number; TX: number }

/** TM = TN = T per thread on 16×16 threads (tiles of 16T × 16T). */
export const squareTile = (T: number): TileShape => ({ TM: T, TN: T, TY: 16, TX: 16 });

/**
 * The inner product of a register-tiled matmul: for each of BK slices staged in workgroup memory (As
 * [BK][BMP], Bs [BK][BNP]), thread (tx, ty) accumulates acc[i][j] += As[k][ty + TY·i] · Bs[k][tx + TX·j]:
 * its rows and columns interleaved with the other threads', so the 16 threads of a row read 16
 * consecutive words (no bank conflicts; a block of T per thread put 16 reads on 16/T banks) and write
 * consecutive outputs. Unrolled over the thread's registers (constant indices).
 */
export function tileProduct(shape: TileShape): string {
  const { TM, TN, TY, TX } = shape;
  return `for (var kk = 0u; kk < BK; kk = kk + 1u) {
      ${eachOf(TM, (i) => `let a${i} = As[kk * BMP + ty + ${TY * i}u];`)}
      ${eachOf(TN, (j) => `let b${j} = Bs[kk * BNP + tx + ${TX * j}u];`)}
      ${eachOf(TM, (i) => eachOf(TN, (j) => `acc[${i}][${j}] = fma(a${i}, b${j}, acc[${i}][${j}]);`))}
    }`;
}

/** Entry point of a 1-D kernel: `i` is the flat thread index (the body must bound-check it). */
export const MAIN_1D = `@compute @workgroup_size(WG_X)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * WG_X + lid;`;

/**
 * Entry point of a 256-invocation kernel whose workgroup serves `slots` work items with subgroup
 * operations: slot s belongs to the subgroup holding invocation s·256/slots (no assumption about how
 * invocations form subgroups; a subgroup holding several markers takes their slots in turn). The loop body
 * that follows runs once per owned slot, with the item's global index `i`, `lane` and the subgroup size
 * `sgs` in scope; `count` bounds i. The caller closes the loop and the function (two braces).
 */
export function subgroupSlotsMain(slots: number, count: string): string {
  return `@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32,
        @builtin(subgroup_size) sgs: u32, @builtin(subgroup_invocation_id) lane: u32) {
  for (var slot = 0u; slot < ${slots}u; slot = slot + 1u) {
    if (!subgroupAny(lid == slot * ${256 / slots}u)) { continue; }
    let i = (wid.y * nwg.x + wid.x) * ${slots}u + slot;
    if (i >= ${count}) { break; }`;
}

/** The KernelSpec fields a kernel using subgroup operations needs. */
export const SUBGROUP_KERNEL = { enables: ["subgroups"], directives: ["diagnostic(off, subgroup_uniformity)"] };

/** Storage dtypes a weight may have: f32, or f16/bf16 packed two per u32. */
export type WeightDType = "f32" | "f16" | "bf16";

/** `fn ${fn}(i: u32) -> f32` reading element i of array `arr` stored as `dtype`. */
export function loadFn(fn: string, arr: string, dtype: WeightDType): string {
  if (dtype === "f32") return `fn ${fn}(i: u32) -> f32 { return ${arr}[i]; }\n`;
  if (dtype === "f16") return `fn ${fn}(i: u32) -> f32 { return unpack2x16float(${arr}[i >> 1u])[i & 1u]; }\n`;
  return `fn ${fn}(i: u32) -> f32 {
  let w = ${arr}[i >> 1u];
  return bitcast<f32>(select(w << 16u, w & 0xffff0000u, (i & 1u) == 1u));
}\n`;
}

/** Binding element type of a tensor of this dtype. */
export function bindType(dtype: WeightDType): "f32" | "u32" {
  return dtype === "f32" ? "f32" : "u32";
}

/**
 * Activations in f32. softplus follows torch (threshold 20) with log1p done by hand; GELU uses an erfc
 * with relative error below 1.2e-7 (Numerical Recipes' erfcc), so the negative tail keeps its precision.
 */
export const SOFTPLUS = `
fn softplus(x: f32) -> f32 {
  if (x > 20.0) { return x; }
  let e = exp(x);
  if (e < 1e-4) { return e * (1.0 - 0.5 * e); }
  return log(1.0 + e);
}
`;

export const ACTIVATIONS = `
fn silu(x: f32) -> f32 { return x / (1.0 + exp(-x)); }
${SOFTPLUS}
fn erfc_pos(z: f32) -> f32 {
  let t = 1.0 / (1.0 + 0.5 * z);
  let poly = -z * z - 1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (-0.18628806 +
    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return t * exp(poly);
}
fn erfc_f(z: f32) -> f32 {
  if (z >= 0.0) { return erfc_pos(z); }
  return 2.0 - erfc_pos(-z);
}
fn gelu(x: f32) -> f32 { return 0.5 * x * erfc_f(-x * 0.70710678118654752); }
fn gelu_tanh(x: f32) -> f32 {
  let u = clamp(0.7978845608028654 * (x + 0.044715 * x * x * x), -15.0, 15.0);
  return 0.5 * x * (1.0 + tanh(u));
}
`;

/** WGSL expression of a unary op applied to `x`. */
export const UNARY_EXPR: Record<string, string> = {
  silu: "silu(x)",
  softplus: "softplus(x)",
  exp: "exp(x)",
  neg: "-x",
  gelu: "gelu(x)",
  relu: "max(x, 0.0)",
  relu2: "select(0.0, x * x, x > 0.0)",
  gelu_tanh: "gelu_tanh(x)",
};

/**
 * sin and cos to f32 accuracy whatever the driver's builtins promise (Vulkan allows 2^-11 absolute error):
 * Cody–Waite reduction by π/2, then polynomials on [-π/4, π/4]. Returns (sin, cos). Also expm1.
 */
export const SINCOS = `
fn sincos(a: f32) -> vec2<f32> {
  // a = k·π/2 + r with |r| ≤ π/4; π/2 split Cody–Waite style into parts of at most 9 significant bits, so
  // that k·part is exact for k < 2^15 without a fused multiply-add (positions up to about 50 000).
  let k = round(a * 0.63661977236758134);
  var r = a - k * 1.5703125;
  r = r - k * 4.8351287841796875e-4;
  r = r - k * 3.13855707645416259765625e-7;
  r = r - k * 6.077100506506192e-11;
  let r2 = r * r;
  let s = r * (1.0 + r2 * (-1.6666666666666666e-1 + r2 * (8.3333333333333333e-3 + r2 * (-1.9841269841269841e-4 + r2 * 2.7557319223985891e-6))));
  let c = 1.0 + r2 * (-0.5 + r2 * (4.1666666666666667e-2 + r2 * (-1.3888888888888889e-3 + r2 * (2.4801587301587302e-5 - r2 * 2.7557319223985891e-7))));
  let q = i32(k) & 3;
  if (q == 0) { return vec2<f32>(s, c); }
  if (q == 1) { return vec2<f32>(c, -s); }
  if (q == 2) { return vec2<f32>(-s, -c); }
  return vec2<f32>(-c, s);
}

fn expm1_f(x: f32) -> f32 {
  if (abs(x) < 0.25) {
    return x * (1.0 + x * (0.5 + x * (1.6666666666666666e-1 + x * (4.1666666666666664e-2 + x * (8.3333333333333332e-3 +
      x * (1.3888888888888889e-3 + x * (1.9841269841269841e-4 + x * 2.4801587301587302e-5)))))));
  }
  return exp(x) - 1.0;
}
`;

/** vec4 component names, for kernels whose 4×4 register blocks are written out by the generator. */
export const LANES = ["x", "y", "z", "w"] as const;
/** The lines f(0) … f(n - 1): a loop over registers, unrolled when the WGSL is generated. */
export const eachOf = (n: number, f: (i: number) => string): string => Array.from({ length: n }, (_, i) => f(i)).join("\n");
/** eachOf over a 4-wide register block. */
export const each4 = (f: (i: number) => string): string => eachOf(4, f);
