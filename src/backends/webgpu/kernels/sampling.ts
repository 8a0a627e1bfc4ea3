import type { KernelSpec } from "../runtime.js";

/**
 * Next-token choice on the GPU, one 256-thread workgroup per row, following sampleToken (sampling.ts):
 * greedy argmax (lowest id wins ties, NaN never wins) when temperature is 0; otherwise logits / T,
 * top-k (ties at the k-th value kept), softmax weights relative to the max, top-p (HF: keep a token while
 * the mass strictly above it is below top_p), min-p, and one inverse-CDF draw over the kept ids in
 * ascending order with the host's uniform number. Thresholds are found by a 32-step bisection over the
 * order-preserving u32 image of the f32 logits, so no sort is needed.
 */
export function sampleSpec(): KernelSpec {
  return {
    key: "sample-tokens",
    params: [["V", "u32"], ["temperature", "f32"], ["top_k", "u32"], ["top_p", "f32"], ["min_p", "f32"]],
    workgroupSize: 256,
    bindings: [{ name: "logits", type: "f32" }, { name: "uniforms", type: "f32" }, { name: "ids", type: "i32", write: true }],
    body: `
var<workgroup> rf: array<f32, 256>;
var<workgroup> ru: array<u32, 256>;
var<workgroup> ri: array<u32, 256>;

fn key_of(v: f32) -> u32 {
  let b = bitcast<u32>(v);
  return select(b | 0x80000000u, ~b, (b & 0x80000000u) != 0u);
}
fn is_finite(v: f32) -> bool { return (bitcast<u32>(v) & 0x7f800000u) != 0x7f800000u; }

fn sum_f(v: f32, lid: u32) -> f32 {
  rf[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s / 2u) {
    if (lid < s) { rf[lid] = rf[lid] + rf[lid + s]; }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&rf[0]);
  workgroupBarrier();
  return r;
}
fn max_f(v: f32, lid: u32) -> f32 {
  rf[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s / 2u) {
    if (lid < s) { rf[lid] = max(rf[lid], rf[lid + s]); }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&rf[0]);
  workgroupBarrier();
  return r;
}
fn sum_u(v: u32, lid: u32) -> u32 {
  ru[lid] = v;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s / 2u) {
    if (lid < s) { ru[lid] = ru[lid] + ru[lid + s]; }
    workgroupBarrier();
  }
  let r = workgroupUniformLoad(&ru[0]);
  workgroupBarrier();
  return r;
}

@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.x;
  let base = row * p.V;
  // Greedy, and the fallback when nothing is a candidate.
  var best_v = 0.0;
  var best_i = 0xffffffffu;
  for (var i = lid; i < p.V; i = i + 256u) {
    let x = logits[base + i];
    if (x == x && (best_i == 0xffffffffu || x > best_v)) { best_v = x; best_i = i; }
  }
  rf[lid] = best_v;
  ri[lid] = best_i;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s / 2u) {
    if (lid < s) {
      let oi = ri[lid + s];
      let ov = rf[lid + s];
      let mi = ri[lid];
      if (oi != 0xffffffffu && (mi == 0xffffffffu || ov > rf[lid] || (ov == rf[lid] && oi < mi))) { rf[lid] = ov; ri[lid] = oi; }
    }
    workgroupBarrier();
  }
  var argmax = ri[0];
  if (argmax == 0xffffffffu || bitcast<u32>(rf[0]) == 0xff800000u) { argmax = 0u; }
  workgroupBarrier();
  if (p.temperature == 0.0) {
    if (lid == 0u) { ids[row] = i32(argmax); }
    return;
  }

  let inv_t = p.temperature;
  // Largest scaled logit among finite ones.
  var mx_local = -3.4e38;
  var any_local = 0u;
  for (var i = lid; i < p.V; i = i + 256u) {
    let s = logits[base + i] / inv_t;
    if (is_finite(s)) { mx_local = max(mx_local, s); any_local = 1u; }
  }
  let mx = max_f(mx_local, lid);
  let n_any = sum_u(any_local, lid);
  if (n_any == 0u) {
    if (lid == 0u) { ids[row] = i32(argmax); }
    return;
  }

  // Top-k: the k-th largest key (with multiplicity) = the smallest K with count(key > K) < k.
  var k_lo = 0u;
  if (p.top_k > 0u && p.top_k < p.V) {
    var lo = 0u;
    var hi = 0xffffffffu;
    for (var it = 0u; it < 32u; it = it + 1u) {
      if (lo >= hi) { break; }
      let mid = lo + (hi - lo) / 2u;
      var cnt = 0u;
      for (var i = lid; i < p.V; i = i + 256u) {
        let s = logits[base + i] / inv_t;
        if (is_finite(s) && key_of(s) > mid) { cnt = cnt + 1u; }
      }
      if (sum_u(cnt, lid) < p.top_k) { hi = mid; } else { lo = mid + 1u; }
    }
    k_lo = lo;
  }

  // Weights of the candidates and their total.
  var tot = 0.0;
  for (var i = lid; i < p.V; i = i + 256u) {
    let s = logits[base + i] / inv_t;
    if (is_finite(s) && key_of(s) >= k_lo) { tot = tot + exp(s - mx); }
  }
  let total = sum_f(tot, lid);

  // Top-p: keep a token iff the mass strictly above it is below top_p · total.
  var p_lo = k_lo;
  if (p.top_p < 1.0) {
    let mass_limit = p.top_p * total;
    var lo = k_lo;
    var hi = 0xffffffffu;
    for (var it = 0u; it < 33u; it = it + 1u) {
      if (lo >= hi) { break; }
      let mid = lo + (hi - lo) / 2u;
      var mass = 0.0;
      for (var i = lid; i < p.V; i = i + 256u) {
        let s = logits[base + i] / inv_t;
        if (is_finite(s) && key_of(s) > mid) { mass = mass + exp(s - mx); }
      }
      if (sum_f(mass, lid) < mass_limit) { hi = mid; } else { lo = mid + 1u; }
    }
    p_lo = lo;
  }

  // Inverse CDF over kept ids in ascending order: each thread owns a contiguous range.
  let span = (p.V + 255u) / 256u;
  let r0 = min(p.V, lid * span);
  let r1 = min(p.V, r0 + span);
  var part = 0.0;
  var last_kept = 0xffffffffu;
  for (var i = r0; i < r1; i = i + 1u) {
    let s = logits[base + i] / inv_t;
    if (is_finite(s) && key_of(s) >= p_lo) {
      let w = exp(s - mx);
      if (w >= p.min_p && w > 0.0) { part = part + w; last_kept = i; }
    }
  }
  rf[lid] = part;
  ri[lid] = last_kept;
  workgroupBarrier();
  if (lid == 0u) {
    var kept_total = 0.0;
    var last = 0xffffffffu;
    for (var t = 0u; t < 256u; t = t + 1u) {
      let v = rf[t];
      rf[t] = kept_total;
      kept_total = kept_total + v;
      if (ri[t] != 0xffffffffu) { last = ri[t]; }
    }
    ru[0] = select(last, argmax, last == 0xffffffffu);
    ru[1] = bitcast<u32>(kept_total * uniforms[row]);
    ru[2] = 0xffffffffu;
  }
  workgroupBarrier();
  let u_target = bitcast<f32>(ru[1]);
  var prefix = rf[lid];
  var found = 0xffffffffu;
  if (prefix <= u_target) {
    var acc = prefix;
    for (var i = r0; i < r1; i = i + 1u) {
      let s = logits[base + i] / inv_t;
      if (is_finite(s) && key_of(s) >= p_lo) {
        let w = exp(s - mx);
        if (w >= p.min_p && w > 0.0) {
          acc = acc + w;
          if (u_target < acc) { found = i; break; }
        }
      }
    }
  }
  ri[lid] = found;
  workgroupBarrier();
  if (lid == 0u) {
    var pick = ru[0];
    for (var t = 0u; t < 256u; t = t + 1u) {
      if (ri[t] != 0xffffffffu) { pick = ri[t]; break; }
    }
    ids[row] = i32(pick);
  }
}`,
  };
}
