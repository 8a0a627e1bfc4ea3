import type { KernelSpec } from "../runtime.js";
import { MAIN_1D, SOFTPLUS } from "./wgsl.js";

/**
 * Mamba's selective scan, chunked over time (reduce, then scan, then re-run; no workgroup waits on another):
 *   1. local:  per (batch, chunk, channel), the state a chunk reaches from zero, and Σ Δ over the chunk;
 *   2. carry:  per (batch, channel, state entry), a short sequential pass over the chunks turns local
 *              states into the state entering each chunk: h_in[c+1] = exp(A·ΣΔ_c)·h_in[c] + local_c;
 *   3. output: per (batch, chunk, channel), the chunk again from its entering state, writing y (with D skip
 *              and silu(z) gate) and, for the last chunk, the final state.
 * A single chunk (short prompts, the decoding step) is pass 3 alone, entering from the carried state.
 * Packed `de` holds [D (E), Δ bias (E)].
 */

const COMMON = `
${SOFTPLUS}
fn delta_at(row: u32, e: u32) -> f32 {
  var d = delta[p.d_off + row * p.d_stride + e];
  if (p.has_dbias != 0u) { d = d + de[p.E + e]; }
  if (p.softplus != 0u) { d = softplus(d); }
  return d;
}
`;

const PARAMS = [
  ["B", "u32"], ["L", "u32"], ["E", "u32"], ["chunk", "u32"], ["n_chunks", "u32"], ["has_dbias", "u32"], ["softplus", "u32"],
  // Inputs may be column slices of wider rows (zero-copy views): element (row, col) at off + row·stride + col.
  ["u_off", "u32"], ["u_stride", "u32"], ["d_off", "u32"], ["d_stride", "u32"], ["b_off", "u32"], ["b_stride", "u32"],
  ["c_off", "u32"], ["c_stride", "u32"], ["z_off", "u32"], ["z_stride", "u32"],
] as const;

/**
 * The N state entries of a channel live in registers: for N ≤ 32 the per-entry code is written out (scalar
 * variables, so no compiler has to guess that an indexed array fits in registers); above, arrays and loops.
 */
function perEntry(N: number, line: (n: string) => string, arrays: string): string {
  if (N <= 32) return Array.from({ length: N }, (_, n) => line(`${n}`)).join("\n");
  return `for (var n = 0u; n < ${N}u; n = n + 1u) { ${arrays} }`;
}

/** Declarations of the state and decay entries: scalars h0, a0, … when written out, else arrays. */
function names(N: number): { decl: string } {
  if (N <= 32) return { decl: Array.from({ length: N }, (_, n) => `var h${n} = 0.0; var a${n} = 0.0;`).join("\n  ") };
  return { decl: `var h: array<f32, ${N}>; var a: array<f32, ${N}>;` };
}

export function scanLocalSpec(N: number): KernelSpec {
  const v = names(N);
  const H = (n: string) => (N <= 32 ? `h${n}` : `h[${n}]`);
  const A_ = (n: string) => (N <= 32 ? `a${n}` : `a[${n}]`);
  return {
    key: `scan-local-${N}`, params: PARAMS, workgroupSize: 64,
    bindings: [
      { name: "u", type: "f32" }, { name: "delta", type: "f32" }, { name: "A", type: "f32" }, { name: "Bm", type: "f32" },
      { name: "de", type: "f32" }, { name: "h_local", type: "f32", write: true }, { name: "sum_delta", type: "f32", write: true },
    ],
    body: `${COMMON}
const N: u32 = ${N}u;
${MAIN_1D}
  if (i >= p.B * p.n_chunks * p.E) { return; }
  let e = i % p.E;
  let c = (i / p.E) % p.n_chunks;
  let b = i / (p.E * p.n_chunks);
  ${v.decl}
  ${perEntry(N, (n) => `${A_(n)} = A[e * N + ${n}u]; ${H(n)} = 0.0;`, `${A_("n")} = A[e * N + n]; ${H("n")} = 0.0;`)}
  var total = 0.0;
  let t1 = min(p.L, (c + 1u) * p.chunk);
  for (var t = c * p.chunk; t < t1; t = t + 1u) {
    let row = b * p.L + t;
    let d = delta_at(row, e);
    let du = d * u[p.u_off + row * p.u_stride + e];
    let bb = p.b_off + row * p.b_stride;
    total = total + d;
    ${perEntry(N, (n) => `${H(n)} = exp(d * ${A_(n)}) * ${H(n)} + du * Bm[bb + ${n}u];`, `${H("n")} = exp(d * ${A_("n")}) * ${H("n")} + du * Bm[bb + n];`)}
  }
  ${perEntry(N, (n) => `h_local[i * N + ${n}u] = ${H(n)};`, `h_local[i * N + n] = ${H("n")};`)}
  sum_delta[i] = total;
}`,
  };
}

export function scanCarrySpec(): KernelSpec {
  return {
    key: "scan-carry", params: [["B", "u32"], ["E", "u32"], ["N", "u32"], ["n_chunks", "u32"], ["has_state", "u32"]], workgroupSize: 256,
    bindings: [{ name: "A", type: "f32" }, { name: "sum_delta", type: "f32" }, { name: "state", type: "f32" }, { name: "h", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.B * p.E * p.N) { return; }
  let n = i % p.N;
  let e = (i / p.N) % p.E;
  let b = i / (p.N * p.E);
  var carry = 0.0;
  if (p.has_state != 0u) { carry = state[i]; }
  let a = A[e * p.N + n];
  for (var c = 0u; c < p.n_chunks; c = c + 1u) {
    let at = ((b * p.n_chunks + c) * p.E + e) * p.N + n;
    let loc = h[at];
    h[at] = carry;
    carry = exp(a * sum_delta[(b * p.n_chunks + c) * p.E + e]) * carry + loc;
  }
}`,
  };
}

export function scanOutputSpec(N: number): KernelSpec {
  const v = names(N);
  const H = (n: string) => (N <= 32 ? `h${n}` : `h[${n}]`);
  const A_ = (n: string) => (N <= 32 ? `a${n}` : `a[${n}]`);
  return {
    key: `scan-output-${N}`,
    params: [...PARAMS, ["has_h", "u32"], ["has_d", "u32"], ["has_z", "u32"]],
    workgroupSize: 64,
    bindings: [
      { name: "u", type: "f32" }, { name: "delta", type: "f32" }, { name: "A", type: "f32" }, { name: "Bm", type: "f32" },
      { name: "Cm", type: "f32" }, { name: "de", type: "f32" }, { name: "z", type: "f32" }, { name: "h_in", type: "f32" },
      { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `${COMMON}
const N: u32 = ${N}u;
${MAIN_1D}
  if (i >= p.B * p.n_chunks * p.E) { return; }
  let e = i % p.E;
  let c = (i / p.E) % p.n_chunks;
  let b = i / (p.E * p.n_chunks);
  ${v.decl}
  ${perEntry(N, (n) => `${A_(n)} = A[e * N + ${n}u];`, `${A_("n")} = A[e * N + n]; ${H("n")} = 0.0;`)}
  if (p.has_h != 0u) {
    ${perEntry(N, (n) => `${H(n)} = h_in[i * N + ${n}u];`, `${H("n")} = h_in[i * N + n];`)}
  }
  var dskip = 0.0;
  if (p.has_d != 0u) { dskip = de[e]; }
  let t1 = min(p.L, (c + 1u) * p.chunk);
  for (var t = c * p.chunk; t < t1; t = t + 1u) {
    let row = b * p.L + t;
    let d = delta_at(row, e);
    let ue = u[p.u_off + row * p.u_stride + e];
    let du = d * ue;
    let bb = p.b_off + row * p.b_stride;
    let cb = p.c_off + row * p.c_stride;
    var acc = 0.0;
    ${perEntry(N, (n) => `${H(n)} = exp(d * ${A_(n)}) * ${H(n)} + du * Bm[bb + ${n}u]; acc = acc + ${H(n)} * Cm[cb + ${n}u];`,
      `${H("n")} = exp(d * ${A_("n")}) * ${H("n")} + du * Bm[bb + n]; acc = acc + ${H("n")} * Cm[cb + n];`)}
    acc = acc + dskip * ue;
    if (p.has_z != 0u) { let zz = z[p.z_off + row * p.z_stride + e]; acc = acc * (zz / (1.0 + exp(-zz))); }
    y[row * p.E + e] = acc;
  }
  if (c == p.n_chunks - 1u) {
    ${perEntry(N, (n) => `state_out[(b * p.E + e) * N + ${n}u] = ${H(n)};`, `state_out[(b * p.E + e) * N + n] = ${H("n")};`)}
  }
}`,
  };
}

/**
 * One decoding step of the selective scan with dt_proj inside: 16 threads share a channel (b, e) and form
 * its time step from the low-rank input (delta = Σ_r low[r]·W[e][r], then bias and softplus), each thread
 * taking every 16th term, then every 16th of its N states; both sums are reduced in workgroup memory. (One
 * thread per channel walked R + N loads in a row, a chain of memory latencies.) The low-rank delta, B and
 * C are column ranges of one buffer (x_proj's output), so the kernel needs no more bindings than the
 * unfused one. 16 channels per 256-thread workgroup.
 */
export function scanStepProjSpec(): KernelSpec {
  return {
    key: "scan-step-proj",
    params: [
      ["B", "u32"], ["E", "u32"], ["N", "u32"], ["R", "u32"], ["has_dbias", "u32"], ["softplus", "u32"], ["has_d", "u32"],
      ["has_z", "u32"], ["has_state", "u32"], ["u_off", "u32"], ["u_stride", "u32"], ["d_off", "u32"], ["d_stride", "u32"],
      ["b_off", "u32"], ["b_stride", "u32"], ["c_off", "u32"], ["c_stride", "u32"], ["z_off", "u32"], ["z_stride", "u32"],
    ],
    workgroupSize: 256,
    bindings: [
      { name: "u", type: "f32" }, { name: "dbc", type: "f32" }, { name: "A", type: "f32" }, { name: "de", type: "f32" },
      { name: "w", type: "f32" }, { name: "z", type: "f32" }, { name: "state", type: "f32" },
      { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `
${SOFTPLUS}
var<workgroup> part: array<f32, 256>;
// The 16 partial sums of this thread's channel, summed (every thread of the channel gets the total).
fn channel_sum(v: f32, lid: u32) -> f32 {
  part[lid] = v;
  workgroupBarrier();
  for (var w = 8u; w > 0u; w = w / 2u) {
    if (lid % 16u < w) { part[lid] = part[lid] + part[lid + w]; }
    workgroupBarrier();
  }
  let total = part[lid - lid % 16u];
  workgroupBarrier();
  return total;
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % 16u;
  let i = (wid.y * nwg.x + wid.x) * 16u + lid / 16u;
  let live = i < p.B * p.E;
  let e = i % p.E;
  let b = i / p.E;
  var dpart = 0.0;
  if (live) {
    let lo = p.d_off + b * p.d_stride;
    for (var r = lane; r < p.R; r = r + 16u) { dpart = dpart + dbc[lo + r] * w[e * p.R + r]; }
  }
  var d = channel_sum(dpart, lid);
  var ue = 0.0;
  var ypart = 0.0;
  if (live) {
    if (p.has_dbias != 0u) { d = d + de[p.E + e]; }
    if (p.softplus != 0u) { d = softplus(d); }
    ue = u[p.u_off + b * p.u_stride + e];
    let du = d * ue;
    let bb = p.b_off + b * p.b_stride;
    let cb = p.c_off + b * p.c_stride;
    for (var n = lane; n < p.N; n = n + 16u) {
      var h = 0.0;
      if (p.has_state != 0u) { h = state[i * p.N + n]; }
      h = exp(d * A[e * p.N + n]) * h + du * dbc[bb + n];
      state_out[i * p.N + n] = h;
      ypart = ypart + h * dbc[cb + n];
    }
  }
  var acc = channel_sum(ypart, lid);
  if (live && lane == 0u) {
    if (p.has_d != 0u) { acc = acc + de[e] * ue; }
    if (p.has_z != 0u) { let zz = z[p.z_off + b * p.z_stride + e]; acc = acc * (zz / (1.0 + exp(-zz))); }
    y[i] = acc;
  }
}`,
  };
}
