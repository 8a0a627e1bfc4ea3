// The WebGPU op timer behind `hippo bench --backend webgpu`: ops are timed by GPU timestamps around the
// commands they record (dispatches and copies), a read is charged only its own copy, and the backend
// records normally again once the profiler detaches.
import assert from "node:assert/strict";
import { test } from "node:test";
import { hostTimer, OpProfiler } from "../../../src/backends/profiling.js";
import { Prng } from "../../ops/helpers.js";
import { gpu, skip } from "./setup.js";

test("GPU op timer: time lands on the op that recorded the work", { skip }, async () => {
  const b = gpu!;
  assert.ok(b.handle.features.includes("timestamp-query"), "the test adapter offers timestamp-query");
  const rng = new Prng(5);
  const x = b.upload(rng.f32(96 * 320, -1, 1), [96, 320], "f32");
  const w = b.upload(rng.f32(288 * 320, -1, 1), [288, 320], "f32");
  const small = b.upload(rng.f32(64, -1, 1), [1, 64], "f32");
  const untimed = await b.linear(x, w, null).read();

  const profiler = new OpProfiler(b).attach();
  let timedOut: Float32Array;
  try {
    assert.notEqual(profiler.timer, hostTimer);
    assert.match(profiler.timer.name, /timestamp/);
    const ys = [];
    for (let i = 0; i < 3; i++) ys.push(b.linear(x, w, null));
    const u = b.unary("silu", small);
    const c = b.concat0([ys[0], ys[1]]);
    const v = b.reshape(u, [64]);
    timedOut = (await ys[2].read()) as Float32Array;
    await profiler.flush();
    const ms = (op: string) => profiler.snapshot().find((r) => r.op === op)!;
    assert.equal(ms("linear").calls, 3);
    assert.ok(ms("linear").ms > 0, "a matmul of 96×320×288 takes GPU time");
    assert.ok(ms("concat0").ms > 0, "copies are timed too");
    assert.ok(ms("unary").ms < ms("linear").ms / 3, `silu of 64 values (${ms("unary").ms} ms) is far cheaper than three matmuls (${ms("linear").ms} ms)`);
    assert.equal(ms("reshape").ms, 0, "a view records no GPU work");
    // The read waited for the three matmuls; it is charged only its own copy out.
    assert.ok(ms("read").ms < ms("linear").ms / 3, `read ${ms("read").ms} ms vs linear ${ms("linear").ms} ms`);
    for (const t of [...ys, u, c, v]) t.dispose();
  } finally {
    profiler.detach();
  }
  assert.deepEqual(timedOut, untimed, "timing does not change results");
  // After detaching, dispatches go back into one shared pass (no timing) and still compute.
  await b.sync();
  assert.equal(b.rt.profiling, false);
  assert.deepEqual(await b.linear(x, w, null).read(), untimed);
});
