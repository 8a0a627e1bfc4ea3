import type { KernelSpec } from "../runtime.js";
import { each4, eachOf, LANES, MAIN_1D, SOFTPLUS, SUBGROUP_KERNEL, subgroupSlotsMain } from "./wgsl.js";

/**
 * Mamba-2's SSD by the chunked algorithm, in four passes over chunks of Q ≤ 64 steps (the same split as
 * mamba_ssm's Triton kernels, with no workgroup waiting on another):
 *   1. dt:     effective dt (bias, softplus, clamp) and its running sum S = Σ dt·A within each chunk;
 *   2. state:  per (batch, chunk, head) the state the chunk builds from zero: Σ_s exp(S_end − S_s)·dt_s·x_s ⊗ B_s;
 *   3. pass:   per state entry, sequentially over chunks: state entering chunk c+1 = exp(S_end)·(entering c) + local c;
 *   4. output: per (batch, chunk, head), y_t = Σ_{s≤t} (C_t·B_s)·exp(S_t − S_s)·dt_s·x_s + exp(S_t)·C_t·state + D·x_t,
 *              the causal mixing matrix held in workgroup memory.
 * Layouts: x [B, L, H, P], dt [B, L, H], B and C [B, L, G, N], state [B, H, P, N].
 */

export const SSD_CHUNK = 64;

/**
 * WGSL: the time step of head h at dt row `row` (batch·L + t) as the recurrence uses it: the raw value
 * plus bias, softplus, clamped to [dt_min, dt_max]. Kernels binding dt and bias with those params.
 */
const EFFECTIVE_DT = `fn effective_dt(row: u32, h: u32) -> f32 {
  var d = dt[p.dt_off + row * p.dt_stride + h];
  if (p.has_bias != 0u) { d = d + bias[h]; }
  if (p.softplus != 0u) { d = softplus(d); }
  return min(max(d, p.dt_min), p.dt_max);
}`;

export function ssdDtSpec(): KernelSpec {
  return {
    key: "ssd-dt",
    params: [["B", "u32"], ["L", "u32"], ["H", "u32"], ["chunk", "u32"], ["n_chunks", "u32"], ["has_bias", "u32"], ["softplus", "u32"], ["dt_min", "f32"], ["dt_max", "f32"],
      ["dt_off", "u32"], ["dt_stride", "u32"]],
    workgroupSize: 64,
    bindings: [{ name: "dt", type: "f32" }, { name: "A", type: "f32" }, { name: "bias", type: "f32" }, { name: "dt_eff", type: "f32", write: true }, { name: "S", type: "f32", write: true }],
    body: `
${SOFTPLUS}
${EFFECTIVE_DT}
${MAIN_1D}
  if (i >= p.B * p.n_chunks * p.H) { return; }
  let h = i % p.H;
  let c = (i / p.H) % p.n_chunks;
  let b = i / (p.H * p.n_chunks);
  let a = A[h];
  var run = 0.0;
  let t1 = min(p.L, (c + 1u) * p.chunk);
  for (var t = c * p.chunk; t < t1; t = t + 1u) {
    let idx = (b * p.L + t) * p.H + h;
    let d = effective_dt(b * p.L + t, h);
    dt_eff[idx] = d;
    run = run + d * a;
    S[idx] = run;
  }
}`,
  };
}

const DIMS = [["B", "u32"], ["L", "u32"], ["H", "u32"], ["P", "u32"], ["G", "u32"], ["N", "u32"], ["chunk", "u32"], ["n_chunks", "u32"]] as const;
/** x, B, C may be column slices of wider rows (zero-copy views): element (row, col) at off + row·stride + col. */
const VIEWS = [["x_off", "u32"], ["x_stride", "u32"], ["b_off", "u32"], ["b_stride", "u32"], ["c_off", "u32"], ["c_stride", "u32"]] as const;

/**
 * Entry point of a kernel with one workgroup per (batch, chunk, unit), the unit `u` a head (over p.H) or a
 * group (over p.G): b, c, the chunk's first step t0 and its length q.
 */
function perChunkMain(u: "h" | "g"): string {
  const n = u === "h" ? "p.H" : "p.G";
  return `@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let wg = wid.y * nwg.x + wid.x;
  if (wg >= p.B * p.n_chunks * ${n}) { return; }
  let ${u} = wg % ${n};
  let c = (wg / ${n}) % p.n_chunks;
  let b = wg / (${n} * p.n_chunks);
  let t0 = c * p.chunk;
  let q = min(p.chunk, p.L - t0);`;
}

/** perChunkMain over heads, with each head's group g. */
const MAIN_WG = `${perChunkMain("h")}
  let g = h / (p.H / p.G);`;

export function ssdChunkStateSpec(): KernelSpec {
  return {
    key: "ssd-chunk-state", params: [...DIMS, ...VIEWS], workgroupSize: 256,
    bindings: [
      { name: "x", type: "f32" }, { name: "Bm", type: "f32" }, { name: "dt_eff", type: "f32" }, { name: "S", type: "f32" },
      { name: "local_state", type: "f32", write: true },
    ],
    body: `
var<workgroup> wsh: array<f32, ${SSD_CHUNK}>;
${MAIN_WG}
  let s_end = S[(b * p.L + t0 + q - 1u) * p.H + h];
  if (lid < q) {
    let idx = (b * p.L + t0 + lid) * p.H + h;
    wsh[lid] = exp(s_end - S[idx]) * dt_eff[idx];
  }
  workgroupBarrier();
  let PN = p.P * p.N;
  let base = wg * PN;
  for (var e = lid; e < PN; e = e + 256u) {
    let pp = e / p.N;
    let n = e % p.N;
    var acc = 0.0;
    for (var s = 0u; s < q; s = s + 1u) {
      let row = b * p.L + t0 + s;
      acc = acc + wsh[s] * x[p.x_off + row * p.x_stride + h * p.P + pp] * Bm[p.b_off + row * p.b_stride + g * p.N + n];
    }
    local_state[base + e] = acc;
  }
}`,
  };
}

/** In place: local chunk states → the state entering each chunk; also the final state. */
export function ssdStatePassSpec(): KernelSpec {
  return {
    key: "ssd-state-pass", params: [...DIMS, ["has_state", "u32"]], workgroupSize: 256,
    bindings: [{ name: "S", type: "f32" }, { name: "state", type: "f32" }, { name: "h", type: "f32", write: true }, { name: "state_out", type: "f32", write: true }],
    body: `${MAIN_1D}
  let PN = p.P * p.N;
  if (i >= p.B * p.H * PN) { return; }
  let e = i % PN;
  let hd = (i / PN) % p.H;
  let b = i / (PN * p.H);
  var carry = 0.0;
  if (p.has_state != 0u) { carry = state[i]; }
  for (var c = 0u; c < p.n_chunks; c = c + 1u) {
    let at = ((b * p.n_chunks + c) * p.H + hd) * PN + e;
    let loc = h[at];
    h[at] = carry;
    let t_end = min(p.L, (c + 1u) * p.chunk) - 1u;
    carry = exp(S[(b * p.L + t_end) * p.H + hd]) * carry + loc;
  }
  state_out[i] = carry;
}`,
  };
}

export function ssdChunkOutSpec(): KernelSpec {
  const Q = SSD_CHUNK;
  return {
    key: "ssd-chunk-out", params: [...DIMS, ["has_h", "u32"], ["has_d", "u32"], ["d_per_p", "u32"], ...VIEWS], workgroupSize: 256,
    bindings: [
      { name: "x", type: "f32" }, { name: "Bm", type: "f32" }, { name: "Cm", type: "f32" }, { name: "dt_eff", type: "f32" },
      { name: "S", type: "f32" }, { name: "h_in", type: "f32" }, { name: "Dv", type: "f32" }, { name: "y", type: "f32", write: true },
    ],
    body: `
var<workgroup> M: array<f32, ${Q * Q}>;
var<workgroup> s_sh: array<f32, ${Q}>;
${MAIN_WG}
  if (lid < q) { s_sh[lid] = S[(b * p.L + t0 + lid) * p.H + h]; }
  workgroupBarrier();
  // M[t, s] = (C_t · B_s) · exp(S_t − S_s) · dt_s for s ≤ t.
  for (var e = lid; e < q * q; e = e + 256u) {
    let t = e / q;
    let s = e % q;
    var v = 0.0;
    if (s <= t) {
      let ct = p.c_off + (b * p.L + t0 + t) * p.c_stride + g * p.N;
      let bs = p.b_off + (b * p.L + t0 + s) * p.b_stride + g * p.N;
      var cb = 0.0;
      for (var n = 0u; n < p.N; n = n + 1u) { cb = cb + Cm[ct + n] * Bm[bs + n]; }
      v = cb * exp(s_sh[t] - s_sh[s]) * dt_eff[(b * p.L + t0 + s) * p.H + h];
    }
    M[t * ${Q}u + s] = v;
  }
  workgroupBarrier();
  let hbase = wg * p.P * p.N;
  for (var e = lid; e < q * p.P; e = e + 256u) {
    let t = e / p.P;
    let pp = e % p.P;
    let row = b * p.L + t0 + t;
    var acc = 0.0;
    if (p.has_h != 0u) {
      let ct = p.c_off + row * p.c_stride + g * p.N;
      let ho = hbase + pp * p.N;
      var off = 0.0;
      for (var n = 0u; n < p.N; n = n + 1u) { off = off + h_in[ho + n] * Cm[ct + n]; }
      acc = off * exp(s_sh[t]);
    }
    for (var s = 0u; s <= t; s = s + 1u) {
      acc = acc + M[t * ${Q}u + s] * x[p.x_off + (b * p.L + t0 + s) * p.x_stride + h * p.P + pp];
    }
    let xi = (row * p.H + h) * p.P + pp;
    if (p.has_d != 0u) {
      var dd = Dv[h];
      if (p.d_per_p != 0u) { dd = Dv[h * p.P + pp]; }
      acc = acc + dd * x[p.x_off + row * p.x_stride + h * p.P + pp];
    }
    y[xi] = acc;
  }
}`,
  };
}

/** WGSL: the step's skip term D·x of row (h, pp), D per head or per channel (d_per_p), 0 without D. */
const D_SKIP = `fn d_skip(h: u32, pp: u32, xv: f32) -> f32 {
  if (p.has_d == 0u) { return 0.0; }
  if (p.d_per_p != 0u) { return Dv[h * p.P + pp] * xv; }
  return Dv[h] * xv;
}`;

/**
 * One recurrent step per (batch, head, p): state = exp(dt·A)·state + dt·x ⊗ B; y = state·C + D·x.
 * 32 threads share a (batch, head, p) row, each taking every 32nd state entry, so that consecutive threads
 * touch consecutive words of the [B, H, P, N] state (one thread per row strode N words apart); y is their
 * sum, reduced in workgroup memory. 8 rows per 256-thread workgroup.
 */
export function ssdStepSpec(): KernelSpec {
  return {
    key: "ssd-step",
    params: [["B", "u32"], ["H", "u32"], ["P", "u32"], ["G", "u32"], ["N", "u32"], ["has_bias", "u32"], ["softplus", "u32"],
      ["dt_min", "f32"], ["dt_max", "f32"], ["has_state", "u32"], ["has_d", "u32"], ["d_per_p", "u32"], ["dt_off", "u32"], ["dt_stride", "u32"], ...VIEWS],
    workgroupSize: 256,
    bindings: [
      { name: "x", type: "f32" }, { name: "dt", type: "f32" }, { name: "A", type: "f32" }, { name: "Bm", type: "f32" },
      { name: "Cm", type: "f32" }, { name: "Dv", type: "f32" }, { name: "bias", type: "f32" }, { name: "state", type: "f32" },
      { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `
${SOFTPLUS}
${EFFECTIVE_DT}
${D_SKIP}
var<workgroup> part: array<f32, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % 32u;
  let i = (wid.y * nwg.x + wid.x) * 8u + lid / 32u;
  let live = i < p.B * p.H * p.P;
  let pp = i % p.P;
  let h = (i / p.P) % p.H;
  let b = i / (p.P * p.H);
  let g = h / (p.H / p.G);
  var acc = 0.0;
  var xv = 0.0;
  if (live) {
    let d = effective_dt(b, h);
    let decay = exp(d * A[h]);
    xv = x[p.x_off + b * p.x_stride + h * p.P + pp];
    let bo = p.b_off + b * p.b_stride + g * p.N;
    let co = p.c_off + b * p.c_stride + g * p.N;
    let so = i * p.N;
    for (var n = lane; n < p.N; n = n + 32u) {
      var s = 0.0;
      if (p.has_state != 0u) { s = state[so + n]; }
      let v = s * decay + d * xv * Bm[bo + n];
      state_out[so + n] = v;
      acc = acc + v * Cm[co + n];
    }
  }
  part[lid] = acc;
  workgroupBarrier();
  for (var w = 16u; w > 0u; w = w / 2u) {
    if (lane < w) { part[lid] = part[lid] + part[lid + w]; }
    workgroupBarrier();
  }
  if (live && lane == 0u) { y[i] = part[lid] + d_skip(h, pp, xv); }
}`,
  };
}

/**
 * ssd-step with subgroup sums and 16-byte state accesses (N % 4 = 0): one subgroup per `rows` consecutive
 * (b, h, p) rows (subgroupSlotsMain; rows divides P), its lanes taking every sgs-th group of 4 state
 * entries; no barriers. Several rows a subgroup put that many independent state loads in flight per lane
 * and read B and C once for them.
 */
export function ssdStepSubgroupSpec(rows = 1): KernelSpec {
  const spec = ssdStepSpec();
  return {
    ...spec,
    key: ssdStepSubgroupKey(rows),
    bindings: spec.bindings.map((b) => (b.name === "state" || b.name === "state_out" ? { ...b, type: "vec4<f32>" } : b)),
    ...SUBGROUP_KERNEL,
    body: `
${SOFTPLUS}
${EFFECTIVE_DT}
${D_SKIP}
${subgroupSlotsMain(8, `p.B * p.H * p.P / ${rows}u`)}
    let r0 = i * ${rows}u;
    let pp = r0 % p.P;
    let h = (r0 / p.P) % p.H;
    let b = r0 / (p.P * p.H);
    let g = h / (p.H / p.G);
    let d = effective_dt(b, h);
    let decay = exp(d * A[h]);
    let xo = p.x_off + b * p.x_stride + h * p.P + pp;
${eachOf(rows, (r) => `    let xv${r} = x[xo + ${r}u];
    var acc${r} = 0.0;`)}
    let bo = p.b_off + b * p.b_stride + g * p.N;
    let co = p.c_off + b * p.c_stride + g * p.N;
    let so = r0 * p.N / 4u;
    let row4 = p.N / 4u;
    for (var n4 = lane; n4 < row4; n4 = n4 + sgs) {
      let n = 4u * n4;
${eachOf(rows, (r) => `      var s${r} = vec4<f32>(0.0);
      if (p.has_state != 0u) { s${r} = state[so + ${r}u * row4 + n4]; }`)}
      let bv = vec4<f32>(Bm[bo + n], Bm[bo + n + 1u], Bm[bo + n + 2u], Bm[bo + n + 3u]);
      let cv = vec4<f32>(Cm[co + n], Cm[co + n + 1u], Cm[co + n + 2u], Cm[co + n + 3u]);
${eachOf(rows, (r) => `      let v${r} = s${r} * decay + (d * xv${r}) * bv;
      state_out[so + ${r}u * row4 + n4] = v${r};
      acc${r} = acc${r} + dot(v${r}, cv);`)}
    }
${eachOf(rows, (r) => `    let total${r} = subgroupAdd(acc${r});
    if (lane == 0u) { y[r0 + ${r}u] = total${r} + d_skip(h, pp + ${r}u, xv${r}); }`)}
  }
}`,
  };
}

/** The kernel key of ssdStepSubgroupSpec(rows). */
export function ssdStepSubgroupKey(rows: number): string {
  return rows === 1 ? "ssd-step-sg" : `ssd-step-sg-r${rows}`;
}

/**
 * WGSL: acc0..acc3 (vec4, declared by the caller) += C_t · O_r over the first `nEnd` state entries, for the
 * chunk's rows t = ty·4 + i and another operand's rows r = tx·4 + j, in slices of 16 entries staged in
 * `stage4` as padded vec4 columns (C at 0, the other operand at 272). `loadOther(i)` sets `ov.<lane i>` to
 * the other operand's entry n of row ty·4 + i (staging swaps the roles: thread (ty, tx) loads column tx).
 */
function chunkRowProducts(acc: string, nEnd: string, loadOther: (i: number) => string): string {
  return `  for (var n0 = 0u; n0 < ${nEnd}; n0 = n0 + 16u) {
    let n = n0 + tx;
    var cv = vec4<f32>(0.0);
    var ov = vec4<f32>(0.0);
    if (n < p.N) {
${each4((i) => `      if (ty * 4u + ${i}u < q) { cv.${LANES[i]} = Cm[p.c_off + (row0 + ty * 4u + ${i}u) * p.c_stride + g * p.N + n]; }
      ${loadOther(i)}`)}
    }
    stage4[tx * 17u + ty] = cv;
    stage4[272u + tx * 17u + ty] = ov;
    workgroupBarrier();
    for (var k = 0u; k < 16u; k = k + 1u) {
      let c4 = stage4[k * 17u + ty];
      let o4 = stage4[272u + k * 17u + tx];
${each4((i) => `      ${acc}${i} = ${acc}${i} + c4.${LANES[i]} * o4;`)}
    }
    workgroupBarrier();
  }`;
}

/**
 * C·Bᵀ of each (batch, chunk, group), 64×64 for chunks of 64 steps (zero past the chunk's end), which every
 * head of the group reads in ssd-chunk-out-tiled: [B, n_chunks, G, 64, 64]. 256 threads, 4×4 blocks each,
 * slices of 16 state entries staged as vec4 columns.
 */
export function ssdChunkCbSpec(): KernelSpec {
  return {
    key: "ssd-chunk-cb", params: [...DIMS, ...VIEWS], workgroupSize: 256,
    bindings: [{ name: "Bm", type: "f32" }, { name: "Cm", type: "f32" }, { name: "cb4", type: "vec4<f32>", write: true }],
    body: `
var<workgroup> stage4: array<vec4<f32>, 544>;
${perChunkMain("g")}
  let tx = lid % 16u;
  let ty = lid / 16u;
  let row0 = b * p.L + t0;
${each4((i) => `  var r${i} = vec4<f32>(0.0);`)}
${chunkRowProducts("r", "p.N", (i) => `if (ty * 4u + ${i}u < q) { ov.${LANES[i]} = Bm[p.b_off + (row0 + ty * 4u + ${i}u) * p.b_stride + g * p.N + n]; }`)}
${each4((i) => `  cb4[(wg * 64u + ty * 4u + ${i}u) * 16u + tx] = r${i};`)}
}`,
  };
}

/**
 * Pass 4 as small matrix products per (batch, chunk, head), for P ≤ 64: 256 threads each hold 4×4 blocks
 * in registers while slices of 16 state entries of C and the entering state are staged in workgroup
 * memory as vec4 columns (one vector load feeds 4 rows; consecutive threads read consecutive vectors, no
 * bank conflicts):
 *   M = (C·Bᵀ) ⊙ decay ⊙ dt (64×64, kept in workgroup memory), Y = exp(S)·(C·stateᵀ) + M·X + D·X.
 * C·Bᵀ comes from ssd-chunk-cb, computed once per group rather than once per head; M·X stops at each
 * thread's last causal step.
 */
export function ssdChunkOutTiledSpec(): KernelSpec {
  const Q = SSD_CHUNK;
  return {
    key: "ssd-chunk-out-tiled", params: [...DIMS, ["has_h", "u32"], ["has_d", "u32"], ["d_per_p", "u32"], ...VIEWS], workgroupSize: 256,
    bindings: [
      { name: "x", type: "f32" }, { name: "cb4", type: "vec4<f32>" }, { name: "Cm", type: "f32" }, { name: "dt_eff", type: "f32" },
      { name: "S", type: "f32" }, { name: "h_in", type: "f32" }, { name: "Dv", type: "f32" }, { name: "y", type: "f32", write: true },
    ],
    body: `
// M4[s·16 + t/4] = M[t..t+3][s].
var<workgroup> M4: array<vec4<f32>, ${Q * Q / 4}>;
// Slices [k·17 + r/4] of C (at 0) and the state (at 272) over 16 state entries k; then X [s·16 + p/4].
var<workgroup> stage4: array<vec4<f32>, ${Q * Q / 4}>;
${MAIN_WG}
  let tx = lid % 16u;
  let ty = lid / 16u;
  let row0 = b * p.L + t0;
  let hbase = wg * p.P * p.N;
  // C_t·B_s, shared by the heads of a group (ssd-chunk-cb).
  let cbase = ((b * p.n_chunks + c) * p.G + g) * 64u;
${each4((i) => `  let r${i} = cb4[(cbase + ty * 4u + ${i}u) * 16u + tx];
  var o${i} = vec4<f32>(0.0);`)}
  // Y_off = C·stateᵀ over slices of 16 state entries (nothing to do without an entering state).
  var n_end = p.N;
  if (p.has_h == 0u) { n_end = 0u; }
${chunkRowProducts("o", "n_end", (i) => `if (ty * 4u + ${i}u < p.P) { ov.${LANES[i]} = h_in[hbase + (ty * 4u + ${i}u) * p.N + n]; }`)}
  // Causal decay and dt: M[t][s] = (C_t·B_s)·exp(S_t − S_s)·dt_s for s ≤ t; the state term scaled by exp(S_t).
  var st = vec4<f32>(0.0);
  var ss = vec4<f32>(0.0);
  var ds = vec4<f32>(0.0);
${each4((i) => `  if (ty * 4u + ${i}u < q) { st.${LANES[i]} = S[(row0 + ty * 4u + ${i}u) * p.H + h]; }
  if (tx * 4u + ${i}u < q) { ss.${LANES[i]} = S[(row0 + tx * 4u + ${i}u) * p.H + h]; ds.${LANES[i]} = dt_eff[(row0 + tx * 4u + ${i}u) * p.H + h]; }`)}
${each4((j) => `  {
    let s = tx * 4u + ${j}u;
    var m = vec4<f32>(0.0);
${each4((i) => `    if (ty * 4u + ${i}u < q && s <= ty * 4u + ${i}u) { m.${LANES[i]} = r${i}.${LANES[j]} * exp(st.${LANES[i]} - ss.${LANES[j]}) * ds.${LANES[j]}; }`)}
    M4[s * 16u + ty] = m;
  }`)}
  if (p.has_h != 0u) {
${each4((i) => `    if (ty * 4u + ${i}u < q) { o${i} = o${i} * exp(st.${LANES[i]}); } else { o${i} = vec4<f32>(0.0); }`)}
  }
  // The chunk's X [s][p], then Y += M·X.
  for (var l = 0u; l < 4u; l = l + 1u) {
    let idx = lid + l * 256u;
    let s = idx / 16u;
    let p4 = (idx % 16u) * 4u;
    var xv = vec4<f32>(0.0);
    if (s < q) {
      let xo = p.x_off + (row0 + s) * p.x_stride + h * p.P + p4;
${each4((j) => `      if (p4 + ${j}u < p.P) { xv.${LANES[j]} = x[xo + ${j}u]; }`)}
    }
    stage4[idx] = xv;
  }
  workgroupBarrier();
  let s_end = min(q, ty * 4u + 4u);
  for (var s = 0u; s < s_end; s = s + 1u) {
    let m4 = M4[s * 16u + ty];
    let x4 = stage4[s * 16u + tx];
${each4((i) => `    o${i} = o${i} + m4.${LANES[i]} * x4;`)}
  }
  var dd = vec4<f32>(0.0);
  if (p.has_d != 0u) {
    if (p.d_per_p != 0u) {
${each4((j) => `      if (tx * 4u + ${j}u < p.P) { dd.${LANES[j]} = Dv[h * p.P + tx * 4u + ${j}u]; }`)}
    } else { dd = vec4<f32>(Dv[h]); }
  }
${each4((i) => `  if (ty * 4u + ${i}u < q) {
    let t = ty * 4u + ${i}u;
    let v = o${i} + dd * stage4[t * 16u + tx];
    let yo = ((row0 + t) * p.H + h) * p.P + tx * 4u;
${each4((j) => `    if (tx * 4u + ${j}u < p.P) { y[yo + ${j}u] = v.${LANES[j]}; }`)}
  }`)}
}`,
  };
}

/**
 * Pass 2 as a matrix product per (batch, chunk, head), for P ≤ 64: state[p][n] = Σ_s (w_s·x_s[p])·B_s[n] with
 * w_s = exp(S_end − S_s)·dt_s; slices of 16 steps of x and B staged in workgroup memory, each thread holding
 * 4 × 8 outputs (128 state entries at a time).
 */
export function ssdChunkStateTiledSpec(): KernelSpec {
  return {
    key: "ssd-chunk-state-tiled", params: [...DIMS, ...VIEWS], workgroupSize: 256,
    bindings: [
      { name: "x", type: "f32" }, { name: "Bm", type: "f32" }, { name: "dt_eff", type: "f32" }, { name: "S", type: "f32" },
      { name: "local_state", type: "f32", write: true },
    ],
    body: `
var<workgroup> xs: array<f32, ${16 * 64}>;
var<workgroup> bs: array<f32, ${16 * 128}>;
${MAIN_WG}
  let tn = lid % 16u;
  let tp = lid / 16u;
  let row0 = b * p.L + t0;
  let s_end = S[(row0 + q - 1u) * p.H + h];
  let base = wg * p.P * p.N;
  for (var n0 = 0u; n0 < p.N; n0 = n0 + 128u) {
    var acc: array<vec4<f32>, 8>;
    for (var j = 0u; j < 8u; j = j + 1u) { acc[j] = vec4<f32>(0.0); }
    for (var s0 = 0u; s0 < q; s0 = s0 + 16u) {
      for (var l = 0u; l < 4u; l = l + 1u) {
        let idx = lid + l * 256u;
        let ss = idx / 64u;
        let pp = idx % 64u;
        var v = 0.0;
        if (s0 + ss < q && pp < p.P) {
          let at = (row0 + s0 + ss) * p.H + h;
          v = exp(s_end - S[at]) * dt_eff[at] * x[p.x_off + (row0 + s0 + ss) * p.x_stride + h * p.P + pp];
        }
        xs[idx] = v;
      }
      for (var l = 0u; l < 8u; l = l + 1u) {
        let idx = lid + l * 256u;
        let ss = idx / 128u;
        let nn = idx % 128u;
        var v = 0.0;
        if (s0 + ss < q && n0 + nn < p.N) { v = Bm[p.b_off + (row0 + s0 + ss) * p.b_stride + g * p.N + n0 + nn]; }
        bs[idx] = v;
      }
      workgroupBarrier();
      for (var k = 0u; k < 16u; k = k + 1u) {
        let x4 = vec4<f32>(xs[k * 64u + tp * 4u], xs[k * 64u + tp * 4u + 1u], xs[k * 64u + tp * 4u + 2u], xs[k * 64u + tp * 4u + 3u]);
        for (var j = 0u; j < 8u; j = j + 1u) { acc[j] = acc[j] + x4 * bs[k * 128u + tn * 8u + j]; }
      }
      workgroupBarrier();
    }
    for (var j = 0u; j < 8u; j = j + 1u) {
      let nn = n0 + tn * 8u + j;
      if (nn >= p.N) { continue; }
      for (var i = 0u; i < 4u; i = i + 1u) {
        let pp = tp * 4u + i;
        if (pp < p.P) { local_state[base + pp * p.N + nn] = acc[j][i]; }
      }
    }
  }
}`,
  };
}
