import { test } from "node:test";
import assert from "node:assert/strict";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import { softplus } from "../../src/backends/cpu/kernels/elementwise.js";
import * as ops from "../../src/ops/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { gradcheck, param } from "./gradcheck.js";

const backend = new GradBackend();

/** y and the final state flattened into one output, so that both gradients are checked together. */
function both(r: { y: Tensor; state: Tensor }): Tensor {
  return backend.concat0([ops.reshape(r.y, [r.y.size]), ops.reshape(r.state, [r.state.size])]);
}

const [Bsz, L, H, P, G, N] = [2, 7, 4, 3, 2, 5];

function inputs(seed: number) {
  return {
    x: param(backend, [Bsz, L, H, P], seed + 1),
    dt: param(backend, [Bsz, L, H], seed + 2, 1.5),
    A: param(backend, [H], seed + 3, 0.4, -0.8),
    B: param(backend, [Bsz, L, G, N], seed + 4),
    C: param(backend, [Bsz, L, G, N], seed + 5),
  };
}

test("ssdChunked: gradients of x, dt, A, B, C (no D, no bias, no softplus, no clamp)", async () => {
  const t = inputs(10);
  // Raw dt used directly: keep it positive.
  (t.dt.storage as Float32Array).forEach((v, i, a) => (a[i] = 0.3 + 0.2 * v));
  await gradcheck(backend, t, () => ops.ssdChunked({
    ...t, D: null, dtBias: null, dtSoftplus: false, dtMin: 0, dtMax: Infinity, state: null, chunkSize: 3,
  }).y);
});

test("ssdChunked: D per head, dt bias, softplus, a clamp that bites, initial state, final-state gradient", async () => {
  const t = inputs(20);
  const D = param(backend, [H], 26), dtBias = param(backend, [H], 27, 0.5);
  const state = param(backend, [Bsz, H, P, N], 28);
  const [dtMin, dtMax] = [0.35, 1.1];
  // The clamp must act on some entries and not on others (and no entry may sit within a step of a bound).
  const dt = t.dt.storage as Float32Array, bias = dtBias.storage as Float32Array;
  let low = 0, high = 0;
  for (let i = 0; i < dt.length; i++) {
    // Keep entries off the bounds, where finite differences straddle the kink.
    while (Math.abs(softplus(dt[i] + bias[i % H]) - dtMin) < 0.02 || Math.abs(softplus(dt[i] + bias[i % H]) - dtMax) < 0.02) dt[i] += 0.05;
    const v = softplus(dt[i] + bias[i % H]);
    if (v < dtMin) low++;
    if (v > dtMax) high++;
    assert.ok(Math.abs(v - dtMin) > 0.01 && Math.abs(v - dtMax) > 0.01, "an entry sits on a clamp bound");
  }
  assert.ok(low > 0 && high > 0 && low + high < dt.length, `clamp: ${low} low, ${high} high of ${dt.length}`);
  await gradcheck(backend, { ...t, D, dtBias, state }, () => both(ops.ssdChunked({
    ...t, D, dtBias, dtSoftplus: true, dtMin, dtMax, state, chunkSize: 3,
  })));
});

test("ssdChunked: D per channel ([H·P]), one group, chunk longer than the sequence", async () => {
  const t = { ...inputs(30), B: param(backend, [Bsz, L, 1, N], 34), C: param(backend, [Bsz, L, 1, N], 35) };
  const D = param(backend, [H * P], 36);
  await gradcheck(backend, { ...t, D }, () => ops.ssdChunked({
    ...t, D, dtBias: null, dtSoftplus: true, dtMin: 0, dtMax: Infinity, state: null, chunkSize: 16,
  }).y);
});

test("ssdChunked: gradient through the final state alone; G = H groups", async () => {
  const t = { ...inputs(40), B: param(backend, [Bsz, L, H, N], 44), C: param(backend, [Bsz, L, H, N], 45) };
  const state = param(backend, [Bsz, H, P, N], 46);
  await gradcheck(backend, { ...t, state }, () => ops.ssdChunked({
    ...t, D: null, dtBias: null, dtSoftplus: true, dtMin: 0, dtMax: Infinity, state, chunkSize: 2,
  }).state);
});
