import type { KernelSpec } from "../runtime.js";
import { BLOCK_SUM } from "./wgsl.js";

/** Norms over the last axis: one 256-thread workgroup per row (or per group of the gated norm). */

const MAIN_ROW = `@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= p.rows) { return; }`;

/**
 * RMSNorm (layer = 0) or LayerNorm (layer = 1, optional bias) of each row, one workgroup per row. With
 * `addend`, of sum = a + b, which is written out too: the residual add fused with the next pre-norm.
 */
export function rowNormSpec(addend: boolean): KernelSpec {
  const src = addend ? "sum" : "x";
  return {
    key: addend ? "add-norm" : "row-norm", params: [["rows", "u32"], ["D", "u32"], ["eps", "f32"], ["layer", "u32"], ["has_bias", "u32"]],
    workgroupSize: 256,
    bindings: [
      ...(addend ? [{ name: "a", type: "f32" }, { name: "b", type: "f32" }] as const : [{ name: "x", type: "f32" }] as const),
      { name: "w", type: "f32" }, { name: "bias", type: "f32" },
      ...(addend ? [{ name: "sum", type: "f32", write: true }] as const : []),
      { name: "out", type: "f32", write: true },
    ],
    body: `${BLOCK_SUM}
${MAIN_ROW}
  let o = row * p.D;
  var s = 0.0;
  for (var i = lid; i < p.D; i = i + 256u) { ${addend ? "let v = a[o + i] + b[o + i]; sum[o + i] = v;" : "let v = x[o + i];"} s = s + v; }
  var mean = 0.0;
  if (p.layer != 0u) { mean = block_sum(s, lid) / f32(p.D); }
  // Each thread reads back only the elements it read (or wrote) itself.
  var ss = 0.0;
  for (var i = lid; i < p.D; i = i + 256u) { let d = ${src}[o + i] - mean; ss = ss + d * d; }
  let inv = 1.0 / sqrt(block_sum(ss, lid) / f32(p.D) + p.eps);
  for (var i = lid; i < p.D; i = i + 256u) {
    var bb = 0.0;
    if (p.has_bias != 0u) { bb = bias[i]; }
    out[o + i] = (${src}[o + i] - mean) * inv * w[i] + bb;
  }
}`,
  };
}

/** v = y·silu(z), RMS-normalised over consecutive groups of `group` channels, times w. */
export function gatedRmsNormSpec(): KernelSpec {
  return {
    key: "gated-rms-norm",
    params: [["rows", "u32"], ["group", "u32"], ["wlen", "u32"], ["eps", "f32"], ["z_off", "u32"], ["z_stride", "u32"], ["z_width", "u32"]],
    workgroupSize: 256,
    bindings: [{ name: "y", type: "f32" }, { name: "z", type: "f32" }, { name: "w", type: "f32" }, { name: "out", type: "f32", write: true }],
    body: `${BLOCK_SUM}
// z may be a column slice of wider rows: element e at off + (e / width)·stride + e % width.
fn zat(e: u32) -> u32 { return p.z_off + (e / p.z_width) * p.z_stride + e % p.z_width; }
${MAIN_ROW}
  let o = row * p.group;
  let wo = o % p.wlen;
  var ss = 0.0;
  for (var i = lid; i < p.group; i = i + 256u) {
    let zi = z[zat(o + i)];
    let v = y[o + i] * (zi / (1.0 + exp(-zi)));
    ss = ss + v * v;
  }
  let inv = 1.0 / sqrt(block_sum(ss, lid) / f32(p.group) + p.eps);
  for (var i = lid; i < p.group; i = i + 256u) {
    let zi = z[zat(o + i)];
    let v = y[o + i] * (zi / (1.0 + exp(-zi)));
    out[o + i] = v * inv * w[wo + i];
  }
}`,
  };
}
