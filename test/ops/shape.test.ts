// sliceLast, splitLast, selectPositions, concat0, slice0, toFloat32 against index arithmetic in plain loops.
import { test } from "node:test";
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import { concat0, selectPositions, slice0, sliceLast, splitLast, tensor, toFloat32 } from "../../src/ops/index.js";
import { assertClose, assertHippoError, prod, Prng, readChecked, toHalf } from "./helpers.js";

function sliceLastRef(x: ArrayLike<number>, W: number, start: number, length: number): number[] {
  const out: number[] = [];
  for (let r = 0; r < x.length / W; r++) for (let j = 0; j < length; j++) out.push(x[r * W + start + j]);
  return out;
}

test("sliceLast: every (start, length) window of odd widths, several leading shapes", async () => {
  const rng = new Prng(31);
  for (const lead of [[], [1], [3], [3, 5], [2, 1, 3]]) {
    for (const W of [1, 3, 7, 13]) {
      const shape = [...lead, W];
      const x = rng.f32(prod(shape));
      const t = tensor(x, shape);
      for (let start = 0; start <= W; start++) {
        for (let length = 0; start + length <= W; length++) {
          const what = `sliceLast [${shape}] ${start}+${length}`;
          const y = await readChecked(sliceLast(t, start, length), [...lead, length], what);
          assert.deepEqual([...y], sliceLastRef(x, W, start, length), what);
        }
      }
    }
  }
});

test("sliceLast: half-precision input is widened", async () => {
  const h = toHalf(new Prng(32).f32(3 * 7), "bf16");
  const y = await readChecked(sliceLast(tensor(h.bits, [3, 7], { dtype: "bf16" }), 2, 4), [3, 4], "bf16");
  assert.deepEqual([...y], sliceLastRef(h.values, 7, 2, 4));
});

test("sliceLast: windows outside the last axis are HippoErrors", () => {
  const t = tensor(new Float32Array(3 * 7), [3, 7]);
  assertHippoError(() => sliceLast(t, 5, 3), "[5, 8)", "[3, 7]");
  assertHippoError(() => sliceLast(t, -1, 2), "[3, 7]");
  assertHippoError(() => sliceLast(t, 0, -1), "[3, 7]");
  assertHippoError(() => sliceLast(t, 8, 0), "[3, 7]");
});

test("splitLast: pieces (incl. empty ones) equal consecutive slices; widths must add up", async () => {
  const rng = new Prng(33);
  for (const [shape, widths] of [
    [[3, 17, 13], [2, 5, 6]],
    [[1, 13], [13]],
    [[5, 7], [0, 3, 0, 4, 0]],
    [[2, 67], [1, 33, 33]],
    [[7], [1, 1, 1, 1, 1, 1, 1]],
  ] as [number[], number[]][]) {
    const x = rng.f32(prod(shape));
    const W = shape[shape.length - 1];
    const pieces = splitLast(tensor(x, shape), widths);
    assert.equal(pieces.length, widths.length);
    let start = 0;
    for (let i = 0; i < widths.length; i++) {
      const what = `splitLast [${shape}] piece ${i}`;
      const y = await readChecked(pieces[i], [...shape.slice(0, -1), widths[i]], what);
      assert.deepEqual([...y], sliceLastRef(x, W, start, widths[i]), what);
      start += widths[i];
    }
  }
  const t = tensor(new Float32Array(2 * 13), [2, 13]);
  assertHippoError(() => splitLast(t, [5, 7]), "12", "13", "[2, 13]");
  assertHippoError(() => splitLast(t, [5, 9]), "14", "13");
});

test("selectPositions: one position per batch row, inner dims of any rank", async () => {
  const rng = new Prng(34);
  for (const shape of [[1, 1], [1, 17], [3, 1], [3, 17], [3, 17, 5], [2, 5, 3, 4], [1, 1, 1]]) {
    const [B, L] = shape;
    const inner = prod(shape.slice(2));
    const x = rng.f32(prod(shape));
    const pos = rng.ints(B, 0, L);
    pos[0] = L - 1;
    const y = await readChecked(selectPositions(tensor(x, shape), tensor(pos, [B])), [B, ...shape.slice(2)], `[${shape}]`);
    const want: number[] = [];
    for (let b = 0; b < B; b++) for (let i = 0; i < inner; i++) want.push(x[(b * L + pos[b]) * inner + i]);
    assert.deepEqual([...y], want, `selectPositions [${shape}] at [${[...pos]}]`);
  }
});

test("selectPositions: bad positions are HippoErrors", () => {
  const x = tensor(new Float32Array(3 * 17 * 5), [3, 17, 5]);
  assertHippoError(() => selectPositions(x, tensor(new Int32Array([0, 17, 1]), [3])), "17");
  assertHippoError(() => selectPositions(x, tensor(new Int32Array([0, -1, 1]), [3])), "-1");
  assertHippoError(() => selectPositions(x, tensor(new Int32Array([0, 1]), [2])), "[3, 17, 5]", "[2]");
  assertHippoError(() => selectPositions(x, tensor([0, 1, 2], [3])), "i32");
  assertHippoError(() => selectPositions(tensor(new Float32Array(3), [3]), tensor(new Int32Array([0, 1, 2]), [3])), "[3]");
});

test("concat0: parts of different lengths along axis 0 (mixed dtypes widened)", async () => {
  const rng = new Prng(35);
  for (const inner of [[], [1], [3], [5, 7]]) {
    const lengths = [2, 1, 0, 4, 3];
    const parts = lengths.map((n) => rng.f32(n * prod(inner)));
    const y = await readChecked(concat0(parts.map((p, i) => tensor(p, [lengths[i], ...inner]))), [10, ...inner], `[${inner}]`);
    assert.deepEqual([...y], parts.flatMap((p) => [...p]), `concat0 inner [${inner}]`);
  }
  const a = toHalf(rng.f32(6), "f16"), b = rng.f32(3), c = toHalf(rng.f32(3), "bf16");
  const y = await readChecked(
    concat0([tensor(a.bits, [2, 3], { dtype: "f16" }), tensor(b, [1, 3]), tensor(c.bits, [1, 3], { dtype: "bf16" })]), [4, 3], "mixed");
  assert.deepEqual([...y], [...a.values, ...b, ...c.values]);
  const single = await readChecked(concat0([tensor(b, [1, 3])]), [1, 3], "single");
  assert.deepEqual([...single], [...b]);
});

test("concat0: mismatched inner shapes and empty lists are HippoErrors", () => {
  const a = tensor(new Float32Array(6), [2, 3]);
  assertHippoError(() => concat0([a, tensor(new Float32Array(4), [1, 4])]), "[2, 3]", "[1, 4]");
  assertHippoError(() => concat0([a, tensor(new Float32Array(6), [2, 3, 1])]), "[2, 3]", "[2, 3, 1]");
  assertHippoError(() => concat0([]), "concat0");
});

test("slice0: rows [start, start+length) of axis 0", async () => {
  const rng = new Prng(36);
  for (const shape of [[1], [7], [5, 3], [4, 3, 2], [13, 1]]) {
    const x = rng.f32(prod(shape));
    const inner = prod(shape.slice(1));
    for (let start = 0; start <= shape[0]; start++) {
      for (let length = 0; start + length <= shape[0]; length++) {
        const what = `slice0 [${shape}] ${start}+${length}`;
        const y = await readChecked(slice0(tensor(x, shape), start, length), [length, ...shape.slice(1)], what);
        assert.deepEqual([...y], [...x.slice(start * inner, (start + length) * inner)], what);
      }
    }
  }
  const t = tensor(new Float32Array(5 * 3), [5, 3]);
  assertHippoError(() => slice0(t, 4, 2), "[4, 6)", "[5, 3]");
  assertHippoError(() => slice0(t, -1, 1), "[5, 3]");
});

test("toFloat32: f16/bf16 widened exactly, f32 copied", async () => {
  const rng = new Prng(37);
  for (const dtype of ["f16", "bf16"] as const) {
    const h = toHalf(rng.f32(3 * 5, -100, 100), dtype);
    const y = await readChecked(toFloat32(tensor(h.bits, [3, 5], { dtype })), [3, 5], dtype);
    assertClose(y, h.values, dtype, { tol: 0 });
  }
  const x = rng.f32(7);
  const t = tensor(x, [7]);
  const y = toFloat32(t);
  assert.notEqual(y, t);
  assert.deepEqual([...(await readChecked(y, [7], "f32"))], [...x]);
  t.dispose();
  assert.deepEqual([...(await y.read())], [...x], "the copy outlives the source");
});

test("toFloat32: an i32 tensor either converts to real f32 values or is a HippoError", async () => {
    const ids = tensor(new Int32Array([1, -2, 3]), [3]);
    let y;
    try {
      y = toFloat32(ids);
    } catch (err) {
      assert.ok(err instanceof HippoError, String(err));
      return;
    }
    assert.equal(y.dtype, "f32");
    const v = await y.read();
    assert.ok(v instanceof Float32Array, `read() gave a ${v.constructor.name}`);
    assert.deepEqual([...v], [1, -2, 3]);
  });
