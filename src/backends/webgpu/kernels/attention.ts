import type { KernelSpec } from "../runtime.js";
import { MAIN_1D, SINCOS } from "./wgsl.js";

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
