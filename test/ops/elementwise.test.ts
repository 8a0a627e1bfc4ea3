// Unary activations and broadcasting binary ops against float64 definitions.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Tensor } from "../../src/tensor/tensor.js";
import { add, exp, gelu, mul, neg, relu, relu2, silu, softplus, sub, tensor } from "../../src/ops/index.js";
import { assertClose, assertHippoError, geluRef, prod, Prng, readChecked, siluRef, softplusRef, toHalf } from "./helpers.js";

/** Every unary op, its float64 definition and the input range it is checked on. */
const UNARY: { name: string; op: (x: Tensor) => Tensor; ref: (x: number) => number; lo: number; hi: number }[] = [
  { name: "silu", op: silu, ref: siluRef, lo: -12, hi: 12 },
  { name: "softplus", op: softplus, ref: softplusRef, lo: -15, hi: 30 },
  { name: "exp", op: exp, ref: Math.exp, lo: -20, hi: 20 },
  { name: "neg", op: neg, ref: (x) => -x, lo: -5, hi: 5 },
  { name: "gelu", op: gelu, ref: geluRef, lo: -8, hi: 8 },
  { name: "relu", op: relu, ref: (x) => (x > 0 ? x : 0), lo: -3, hi: 3 },
  { name: "relu2", op: relu2, ref: (x) => (x > 0 ? x * x : 0), lo: -3, hi: 3 },
];

const SHAPES = [[1], [3], [7, 5], [3, 17, 13], [1, 1, 67], [0]];

for (const u of UNARY) {
  test(`${u.name}: random inputs of several shapes, elementwise relative error`, async () => {
    const rng = new Prng(u.name.length * 31 + 5);
    for (const shape of SHAPES) {
      const x = rng.f32(prod(shape), u.lo, u.hi);
      if (x.length > 4) x.set([0, -0, 1, -1]);
      const y = await readChecked(u.op(tensor(x, shape)), shape, `${u.name} [${shape}]`);
      // Purely relative (a floor far below every non-zero output).
      assertClose(y, Array.from(x, u.ref), `${u.name} [${shape}]`, { floor: 1e-30 });
    }
  });

  test(`${u.name}: f16 and bf16 inputs are widened`, async () => {
    const rng = new Prng(77);
    for (const dtype of ["f16", "bf16"] as const) {
      const h = toHalf(rng.f32(33, u.lo / 2, u.hi / 2), dtype);
      const y = await readChecked(u.op(tensor(h.bits, [3, 11], { dtype })), [3, 11], `${u.name} ${dtype}`);
      assertClose(y, Array.from(h.values, u.ref), `${u.name} ${dtype}`, { floor: 1e-30 });
    }
  });

  test(`${u.name}: i32 input is a HippoError`, () => {
    assertHippoError(() => u.op(tensor(new Int32Array([1, 2]), [2])), u.name, "i32");
  });
}

test("softplus: linear above the threshold 20, no overflow, tiny and non-negative for very negative x", async () => {
  const big = [20.0001, 20.5, 25, 88, 89, 100, 1000, 1e10, 3e38];
  const yb = await softplus(tensor(big, [big.length])).read();
  // torch: x itself above the threshold (exactly, no exp overflow to inf).
  assert.deepEqual([...yb], big.map(Math.fround));
  // Just at/below the threshold: log1p(exp(x)).
  const near = [19, 19.99, 20];
  assertClose(await softplus(tensor(near, [3])).read(), near.map(softplusRef), "softplus near 20", { floor: 1e-30 });
  // Very negative: ≈ exp(x), relative accuracy kept (f32 normal range).
  const neg = [-20, -30, -50, -80, -87];
  assertClose(await softplus(tensor(neg, [neg.length])).read(), neg.map((x) => Math.log1p(Math.exp(x))), "softplus very negative",
    { floor: 1e-30, tol: 1e-6 });
  // Far below: underflows to +0, never NaN or negative.
  const far = [-104, -200, -1e4, -3e38];
  const yf = await softplus(tensor(far, [far.length])).read();
  for (let i = 0; i < far.length; i++) assert.ok(yf[i] >= 0 && yf[i] < 1e-44, `softplus(${far[i]}) = ${yf[i]}`);
});

test("silu and gelu at extreme inputs stay finite and saturate correctly", async () => {
  const xs = [-1e4, -100, -30, 30, 100, 1e4];
  const ys = await silu(tensor(xs, [6])).read();
  assert.ok(ys.every((v) => Number.isFinite(v)), `silu ${[...ys]}`);
  assert.ok(Math.abs(ys[0]) === 0 && Math.abs(ys[1]) < 1e-40, "silu(-large) → 0");
  assert.deepEqual([...ys.slice(3)], [30, 100, 1e4].map(Math.fround));
  const yg = await gelu(tensor(xs, [6])).read();
  assert.ok(yg.every((v) => Number.isFinite(v)), `gelu ${[...yg]}`);
  assert.equal(Math.abs(yg[0]), 0);
  assert.deepEqual([...yg.slice(3)], [30, 100, 1e4].map(Math.fround));
  // Known GELU values (torch.nn.functional.gelu, approximate='none').
  const yk = await gelu(tensor([1, -1, 0.5, 2, -3], [5])).read();
  assertClose(yk, [0.8413447460685429, -0.15865525393145707, 0.34573123063700656, 1.9544997361036416, -0.004049694094890287],
    "gelu known", { floor: 1e-30 });
});

test("exp/neg/relu/relu2: known values incl. signed zeros", async () => {
  assert.deepEqual([...(await exp(tensor([0, 1, -1], [3])).read())], [1, Math.E, 1 / Math.E].map(Math.fround));
  assert.ok(Object.is((await neg(tensor([0], [1])).read())[0], -0));
  assert.deepEqual([...(await relu(tensor([-2, 0, 3], [3])).read())], [0, 0, 3]);
  assert.deepEqual([...(await relu2(tensor([-2, 0, 3], [3])).read())], [0, 0, 9]);
});

// -------------------------------------------------------------------------------------------------------
// binary ops

const BINARY = [
  { name: "add", op: add, ref: (a: number, b: number) => a + b },
  { name: "mul", op: mul, ref: (a: number, b: number) => a * b },
  { name: "sub", op: sub, ref: (a: number, b: number) => a - b },
] as const;

/** b broadcast over the leading dims of a: b's flat index is a's flat index mod b's size. */
function binaryRef(a: ArrayLike<number>, b: ArrayLike<number>, f: (x: number, y: number) => number): Float64Array {
  const out = new Float64Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = f(a[i], b[i % b.length]);
  return out;
}

/** All suffixes of a shape (including the empty one and the whole shape). */
function suffixes(shape: number[]): number[][] {
  return Array.from({ length: shape.length + 1 }, (_, i) => shape.slice(i));
}

for (const bin of BINARY) {
  test(`${bin.name}: b broadcast over every suffix shape of a`, async () => {
    const rng = new Prng(bin.name.charCodeAt(0));
    for (const aShape of [[1], [7], [3, 5], [3, 17, 13], [1, 3, 1, 5], [2, 1, 67]]) {
      for (const bShape of suffixes(aShape)) {
        const a = rng.f32(prod(aShape), -4, 4);
        const b = rng.f32(prod(bShape), -4, 4);
        const what = `${bin.name} [${aShape}] with [${bShape}]`;
        const y = await readChecked(bin.op(tensor(a, aShape), tensor(b, bShape)), aShape, what);
        // One f32 rounding of an exact float64 result: purely relative except where sub/add cancel to ~0.
        assertClose(y, binaryRef(a, b, bin.ref), what, { floor: 1e-6 });
      }
    }
  });

  test(`${bin.name}: half-precision operands are widened`, async () => {
    const rng = new Prng(5);
    const a = toHalf(rng.f32(15), "bf16"), b = toHalf(rng.f32(5), "f16");
    const y = await readChecked(bin.op(tensor(a.bits, [3, 5], { dtype: "bf16" }), tensor(b.bits, [5], { dtype: "f16" })), [3, 5], bin.name);
    assertClose(y, binaryRef(a.values, b.values, bin.ref), `${bin.name} half`, { floor: 1e-6 });
  });

  test(`${bin.name}: shapes that do not broadcast are HippoErrors naming both shapes`, () => {
    const cases: [number[], number[]][] = [
      [[2, 3], [2]], // a prefix, not a suffix
      [[2, 3], [4, 2, 3]], // b of higher rank
      [[3, 5], [5, 1]],
      [[3, 5], [1, 5, 1]],
      [[3, 5], [3, 4]],
      [[5], [1]], // no size-1 broadcasting either
      [[], [1]],
    ];
    for (const [aShape, bShape] of cases) {
      const a = tensor(new Float32Array(prod(aShape)), aShape);
      const b = tensor(new Float32Array(prod(bShape)), bShape);
      assertHippoError(() => bin.op(a, b), bin.name, `[${bShape.join(", ")}]`, `[${aShape.join(", ")}]`);
    }
  });
}

test("binary: known values", async () => {
  const a = tensor([1, 2, 3, 4, 5, 6], [2, 3]);
  const b = tensor([10, 20, 30], [3]);
  assert.deepEqual([...(await add(a, b).read())], [11, 22, 33, 14, 25, 36]);
  assert.deepEqual([...(await sub(a, b).read())], [-9, -18, -27, -6, -15, -24]);
  assert.deepEqual([...(await mul(a, b).read())], [10, 40, 90, 40, 100, 180]);
  assert.deepEqual([...(await mul(a, tensor([2], [])).read())], [2, 4, 6, 8, 10, 12]);
});
