// The H3 layer against the reference fixtures h3-layer-hd1 and h3-layer-hd8 (HazyResearch/H3 @ 5c4d06b5,
// torch FFT path): outputs y and the kernels aux.ssm_kernel / aux.shift_kernel within 1e-4 relative L2;
// for head_dim 1 also the reference's recurrent path (prefix of 9 tokens in parallel mode, then steps).
// Plus the layer's own invariants: recurrent = parallel at head_dim > 1, and errors for bad configs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { getBackend } from "../../src/backends/registry.js";
import { toFloat32 } from "../../src/io/convert.js";
import { memoryTensorSource } from "../../src/io/memory-source.js";
import { openFileSource } from "../../src/io/node-file-source.js";
import type { RawTensor } from "../../src/io/raw-tensor.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { ConfigReader } from "../../src/models/config-json.js";
import { parseH3SsmConfig } from "../../src/models/h3/config.js";
import { loadH3Mixer } from "../../src/models/h3/layers.js";
import type { LayerState } from "../../src/models/state.js";
import { WeightLoader } from "../../src/models/weights.js";
import type { H3Mixer } from "../../src/nn/h3.js";
import { concat0, diagSsmKernel, reshape, shiftSsmTaps, slice0, tensor } from "../../src/ops/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { conformanceDir, relativeL2 } from "../fixtures.js";
import { assertHippoError } from "../ops/helpers.js";

interface LayerFixture {
  tensors: Map<string, RawTensor>;
  get(name: string): Float32Array;
  shape(name: string): number[];
}

async function readFixture(name: string): Promise<LayerFixture> {
  const src = await openFileSource(join(conformanceDir(name), "h3layer.safetensors"));
  try {
    const { tensors } = await readSafetensors(src);
    const raw = (n: string) => {
      const t = tensors.get(n);
      if (!t) throw new Error(`${name}: no tensor ${n}`);
      return t;
    };
    return { tensors, get: (n) => toFloat32(raw(n), n), shape: (n) => raw(n).shape };
  } finally {
    await src.close();
  }
}

/** The fixture's layer, built by the same loader the LMs use (bare state_dict keys: empty prefix). */
async function loadLayer(f: LayerFixture, dModel: number, dState: number, headDim: number, chunkSize?: number): Promise<H3Mixer> {
  const cfg = parseH3SsmConfig(new ConfigReader({ d_state: dState, head_dim: headDim, ...(chunkSize ? { chunk_size: chunkSize } : {}) }, "test"), dModel);
  const layerKeys = new Map([...f.tensors].filter(([n]) => n !== "x" && n !== "y" && !n.startsWith("aux.")));
  const w = new WeightLoader(memoryTensorSource(layerKeys, "h3layer.safetensors"), getBackend("cpu"), "h3layer.safetensors");
  const layer = await loadH3Mixer(w, "", dModel, cfg, "test layer");
  assert.deepEqual(w.unused(), [], "every layer tensor is used");
  return layer;
}

const ctx = (B: number) => ({ positions: new Array<number>(B).fill(0), positionsTensor: tensor(new Int32Array(B), [B], { dtype: "i32" }) });

/** Rows [t0, t1) of axis 1 of x [B, L, D]. */
function timeSlice(x: Tensor, t0: number, t1: number): Tensor {
  const [B, L, D] = x.shape;
  const rows = slice0(reshape(x, [B * L, D]), 0, B * L); // (a copy to slice from)
  const parts: Tensor[] = [];
  for (let b = 0; b < B; b++) parts.push(slice0(rows, b * L + t0, t1 - t0));
  return reshape(concat0(parts), [B, t1 - t0, D]);
}

/** Parallel mode over `prefix` tokens, then one recurrent step per remaining token (the reference's InferenceParams path). */
async function recurrentOutputs(layer: H3Mixer, x: Tensor, prefix: number): Promise<Float32Array> {
  const [B, L, D] = x.shape;
  const first = layer.forward(timeSlice(x, 0, prefix), null, ctx(B));
  let state: LayerState = first.state;
  const out = new Float32Array(B * L * D);
  const put = async (y: Tensor, t0: number) => {
    const v = await y.readFloat32();
    const n = y.shape[1];
    for (let b = 0; b < B; b++) out.set(v.subarray(b * n * D, (b + 1) * n * D), (b * L + t0) * D);
  };
  await put(first.y, 0);
  for (let t = prefix; t < L; t++) {
    const r = layer.step(timeSlice(x, t, t + 1), state, ctx(B));
    state = r.state;
    await put(r.y, t);
  }
  return out;
}

for (const [name, dState, headDim] of [["h3-layer-hd1", 16, 1], ["h3-layer-hd8", 64, 8]] as const) {
  test(`${name}: y and the SSM / shift kernels match the reference within 1e-4`, async () => {
    const f = await readFixture(name);
    const [B, L, D] = f.shape("x");
    const layer = await loadLayer(f, D, dState, headDim);
    const x = tensor(f.get("x"), [B, L, D]);
    const y = await layer.forward(x, null, ctx(B)).y.readFloat32();
    const err = relativeL2(y, f.get("y"));
    assert.ok(err < 1e-4, `y: relative L2 ${err}`);

    const H = D / headDim;
    const ssmKernel = await diagSsmKernel(layer.w.ssm, L).readFloat32();
    assert.deepEqual(f.shape("aux.ssm_kernel"), [H, L]);
    const kErr = relativeL2(ssmKernel, f.get("aux.ssm_kernel"));
    assert.ok(kErr < 1e-4, `aux.ssm_kernel: relative L2 ${kErr}`);

    // The shift kernel is the N FIR taps, zero beyond (or cut at L when N > L).
    const taps = await shiftSsmTaps(layer.w.shiftB, layer.w.shiftC).readFloat32();
    const shift = new Float32Array(D * L);
    for (let c = 0; c < D; c++) for (let j = 0; j < Math.min(dState, L); j++) shift[c * L + j] = taps[c * dState + j];
    const sErr = relativeL2(shift, f.get("aux.shift_kernel"));
    assert.ok(sErr < 1e-4, `aux.shift_kernel: relative L2 ${sErr}`);
  });
}

test("h3-layer-hd1: the recurrent path (9-token parallel prefix, then steps) matches aux.y_recurrent", async () => {
  const f = await readFixture("h3-layer-hd1");
  const [B, L, D] = f.shape("x");
  const layer = await loadLayer(f, D, 16, 1);
  const y = await recurrentOutputs(layer, tensor(f.get("x"), [B, L, D]), 9);
  const err = relativeL2(y, f.get("aux.y_recurrent"));
  assert.ok(err < 1e-4, `relative L2 ${err}`);
});

test("h3-layer-hd8: recurrent steps agree with the parallel mode (the reference's own step path fails at head_dim > 1)", async () => {
  const f = await readFixture("h3-layer-hd8");
  const [B, L, D] = f.shape("x");
  const layer = await loadLayer(f, D, 64, 8);
  for (const prefix of [1, 9, 36]) {
    const y = await recurrentOutputs(layer, tensor(f.get("x"), [B, L, D]), prefix);
    const err = relativeL2(y, f.get("y"));
    assert.ok(err < 1e-4, `prefix ${prefix}: relative L2 ${err}`);
  }
});

test("h3-layer-hd8: state passing (chunks of 5 steps) gives the same outputs as one FFT block", async () => {
  const f = await readFixture("h3-layer-hd8");
  const [B, L, D] = f.shape("x");
  const layer = await loadLayer(f, D, 64, 8, 5);
  const y = await layer.forward(tensor(f.get("x"), [B, L, D]), null, ctx(B)).y.readFloat32();
  const err = relativeL2(y, f.get("y"));
  assert.ok(err < 1e-4, `relative L2 ${err}`);
});

test("H3 layer configs: head_dim must divide d_model, d_state must be even, mode must be diag", () => {
  const parse = (cfg: Record<string, unknown>) => () => parseH3SsmConfig(new ConfigReader(cfg, "config.json (ssm_cfg)"), 64);
  assertHippoError(parse({ head_dim: 5 }), "config.json (ssm_cfg)", "head_dim 5 does not divide d_model 64");
  assertHippoError(parse({ d_state: 15 }), "d_state 15 is not supported", "even");
  assertHippoError(parse({ d_state: 0 }), "d_state 0 is not supported");
  assertHippoError(parse({ mode: "nplr" }), "mode 'nplr' is not supported");
  assertHippoError(parse({ disc: "dss" }), "disc 'dss' is not supported");
  assertHippoError(parse({ channels: 2 }), "channels 2 is not supported");
  assertHippoError(parse({ frobnicate: 1 }), "unknown ssm_cfg key 'frobnicate'");
});
