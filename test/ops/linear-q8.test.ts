// The q8 linear kernel on all its paths (small products in TypeScript; the wasm backend's integer dot
// products for M < 4 and integer tiles from 4 rows) and q8 embeddings, against the same ops on the
// dequantized f32 weights; the CPU backend's q8 tensors.
import { test } from "node:test";
import assert from "node:assert/strict";
import { getBackend } from "../../src/backends/registry.js";
import { embedding, linear, reshape, tensor } from "../../src/ops/index.js";
import { dequantizeQ8, Q8Matrix, quantizeQ8 } from "../../src/tensor/q8.js";
import { assertClose, assertHippoError, Prng, readChecked } from "./helpers.js";

const cpu = getBackend("cpu");

function q8Weight(rng: Prng, N: number, K: number) {
  const q = quantizeQ8(rng.f32(N * K), N, K);
  return { t: cpu.upload(q, [N, K], "q8"), f32: tensor(dequantizeQ8(q), [N, K]) };
}

test("linear: q8 weights equal linear on the dequantized weights, odd M, N, K, both kernel paths", async () => {
  const rng = new Prng(81);
  for (const M of [1, 2, 3, 7, 8, 9, 13, 33, 70]) {
    for (const N of [1, 3, 4, 5, 9]) {
      for (const K of [1, 5, 31, 32, 33, 64, 100]) {
        const w = q8Weight(rng, N, K);
        const x = tensor(rng.f32(M * K), [M, K]);
        const bias = (M + N + K) % 2 === 0 ? tensor(rng.f32(N), [N]) : null;
        const what = `q8 M=${M} N=${N} K=${K}${bias ? " +bias" : ""}`;
        const got = await readChecked(linear(x, w.t, bias), [M, N], what);
        const want = await readChecked(linear(x, w.f32, bias), [M, N], what);
        assertClose(got, want, what, { tol: 1e-5 });
      }
    }
  }
});

test("linear: q8 over a batch of sequences ([B, L, K] input) and the mamba-130m widths", async () => {
  const rng = new Prng(82);
  for (const [shape, N] of [[[2, 5, 768], 96], [[1, 1, 1536], 64], [[3, 1, 768], 40]] as const) {
    const K = shape[2];
    const w = q8Weight(rng, N, K);
    const x = tensor(rng.f32(shape[0] * shape[1] * K), [...shape]);
    const got = await readChecked(linear(x, w.t), [shape[0], shape[1], N], `q8 ${shape}`);
    const want = await linear(x, w.f32).readFloat32();
    // The wasm backend quantizes x to int16 per block of 32 for its integer products (matrix-vector
    // and tiles alike, docs/quantization.md): about 1e-5 of the output's norm, so compare norms, not
    // entries (single outputs near zero have large relative errors). A wrong scale or block is off by > 1e-2.
    {
      let num = 0, den = 0;
      for (let i = 0; i < got.length; i++) { num += (got[i] - want[i]) ** 2; den += want[i] ** 2; }
      const rel = Math.sqrt(num / den);
      assert.ok(rel <= 1e-4, `q8 ${shape}: relative L2 error ${rel.toExponential(2)} > 1e-4`);
    }
  }
});

test("embedding: q8 tables give the dequantized rows", async () => {
  const rng = new Prng(83);
  const w = q8Weight(rng, 50, 37);
  const ids = tensor(Int32Array.from([0, 49, 7, 7, 23, 1]), [2, 3], { dtype: "i32" });
  const got = await readChecked(embedding(w.t, ids), [2, 3, 37], "q8 embedding");
  assert.deepEqual(Array.from(got), Array.from(await embedding(w.f32, ids).readFloat32()));
  assertHippoError(() => embedding(w.t, tensor(Int32Array.from([50]), [1], { dtype: "i32" })), "outside the vocabulary");
});

test("CPU backend q8 tensors: read and toFloat32 dequantize, reshapes keep the row length, bad uploads are refused", async () => {
  const rng = new Prng(84);
  const q = quantizeQ8(rng.f32(6 * 40), 6, 40);
  const t = cpu.upload(q, [6, 40], "q8");
  assert.equal(t.dtype, "q8");
  assert.deepEqual(Array.from(await t.read()), Array.from(dequantizeQ8(q)));
  assert.deepEqual(Array.from(await cpu.toFloat32(t).read()), Array.from(dequantizeQ8(q)));
  assert.equal(reshape(t, [2, 3, 40]).dtype, "q8");
  assertHippoError(() => reshape(t, [12, 20]), "q8", "last dimension");
  assertHippoError(() => cpu.upload(q, [40, 6], "q8"), "[6, 40]", "[40, 6]");
  assertHippoError(() => cpu.upload(new Float32Array(240), [6, 40], "q8"), "Q8Matrix");
  assertHippoError(() => cpu.upload(q, [6, 40], "f32"), "Q8Matrix");
  assertHippoError(() => cpu.zeros([2, 32], "q8"), "q8");
  assert.ok(new Q8Matrix(new Int8Array(4), new Float32Array(2), 2, 2).byteLength === 12);
});
