// Activations of the wasm backend live in its memory: kernels write them in place and read them without
// copies, and their blocks are given back when the last tensor holding them is disposed (a reshape
// shares its input's storage, so both must go).
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { CpuBackend } from "../../../src/backends/cpu/index.js";
import { WasmCpuBackend } from "../../../src/backends/wasm/index.js";
import { Prng } from "../../ops/helpers.js";

const fast = WasmCpuBackend.create(1);
after(() => fast?.dispose());
const ref = new CpuBackend();

test("activations: results survive while any holder lives, and disposed ones are reused", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, async () => {
  const b = fast!;
  b.minWasmMacs = 0;
  const rng = new Prng(5);
  const [M, K, N] = [64, 96, 300]; // 19200 outputs: large enough to be resident (small ones stay in JS memory)
  const xv = rng.f32(M * K), wv = rng.f32(N * K);
  const w = b.upload(wv, [N, K], "f32");
  const x = b.upload(xv, [M, K], "f32"); // resident too (rank 2, ≥ 4096 values), kept for every round
  const want = await ref.linear(ref.upload(xv, [M, K], "f32"), ref.upload(wv, [N, K], "f32"), null).read();
  const round = async () => {
    const y = b.linear(x, w, null); // written in place in wasm memory
    const r = b.reshape(y, [2, M / 2, N]);
    y.dispose(); // r still holds the block
    const z = b.unary("relu", r); // a TypeScript kernel over the resident input, output resident too
    const got = await r.read();
    for (let i = 0; i < got.length; i++) assert.ok(Math.abs(got[i] - want[i]) <= 1e-5 * (1 + Math.abs(want[i])), `value ${i}: ${got[i]} vs ${want[i]}`);
    const zv = await z.read();
    for (let i = 0; i < zv.length; i++) assert.equal(zv[i], Math.max(0, got[i]));
    r.dispose();
    z.dispose();
  };
  await round();
  const size = b.wasmBytes;
  for (let i = 0; i < 20; i++) await round();
  assert.equal(b.wasmBytes, size, "disposed activations' blocks are reused, so memory does not grow");
});

test("KV-cache append (writeAxis1) inside wasm memory: per-row offsets, gaps zeroed, cache resident or not", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, async () => {
  const b = fast!;
  const rng = new Prng(6);
  for (const [B, T, L, inner, offs] of [[2, 40, 1, 768, [40, 17]], [1, 30, 3, 700, [30]], [3, 25, 2, 512, [0, 25, 9]]] as [number, number, number, number, number[]][]) {
    const cv = rng.f32(B * T * inner), fv = rng.f32(B * L * inner);
    const offsets = Int32Array.from(offs);
    // A resident cache: the output of an op (a copy through unary relu of |values|).
    const abs = cv.map(Math.abs);
    for (const resident of [false, true]) {
      const cache = resident ? b.unary("relu", b.reshape(b.upload(abs, [B * T, inner], "f32"), [B, T, inner])) : b.upload(abs, [B, T, inner], "f32");
      const got = b.writeAxis1(cache, b.upload(fv, [B, L, inner], "f32"), b.upload(offsets, [B], "i32"));
      const want = ref.writeAxis1(ref.upload(abs, [B, T, inner], "f32"), ref.upload(fv, [B, L, inner], "f32"), ref.upload(offsets, [B], "i32"));
      assert.deepEqual(got.shape, want.shape);
      assert.deepEqual(Array.from(await got.read()), Array.from(await want.read()), `B=${B} T=${T} L=${L} resident=${resident}`);
    }
  }
});

test("KV-cache append of one sequence in place: a long decode against the reference, branches from one cache, memory given back", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, async () => {
  const b = fast!;
  const rng = new Prng(9);
  const inner = 256; // resident from 64 rows of capacity on
  const at = (n: number) => b.upload(Int32Array.of(n), [1], "i32");
  const before = b.wasmBytes;
  let cache = b.upload(new Float32Array(0), [1, 0, inner], "f32");
  let want = ref.upload(new Float32Array(0), [1, 0, inner], "f32");
  const caches: unknown[] = [];
  // A prompt of 7 rows, then 150 single rows: the block grows (by half) several times.
  for (const L of [7, ...Array.from({ length: 150 }, () => 1)]) {
    const fv = rng.f32(L * inner);
    const T = cache.shape[1];
    const bytes = b.wasmBytes;
    const next = b.writeAxis1(cache, b.upload(fv, [1, L, inner], "f32"), at(T));
    if (T === 100) assert.equal(b.wasmBytes, bytes, "an append with capacity to spare takes no new memory (written in place)");
    want = ref.writeAxis1(want, ref.upload(fv, [1, L, inner], "f32"), ref.upload(Int32Array.of(T), [1], "i32"));
    if (T === 40) caches.push(await cache.read()); // an older cache keeps its values while later rows are appended
    if (T !== 40) cache.dispose();
    else caches.push(cache);
    cache = next;
  }
  assert.deepEqual(cache.shape, [1, 157, inner]);
  assert.deepEqual(Array.from(await cache.read()), Array.from(await want.read()));
  const [kept, older] = [caches[0] as Float32Array, caches[1] as typeof cache];
  assert.deepEqual(Array.from(await older.read()), Array.from(kept), "a cache that later rows were appended behind is unchanged");
  // Two appends behind the same cache (a step redone from the same state): the second copies, the first keeps its row.
  const rowA = rng.f32(inner), rowB = rng.f32(inner);
  const a = b.writeAxis1(cache, b.upload(rowA, [1, 1, inner], "f32"), at(157));
  const c = b.writeAxis1(cache, b.upload(rowB, [1, 1, inner], "f32"), at(157));
  assert.deepEqual(Array.from((await a.read()).subarray(157 * inner)), Array.from(rowA));
  assert.deepEqual(Array.from((await c.read()).subarray(157 * inner)), Array.from(rowB));
  assert.deepEqual(Array.from((await a.read()).subarray(0, 157 * inner)), Array.from(await want.read()));
  for (const t of [a, c, cache, older]) t.dispose();
  assert.equal(b.wasmBytes, before, "every block was given back once its last cache was disposed");
});

test("uploaded weights: freed when their last holder is disposed (a model's dispose gives its memory back)", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, async () => {
  const b = fast!;
  const rng = new Prng(8);
  const values = rng.f32(300 * 200);
  const before = b.wasmBytes;
  const w = b.upload(values, [300, 200], "f32");
  const grown = b.wasmBytes;
  assert.ok(grown > before, "the weight went to wasm memory");
  const view = b.reshape(w, [600, 100]);
  w.dispose();
  assert.deepEqual(Array.from(await view.read()), Array.from(values), "a reshape keeps the weight alive");
  view.dispose();
  assert.equal(b.wasmBytes, before, "the last holder's dispose frees the block (the top of memory goes back)");
});
