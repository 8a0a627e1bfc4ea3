import type { KernelSpec } from "../runtime.js";
import { MAIN_1D } from "./wgsl.js";

/**
 * Depthwise causal conv over time, channels last (one thread per output, then one per state entry):
 * y[b, t, c] = bias[c] + Σ_j w[c, j]·in(t − (K−1) + j), in(t < 0) from the carried state [B, K−1, C].
 * The new state is the last K−1 inputs of (state ++ x).
 */
export function causalConv1dSpec(): KernelSpec {
  return {
    key: "causal-conv1d",
    params: [["B", "u32"], ["L", "u32"], ["C", "u32"], ["K", "u32"], ["has_bias", "u32"], ["has_state", "u32"], ["silu", "u32"], ["x_off", "u32"], ["x_stride", "u32"]],
    workgroupSize: 256,
    bindings: [
      { name: "x", type: "f32" }, { name: "w", type: "f32" }, { name: "bias", type: "f32" }, { name: "state", type: "f32" },
      { name: "y", type: "f32", write: true }, { name: "state_out", type: "f32", write: true },
    ],
    body: `
fn input_at(b: u32, t: i32, c: u32) -> f32 {
  let S = i32(p.K) - 1;
  if (t >= 0) { return x[p.x_off + (b * p.L + u32(t)) * p.x_stride + c]; }
  if (p.has_state == 0u) { return 0.0; }
  return state[(b * u32(S) + u32(S + t)) * p.C + c];
}
${MAIN_1D}
  let ny = p.B * p.L * p.C;
  let S = p.K - 1u;
  if (i < ny) {
    let c = i % p.C;
    let t = (i / p.C) % p.L;
    let b = i / (p.C * p.L);
    var acc = 0.0;
    if (p.has_bias != 0u) { acc = bias[c]; }
    for (var j = 0u; j < p.K; j = j + 1u) {
      acc = acc + w[c * p.K + j] * input_at(b, i32(t) - i32(S) + i32(j), c);
    }
    if (p.silu != 0u) { acc = acc / (1.0 + exp(-acc)); }
    y[i] = acc;
    return;
  }
  let k = i - ny;
  if (k >= p.B * S * p.C) { return; }
  let c = k % p.C;
  let s = (k / p.C) % S;
  let b = k / (p.C * S);
  state_out[k] = input_at(b, i32(p.L) - i32(S) + i32(s), c);
}`,
  };
}
