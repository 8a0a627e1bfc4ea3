// tensor / zeros / read round trips (f32, i32, f16, bf16), upload validation, and self-checks of the test
// helpers (16-bit encoders, erf) against known values.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import { f32ToBf16Bits, f32ToF16Bits } from "../../src/io/convert.js";
import { tensor, zeros } from "../../src/ops/index.js";
import { assertHippoError, decodeBf16, decodeF16, encodeBf16, encodeF16, erf, erfc, Prng } from "./helpers.js";

test("helpers: own f16/bf16 encoders agree with known patterns and with src/io/convert.ts", () => {
  const f16Known: [number, number][] = [
    [1, 0x3c00], [-2, 0xc000], [65504, 0x7bff], [2 ** -24, 0x0001], [2 ** -14, 0x0400], [-0, 0x8000],
    [Infinity, 0x7c00], [-Infinity, 0xfc00], [1 / 3, 0x3555], [65520, 0x7c00], [2 ** -25, 0x0000], [3 * 2 ** -25, 0x0002],
  ];
  for (const [x, bits] of f16Known) assert.equal(encodeF16(x), bits, `encodeF16(${x})`);
  const bf16Known: [number, number][] = [[1, 0x3f80], [-3, 0xc040], [1 / 3, 0x3eab], [Infinity, 0x7f80], [-0, 0x8000]];
  for (const [x, bits] of bf16Known) assert.equal(encodeBf16(x), bits, `encodeBf16(${x})`);
  const rng = new Prng(1);
  for (let i = 0; i < 20000; i++) {
    const x = Math.fround(rng.uniform(-1, 1) * 2 ** rng.int(-30, 20));
    assert.equal(encodeF16(x), f32ToF16Bits(x), `f16 of ${x}`);
    assert.equal(encodeBf16(x), f32ToBf16Bits(x), `bf16 of ${x}`);
  }
});

test("helpers: reference erf/erfc match tabulated values", () => {
  const cases: [number, number][] = [
    [erf(0.5), 0.5204998778130465], [erf(1), 0.8427007929497149], [erf(-1), -0.8427007929497149],
    [erf(2), 0.9953222650189527], [erfc(2), 4.677734981047266e-3], [erfc(3), 2.209049699858544e-5],
    [erfc(5), 1.5374597944280349e-12], [erfc(1), 0.15729920705028513], [erf(0), 0],
  ];
  for (const [got, want] of cases) assert.ok(Math.abs(got - want) <= 1e-13 * Math.max(Math.abs(want), 1e-300), `${got} vs ${want}`);
});

test("tensor/read: f32 from number[] and Float32Array, i32 from Int32Array and number[] with dtype", async () => {
  const a = tensor([1.5, -2, 3.25, 0], [2, 2]);
  assert.equal(a.dtype, "f32");
  assert.deepEqual([...a.shape], [2, 2]);
  assert.equal(a.size, 4);
  assert.equal(a.rank, 2);
  const av = await a.read();
  assert.ok(av instanceof Float32Array);
  assert.deepEqual([...av], [1.5, -2, 3.25, 0]);

  const src = new Float32Array([0.1, 0.2, 0.3]);
  const b = tensor(src, [3, 1]);
  assert.deepEqual([...(await b.read())], [...src]);

  const ids = tensor(new Int32Array([7, -1, 2147483647]), [3]);
  assert.equal(ids.dtype, "i32");
  const iv = await ids.read();
  assert.ok(iv instanceof Int32Array);
  assert.deepEqual([...iv], [7, -1, 2147483647]);

  const ids2 = tensor([4, 5, 6], [1, 3], { dtype: "i32" });
  assert.equal(ids2.dtype, "i32");
  assert.deepEqual([...(await ids2.read())], [4, 5, 6]);

  // Rank 0 (a scalar) and empty tensors.
  const s = tensor([42], []);
  assert.equal(s.rank, 0);
  assert.equal(s.size, 1);
  assert.deepEqual([...(await s.read())], [42]);
  const e = tensor([], [0, 5]);
  assert.equal(e.size, 0);
  assert.equal((await e.read()).length, 0);
});

test("read returns a copy: mutating it does not change the tensor", async () => {
  const t = tensor([1, 2, 3], [3]);
  const v = await t.read();
  v[0] = 100;
  assert.deepEqual([...(await t.read())], [1, 2, 3]);
  const i = tensor(new Int32Array([1, 2]), [2]);
  const iv = await i.read();
  iv[0] = 9;
  assert.deepEqual([...(await i.read())], [1, 2]);
});

test("zeros: f32, i32, f16, bf16 all read back as zeros of the right shape", async () => {
  for (const dtype of ["f32", "i32", "f16", "bf16"] as const) {
    const z = zeros([3, 1, 5], { dtype });
    assert.equal(z.dtype, dtype);
    assert.deepEqual([...z.shape], [3, 1, 5]);
    const v = await z.read();
    assert.ok(dtype === "i32" ? v instanceof Int32Array : v instanceof Float32Array, dtype);
    assert.equal(v.length, 15);
    assert.ok(v.every((x) => x === 0), dtype);
  }
  assert.equal(zeros([2]).dtype, "f32");
});

test("f16 uploads read back widened to the exact f32 values", async () => {
  const bits = [0x3c00, 0xc000, 0x3555, 0x7bff, 0x0001, 0x03ff, 0x0400, 0x8000, 0x7c00, 0xfc00, 0x7e00, 0x3800];
  const want = [1, -2, 0.333251953125, 65504, 2 ** -24, 1023 * 2 ** -24, 2 ** -14, -0, Infinity, -Infinity, NaN, 0.5];
  const t = tensor(new Uint16Array(bits), [3, 4], { dtype: "f16" });
  assert.equal(t.dtype, "f16");
  const v = await t.read();
  assert.ok(v instanceof Float32Array);
  for (let i = 0; i < want.length; i++) assert.ok(Object.is(v[i], want[i]), `0x${bits[i].toString(16)}: got ${v[i]}, want ${want[i]}`);
  const r = await t.readFloat32();
  assert.ok(r instanceof Float32Array);
});

test("bf16 uploads read back widened to the exact f32 values", async () => {
  const bits = [0x3f80, 0xc040, 0x3eab, 0x7f7f, 0x0001, 0x8000, 0x7f80, 0xff80, 0x7fc0, 0x4049];
  const want = [1, -3, 0.333984375, 3.3895313892515355e38, 9.183549615799121e-41, -0, Infinity, -Infinity, NaN, 3.140625];
  const t = tensor(new Uint16Array(bits), [10], { dtype: "bf16" });
  const v = await t.read();
  assert.ok(v instanceof Float32Array);
  for (let i = 0; i < want.length; i++) assert.ok(Object.is(v[i], want[i]), `0x${bits[i].toString(16)}: got ${v[i]}, want ${want[i]}`);
});

test("random f16/bf16 uploads equal the decoded values", async () => {
  const rng = new Prng(2);
  const n = 67;
  const bits = new Uint16Array(n);
  for (let i = 0; i < n; i++) bits[i] = rng.int(0, 0x7c00) | (rng.next() < 0.5 ? 0x8000 : 0); // finite f16
  const f16 = await tensor(bits, [n], { dtype: "f16" }).read();
  for (let i = 0; i < n; i++) assert.ok(Object.is(f16[i], decodeF16(bits[i])), `f16 0x${bits[i].toString(16)}`);
  const bf16 = await tensor(bits, [n], { dtype: "bf16" }).read();
  for (let i = 0; i < n; i++) assert.ok(Object.is(bf16[i], decodeBf16(bits[i])), `bf16 0x${bits[i].toString(16)}`);
});

test("upload validation: wrong length, wrong array type, bad shapes", () => {
  assertHippoError(() => tensor([1, 2, 3], [2, 2]), "[2, 2]", "4", "3");
  assertHippoError(() => tensor(new Float32Array(4), [4], { dtype: "f16" }), "f16", "Uint16Array");
  assertHippoError(() => tensor(new Int32Array(4), [4], { dtype: "f32" }), "f32", "Float32Array");
  assertHippoError(() => tensor(new Uint16Array(2), [2], { dtype: "i32" }), "i32");
  assertHippoError(() => tensor([1, 2], [-1, -2]), "[-1, -2]");
  assertHippoError(() => tensor([1, 2], [1.5, 2]), "[1.5, 2]");
  // A Uint16Array alone is ambiguous (f16 or bf16).
  assert.throws(() => tensor(new Uint16Array(2), [2]), /f16.*bf16/);
  assert.ok(new HippoError("x") instanceof Error);
});
