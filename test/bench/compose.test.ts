import assert from "node:assert/strict";
import { test } from "node:test";
import type { OpTotals } from "../../src/backends/profiling.js";
import { classify } from "../../src/bench/classify.js";
import { basisFor, byClass, composeRun, evaluate, fitNonNegative, fitPrefill, perLayer, projectPrefill, total } from "../../src/bench/compose.js";
import { crossings } from "../../src/bench/findings.js";

const op = (scope: string, name: string, ms: number, flops = 0, allocBytes = 0): OpTotals =>
  ({ scope, op: name, calls: 1, ms, flops, bytes: 0, allocBytes });

test("classify: op classes depend on the op and the layer it ran in", () => {
  assert.equal(classify("linear", "mamba2"), "projection");
  assert.equal(classify("linear", "mlp"), "mlp");
  assert.equal(classify("unary", "mlp"), "mlp");
  assert.equal(classify("binary", "mlp/residual"), "elementwise");
  assert.equal(classify("linear", "head"), "lm_head");
  assert.equal(classify("causalAttention", "attention"), "attention");
  assert.equal(classify("writeAxis1", "attention"), "kv_cache");
  assert.equal(classify("diagSsmConv", "h3"), "fft_conv");
  assert.equal(classify("diagSsmStep", "h3"), "scan");
  assert.equal(classify("ssdChunked", "mamba2"), "scan");
  assert.equal(classify("shiftSsm", "h3"), "short_conv");
  assert.equal(classify("sample", "head"), "sampling");
  assert.equal(classify("sliceLast", "mamba"), "memory");
});

test("composeRun: layer ops scale with the full model's layer counts; the head and untimed work do not", () => {
  const run = {
    wallMs: 20,
    peakBytes: 1000,
    ops: [op("mamba2", "linear", 4, 100, 300), op("mamba2/residual", "binary", 1, 10, 50), op("head", "linear", 3, 7, 40), op("head", "embedding", 2)],
  };
  const p = composeRun(run, { mamba2: 1 }, { mamba2: 24 });
  const cls = byClass(p);
  assert.equal(cls.projection, 96);
  assert.equal(cls.elementwise, 24);
  assert.equal(cls.lm_head, 3);
  assert.equal(cls.embedding, 2);
  // Wall time no op accounts for, scaled with the op calls: 4 measured, 2 + 24 + 24 composed.
  assert.equal(cls.overhead, (20 - 10) * (50 / 4));
  assert.equal(p.wallMs, 10 + 23 * 5 + 125);
  assert.equal(total(cls), p.wallMs);
  assert.equal(byClass(p, "flops").projection, 2400);
  assert.equal(p.peakBytes, 1000, "layers free their intermediates: depth does not raise the transient peak");
  const layers = perLayer(p, { mamba2: 24 });
  assert.equal(layers.mamba2.projection, 4);
  assert.equal(layers.head.lm_head, 3);
  // A run of the full model composes to itself.
  assert.equal(composeRun(run, { mamba2: 24 }, { mamba2: 24 }).wallMs, 20);
});

test("fitNonNegative: recovers growth laws and never returns negative terms", () => {
  const xs = [256, 512, 1024, 2048];
  const quad = xs.map((L) => 0.5 + 0.01 * L + 2e-6 * L * L);
  const c = fitNonNegative(xs, quad, basisFor("attention"));
  assert.ok(Math.abs(c[0] - 0.5) < 1e-6 && Math.abs(c[1] - 0.01) < 1e-9 && Math.abs(c[2] - 2e-6) < 1e-12, `got ${c}`);
  // Decreasing data cannot be fitted by non-negative growth terms: the fit stays non-negative.
  const c2 = fitNonNegative(xs, [4, 3, 2, 1], basisFor("projection"));
  assert.ok(c2.every((v) => v >= 0));
  assert.ok(Math.abs(evaluate(c, basisFor("attention"), 65536) - (0.5 + 655.36 + 2e-6 * 65536 ** 2)) < 1e-3);
});

test("fitPrefill / projectPrefill: per (layer kind, op class) extrapolation", () => {
  const profile = (L: number) => composeRun({
    wallMs: 0.002 * L + 1e-5 * L * L, peakBytes: 0,
    ops: [op("mamba2", "linear", 0.002 * L), op("attention", "causalAttention", 1e-5 * L * L)],
  }, { mamba2: 1, attention: 1 }, { mamba2: 10, attention: 2 });
  const fit = fitPrefill([256, 512, 1024].map((L) => ({ length: L, profile: profile(L) })));
  const at = projectPrefill(fit, 8192);
  assert.ok(Math.abs(at.projection - 10 * 0.002 * 8192) < 1e-6);
  assert.ok(Math.abs(at.attention - 2 * 1e-5 * 8192 ** 2) < 1e-3);
});

test("crossings: where one curve overtakes another, interpolated in log–log", () => {
  const a = [1, 2, 4, 8].map((x) => ({ x, y: x * x, projected: x > 4 }));
  const b = [1, 2, 4, 8].map((x) => ({ x, y: 4 * x, projected: x > 4 }));
  const xs = crossings(a, b);
  assert.equal(xs.length, 1);
  assert.ok(Math.abs(xs[0].x - 4) < 1e-9 || (xs[0].x > 2 && xs[0].x <= 4));
  assert.equal(xs[0].aBelowBefore, true);
  assert.deepEqual(crossings(b, b), []);
});
