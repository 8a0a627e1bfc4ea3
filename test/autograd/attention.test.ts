import { test } from "node:test";
import assert from "node:assert/strict";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import { Tape } from "../../src/autograd/tape.js";
import { CpuBackend } from "../../src/backends/cpu/index.js";
import * as ops from "../../src/ops/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { gradcheck, param, randomValues } from "./gradcheck.js";

const backend = new GradBackend();
const starts = (...s: number[]): Tensor => backend.upload(Int32Array.from(s), [s.length], "i32");

test("causalAttention: gradients of q, k, v with grouped-query heads (training shapes, T = L, start 0)", async () => {
  const B = 2, L = 5, D = 3, Dv = 4;
  for (const [Hq, Hkv] of [[4, 2], [3, 3], [4, 1]]) {
    const q = param(backend, [B, L, Hq, D], 1 + Hq), k = param(backend, [B, L, Hkv, D], 2 + Hkv), v = param(backend, [B, L, Hkv, Dv], 3);
    await gradcheck(backend, { q, k, v }, () => ops.causalAttention({ q, k, v, queryStart: starts(0, 0), scale: 0.7 }));
  }
});

test("causalAttention: per-row query starts (cached prefix, rows with nothing visible, keys beyond the mask)", async () => {
  const B = 3, L = 3, T = 7, Hq = 4, Hkv = 2, D = 3;
  const q = param(backend, [B, L, Hq, D], 10, 1.5), k = param(backend, [B, T, Hkv, D], 11, 1.5), v = param(backend, [B, T, Hkv, D], 12);
  // Row 0 sees a 4-token prefix; row 1 starts at -1 (its first query sees nothing); row 2 sees 1..3 keys of 7.
  await gradcheck(backend, { q, k, v }, () => ops.causalAttention({ q, k, v, queryStart: starts(4, -1, 0), scale: 1 / Math.sqrt(D) }), { samples: 200 });
  // Keys no query sees get no gradient.
  const tape = new Tape();
  tape.watch(k, v);
  backend.tape = tape;
  const y = ops.causalAttention({ q, k, v, queryStart: starts(1, -1, 0), scale: 0.5 });
  backend.tape = null;
  const g = await tape.backward(y, [k, v], randomValues(y.size, 3));
  const row = Hkv * D;
  for (const [b, firstHidden] of [[0, 4], [1, 2], [2, 3]]) {
    for (const t of [k, v]) {
      const hidden = g.get(t)!.subarray((b * T + firstHidden) * row, (b + 1) * T * row);
      assert.ok(hidden.every((x) => x === 0), `row ${b}: masked keys got a gradient`);
    }
  }
});

test("rope: gradient of x (partial and full rotary dims, interleaved and halves, scaled positions)", async () => {
  const B = 2, L = 5, H = 3;
  for (const [D, rotaryDim] of [[6, 4], [6, 6], [8, 2]]) {
    for (const interleaved of [false, true]) {
      const x = param(backend, [B, L, H, D], D + rotaryDim + (interleaved ? 1 : 0));
      await gradcheck(backend, { x }, () => ops.rope({ x, start: starts(3, 0), rotaryDim, base: 100, positionScale: 2, interleaved }), { samples: 200 });
    }
  }
});

test("recording leaves attention and rope outputs identical to the CPU backend's", async () => {
  const cpu = new CpuBackend();
  const onCpu = (t: Tensor): Tensor => cpu.upload((t.storage as Float32Array | Int32Array).slice(), t.shape, t.dtype);
  const q = param(backend, [2, 4, 4, 6], 20), k = param(backend, [2, 4, 2, 6], 21), v = param(backend, [2, 4, 2, 5], 22);
  const qs = starts(0, 2);
  const ropeArgs = { rotaryDim: 4, base: 10000, positionScale: 1, interleaved: false };
  const before = [q, k, v].map((t) => (t.storage as Float32Array).slice());
  const cq = cpu.rope({ x: onCpu(q), start: onCpu(qs), ...ropeArgs });
  const expected = [cq, cpu.causalAttention({ q: cq, k: onCpu(k), v: onCpu(v), queryStart: onCpu(qs), scale: 0.4 })];
  const tape = new Tape();
  tape.watch(q, k, v);
  backend.tape = tape;
  let outs: Tensor[];
  try {
    const rq = ops.rope({ x: q, start: qs, ...ropeArgs });
    outs = [rq, ops.causalAttention({ q: rq, k, v, queryStart: qs, scale: 0.4 })];
  } finally {
    backend.tape = null;
  }
  assert.equal(tape.length, 2);
  const grads = await tape.backward(outs[1], [q, k, v], randomValues(outs[1].size, 4));
  for (const g of grads.values()) assert.ok(g.every(Number.isFinite) && g.some((x) => x !== 0));
  outs.forEach((t, i) => assert.deepEqual(t.storage, expected[i].storage, `output ${i} differs from the CPU backend's`));
  [q, k, v].forEach((t, i) => assert.deepEqual(t.storage, before[i], `input ${i} changed`));
});
