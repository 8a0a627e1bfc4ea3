import { test } from "node:test";
import assert from "node:assert/strict";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import { crossEntropy, IGNORE_INDEX } from "../../src/autograd/loss.js";
import { Tape } from "../../src/autograd/tape.js";
import type { UnaryOp } from "../../src/backends/backend.js";
import * as ops from "../../src/ops/index.js";
import { gradcheck, param } from "./gradcheck.js";

const backend = new GradBackend();

test("linear: gradients of input, weight and bias (odd shapes)", async () => {
  const x = param(backend, [2, 3, 7], 1), w = param(backend, [5, 7], 2), b = param(backend, [5], 3);
  await gradcheck(backend, { x, w, b }, () => ops.linear(x, w, b));
});

test("embedding: gradient of the table, repeated ids accumulate", async () => {
  const table = param(backend, [6, 4], 4);
  const ids = backend.upload(Int32Array.of(1, 5, 1, 0, 3, 1), [2, 3], "i32");
  await gradcheck(backend, { table }, () => ops.embedding(table, ids));
});

test("rmsNorm and layerNorm: gradients of input, weight and bias", async () => {
  const x = param(backend, [3, 9], 5), w = param(backend, [9], 6, 0.5, 1), b = param(backend, [9], 7);
  await gradcheck(backend, { x, w }, () => ops.rmsNorm(x, w, 1e-5));
  await gradcheck(backend, { x, w, b }, () => ops.layerNorm(x, w, b, 1e-5));
});

test("unary ops: every activation's derivative", async () => {
  for (const op of ["silu", "softplus", "exp", "neg", "gelu", "gelu_tanh", "relu", "relu2"] as UnaryOp[]) {
    const x = param(backend, [4, 5], 8, 2);
    await gradcheck(backend, { x }, () => backend.unary(op, x));
  }
});

test("binary ops with broadcasting of the second operand", async () => {
  for (const op of ["add", "mul", "sub"] as const) {
    const a = param(backend, [2, 3, 4], 9), same = param(backend, [2, 3, 4], 10), suffix = param(backend, [3, 4], 11);
    await gradcheck(backend, { a, same }, () => backend.binary(op, a, same));
    await gradcheck(backend, { a, suffix }, () => backend.binary(op, a, suffix));
  }
});

test("shape ops: sliceLast, selectPositions, concat0, slice0, reshape", async () => {
  const x = param(backend, [2, 4, 6], 12), y = param(backend, [1, 4, 6], 13);
  await gradcheck(backend, { x }, () => ops.sliceLast(x, 1, 3));
  const pos = backend.upload(Int32Array.of(3, 0), [2], "i32");
  await gradcheck(backend, { x }, () => ops.selectPositions(x, pos));
  await gradcheck(backend, { x, y }, () => backend.concat0([x, y, x]));
  await gradcheck(backend, { x }, () => backend.slice0(x, 1, 1));
  await gradcheck(backend, { x }, () => ops.reshape(x, [8, 6]));
});

test("crossEntropy: value and gradient match the definition, ignored positions skipped", async () => {
  const logits = param(backend, [2, 3, 5], 14, 2);
  const targets = backend.upload(Int32Array.of(0, 4, IGNORE_INDEX, 2, 2, 1), [2, 3], "i32");
  const x = logits.storage as Float32Array;
  let expected = 0;
  for (const [r, label] of [[0, 0], [1, 4], [3, 2], [4, 2], [5, 1]]) {
    const row = Array.from(x.subarray(r * 5, r * 5 + 5));
    expected += Math.log(row.reduce((s, v) => s + Math.exp(v), 0)) - row[label];
  }
  const { loss, count } = crossEntropy(logits, targets);
  assert.equal(count, 5);
  assert.ok(Math.abs((loss.storage as Float32Array)[0] - expected / 5) < 1e-5);
  await gradcheck(backend, { logits }, () => crossEntropy(logits, targets).loss);
});

test("a gradient through a shared input accumulates over both uses; unwatched inputs get none", async () => {
  const x = param(backend, [3, 4], 15), w = param(backend, [4, 4], 16);
  await gradcheck(backend, { x, w }, () => ops.add(ops.linear(x, w), ops.mul(x, x)));
  const tape = new Tape();
  backend.tape = tape;
  const y = ops.linear(x, w);
  backend.tape = null;
  assert.equal(tape.length, 0, "nothing watched, nothing recorded");
  assert.equal(y.shape.join(","), "3,4");
});

test("KV-cache ops: resizeAxis1 and writeAxis1 at per-row offsets", async () => {
  const cache = param(backend, [2, 3, 4], 17), fresh = param(backend, [2, 2, 4], 18);
  const offsets = backend.upload(Int32Array.of(1, 3), [2], "i32");
  await gradcheck(backend, { cache, fresh }, () => backend.writeAxis1(cache, fresh, offsets));
  await gradcheck(backend, { cache }, () => backend.resizeAxis1(cache, 5));
  await gradcheck(backend, { cache }, () => backend.resizeAxis1(cache, 2));
});

test("an op without a backward rule refuses to run on tensors that need gradients", async () => {
  const tape = new Tape();
  const u = param(backend, [1, 1, 3], 19), delta = param(backend, [1, 1, 3], 20), A = param(backend, [3, 2], 21, 1, -2);
  const B = param(backend, [1, 1, 2], 22), C = param(backend, [1, 1, 2], 23);
  tape.watch(u);
  backend.tape = tape;
  try {
    assert.throws(() => backend.selectiveStateUpdate({ u, delta, A, B, C, D: null, z: null, deltaBias: null, deltaSoftplus: true, state: backend.zeros([1, 3, 2]) }),
      /selectiveStateUpdate.*no backward rule/);
  } finally {
    backend.tape = null;
  }
});
