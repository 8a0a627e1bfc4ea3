import type { KernelSpec } from "../runtime.js";
import { ACTIVATIONS, bindType, loadFn, MAIN_1D, UNARY_EXPR, type WeightDType } from "./wgsl.js";

/** Elementwise kernels and the data movement behind the shape ops. All take a flat thread index. */

export function fillSpec(): KernelSpec {
  return {
    key: "fill", params: [["n", "u32"], ["value", "u32"]], workgroupSize: 256,
    bindings: [{ name: "out", type: "u32", write: true }],
    body: `${MAIN_1D}
  if (i < p.n) { out[i] = p.value; }
}`,
  };
}

export function unarySpec(op: string): KernelSpec {
  return {
    key: `unary-${op}`, params: [["n", "u32"]], workgroupSize: 256,
    bindings: [{ name: "x_in", type: "f32" }, { name: "out", type: "f32", write: true }],
    body: `${ACTIVATIONS}
${MAIN_1D}
  if (i >= p.n) { return; }
  let x = x_in[i];
  out[i] = ${UNARY_EXPR[op]};
}`,
  };
}

const BINARY_EXPR: Record<string, string> = { add: "a + b", mul: "a * b", sub: "a - b" };

/** out = a op b, b repeating over a's leading dims. */
export function binarySpec(op: string): KernelSpec {
  return {
    key: `binary-${op}`, params: [["n", "u32"], ["nb", "u32"]], workgroupSize: 256,
    bindings: [{ name: "xa", type: "f32" }, { name: "xb", type: "f32" }, { name: "out", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.n) { return; }
  let a = xa[i];
  let b = xb[i % p.nb];
  out[i] = ${BINARY_EXPR[op]};
}`,
  };
}

/** out[dst + i] = src[srcOff + i] for i < n (32-bit words). */
export function copySpec(): KernelSpec {
  return {
    key: "copy", params: [["n", "u32"], ["src_off", "u32"], ["dst_off", "u32"]], workgroupSize: 256,
    bindings: [{ name: "src", type: "u32" }, { name: "out", type: "u32", write: true }],
    body: `${MAIN_1D}
  if (i < p.n) { out[p.dst_off + i] = src[p.src_off + i]; }
}`,
  };
}

/** f16/bf16 (packed), f32 or i32 → f32. */
export function widenSpec(dtype: WeightDType | "i32"): KernelSpec {
  const load = dtype === "i32" ? "fn load_src(i: u32) -> f32 { return f32(src[i]); }\n" : loadFn("load_src", "src", dtype);
  return {
    key: `widen-${dtype}`, params: [["n", "u32"]], workgroupSize: 256,
    bindings: [{ name: "src", type: dtype === "i32" ? "i32" : bindType(dtype) }, { name: "out", type: "f32", write: true }],
    body: `${load}
${MAIN_1D}
  if (i < p.n) { out[i] = load_src(i); }
}`,
  };
}

/** Rows of `dtype` table picked by i32 ids (clamped into the table) → f32. */
export function embeddingSpec(dtype: WeightDType): KernelSpec {
  return {
    key: `embedding-${dtype}`, params: [["n", "u32"], ["dim", "u32"], ["vocab", "u32"]], workgroupSize: 256,
    bindings: [{ name: "table", type: bindType(dtype) }, { name: "ids", type: "i32" }, { name: "out", type: "f32", write: true }],
    body: `${loadFn("load_table", "table", dtype)}
${MAIN_1D}
  if (i >= p.n) { return; }
  let row = i / p.dim;
  let id = u32(clamp(ids[row], 0, i32(p.vocab) - 1));
  out[i] = load_table(id * p.dim + i % p.dim);
}`,
  };
}

/** Columns [start, start + len) of rows of width `width`. */
export function sliceLastSpec(): KernelSpec {
  return {
    key: "slice-last", params: [["n", "u32"], ["width", "u32"], ["start", "u32"], ["len", "u32"]], workgroupSize: 256,
    bindings: [{ name: "src", type: "f32" }, { name: "out", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.n) { return; }
  let r = i / p.len;
  out[i] = src[r * p.width + p.start + i % p.len];
}`,
  };
}

/** A zero-copy view made dense: out[e] = src[off + (e / width)·stride + e % width]. */
export function gatherViewSpec(): KernelSpec {
  return {
    key: "gather-view", params: [["n", "u32"], ["off", "u32"], ["stride", "u32"], ["width", "u32"]], workgroupSize: 256,
    bindings: [{ name: "src", type: "f32" }, { name: "out", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i < p.n) { out[i] = src[p.off + (i / p.width) * p.stride + i % p.width]; }
}`,
  };
}

/** x [B, L, inner] at one position per row → [B, inner]. */
export function selectPositionsSpec(): KernelSpec {
  return {
    key: "select-positions", params: [["n", "u32"], ["len", "u32"], ["inner", "u32"]], workgroupSize: 256,
    bindings: [{ name: "src", type: "f32" }, { name: "pos", type: "i32" }, { name: "out", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.n) { return; }
  let b = i / p.inner;
  let t = u32(clamp(pos[b], 0, i32(p.len) - 1));
  out[i] = src[(b * p.len + t) * p.inner + i % p.inner];
}`,
  };
}

/** x [B, T, inner] → [B, len, inner], zero-padded or truncated. */
export function resizeAxis1Spec(): KernelSpec {
  return {
    key: "resize-axis1", params: [["n", "u32"], ["t_in", "u32"], ["t_out", "u32"], ["inner", "u32"]], workgroupSize: 256,
    bindings: [{ name: "src", type: "f32" }, { name: "out", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.n) { return; }
  let k = i % p.inner;
  let t = (i / p.inner) % p.t_out;
  let b = i / (p.inner * p.t_out);
  out[i] = select(0.0, src[(b * p.t_in + t) * p.inner + k], t < p.t_in);
}`,
  };
}

/** cache [B, T, inner] with fresh [B, L, inner] written at per-row offsets → [B, len, inner]. */
export function writeAxis1Spec(): KernelSpec {
  return {
    key: "write-axis1",
    params: [["n", "u32"], ["t_cache", "u32"], ["l_fresh", "u32"], ["t_out", "u32"], ["inner", "u32"]], workgroupSize: 256,
    bindings: [{ name: "cache", type: "f32" }, { name: "fresh", type: "f32" }, { name: "offsets", type: "i32" }, { name: "out", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.n) { return; }
  let k = i % p.inner;
  let t = (i / p.inner) % p.t_out;
  let b = i / (p.inner * p.t_out);
  let off = u32(offsets[b]);
  var v = 0.0;
  if (t < off) {
    v = cache[(b * p.t_cache + t) * p.inner + k];
  } else if (t < off + p.l_fresh) {
    v = fresh[(b * p.l_fresh + t - off) * p.inner + k];
  }
  out[i] = v;
}`,
  };
}

/** writeAxis1 in place: fresh [B, L, inner] into the cache's own buffer [B, T, inner] at per-row offsets. */
export function appendAxis1Spec(): KernelSpec {
  return {
    key: "append-axis1",
    params: [["n", "u32"], ["t_cache", "u32"], ["l_fresh", "u32"], ["inner", "u32"]], workgroupSize: 256,
    bindings: [{ name: "fresh", type: "f32" }, { name: "offsets", type: "i32" }, { name: "cache", type: "f32", write: true }],
    body: `${MAIN_1D}
  if (i >= p.n) { return; }
  let k = i % p.inner;
  let l = (i / p.inner) % p.l_fresh;
  let b = i / (p.inner * p.l_fresh);
  let t = u32(offsets[b]) + l;
  // Offsets come from the GPU when a captured step is replayed; one past the capacity writes nothing.
  if (t < p.t_cache) { cache[(b * p.t_cache + t) * p.inner + k] = fresh[i]; }
}`,
  };
}
