import type { KernelSpec } from "../runtime.js";
import { squareTile, tileProduct } from "./wgsl.js";

/**
 * c [I, J] = A · b, where A(i, p) = a[i·sai + p·sap] (row-major [I, P] or, with `aTransposed`, the
 * transpose of a row-major [P, I]) and b is row-major [P, J]: the two products of a linear layer's
 * backward (x's gradient g · W, the weight's gradient gᵀ · x) without materialising a transpose.
 *
 * 64×64 output tiles, 16-deep slices of A and b staged in workgroup memory, each of 256 threads
 * accumulating a 4×4 block. Slices are loaded so that neighbouring threads read neighbouring addresses:
 * along p for a row-major A, along i for a transposed one, along j for b.
 */
export function stridedMatmulSpec(aTransposed: boolean): KernelSpec {
  const loadA = aTransposed
    ? `let r = idx % BM; let c = idx / BM;` // consecutive threads: consecutive i (unit stride of a transposed A)
    : `let r = idx / BK; let c = idx % BK;`; // consecutive threads: consecutive p
  return {
    key: `matmul-strided-${aTransposed ? "t" : "n"}`,
    params: [["I", "u32"], ["J", "u32"], ["P", "u32"], ["sai", "u32"], ["sap", "u32"]],
    workgroupSize: 256,
    bindings: [
      { name: "a", type: "f32" },
      { name: "b", type: "f32" },
      { name: "c", type: "f32", write: true },
    ],
    body: `const T: u32 = 4u;
const BM: u32 = 64u;
const BK: u32 = 16u;
const BMP: u32 = 65u;
const BNP: u32 = 65u;
var<workgroup> As: array<f32, ${16 * 65}>;
var<workgroup> Bs: array<f32, ${16 * 65}>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i0 = wid.y * BM;
  let j0 = wid.x * BM;
  let tx = lid % 16u;
  let ty = lid / 16u;
  var acc: array<array<f32, 4>, 4>;
  for (var i = 0u; i < T; i = i + 1u) { for (var j = 0u; j < T; j = j + 1u) { acc[i][j] = 0.0; } }
  for (var p0 = 0u; p0 < p.P; p0 = p0 + BK) {
    for (var l = 0u; l < 4u; l = l + 1u) {
      let idx = lid + l * 256u;
      {
        ${loadA}
        var v = 0.0;
        if (i0 + r < p.I && p0 + c < p.P) { v = a[(i0 + r) * p.sai + (p0 + c) * p.sap]; }
        As[c * BMP + r] = v;
      }
      {
        let j = idx % BM;
        let c = idx / BM;
        var v = 0.0;
        if (j0 + j < p.J && p0 + c < p.P) { v = b[(p0 + c) * p.J + j0 + j]; }
        Bs[c * BMP + j] = v;
      }
    }
    workgroupBarrier();
    ${tileProduct(squareTile(4))}
    workgroupBarrier();
  }
  for (var i = 0u; i < T; i = i + 1u) {
    let row = i0 + ty + 16u * i;
    if (row >= p.I) { continue; }
    for (var j = 0u; j < T; j = j + 1u) {
      let col = j0 + tx + 16u * j;
      if (col < p.J) { c[row * p.J + col] = acc[i][j]; }
    }
  }
}`,
  };
}
