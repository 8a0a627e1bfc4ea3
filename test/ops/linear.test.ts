// linear (x · Wᵀ + b) with f32/f16/bf16 weights and odd shapes around the 4x4 tiles and 32-row blocks,
// and embedding lookups; both against float64 loops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { embedding, linear, tensor } from "../../src/ops/index.js";
import { assertClose, assertHippoError, prod, Prng, readChecked, toHalf, type HalfDType } from "./helpers.js";

/** out[m, n] = bias[n] + Σ_k x[m, k] w[n, k], in float64. */
function linearRef(x: ArrayLike<number>, M: number, K: number, w: ArrayLike<number>, N: number, bias: ArrayLike<number> | null): Float64Array {
  const out = new Float64Array(M * N);
  for (let m = 0; m < M; m++) {
    for (let n = 0; n < N; n++) {
      let s = bias ? bias[n] : 0;
      for (let k = 0; k < K; k++) s += x[m * K + k] * w[n * K + k];
      out[m * N + n] = s;
    }
  }
  return out;
}

type WeightDType = "f32" | HalfDType;

/** Uploads a weight in the given dtype; returns the tensor and the values a kernel will see. */
function makeWeight(values: Float32Array, shape: number[], dtype: WeightDType) {
  if (dtype === "f32") return { t: tensor(values, shape), values: Float64Array.from(values) };
  const h = toHalf(values, dtype);
  return { t: tensor(h.bits, shape, { dtype }), values: h.values };
}

const SIZES_M = [1, 3, 4, 5, 7, 13, 33, 67];
const SIZES_N = [1, 3, 4, 5, 7, 13];
const SIZES_K = [1, 3, 5, 67];

for (const dtype of ["f32", "f16", "bf16"] as const) {
  test(`linear: ${dtype} weights over a grid of odd M, N, K, with and without bias`, async () => {
    const rng = new Prng(100 + dtype.length);
    for (const M of SIZES_M) {
      for (const N of SIZES_N) {
        for (const K of SIZES_K) {
          const x = rng.f32(M * K);
          const w = makeWeight(rng.f32(N * K), [N, K], dtype);
          const bias = rng.f32(N);
          const what = `${dtype} M=${M} N=${N} K=${K}`;
          const y0 = await readChecked(linear(tensor(x, [M, K]), w.t), [M, N], what);
          assertClose(y0, linearRef(x, M, K, w.values, N, null), `${what} no bias`);
          const y1 = await readChecked(linear(tensor(x, [M, K]), w.t, tensor(bias, [N])), [M, N], what);
          assertClose(y1, linearRef(x, M, K, w.values, N, bias), `${what} bias`);
        }
      }
    }
  });
}

test("linear: leading batch dims [B, L, K] and a rank-1 input [K]", async () => {
  const rng = new Prng(7);
  for (const [B, L] of [[1, 1], [1, 17], [3, 1], [3, 17], [2, 33]]) {
    for (const [N, K] of [[5, 7], [8, 12], [1, 1], [13, 3]]) {
      for (const dtype of ["f32", "f16", "bf16"] as const) {
        const x = rng.f32(B * L * K, -2, 2);
        const w = makeWeight(rng.f32(N * K), [N, K], dtype);
        const bias = rng.f32(N);
        const what = `${dtype} [${B}, ${L}, ${K}] x [${N}, ${K}]`;
        const y = await readChecked(linear(tensor(x, [B, L, K]), w.t, tensor(bias, [N])), [B, L, N], what);
        assertClose(y, linearRef(x, B * L, K, w.values, N, bias), what);
      }
    }
  }
  const x = rng.f32(5), w = rng.f32(3 * 5);
  const y = await readChecked(linear(tensor(x, [5]), tensor(w, [3, 5])), [3], "rank-1 input");
  assertClose(y, linearRef(x, 1, 5, w, 3, null), "rank-1 input");
  // Four leading dims.
  const x4 = rng.f32(2 * 1 * 3 * 4 * 5), w4 = rng.f32(6 * 5);
  const y4 = await readChecked(linear(tensor(x4, [2, 1, 3, 4, 5]), tensor(w4, [6, 5])), [2, 1, 3, 4, 6], "rank-5 input");
  assertClose(y4, linearRef(x4, 24, 5, w4, 6, null), "rank-5 input");
});

test("linear: half-precision weights approximate the f32 result (sanity of the widening)", async () => {
  const rng = new Prng(8);
  const M = 9, N = 11, K = 67;
  const x = tensor(rng.f32(M * K), [M, K]);
  const w = rng.f32(N * K);
  const yf = await linear(x, tensor(w, [N, K])).read();
  for (const [dtype, tol] of [["f16", 5e-3], ["bf16", 4e-2]] as const) {
    const yh = await linear(x, makeWeight(w, [N, K], dtype).t).read();
    assertClose(yh, yf, `${dtype} vs f32`, { tol, floor: 0.5 });
  }
});

test("linear: f16 and bf16 inputs are widened too", async () => {
  const rng = new Prng(9);
  const M = 5, N = 7, K = 13;
  for (const dtype of ["f16", "bf16"] as const) {
    const xh = toHalf(rng.f32(M * K), dtype);
    const w = rng.f32(N * K);
    const y = await readChecked(linear(tensor(xh.bits, [M, K], { dtype }), tensor(w, [N, K])), [M, N], dtype);
    assertClose(y, linearRef(xh.values, M, K, w, N, null), `${dtype} input`);
  }
});

test("linear: known small values", async () => {
  // [[1, 2], [3, 4]] · [[1, 0], [0, 1], [1, 1]]ᵀ + [10, 20, 30]
  const y = await linear(tensor([1, 2, 3, 4], [2, 2]), tensor([1, 0, 0, 1, 1, 1], [3, 2]), tensor([10, 20, 30], [3])).read();
  assert.deepEqual([...y], [11, 22, 33, 13, 24, 37]);
});

test("linear: shape errors are HippoErrors naming both shapes", () => {
  const x = tensor(new Float32Array(2 * 5), [2, 5]);
  const w = tensor(new Float32Array(3 * 4), [3, 4]);
  assertHippoError(() => linear(x, w), "[2, 5]", "[3, 4]");
  assertHippoError(() => linear(tensor(new Float32Array(12), [3, 1, 4]), tensor(new Float32Array(6), [2, 3])), "[3, 1, 4]", "[2, 3]");
  const w2 = tensor(new Float32Array(3 * 5), [3, 5]);
  assertHippoError(() => linear(x, w2, tensor(new Float32Array(4), [4])), "bias", "[4]", "[3]");
  assertHippoError(() => linear(x, tensor(new Float32Array(5), [5])), "weight", "[5]");
  assertHippoError(() => linear(tensor(new Int32Array(10), [2, 5]), w2), "i32");
});

// -------------------------------------------------------------------------------------------------------
// embedding

function embeddingRef(table: ArrayLike<number>, D: number, ids: ArrayLike<number>): Float64Array {
  const out = new Float64Array(ids.length * D);
  for (let i = 0; i < ids.length; i++) for (let d = 0; d < D; d++) out[i * D + d] = table[ids[i] * D + d];
  return out;
}

test("embedding: f32, f16 and bf16 tables, ids of several shapes", async () => {
  const rng = new Prng(11);
  for (const dtype of ["f32", "f16", "bf16"] as const) {
    for (const [V, D] of [[1, 1], [13, 5], [67, 33], [5, 1]]) {
      const table = makeWeight(rng.f32(V * D, -3, 3), [V, D], dtype);
      for (const idShape of [[1], [7], [3, 17], [1, 1], [2, 3, 4]]) {
        const ids = rng.ints(prod(idShape), 0, V);
        if (idShape[0] === 7) { ids[0] = 0; ids[1] = V - 1; }
        const what = `${dtype} table [${V}, ${D}] ids [${idShape}]`;
        const y = await readChecked(embedding(table.t, tensor(ids, idShape)), [...idShape, D], what);
        // Rows are copied exactly: zero tolerance.
        assertClose(y, embeddingRef(table.values, D, ids), what, { tol: 0 });
      }
    }
  }
  // A rank-0 id gives one row.
  const t = tensor([1, 2, 3, 4, 5, 6], [3, 2]);
  const y = await readChecked(embedding(t, tensor(new Int32Array([2]), [])), [2], "scalar id");
  assert.deepEqual([...y], [5, 6]);
});

test("embedding: ids out of range and bad arguments are HippoErrors", () => {
  const table = tensor(new Float32Array(13 * 5), [13, 5]);
  assertHippoError(() => embedding(table, tensor(new Int32Array([0, 13]), [2])), "13");
  assertHippoError(() => embedding(table, tensor(new Int32Array([-1]), [1])), "-1");
  assertHippoError(() => embedding(table, tensor(new Int32Array([1e6]), [1])), "1000000");
  for (const dtype of ["f16", "bf16"] as const) {
    const half = tensor(new Uint16Array(13 * 5), [13, 5], { dtype });
    assertHippoError(() => embedding(half, tensor(new Int32Array([3, 13]), [2])), "13");
  }
  assertHippoError(() => embedding(table, tensor([1, 2], [2])), "i32");
  assertHippoError(() => embedding(tensor(new Float32Array(5), [5]), tensor(new Int32Array([0]), [1])), "[5]");
});

// -------------------------------------------------------------------------------------------------------

test("linear: K = 0 gives the bias broadcast over [M, N]", async () => {
  const y = linear(tensor([], [3, 0]), tensor([], [4, 0]), tensor([1, 2, 3, 4], [4]));
  assert.deepEqual([...y.shape], [3, 4]);
  assert.deepEqual([...(await y.read())], [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
});

test("linear: an i32 weight is a HippoError", () => {
  assertHippoError(() => linear(tensor([1, 2], [1, 2]), tensor(new Int32Array([1, 2, 3, 4]), [2, 2])), "i32");
});

test("embedding: an i32 table is a HippoError", () => {
  assertHippoError(() => embedding(tensor(new Int32Array([1, 2, 3, 4]), [2, 2]), tensor(new Int32Array([1]), [1])), "i32");
});
