import type { KernelSpec } from "../runtime.js";
import { eachOf, MAIN_1D, SINCOS } from "./wgsl.js";

/**
 * H3's SSMs. Gated layout (see GatedConvInput): head h convolves x[d1, d2] = u[h·P + d1]·v[h·P + d2]
 * (u alone without v) and output channel h·P + d2 is Σ_d1 q[h·P + d1]·z[d1, d2] (z alone without q).
 *
 * The diagonal SSM runs as its recurrence, chunked over time like the selective scan (local chunk states
 * from zero → a short carry pass over chunks → each chunk again from its entering state). That is the
 * convolution with the SSM's kernel, at O(L·N) per channel instead of an FFT's O(L log L) per channel and
 * without the kernel's Vandermonde sum; the carried state is exact, so chunks may have any length.
 * Discretised parameters: [H, N, 8] = dA (re, im), dB (re, im), C (re, im), unused ×2.
 */

export const DIAG_CHUNK = 64;

const COMPLEX = `
fn cmul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> { return vec2<f32>(a.x * b.x - a.y * b.y, a.x * b.y + a.y * b.x); }
fn cpow(a: vec2<f32>, k: u32) -> vec2<f32> {
  var r = vec2<f32>(1.0, 0.0);
  var base = a;
  var e = k;
  loop {
    if (e == 0u) { break; }
    if ((e & 1u) != 0u) { r = cmul(r, base); }
    base = cmul(base, base);
    e = e >> 1u;
  }
  return r;
}
`;

/** SSKernelDiag's discretisation (dt = exp(logDt)), in f32: bilinear or zoh. */
export function diagDiscretizeSpec(): KernelSpec {
  return {
    key: "diag-discretize", params: [["H", "u32"], ["N", "u32"], ["zoh", "u32"]], workgroupSize: 64,
    bindings: [{ name: "log_dt", type: "f32" }, { name: "A", type: "f32" }, { name: "Bp", type: "f32" }, { name: "Cp", type: "f32" }, { name: "disc", type: "f32", write: true }],
    body: `${SINCOS}
${MAIN_1D}
  if (i >= p.H * p.N) { return; }
  let h = i / p.N;
  let dt = exp(log_dt[h]);
  let ar = A[2u * i]; let ai = A[2u * i + 1u];
  let br = Bp[2u * i]; let bi = Bp[2u * i + 1u];
  let xr = dt * ar; let xi = dt * ai;
  var dar = 0.0; var dai = 0.0; var gr = 0.0; var gi = 0.0;
  if (p.zoh == 0u) {
    let den_r = 1.0 - xr / 2.0; let den_i = -xi / 2.0;
    let m = den_r * den_r + den_i * den_i;
    let inv_r = den_r / m; let inv_i = -den_i / m;
    let num_r = 1.0 + xr / 2.0; let num_i = xi / 2.0;
    dar = num_r * inv_r - num_i * inv_i;
    dai = num_r * inv_i + num_i * inv_r;
    gr = dt * inv_r; gi = dt * inv_i;
  } else {
    // exp(dtA) − 1 without cancellation: expm1(xr)·cos(xi) − 2·sin²(xi/2) + i·exp(xr)·sin(xi).
    let e = exp(xr);
    let sc = sincos(xi);
    let sh = sincos(0.5 * xi).x;
    dar = e * sc.y; dai = e * sc.x;
    let nr = expm1_f(xr) * sc.y - 2.0 * sh * sh; let ni = dai;
    let m = ar * ar + ai * ai;
    gr = (nr * ar + ni * ai) / m;
    gi = (ni * ar - nr * ai) / m;
  }
  let o = i * 8u;
  disc[o] = dar; disc[o + 1u] = dai;
  disc[o + 2u] = gr * br - gi * bi; disc[o + 3u] = gr * bi + gi * br;
  disc[o + 4u] = Cp[2u * i]; disc[o + 5u] = Cp[2u * i + 1u];
  disc[o + 6u] = 0.0; disc[o + 7u] = 0.0;
}`,
  };
}

/** K[h, l] = 2·Re Σ_n C_n·dB_n·dA_n^l. */
export function diagKernelSpec(): KernelSpec {
  return {
    key: "diag-kernel", params: [["H", "u32"], ["N", "u32"], ["len", "u32"]], workgroupSize: 256,
    bindings: [{ name: "disc", type: "f32" }, { name: "out", type: "f32", write: true }],
    body: `${COMPLEX}
${MAIN_1D}
  if (i >= p.H * p.len) { return; }
  let h = i / p.len;
  let l = i % p.len;
  var acc = 0.0;
  for (var n = 0u; n < p.N; n = n + 1u) {
    let o = (h * p.N + n) * 8u;
    let cb = cmul(vec2<f32>(disc[o + 4u], disc[o + 5u]), vec2<f32>(disc[o + 2u], disc[o + 3u]));
    acc = acc + 2.0 * cmul(cb, cpow(vec2<f32>(disc[o], disc[o + 1u]), l)).x;
  }
  out[i] = acc;
}`,
  };
}

const GATED_PARAMS = [["B", "u32"], ["L", "u32"], ["H", "u32"], ["P", "u32"], ["N", "u32"], ["chunk", "u32"], ["n_chunks", "u32"]] as const;

/** The convolved input x[d1, d2] at flat row `row` (b·L + t). */
const GATED_INPUT = `
fn x_at(row: u32, h: u32, d1: u32, d2: u32) -> f32 {
  let C = p.H * p.P;
  var xv = u[row * C + h * p.P + d1];
  if (p.has_v != 0u) { xv = xv * v[row * C + h * p.P + d2]; }
  return xv;
}
`;

/** Pass 1: per (b, h, d1, d2, chunk), all N modes: the state the chunk reaches from zero. */
export function diagLocalSpec(N: number): KernelSpec {
  return {
    key: `diag-local-${N}`, params: [...GATED_PARAMS, ["has_v", "u32"]], workgroupSize: 64,
    bindings: [{ name: "u", type: "f32" }, { name: "v", type: "f32" }, { name: "disc", type: "f32" }, { name: "local_state", type: "f32", write: true }],
    body: `${COMPLEX}
${GATED_INPUT}
${MAIN_1D}
  let PP = p.P * p.P;
  if (i >= p.B * p.H * PP * p.n_chunks) { return; }
  let c = i % p.n_chunks;
  let ch = i / p.n_chunks;
  let d2 = ch % p.P;
  let d1 = (ch / p.P) % p.P;
  let h = (ch / PP) % p.H;
  let b = ch / (PP * p.H);
  var s: array<vec2<f32>, ${N}>;
  var da: array<vec2<f32>, ${N}>;
  var db: array<vec2<f32>, ${N}>;
  for (var n = 0u; n < ${N}u; n = n + 1u) {
    let o = (h * p.N + n) * 8u;
    da[n] = vec2<f32>(disc[o], disc[o + 1u]);
    db[n] = vec2<f32>(disc[o + 2u], disc[o + 3u]);
    s[n] = vec2<f32>(0.0, 0.0);
  }
  let t1 = min(p.L, (c + 1u) * p.chunk);
  for (var t = c * p.chunk; t < t1; t = t + 1u) {
    let xv = x_at(b * p.L + t, h, d1, d2);
    for (var n = 0u; n < ${N}u; n = n + 1u) { s[n] = cmul(da[n], s[n]) + db[n] * xv; }
  }
  // layout [B, n_chunks, H, P, P, N, 2]
  let o = ((((b * p.n_chunks + c) * p.H + h) * PP + d1 * p.P + d2) * p.N) * 2u;
  for (var n = 0u; n < ${N}u; n = n + 1u) { local_state[o + 2u * n] = s[n].x; local_state[o + 2u * n + 1u] = s[n].y; }
}`,
  };
}

/** Pass 2, in place: local chunk states → the state entering each chunk. */
export function diagCarrySpec(): KernelSpec {
  return {
    key: "diag-carry", params: [...GATED_PARAMS, ["has_state", "u32"]], workgroupSize: 256,
    bindings: [{ name: "disc", type: "f32" }, { name: "state", type: "f32" }, { name: "hs", type: "f32", write: true }],
    body: `${COMPLEX}
${MAIN_1D}
  let PP = p.P * p.P;
  let per_b = p.H * PP * p.N;
  if (i >= p.B * per_b) { return; }
  let n = i % p.N;
  let h = (i / (PP * p.N)) % p.H;
  let b = i / per_b;
  let within = i % per_b;
  let o = (h * p.N + n) * 8u;
  let stride = cpow(vec2<f32>(disc[o], disc[o + 1u]), p.chunk);
  var carry = vec2<f32>(0.0, 0.0);
  if (p.has_state != 0u) { carry = vec2<f32>(state[2u * i], state[2u * i + 1u]); }
  for (var c = 0u; c < p.n_chunks; c = c + 1u) {
    let at = ((b * p.n_chunks + c) * per_b + within) * 2u;
    let loc = vec2<f32>(hs[at], hs[at + 1u]);
    hs[at] = carry.x;
    hs[at + 1u] = carry.y;
    carry = cmul(stride, carry) + loc;
  }
}`,
  };
}

/** Pass 3: per (b, h, d2, chunk), over d1: the chunk from its entering state → y (skip, gate); final state. */
export function diagOutputSpec(N: number): KernelSpec {
  return {
    key: `diag-output-${N}`, params: [...GATED_PARAMS, ["has_v", "u32"], ["has_q", "u32"], ["has_h", "u32"], ["has_d", "u32"]], workgroupSize: 64,
    bindings: [
      { name: "u", type: "f32" }, { name: "v", type: "f32" }, { name: "q", type: "f32" }, { name: "disc", type: "f32" },
      { name: "h_in", type: "f32" }, { name: "Dv", type: "f32" }, { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `${COMPLEX}
${GATED_INPUT}
${MAIN_1D}
  if (i >= p.B * p.H * p.P * p.n_chunks) { return; }
  let c = i % p.n_chunks;
  let ch = i / p.n_chunks;
  let d2 = ch % p.P;
  let h = (ch / p.P) % p.H;
  let b = ch / (p.P * p.H);
  let C = p.H * p.P;
  let PP = p.P * p.P;
  var skip = 0.0;
  if (p.has_d != 0u) { skip = Dv[h]; }
  var da: array<vec2<f32>, ${N}>;
  var db: array<vec2<f32>, ${N}>;
  var cc: array<vec2<f32>, ${N}>;
  for (var n = 0u; n < ${N}u; n = n + 1u) {
    let o = (h * p.N + n) * 8u;
    da[n] = vec2<f32>(disc[o], disc[o + 1u]);
    db[n] = vec2<f32>(disc[o + 2u], disc[o + 3u]);
    cc[n] = vec2<f32>(disc[o + 4u], disc[o + 5u]);
  }
  let t1 = min(p.L, (c + 1u) * p.chunk);
  for (var d1 = 0u; d1 < p.P; d1 = d1 + 1u) {
    var s: array<vec2<f32>, ${N}>;
    let so = ((((b * p.n_chunks + c) * p.H + h) * PP + d1 * p.P + d2) * p.N) * 2u;
    for (var n = 0u; n < ${N}u; n = n + 1u) {
      s[n] = vec2<f32>(0.0, 0.0);
      if (p.has_h != 0u) { s[n] = vec2<f32>(h_in[so + 2u * n], h_in[so + 2u * n + 1u]); }
    }
    for (var t = c * p.chunk; t < t1; t = t + 1u) {
      let row = b * p.L + t;
      let xv = x_at(row, h, d1, d2);
      var z = skip * xv;
      for (var n = 0u; n < ${N}u; n = n + 1u) {
        s[n] = cmul(da[n], s[n]) + db[n] * xv;
        z = z + 2.0 * (cc[n].x * s[n].x - cc[n].y * s[n].y);
      }
      if (p.has_q != 0u) { z = z * q[row * C + h * p.P + d1]; }
      let yi = row * C + h * p.P + d2;
      if (d1 == 0u) { y[yi] = z; } else { y[yi] = y[yi] + z; }
    }
    if (c == p.n_chunks - 1u) {
      let fo = ((((b * p.H + h) * PP) + d1 * p.P + d2) * p.N) * 2u;
      for (var n = 0u; n < ${N}u; n = n + 1u) { state_out[fo + 2u * n] = s[n].x; state_out[fo + 2u * n + 1u] = s[n].y; }
    }
  }
}`,
  };
}

/** taps[c, j] = Σ_i B[c, i]·C[c, i + j]. */
export function shiftTapsSpec(): KernelSpec {
  return {
    key: "shift-taps", params: [["C", "u32"], ["N", "u32"]], workgroupSize: 256,
    bindings: [{ name: "Bp", type: "f32" }, { name: "Cp", type: "f32" }, { name: "taps", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.C * p.N) { return; }
  let c = i / p.N;
  let j = i % p.N;
  var s = 0.0;
  for (var k = 0u; k + j < p.N; k = k + 1u) { s = s + Bp[c * p.N + k] * Cp[c * p.N + k + j]; }
  taps[i] = s;
}`,
  };
}

/**
 * The shift SSM over L steps from a carried state, one thread per output and one per new state entry:
 *   y[t] = Σ_{j ≤ min(t, N−1)} k[j]·u[t−j] + D·u[t] + Σ_{n > t} C[n]·s[n−t−1]
 *   s'[n] = Σ_{m ≤ min(n, L−1)} B[n−m]·u[L−1−m] + (n ≥ L ? s[n−L] : 0)
 */
export function shiftSsmSpec(): KernelSpec {
  return {
    key: "shift-ssm", params: [["B", "u32"], ["L", "u32"], ["C", "u32"], ["N", "u32"], ["has_d", "u32"], ["has_state", "u32"], ["skip_y", "u32"]], workgroupSize: 256,
    bindings: [
      { name: "u", type: "f32" }, { name: "taps", type: "f32" }, { name: "Bp", type: "f32" }, { name: "Cp", type: "f32" },
      { name: "Dv", type: "f32" }, { name: "state", type: "f32" }, { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `${MAIN_1D}
  // With skip_y (the tiled kernel below wrote y), every thread works on the final state.
  var ny = p.B * p.L * p.C;
  if (p.skip_y != 0u) { ny = 0u; }
  if (i < ny) {
    let c = i % p.C;
    let t = (i / p.C) % p.L;
    let b = i / (p.C * p.L);
    var acc = 0.0;
    if (p.has_d != 0u) { acc = Dv[c] * u[i]; }
    let J = min(t, p.N - 1u);
    for (var j = 0u; j <= J; j = j + 1u) { acc = acc + taps[c * p.N + j] * u[i - j * p.C]; }
    if (p.has_state != 0u) {
      for (var n = t + 1u; n < p.N; n = n + 1u) { acc = acc + Cp[c * p.N + n] * state[(b * p.C + c) * p.N + n - t - 1u]; }
    }
    y[i] = acc;
    return;
  }
  let k = i - ny;
  if (k >= p.B * p.C * p.N) { return; }
  let n = k % p.N;
  let c = (k / p.N) % p.C;
  let b = k / (p.N * p.C);
  var s = 0.0;
  let M = min(n, p.L - 1u);
  for (var m = 0u; m <= M; m = m + 1u) { s = s + Bp[c * p.N + n - m] * u[(b * p.L + p.L - 1u - m) * p.C + c]; }
  if (p.has_state != 0u && n >= p.L) { s = s + state[k - p.L]; }
  state_out[k] = s;
}`,
  };
}

/** Consecutive steps of one channel each thread of shift-ssm-tiled computes (4 threads × 8 = 32 per workgroup). */
const STEPS = 8;

/**
 * The shift SSM's output over a sequence, tiled: a 64×4 workgroup covers 64 channels × 32 steps, each
 * thread 8 consecutive steps of one channel. The taps of the workgroup's channels are staged in workgroup
 * memory 64 at a time, and the thread's 8 inputs slide through registers: one tap and one input load feed
 * 8 multiply-adds (the one-output-per-thread kernel above loaded both for each one, its taps strided N
 * words apart across threads). The final state is left to shiftSsmSpec with skip_y.
 */
export function shiftSsmTiledSpec(): KernelSpec {
  const steps = (f: (k: number) => string) => eachOf(STEPS, f);
  return {
    key: "shift-ssm-tiled", params: [["L", "u32"], ["C", "u32"], ["N", "u32"], ["has_d", "u32"], ["has_state", "u32"]], workgroupSize: [64, 4, 1],
    bindings: [
      { name: "u", type: "f32" }, { name: "taps", type: "f32" }, { name: "Cp", type: "f32" }, { name: "Dv", type: "f32" },
      { name: "state", type: "f32" }, { name: "y", type: "f32", write: true },
    ],
    body: `
// tile[j·65 + c]: tap j of the workgroup's channel c (padded against bank conflicts).
var<workgroup> tile: array<f32, ${64 * 65}>;
// Output t's terms from the state before the sequence: Σ_{n>t} C[c][n]·state[b][c][n−t−1].
fn state_term(t: u32, c: u32, b: u32) -> f32 {
  var s = 0.0;
  for (var n = t + 1u; n < p.N; n = n + 1u) { s = s + Cp[c * p.N + n] * state[(b * p.C + c) * p.N + n - t - 1u]; }
  return s;
}
@compute @workgroup_size(64, 4, 1)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lxy: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let c0 = wid.x * 64u;
  let c = c0 + lxy.x;
  let cv = c < p.C;
  let t0 = (wid.y * 4u + lxy.y) * ${STEPS}u;
  let b = wid.z;
  let ub = b * p.L * p.C + c;
  var d = 0.0;
  if (cv && p.has_d != 0u) { d = Dv[c]; }
${steps((k) => `  var w${k} = 0.0;
  if (cv && t0 + ${k}u < p.L) { w${k} = u[ub + (t0 + ${k}u) * p.C]; }
  var a${k} = d * w${k};`)}
  for (var j0 = 0u; j0 < p.N; j0 = j0 + 64u) {
    workgroupBarrier();
    for (var e = lid; e < 4096u; e = e + 256u) {
      let jj = e % 64u;
      let cc = e / 64u;
      var v = 0.0;
      if (c0 + cc < p.C && j0 + jj < p.N) { v = taps[(c0 + cc) * p.N + j0 + jj]; }
      tile[jj * 65u + cc] = v;
    }
    workgroupBarrier();
    let jn = min(64u, p.N - j0);
    for (var jj = 0u; jj < jn; jj = jj + 1u) {
      let tap = tile[jj * 65u + lxy.x];
${steps((k) => `      a${k} = a${k} + tap * w${k};`)}
      // Slide: w_k ← u[t0 + k − (j + 1)].
${steps((k) => `      w${STEPS - 1 - k} = w${STEPS - 2 - k};`).split("\n").slice(0, STEPS - 1).join("\n")}
      let back = j0 + jj + 1u;
      w0 = 0.0;
      if (cv && t0 >= back) { w0 = u[ub + (t0 - back) * p.C]; }
    }
  }
  if (!cv) { return; }
  if (p.has_state != 0u && t0 + 1u < p.N) {
${steps((k) => `    if (t0 + ${k}u < p.L) { a${k} = a${k} + state_term(t0 + ${k}u, c, b); }`)}
  }
${steps((k) => `    if (t0 + ${k}u < p.L) { y[ub + (t0 + ${k}u) * p.C] = a${k}; }`)}
}`,
  };
}

/** The gated long convolution with explicit kernels [H, K], summed directly (exact, O(L·min(L, K)) per channel). */
export function directConvSpec(): KernelSpec {
  return {
    key: "direct-conv", params: [["B", "u32"], ["L", "u32"], ["H", "u32"], ["P", "u32"], ["K", "u32"], ["has_v", "u32"], ["has_q", "u32"], ["has_d", "u32"]], workgroupSize: 64,
    bindings: [
      { name: "u", type: "f32" }, { name: "v", type: "f32" }, { name: "q", type: "f32" }, { name: "ker", type: "f32" },
      { name: "Dv", type: "f32" }, { name: "y", type: "f32", write: true },
    ],
    body: `${GATED_INPUT}
${MAIN_1D}
  let C = p.H * p.P;
  if (i >= p.B * p.L * C) { return; }
  let d2 = i % p.P;
  let h = (i / p.P) % p.H;
  let t = (i / C) % p.L;
  let b = i / (C * p.L);
  var skip = 0.0;
  if (p.has_d != 0u) { skip = Dv[h]; }
  let J = min(t, p.K - 1u);
  var out = 0.0;
  for (var d1 = 0u; d1 < p.P; d1 = d1 + 1u) {
    var z = skip * x_at(b * p.L + t, h, d1, d2);
    for (var j = 0u; j <= J; j = j + 1u) { z = z + ker[h * p.K + j] * x_at(b * p.L + t - j, h, d1, d2); }
    if (p.has_q != 0u) { z = z * q[(b * p.L + t) * C + h * p.P + d1]; }
    out = out + z;
  }
  y[i] = out;
}`,
  };
}

/**
 * One decoding step (L = 1) reads and writes every state entry once, so these kernels give each channel
 * a 32-lane group whose lanes take consecutive state modes (coalesced), and sum the output over the
 * lanes — the general kernels above give each channel one thread walking its state alone, N (or 2N)
 * floats apart from its neighbours'. 8 channels per 256-thread workgroup; grid (⌈channels / 8⌉, B).
 */
const LANE_GROUPS = `
var<workgroup> red: array<f32, 256>;
/** Σ of v over the 32 lanes of this thread's group (every thread must call it). */
fn lane_sum(v: f32, lid: u32) -> f32 {
  red[lid] = v;
  workgroupBarrier();
  let lane = lid % 32u;
  for (var s = 16u; s > 0u; s = s / 2u) {
    if (lane < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  return red[lid - lane];
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let lane = lid % 32u;
  let ch = wid.x * 8u + lid / 32u;
  let b = wid.y;`;

/** The shift SSM's step (shift-ssm at L = 1): y = D·u + taps[0]·u + Σ_{n≥1} C[n]·s[n−1]; s'[n] = B[n]·u + s[n−1]. */
export function shiftSsmStepSpec(): KernelSpec {
  return {
    key: "shift-ssm-step", params: [["C", "u32"], ["N", "u32"], ["has_d", "u32"], ["has_state", "u32"]], workgroupSize: 256,
    bindings: [
      { name: "u", type: "f32" }, { name: "taps", type: "f32" }, { name: "Bp", type: "f32" }, { name: "Cp", type: "f32" },
      { name: "Dv", type: "f32" }, { name: "state", type: "f32" }, { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `${LANE_GROUPS}
  let valid = ch < p.C;
  var acc = 0.0;
  if (valid) {
    let uc = u[b * p.C + ch];
    let base = (b * p.C + ch) * p.N;
    for (var n = lane; n < p.N; n = n + 32u) {
      var prev = 0.0;
      if (p.has_state != 0u && n > 0u) { prev = state[base + n - 1u]; }
      if (n > 0u) { acc = acc + Cp[ch * p.N + n] * prev; }
      state_out[base + n] = Bp[ch * p.N + n] * uc + prev;
    }
    if (lane == 0u) {
      acc = acc + taps[ch * p.N] * uc;
      if (p.has_d != 0u) { acc = acc + Dv[ch] * uc; }
    }
  }
  let total = lane_sum(acc, lid);
  if (valid && lane == 0u) { y[b * p.C + ch] = total; }
}`,
  };
}

/**
 * The diagonal SSM's step (diag-output at L = 1), one lane group per output channel (b, h, d2), lanes over
 * the N modes, d1 in turn: s' = dA·s + dB·x[d1, d2]; y = Σ_d1 q[d1]·(D·x + Σ_n 2·Re(C·s')).
 */
export function diagStepSpec(): KernelSpec {
  return {
    key: "diag-step", params: [["H", "u32"], ["P", "u32"], ["N", "u32"], ["has_v", "u32"], ["has_q", "u32"], ["has_h", "u32"], ["has_d", "u32"]],
    workgroupSize: 256,
    bindings: [
      { name: "u", type: "f32" }, { name: "v", type: "f32" }, { name: "q", type: "f32" }, { name: "disc", type: "f32" },
      { name: "h_in", type: "f32" }, { name: "Dv", type: "f32" }, { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `${COMPLEX}
${GATED_INPUT}
${LANE_GROUPS}
  let valid = ch < p.H * p.P;
  var acc = 0.0;
  if (valid) {
    let h = ch / p.P;
    let d2 = ch % p.P;
    var skip = 0.0;
    if (p.has_d != 0u) { skip = Dv[h]; }
    for (var d1 = 0u; d1 < p.P; d1 = d1 + 1u) {
      let xv = x_at(b, h, d1, d2);
      var qd = 1.0;
      if (p.has_q != 0u) { qd = q[b * p.H * p.P + h * p.P + d1]; }
      let so = (((b * p.H + h) * p.P + d1) * p.P + d2) * p.N * 2u;
      for (var n = lane; n < p.N; n = n + 32u) {
        let o = (h * p.N + n) * 8u;
        var s = vec2<f32>(0.0, 0.0);
        if (p.has_h != 0u) { s = vec2<f32>(h_in[so + 2u * n], h_in[so + 2u * n + 1u]); }
        s = cmul(vec2<f32>(disc[o], disc[o + 1u]), s) + vec2<f32>(disc[o + 2u], disc[o + 3u]) * xv;
        state_out[so + 2u * n] = s.x;
        state_out[so + 2u * n + 1u] = s.y;
        acc = acc + qd * 2.0 * (disc[o + 4u] * s.x - disc[o + 5u] * s.y);
      }
      if (lane == 0u) { acc = acc + qd * skip * xv; }
    }
  }
  let total = lane_sum(acc, lid);
  if (valid && lane == 0u) { y[b * p.H * p.P + ch] = total; }
}`,
  };
}
