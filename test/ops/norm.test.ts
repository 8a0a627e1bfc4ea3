// rmsNorm and layerNorm over the last axis against float64 loops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { layerNorm, rmsNorm, tensor } from "../../src/ops/index.js";
import { assertClose, assertHippoError, prod, Prng, readChecked, toHalf } from "./helpers.js";

/** y = x / sqrt(mean(x²) + eps) · w, per row of width D. */
function rmsNormRef(x: ArrayLike<number>, w: ArrayLike<number>, D: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    let ss = 0;
    for (let i = 0; i < D; i++) ss += x[r * D + i] ** 2;
    const rms = Math.sqrt(ss / D + eps);
    for (let i = 0; i < D; i++) out[r * D + i] = (x[r * D + i] / rms) * w[i];
  }
  return out;
}

/** y = (x - mean) / sqrt(var + eps) · w + b, biased variance (torch.nn.LayerNorm). */
function layerNormRef(x: ArrayLike<number>, w: ArrayLike<number>, b: ArrayLike<number> | null, D: number, eps: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let r = 0; r < x.length / D; r++) {
    let mean = 0;
    for (let i = 0; i < D; i++) mean += x[r * D + i];
    mean /= D;
    let v = 0;
    for (let i = 0; i < D; i++) v += (x[r * D + i] - mean) ** 2;
    v /= D;
    for (let i = 0; i < D; i++) out[r * D + i] = ((x[r * D + i] - mean) / Math.sqrt(v + eps)) * w[i] + (b ? b[i] : 0);
  }
  return out;
}

const SHAPES = [[1], [3], [1, 7], [5, 1], [3, 17, 13], [1, 1, 64], [2, 3, 67], [33, 5]];

test("rmsNorm: random rows of odd widths, two epsilons", async () => {
  const rng = new Prng(21);
  for (const shape of SHAPES) {
    const D = shape[shape.length - 1];
    for (const eps of [1e-5, 1e-6, 0.5]) {
      const x = rng.f32(prod(shape), -3, 3);
      const w = rng.f32(D, -2, 2);
      const what = `rmsNorm [${shape}] eps=${eps}`;
      const y = await readChecked(rmsNorm(tensor(x, shape), tensor(w, [D]), eps), shape, what);
      assertClose(y, rmsNormRef(x, w, D, eps), what, { floor: 1e-6 });
    }
  }
});

test("rmsNorm: scale invariance and a known row", async () => {
  // [3, 4]: mean square 12.5 → y = x / sqrt(12.5 + eps).
  const y = await rmsNorm(tensor([3, 4], [1, 2]), tensor([1, 2], [2]), 0).read();
  assertClose(y, [3 / Math.sqrt(12.5), 8 / Math.sqrt(12.5)], "known", { floor: 1e-30 });
  // An all-zero row gives zeros, not NaN (eps > 0).
  const z = await rmsNorm(tensor([0, 0, 0], [3]), tensor([1, 1, 1], [3]), 1e-5).read();
  assert.deepEqual([...z], [0, 0, 0]);
});

test("rmsNorm: f16/bf16 weights and inputs are widened", async () => {
  const rng = new Prng(22);
  for (const dtype of ["f16", "bf16"] as const) {
    const x = toHalf(rng.f32(3 * 13, -2, 2), dtype);
    const w = toHalf(rng.f32(13), dtype);
    const y = await readChecked(rmsNorm(tensor(x.bits, [3, 13], { dtype }), tensor(w.bits, [13], { dtype }), 1e-5), [3, 13], dtype);
    assertClose(y, rmsNormRef(x.values, w.values, 13, 1e-5), `rmsNorm ${dtype}`, { floor: 1e-6 });
  }
});

test("layerNorm: with and without bias, random rows of odd widths", async () => {
  const rng = new Prng(23);
  for (const shape of SHAPES) {
    const D = shape[shape.length - 1];
    for (const withBias of [false, true]) {
      for (const eps of [1e-5, 1e-3]) {
        // An offset mean makes the centring matter.
        const x = rng.f32(prod(shape), 1, 4);
        const w = rng.f32(D, -2, 2);
        const b = withBias ? rng.f32(D, -1, 1) : null;
        const what = `layerNorm [${shape}] bias=${withBias} eps=${eps}`;
        const y = await readChecked(layerNorm(tensor(x, shape), tensor(w, [D]), b && tensor(b, [D]), eps), shape, what);
        assertClose(y, layerNormRef(x, w, b, D, eps), what);
      }
    }
  }
});

test("layerNorm: known values; width 1 gives the bias", async () => {
  // [1, 2, 3]: mean 2, var 2/3.
  const y = await layerNorm(tensor([1, 2, 3], [3]), tensor([1, 1, 1], [3]), tensor([0, 10, 0], [3]), 0).read();
  const s = Math.sqrt(2 / 3);
  assertClose(y, [-1 / s, 10, 1 / s], "known");
  const one = await layerNorm(tensor([5, -7, 2], [3, 1]), tensor([3], [1]), tensor([0.25], [1]), 1e-5).read();
  assert.deepEqual([...one], [0.25, 0.25, 0.25]);
});

test("norm shape errors are HippoErrors naming the argument", () => {
  const x = tensor(new Float32Array(15), [3, 5]);
  assertHippoError(() => rmsNorm(x, tensor(new Float32Array(3), [3]), 1e-5), "rmsNorm", "weight", "[3]", "[5]");
  assertHippoError(() => rmsNorm(x, tensor(new Float32Array(5), [1, 5]), 1e-5), "weight", "[1, 5]");
  assertHippoError(() => layerNorm(x, tensor(new Float32Array(4), [4]), null, 1e-5), "layerNorm", "weight", "[4]");
  assertHippoError(() => layerNorm(x, tensor(new Float32Array(5), [5]), tensor(new Float32Array(3), [3]), 1e-5),
    "layerNorm", "bias", "[3]", "[5]");
});
