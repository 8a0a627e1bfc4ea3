import { test } from "node:test";
import assert from "node:assert/strict";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import { Tape } from "../../src/autograd/tape.js";
import type { CausalConv1dArgs, SelectiveScanArgs } from "../../src/backends/backend.js";
import { CpuBackend } from "../../src/backends/cpu/index.js";
import * as ops from "../../src/ops/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { gradcheck, param, randomValues } from "./gradcheck.js";

const backend = new GradBackend();

/** y and the state output flattened into one tensor, so one gradcheck covers both outputs' gradients. */
function both(r: { y: Tensor; state: Tensor }): Tensor {
  return backend.concat0([ops.reshape(r.y, [r.y.size]), ops.reshape(r.state, [r.state.size])]);
}

test("gatedRmsNorm: gradients of y, z and weight (one group and several)", async () => {
  const y = param(backend, [2, 3, 12], 1), z = param(backend, [2, 3, 12], 2, 2), w = param(backend, [12], 3, 0.5, 1);
  for (const groupSize of [12, 4, 3]) await gradcheck(backend, { y, z, w }, () => ops.gatedRmsNorm(y, z, w, groupSize, 1e-5));
});

test("causalConv1d: gradients of x, weight, bias and initial state, with and without silu", async () => {
  const B = 2, L = 5, C = 3;
  for (const K of [4, 1, 7]) {
    const x = param(backend, [B, L, C], 10 + K), w = param(backend, [C, K], 11 + K), bias = param(backend, [C], 12 + K);
    const state = K > 1 ? param(backend, [B, K - 1, C], 13 + K) : null;
    for (const activation of ["silu", null] as const) {
      const run = (a: Partial<CausalConv1dArgs>) => () => ops.causalConv1d({ x, weight: w, bias: null, state: null, activation, ...a }).y;
      await gradcheck(backend, { x, w }, run({}));
      await gradcheck(backend, { x, w, bias }, run({ bias }));
      if (state) await gradcheck(backend, { x, w, bias, state }, run({ bias, state }));
    }
  }
});

test("causalConv1d: gradient through the state output (the last K-1 inputs), with L shorter than K-1", async () => {
  const C = 3, K = 4;
  for (const L of [5, 2]) {
    const x = param(backend, [2, L, C], 20 + L), w = param(backend, [C, K], 21), bias = param(backend, [C], 22);
    const state = param(backend, [2, K - 1, C], 23);
    await gradcheck(backend, { x, w, bias, state }, () => both(ops.causalConv1d({ x, weight: w, bias, state, activation: "silu" })));
    await gradcheck(backend, { x, state }, () => ops.causalConv1d({ x, weight: w, bias, state, activation: null }).state);
  }
});

/** Scan inputs of the given shape: A negative, raw Δ such that the step is positive either way. */
function scanInputs(B: number, L: number, E: number, N: number, softplus: boolean, seed: number) {
  return {
    u: param(backend, [B, L, E], seed + 1),
    delta: softplus ? param(backend, [B, L, E], seed + 2) : param(backend, [B, L, E], seed + 2, 0.3, 0.6),
    A: param(backend, [E, N], seed + 3, 0.5, -1),
    B: param(backend, [B, L, N], seed + 4),
    C: param(backend, [B, L, N], seed + 5),
    D: param(backend, [E], seed + 6),
    z: param(backend, [B, L, E], seed + 7, 2),
    deltaBias: param(backend, [E], seed + 8, 0.2),
    state: param(backend, [B, E, N], seed + 9),
  };
}

test("selectiveScan: gradients of every input, each optional input present and absent, softplus on and off", async () => {
  const B = 2, L = 5, E = 3, N = 4;
  for (const deltaSoftplus of [true, false]) {
    const s = scanInputs(B, L, E, N, deltaSoftplus, deltaSoftplus ? 30 : 40);
    const base = { u: s.u, delta: s.delta, A: s.A, B: s.B, C: s.C };
    const run = (a: Partial<SelectiveScanArgs>) => () =>
      ops.selectiveScan({ ...base, D: null, z: null, deltaBias: null, state: null, deltaSoftplus, ...a }).y;
    await gradcheck(backend, base, run({}));
    await gradcheck(backend, { ...base, D: s.D }, run({ D: s.D }));
    await gradcheck(backend, { ...base, z: s.z }, run({ z: s.z }));
    await gradcheck(backend, { ...base, deltaBias: s.deltaBias }, run({ deltaBias: s.deltaBias }));
    await gradcheck(backend, { ...base, state: s.state }, run({ state: s.state }));
    await gradcheck(backend, s, run({ D: s.D, z: s.z, deltaBias: s.deltaBias, state: s.state }));
  }
});

test("selectiveScan: gradient through the final state output, alone and with y", async () => {
  const s = scanInputs(2, 5, 3, 4, true, 50);
  const args = { ...s, deltaSoftplus: true };
  await gradcheck(backend, s, () => both(ops.selectiveScan(args)));
  await gradcheck(backend, s, () => ops.selectiveScan(args).state);
});

test("selectiveScan: softplus's linear branch (raw step above 20)", async () => {
  const s = scanInputs(1, 4, 3, 2, true, 60);
  const bias = backend.upload(Float32Array.of(21, 0, 20.5), [3], "f32");
  const A = param(backend, [3, 2], 61, 0.02, -0.05);
  const args = { ...s, A, deltaBias: bias, deltaSoftplus: true };
  await gradcheck(backend, { u: s.u, delta: s.delta, deltaBias: bias }, () => ops.selectiveScan(args).y);
  // Δ ≈ 21 multiplies A inside exp: a smaller step keeps the finite differences' truncation error down
  // (too small for Δ itself, which the kernel rounds to f32).
  await gradcheck(backend, { A }, () => ops.selectiveScan(args).y, { step: 5e-4 });
});

test("recording leaves forward values identical to the CPU backend's, and backward mutates no input", async () => {
  const cpu = new CpuBackend();
  const onCpu = (t: Tensor): Tensor => cpu.upload((t.storage as Float32Array).slice(), t.shape, t.dtype);
  const s = scanInputs(2, 6, 5, 3, true, 70);
  const convX = param(backend, [2, 6, 5], 71), convW = param(backend, [5, 4], 72), convB = param(backend, [5], 73);
  const convS = param(backend, [2, 3, 5], 74);
  const gy = param(backend, [2, 6, 10], 75), gz = param(backend, [2, 6, 10], 76, 2), gw = param(backend, [10], 77, 0.5, 1);
  const watched = [...Object.values(s), convX, convW, convB, convS, gy, gz, gw];
  const before = watched.map((t) => (t.storage as Float32Array).slice());

  const expected = [
    ...Object.values(cpu.selectiveScan({ ...(Object.fromEntries(Object.entries(s).map(([k, v]) => [k, onCpu(v)])) as typeof s), deltaSoftplus: true })),
    ...Object.values(cpu.causalConv1d({ x: onCpu(convX), weight: onCpu(convW), bias: onCpu(convB), state: onCpu(convS), activation: "silu" })),
    cpu.gatedRmsNorm(onCpu(gy), onCpu(gz), onCpu(gw), 5, 1e-5),
  ].map((t) => (t.storage as Float32Array).slice());

  const tape = new Tape();
  tape.watch(...watched);
  backend.tape = tape;
  let outs: Tensor[];
  try {
    outs = [
      ...Object.values(ops.selectiveScan({ ...s, deltaSoftplus: true })),
      ...Object.values(ops.causalConv1d({ x: convX, weight: convW, bias: convB, state: convS, activation: "silu" })),
      ops.gatedRmsNorm(gy, gz, gw, 5, 1e-5),
    ];
  } finally {
    backend.tape = null;
  }
  assert.equal(tape.length, 3);
  const total = backend.concat0(outs.map((t) => ops.reshape(t, [t.size])));
  const grads = await tape.backward(total, watched, randomValues(total.size, 5));
  for (const g of grads.values()) assert.ok(g.every(Number.isFinite));
  outs.forEach((t, i) => assert.deepEqual(t.storage, expected[i], `output ${i} differs from the CPU backend's`));
  watched.forEach((t, i) => assert.deepEqual(t.storage, before[i], `input ${i} changed`));
});

test("nothing watched: the mixer ops record nothing", async () => {
  const s = scanInputs(1, 3, 2, 2, true, 80);
  const tape = new Tape();
  backend.tape = tape;
  try {
    ops.selectiveScan({ ...s, deltaSoftplus: true });
    ops.causalConv1d({ x: s.u, weight: param(backend, [2, 3], 81), bias: null, state: null, activation: "silu" });
    ops.gatedRmsNorm(s.u, s.z, s.D, 2, 1e-5);
  } finally {
    backend.tape = null;
  }
  assert.equal(tape.length, 0);
});
