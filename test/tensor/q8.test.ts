// Q8_0-style quantization (src/tensor/q8.ts): the block layout, the error bound of every value, short last
// blocks, rounding, and refusals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { dequantizeQ8, dequantizeQ8Rows, Q8_BLOCK, Q8Matrix, q8Blocks, quantizeQ8 } from "../../src/tensor/q8.js";
import { assertHippoError, Prng } from "../ops/helpers.js";

/** Every value within half a step of its block's scale: |w − d·q| ≤ d/2 (+ f32 rounding of d·q). */
function assertBlockBound(w: Float32Array, rows: number, cols: number, q: Q8Matrix, what: string): void {
  const back = dequantizeQ8(q);
  const nb = q8Blocks(cols);
  for (let n = 0; n < rows; n++) {
    for (let b = 0; b < nb; b++) {
      const k0 = b * Q8_BLOCK, k1 = Math.min(cols, k0 + Q8_BLOCK);
      let amax = 0;
      for (let k = k0; k < k1; k++) amax = Math.max(amax, Math.abs(w[n * cols + k]));
      const d = q.scales[n * nb + b];
      assert.ok(Math.abs(d - amax / 127) <= 1e-7 * amax, `${what}: scale of row ${n} block ${b} is ${d}, want ${amax / 127}`);
      for (let k = k0; k < k1; k++) {
        const i = n * cols + k;
        assert.ok(Math.abs(q.values[i]) <= 127, `${what}: value ${q.values[i]} outside ±127`);
        const err = Math.abs(w[i] - back[i]);
        assert.ok(err <= d / 2 + 1e-6 * amax, `${what}: [${n}, ${k}] error ${err} > d/2 = ${d / 2}`);
      }
    }
  }
}

test("q8: blocks of 32 along each row, one f32 scale per block, error at most half a step", () => {
  const rng = new Prng(8);
  for (const [rows, cols] of [[1, 32], [3, 64], [5, 100], [2, 31], [4, 1], [7, 33], [3, 257]]) {
    const w = rng.f32(rows * cols, -3, 3);
    const q = quantizeQ8(w, rows, cols);
    assert.equal(q.blocks, Math.ceil(cols / 32));
    assert.equal(q.values.length, rows * cols);
    assert.equal(q.scales.length, rows * q.blocks);
    assertBlockBound(w, rows, cols, q, `[${rows}, ${cols}]`);
    // Each block's largest magnitude lands on ±127 exactly.
    for (let n = 0; n < rows; n++) {
      for (let b = 0; b < q.blocks; b++) {
        let best = 0;
        for (let k = b * 32; k < Math.min(cols, b * 32 + 32); k++) best = Math.max(best, Math.abs(q.values[n * cols + k]));
        assert.equal(best, 127, `[${rows}, ${cols}] row ${n} block ${b}`);
      }
    }
  }
});

test("q8: a short last block gets its own scale (K not a multiple of 32)", () => {
  // Row: 32 values of magnitude ≤ 1, then 8 of magnitude ≤ 0.01: the tail must not use the first block's scale.
  const cols = 40;
  const w = new Float32Array(cols);
  for (let k = 0; k < 32; k++) w[k] = Math.sin(k + 1);
  for (let k = 32; k < cols; k++) w[k] = 0.01 * Math.cos(k);
  const q = quantizeQ8(w, 1, cols);
  assert.equal(q.blocks, 2);
  const tailMax = Math.max(...Array.from(w.subarray(32), Math.abs));
  assert.ok(Math.abs(q.scales[1] - tailMax / 127) <= 1e-7 * tailMax, `tail scale ${q.scales[1]}, want ${tailMax / 127}`);
  const back = dequantizeQ8(q);
  for (let k = 32; k < cols; k++) assert.ok(Math.abs(back[k] - w[k]) <= q.scales[1] / 2 + 1e-9, `k=${k}`);
  assertBlockBound(w, 1, cols, q, "tail");
});

test("q8: rounding is to nearest with ties away from zero; zero blocks have scale 0", () => {
  // amax 127 → d = 1, so values are rounded to integers directly.
  const w = Float32Array.from([127, 0.5, -0.5, 1.5, -1.5, 2.4999, -2.5001, 0, ...new Array(24).fill(0)]);
  const q = quantizeQ8(w, 1, 32);
  assert.equal(q.scales[0], 1);
  assert.deepEqual(Array.from(q.values.subarray(0, 8)), [127, 1, -1, 2, -2, 2, -3, 0]);
  const z = quantizeQ8(new Float32Array(64), 2, 32);
  assert.deepEqual(Array.from(z.scales), [0, 0]);
  assert.ok(dequantizeQ8(z).every((v) => v === 0));
});

test("q8: dequantizeQ8Rows widens a row range in place (the embedding path)", () => {
  const rng = new Prng(9);
  const w = rng.f32(6 * 45);
  const q = quantizeQ8(w, 6, 45);
  const all = dequantizeQ8(q);
  const out = new Float32Array(2 * 45 + 3);
  dequantizeQ8Rows(q, 3, 2, out, 3);
  assert.deepEqual(Array.from(out.subarray(3)), Array.from(all.subarray(3 * 45, 5 * 45)));
});

test("q8: non-finite weights and inconsistent sizes are refused", () => {
  const w = new Float32Array(64);
  w[40] = Number.NaN;
  assertHippoError(() => quantizeQ8(w, 2, 32, "layer.weight"), "layer.weight", "non-finite", "[1, 8]");
  w[40] = Infinity;
  assertHippoError(() => quantizeQ8(w, 2, 32), "non-finite");
  assertHippoError(() => quantizeQ8(new Float32Array(10), 2, 32), "needs 64 values");
  assertHippoError(() => new Q8Matrix(new Int8Array(64), new Float32Array(3), 2, 32), "needs 2 scales");
  assertHippoError(() => new Q8Matrix(new Int8Array(63), new Float32Array(2), 2, 32), "needs 64 int8 values");
});
