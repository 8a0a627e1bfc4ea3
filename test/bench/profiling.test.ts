import assert from "node:assert/strict";
import { test } from "node:test";
import { CpuBackend } from "../../src/backends/cpu/index.js";
import { opCost, fftSize } from "../../src/backends/op-cost.js";
import { OpProfiler, type OpTimer } from "../../src/backends/profiling.js";
import { linear, reshape, tensor, tidy } from "../../src/ops/index.js";

const floats = (n: number, seed = 1) => Float32Array.from({ length: n }, (_, i) => Math.sin(seed * 7 + i));

test("profiler: every op call is timed and counted under the current scope", () => {
  const backend = new CpuBackend();
  const profiler = new OpProfiler(backend).attach();
  try {
    const x = tensor(floats(3 * 8), [3, 8], { backend });
    const w = tensor(floats(5 * 8, 2), [5, 8], { backend });
    const b = tensor(floats(5, 3), [5], { backend });
    profiler.reset();
    profiler.scope = "mixer";
    linear(x, w, b);
    linear(x, w, b);
    profiler.scope = "head";
    linear(x, w, null);
    const rows = profiler.snapshot();
    const mixer = rows.find((r) => r.scope === "mixer" && r.op === "linear")!;
    assert.equal(mixer.calls, 2);
    assert.equal(mixer.flops, 2 * (2 * 3 * 5 * 8 + 3 * 5));
    // x, w, b read once, the [3, 5] output written once, per call.
    assert.equal(mixer.bytes, 2 * 4 * (24 + 40 + 5 + 15));
    assert.equal(mixer.allocBytes, 2 * 4 * 15);
    assert.ok(mixer.ms >= 0);
    const head = rows.find((r) => r.scope === "head" && r.op === "linear")!;
    assert.equal(head.calls, 1);
    assert.equal(head.flops, 2 * 3 * 5 * 8);
  } finally {
    profiler.detach();
  }
});

test("profiler: detaching restores the backend; results are unchanged while attached", async () => {
  const backend = new CpuBackend();
  const x = tensor(floats(4 * 6), [4, 6], { backend });
  const w = tensor(floats(3 * 6, 5), [3, 6], { backend });
  const plain = await linear(x, w).read();
  const profiler = new OpProfiler(backend).attach();
  assert.ok(Object.hasOwn(backend, "linear"));
  const profiled = await linear(x, w).read();
  profiler.detach();
  assert.equal(Object.hasOwn(backend, "linear"), false);
  assert.equal(Object.hasOwn(backend, "release"), false);
  assert.deepEqual(profiled, plain);
  profiler.reset();
  linear(x, w);
  assert.equal(profiler.snapshot().length, 0, "nothing is recorded after detach");
});

test("profiler: live and peak bytes follow tensor lifetimes; views are free", () => {
  const backend = new CpuBackend();
  const profiler = new OpProfiler(backend).attach();
  try {
    const x = tensor(floats(16), [4, 4], { backend });
    const w = tensor(floats(16, 2), [4, 4], { backend });
    const base = profiler.liveBytes;
    profiler.resetPeak();
    tidy(() => {
      const y = linear(x, w); // 64 bytes
      const z = linear(y, w); // 64 bytes
      reshape(z, [16]); // a view: no new storage
    });
    assert.equal(profiler.liveBytes, base, "tidy released what it made");
    assert.equal(profiler.peakBytes - base, 128);
    x.dispose();
    assert.equal(profiler.liveBytes, base - 64);
  } finally {
    profiler.detach();
  }
});

test("profiler: recording off passes ops through; host work is timed with time()", () => {
  const backend = new CpuBackend();
  const profiler = new OpProfiler(backend).attach();
  try {
    const x = tensor(floats(4), [1, 4], { backend });
    profiler.reset();
    profiler.recording = false;
    linear(x, x);
    assert.equal(profiler.snapshot().length, 0);
    profiler.recording = true;
    profiler.scope = "head";
    const v = profiler.time("sample", () => 42, { flops: 10, bytes: 20 });
    assert.equal(v, 42);
    assert.deepEqual(profiler.snapshot().map((r) => [r.scope, r.op, r.calls, r.flops, r.bytes]), [["head", "sample", 1, 10, 20]]);
  } finally {
    profiler.detach();
  }
});

test("profiler: a timer that resolves later (GPU timestamps) is awaited by flush()", async () => {
  const backend = new CpuBackend();
  const x = tensor(floats(4), [1, 4], { backend });
  const pending: ((ms: number) => void)[] = [];
  const timer: OpTimer = { name: "fake device timestamps", begin: () => null, end: () => new Promise<number>((r) => pending.push(r)) };
  const profiler = new OpProfiler(backend, timer).attach();
  try {
    linear(x, x);
    assert.equal(profiler.snapshot().length, 0, "not recorded until the device reports");
    assert.equal(pending.length, 1);
    pending[0](3.5);
    await profiler.flush();
    const [row] = profiler.snapshot();
    assert.equal(row.op, "linear");
    assert.equal(row.ms, 3.5);
  } finally {
    profiler.detach();
  }
});

test("op costs: attention over a prompt counts the causal triangle; FFT sizes avoid wrap-around", () => {
  const backend = new CpuBackend();
  const [B, L, H, D] = [1, 5, 2, 4];
  const q = tensor(floats(B * L * H * D), [B, L, H, D], { backend });
  const start = tensor(new Int32Array([0]), [1], { backend, dtype: "i32" });
  const cost = opCost("causalAttention", [{ q, k: q, v: q, queryStart: start, scale: 1 }], null);
  assert.equal(cost.flops, B * H * ((L * (L + 1)) / 2) * (2 * D + 2 * D + 5));
  // A decode step at T = 9 cached tokens sees all of them.
  const k = tensor(floats(9 * H * D), [1, 9, H, D], { backend });
  const one = tensor(floats(H * D), [1, 1, H, D], { backend });
  assert.equal(opCost("causalAttention", [{ q: one, k, v: k, queryStart: start, scale: 1 }], null).flops, H * 9 * (4 * D + 5));
  assert.equal(fftSize(1), 4);
  assert.equal(fftSize(5), 16);
  assert.equal(fftSize(8), 16);
  assert.deepEqual(opCost("reshape", [q, [10, 4]], q), { flops: 0, bytes: 0 });
});
