import type { KernelSpec } from "../runtime.js";
import { each4, LANES, MAIN_1D, SINCOS } from "./wgsl.js";

/**
 * Causal attention, flash-attention style: a workgroup of 64 threads takes 64 consecutive queries of one
 * (batch row, query head); key/value tiles of BK rows are staged in workgroup memory and every thread keeps
 * its query, a running max, a running sum and its output row in registers (online softmax), so scores are
 * never written out. Query i of row b sits at position queryStart[b] + i and sees keys up to there (GQA:
 * query head h reads key/value head h / (Hq / Hkv)).
 */

const QPW = 64;

/** Parameters and buffers of both attention kernels (the flash one and the split-keys one for decoding). */
const ATTENTION_PARAMS: KernelSpec["params"] = [["L", "u32"], ["T", "u32"], ["Hq", "u32"], ["Hkv", "u32"], ["scale", "f32"]];
const ATTENTION_BINDINGS: KernelSpec["bindings"] = [
  { name: "q", type: "f32" }, { name: "k", type: "f32" }, { name: "v", type: "f32" }, { name: "q_start", type: "i32" },
  { name: "out", type: "f32", write: true },
];

export function attentionTileKeys(D: number, Dv: number): number {
  return Math.max(1, Math.min(64, Math.floor(4096 / (D + Dv))));
}

export function attentionGrid(B: number, L: number, Hq: number): [number, number, number] {
  return [Math.ceil(L / QPW), Hq, B];
}

export function attentionSpec(D: number, Dv: number): KernelSpec {
  const BK = attentionTileKeys(D, Dv);
  return {
    key: `attention-${D}-${Dv}`,
    params: ATTENTION_PARAMS,
    workgroupSize: QPW,
    bindings: ATTENTION_BINDINGS,
    body: `
const D: u32 = ${D}u;
const DV: u32 = ${Dv}u;
const BK: u32 = ${BK}u;
var<workgroup> ks: array<f32, ${BK * D}>;
var<workgroup> vs: array<f32, ${BK * Dv}>;
var<workgroup> start_sh: u32;
@compute @workgroup_size(${QPW})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.z;
  let h = wid.y;
  let kh = h / (p.Hq / p.Hkv);
  let i0 = wid.x * ${QPW}u;
  let i = i0 + lid;
  let valid = i < p.L;
  if (lid == 0u) { start_sh = u32(max(q_start[b], 0)); }
  let start = workgroupUniformLoad(&start_sh);
  // Keys any query of this block can see (uniform over the workgroup).
  let last_i = min(p.L, i0 + ${QPW}u) - 1u;
  let block_keys = min(p.T, start + last_i + 1u);
  var visible = 0u;
  if (valid) { visible = min(p.T, start + i + 1u); }
  var qv: array<f32, ${D}>;
  var acc: array<f32, ${Dv}>;
  for (var e = 0u; e < DV; e = e + 1u) { acc[e] = 0.0; }
  if (valid) {
    let qo = ((b * p.L + i) * p.Hq + h) * D;
    for (var e = 0u; e < D; e = e + 1u) { qv[e] = q[qo + e] * p.scale; }
  }
  var m = -3.0e38;
  var l = 0.0;
  for (var j0 = 0u; j0 < block_keys; j0 = j0 + BK) {
    for (var e = lid; e < BK * D; e = e + ${QPW}u) {
      let j = j0 + e / D;
      var kv = 0.0;
      if (j < p.T) { kv = k[((b * p.T + j) * p.Hkv + kh) * D + e % D]; }
      ks[e] = kv;
    }
    for (var e = lid; e < BK * DV; e = e + ${QPW}u) {
      let j = j0 + e / DV;
      var vv = 0.0;
      if (j < p.T) { vv = v[((b * p.T + j) * p.Hkv + kh) * DV + e % DV]; }
      vs[e] = vv;
    }
    workgroupBarrier();
    let jn = min(BK, select(0u, visible - min(visible, j0), visible > j0));
    for (var jj = 0u; jj < jn; jj = jj + 1u) {
      var s = 0.0;
      for (var e = 0u; e < D; e = e + 1u) { s = s + qv[e] * ks[jj * D + e]; }
      let m_new = max(m, s);
      let corr = exp(m - m_new);
      let w = exp(s - m_new);
      l = l * corr + w;
      for (var e = 0u; e < DV; e = e + 1u) { acc[e] = acc[e] * corr + w * vs[jj * DV + e]; }
      m = m_new;
    }
    workgroupBarrier();
  }
  if (valid) {
    let oo = ((b * p.L + i) * p.Hq + h) * DV;
    for (var e = 0u; e < DV; e = e + 1u) { out[oo + e] = select(0.0, acc[e] / l, visible > 0u); }
  }
}`,
  };
}

/** Shapes the tiled attention kernel takes: prefill (64 queries and more), values up to 64 wide; keys any size. */
export function useTiledAttention(L: number, Dv: number): boolean {
  return L >= 64 && Dv <= 64;
}

/**
 * Causal attention for prefill as tile products (flash-attention's order of work): a workgroup of 256
 * threads takes 64 queries of one (row, head) and walks key tiles of 64. S = Q·Kᵀ is accumulated over
 * slices of 16 head dimensions staged in workgroup memory as vec4 columns, each thread holding 4 queries ×
 * 4 keys; the online softmax's row max and row sum are reduced through workgroup memory; P goes to
 * workgroup memory and O += P·V runs over slices of 16 keys, each thread holding 4 queries × 4 value
 * columns. Every shared-memory read is a vec4 feeding 16 multiply-adds (the one-query-per-thread kernel
 * above read a scalar per multiply-add).
 */
export function attentionTiledSpec(D: number, Dv: number): KernelSpec {
  const rows = (f: (r: number, c: string) => string) => each4((r) => f(r, LANES[r]));
  return {
    key: `attention-tiled-${D}-${Dv}`,
    params: ATTENTION_PARAMS,
    workgroupSize: 256,
    bindings: ATTENTION_BINDINGS,
    body: `
const D: u32 = ${D}u;
const DV: u32 = ${Dv}u;
// P4[k·16 + q/4]: P[q..q+3][k] of the current key tile.
var<workgroup> P4: array<vec4<f32>, 1024>;
// Slices [d·17 + q/4] of Q and [d·17 + k/4] of K (rows padded against bank conflicts), then [k·17 + d/4] of V.
var<workgroup> qs4: array<vec4<f32>, 272>;
var<workgroup> ks4: array<vec4<f32>, 272>;
// Row reductions: red4[q·4 + tx/4][tx % 4] holds thread tx's part of query q's max or sum.
var<workgroup> red4: array<vec4<f32>, 256>;
var<workgroup> start_sh: u32;
fn row_total(q: u32, is_max: bool) -> f32 {
  let a = red4[q * 4u];
  let b = red4[q * 4u + 1u];
  let c = red4[q * 4u + 2u];
  let d = red4[q * 4u + 3u];
  if (is_max) {
    let m = max(max(a, b), max(c, d));
    return max(max(m.x, m.y), max(m.z, m.w));
  }
  let s = (a + b) + (c + d);
  return (s.x + s.y) + (s.z + s.w);
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let b = wid.z;
  let h = wid.y;
  let kh = h / (p.Hq / p.Hkv);
  let i0 = wid.x * 64u;
  let tx = lid % 16u;
  let ty = lid / 16u;
  if (lid == 0u) { start_sh = u32(max(q_start[b], 0)); }
  let start = workgroupUniformLoad(&start_sh);
  let last_i = min(p.L, i0 + 64u) - 1u;
  let block_keys = min(p.T, start + last_i + 1u);
  // This thread's queries i0 + ty·4 + r, and the last key each sees.
${rows((r) => `  let qi${r} = i0 + ty * 4u + ${r}u;\n  let last${r} = start + qi${r};`)}
  var m4 = vec4<f32>(-3.0e38);
  var l4 = vec4<f32>(0.0);
${rows((r) => `  var o${r} = vec4<f32>(0.0);`)}
  for (var j0 = 0u; j0 < block_keys; j0 = j0 + 64u) {
    // S = Q·Kᵀ for 64 queries × 64 keys.
${rows((r) => `    var s${r} = vec4<f32>(0.0);`)}
    for (var d0 = 0u; d0 < D; d0 = d0 + 16u) {
      let dd = lid % 16u;
      let g = lid / 16u;
      var qv = vec4<f32>(0.0);
      var kv = vec4<f32>(0.0);
      if (d0 + dd < D) {
${rows((r, c) => `        if (i0 + g * 4u + ${r}u < p.L) { qv.${c} = q[((b * p.L + i0 + g * 4u + ${r}u) * p.Hq + h) * D + d0 + dd]; }
        if (j0 + g * 4u + ${r}u < p.T) { kv.${c} = k[((b * p.T + j0 + g * 4u + ${r}u) * p.Hkv + kh) * D + d0 + dd]; }`)}
      }
      qs4[dd * 17u + g] = qv;
      ks4[dd * 17u + g] = kv;
      workgroupBarrier();
      for (var e = 0u; e < 16u; e = e + 1u) {
        let a = qs4[e * 17u + ty];
        let kk = ks4[e * 17u + tx];
${rows((r, c) => `        s${r} = s${r} + a.${c} * kk;`)}
      }
      workgroupBarrier();
    }
    // Mask (causal, past the keys, past the queries) and scale; the tile's row max.
    let j = vec4<u32>(j0 + tx * 4u) + vec4<u32>(0u, 1u, 2u, 3u);
${rows((r) => `    let ok${r} = (j <= vec4<u32>(last${r})) & (j < vec4<u32>(p.T)) & vec4<bool>(qi${r} < p.L);
    s${r} = select(vec4<f32>(-3.0e38), s${r} * p.scale, ok${r});
    red4[(ty * 4u + ${r}u) * 4u + tx / 4u][tx % 4u] = max(max(s${r}.x, s${r}.y), max(s${r}.z, s${r}.w));`)}
    workgroupBarrier();
    var m_new = m4;
${rows((r, c) => `    m_new.${c} = max(m4.${c}, row_total(ty * 4u + ${r}u, true));`)}
    workgroupBarrier();
    let corr = exp(m4 - m_new);
    m4 = m_new;
${rows((r, c) => `    let p${r} = select(vec4<f32>(0.0), exp(s${r} - vec4<f32>(m_new.${c})), ok${r});
    red4[(ty * 4u + ${r}u) * 4u + tx / 4u][tx % 4u] = (p${r}.x + p${r}.y) + (p${r}.z + p${r}.w);
    o${r} = o${r} * corr.${c};`)}
${rows((k, c) => `    P4[(tx * 4u + ${k}u) * 16u + ty] = vec4<f32>(p0.${c}, p1.${c}, p2.${c}, p3.${c});`)}
    workgroupBarrier();
    var sums = vec4<f32>(0.0);
${rows((r, c) => `    sums.${c} = row_total(ty * 4u + ${r}u, false);`)}
    l4 = l4 * corr + sums;
    // O += P·V over slices of 16 keys.
    for (var k0 = 0u; k0 < 64u; k0 = k0 + 16u) {
      let kk = lid / 16u;
      let dg = lid % 16u;
      var vv = vec4<f32>(0.0);
      if (j0 + k0 + kk < p.T) {
        let vo = ((b * p.T + j0 + k0 + kk) * p.Hkv + kh) * DV + dg * 4u;
${rows((e, c) => `        if (dg * 4u + ${e}u < DV) { vv.${c} = v[vo + ${e}u]; }`)}
      }
      ks4[kk * 17u + dg] = vv;
      workgroupBarrier();
      for (var e = 0u; e < 16u; e = e + 1u) {
        let pr = P4[(k0 + e) * 16u + ty];
        let vr = ks4[e * 17u + tx];
${rows((r, c) => `        o${r} = o${r} + pr.${c} * vr;`)}
      }
      workgroupBarrier();
    }
  }
  // Queries that see no key (an empty cache) get zeros, as the other kernels give.
${rows((r, c) => `  if (qi${r} < p.L) {
    let oo = ((b * p.L + qi${r}) * p.Hq + h) * DV + tx * 4u;
    let res = select(vec4<f32>(0.0), o${r} / l4.${c}, l4.${c} > 0.0);
${each4((e) => `    if (tx * 4u + ${e}u < DV) { out[oo + ${e}u] = res.${LANES[e]}; }`)}
  }`)}
}`,
  };
}

/**
 * Rotary embedding: one thread per (b, t, h, pair). Frequencies come from the host (as torch rounds them
 * to f32), and so do scaled positions (start + t) / scale when the starts are known there (a GPU's division
 * need not round correctly, and one ulp of a large position is a visible angle); angles are reduced by π/2 in extended precision and sin/cos evaluated by polynomials, so large
 * positions keep f32 accuracy on any GPU.
 */
export function ropeSpec(): KernelSpec {
  return {
    key: "rope",
    params: [["B", "u32"], ["L", "u32"], ["H", "u32"], ["D", "u32"], ["half", "u32"], ["inv_scale", "f32"], ["scaled", "u32"], ["host_pos", "u32"], ["interleaved", "u32"]],
    workgroupSize: 256,
    bindings: [
      { name: "x", type: "f32" }, { name: "start", type: "i32" }, { name: "inv_freq", type: "f32" }, { name: "positions", type: "f32" },
      { name: "out", type: "f32", write: true },
    ],
    body: `${SINCOS}
${MAIN_1D}
  let total = p.B * p.L * p.H * p.D;
  if (i >= total) { return; }
  let d = i % p.D;
  let h = (i / p.D) % p.H;
  let t = (i / (p.D * p.H)) % p.L;
  let b = i / (p.D * p.H * p.L);
  let o = i - d;
  let rot = 2u * p.half;
  if (d >= rot) { out[i] = x[i]; return; }
  var pair = 0u;
  var first = true;
  if (p.interleaved != 0u) { pair = d / 2u; first = (d % 2u) == 0u; } else { pair = d % p.half; first = d < p.half; }
  var i1 = o + pair;
  var i2 = o + pair + p.half;
  if (p.interleaved != 0u) { i1 = o + 2u * pair; i2 = o + 2u * pair + 1u; }
  var pos = f32(u32(start[b]) + t);
  if (p.host_pos != 0u) { pos = positions[b * p.L + t]; } else if (p.scaled != 0u) { pos = pos * p.inv_scale; }
  let sc = sincos(pos * inv_freq[pair]);
  let x1 = x[i1];
  let x2 = x[i2];
  if (first) { out[i] = x1 * sc.y - x2 * sc.x; } else { out[i] = x2 * sc.y + x1 * sc.x; }
}`,
  };
}

/**
 * Causal attention for a few queries against a long cache (decoding): one workgroup per (query, head, row)
 * and the keys split across its threads, each keeping its own online softmax over keys lid, lid + 64, …;
 * the partial results are then merged through workgroup memory (max, rescaled sums, then the output
 * columns 32 at a time). The flash kernel above gives a single query to one thread, which walks all T keys
 * alone — 870× its memory floor for a 4K-token cache on an H200.
 */
const DECODE_THREADS = 64;
const DECODE_COLUMNS = 32;

/** Whether the split-keys kernel suits the shape: few queries per row, enough keys to share out. */
export function useDecodeAttention(L: number, T: number): boolean {
  return L <= 4 && T >= 2 * DECODE_THREADS;
}

export function decodeAttentionGrid(B: number, L: number, Hq: number): [number, number, number] {
  return [L, Hq, B];
}

export function decodeAttentionSpec(D: number, Dv: number): KernelSpec {
  const W = DECODE_THREADS;
  const C = DECODE_COLUMNS;
  return {
    key: `attention-decode-${D}-${Dv}`,
    params: ATTENTION_PARAMS,
    workgroupSize: W,
    bindings: ATTENTION_BINDINGS,
    body: `
const D: u32 = ${D}u;
const DV: u32 = ${Dv}u;
var<workgroup> m_sh: array<f32, ${W}>;
var<workgroup> l_sh: array<f32, ${W}>;
var<workgroup> cols: array<f32, ${W * C}>;
@compute @workgroup_size(${W})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = wid.x;
  let h = wid.y;
  let b = wid.z;
  let kh = h / (p.Hq / p.Hkv);
  let visible = min(p.T, u32(max(q_start[b], 0)) + i + 1u);
  var qv: array<f32, ${D}>;
  let qo = ((b * p.L + i) * p.Hq + h) * D;
  for (var e = 0u; e < D; e = e + 1u) { qv[e] = q[qo + e] * p.scale; }
  var acc: array<f32, ${Dv}>;
  for (var e = 0u; e < DV; e = e + 1u) { acc[e] = 0.0; }
  var m = -3.0e38;
  var l = 0.0;
  for (var j = lid; j < visible; j = j + ${W}u) {
    let ko = ((b * p.T + j) * p.Hkv + kh) * D;
    var s = 0.0;
    for (var e = 0u; e < D; e = e + 1u) { s = s + qv[e] * k[ko + e]; }
    let m_new = max(m, s);
    let corr = exp(m - m_new);
    let w = exp(s - m_new);
    l = l * corr + w;
    let vo = ((b * p.T + j) * p.Hkv + kh) * DV;
    for (var e = 0u; e < DV; e = e + 1u) { acc[e] = acc[e] * corr + w * v[vo + e]; }
    m = m_new;
  }
  // Merge: the workgroup's max, then every thread's sums rescaled to it.
  m_sh[lid] = m;
  workgroupBarrier();
  var big = -3.0e38;
  for (var t = 0u; t < ${W}u; t = t + 1u) { big = max(big, m_sh[t]); }
  // A thread that saw no key has l = 0 and contributes nothing (exp of a huge negative is 0).
  let f = select(0.0, exp(m - big), l > 0.0);
  l_sh[lid] = l * f;
  workgroupBarrier();
  var total = 0.0;
  for (var t = 0u; t < ${W}u; t = t + 1u) { total = total + l_sh[t]; }
  let oo = ((b * p.L + i) * p.Hq + h) * DV;
  for (var c0 = 0u; c0 < DV; c0 = c0 + ${C}u) {
    for (var c = 0u; c < ${C}u; c = c + 1u) {
      var a = 0.0;
      if (c0 + c < DV) { a = acc[c0 + c] * f; }
      cols[lid * ${C}u + c] = a;
    }
    workgroupBarrier();
    if (lid < ${C}u && c0 + lid < DV) {
      var sum = 0.0;
      for (var t = 0u; t < ${W}u; t = t + 1u) { sum = sum + cols[t * ${C}u + lid]; }
      out[oo + c0 + lid] = select(0.0, sum / total, visible > 0u);
    }
    workgroupBarrier();
  }
}`,
  };
}
