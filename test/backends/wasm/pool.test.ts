// The thread pool under churn: many small jobs back to back, on 3 threads, with chunk counts from 1 to
// many and jobs that use fewer threads than the pool has; every result must equal the reference.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { CpuBackend } from "../../../src/backends/cpu/index.js";
import { WasmCpuBackend } from "../../../src/backends/wasm/index.js";
import { ThreadPool } from "../../../src/backends/wasm/pool.js";
import { instantiate, kernelsModule, WasmHeap } from "../../../src/backends/wasm/runtime.js";
import { Prng } from "../../ops/helpers.js";

const fast = WasmCpuBackend.create(3);
after(() => fast?.dispose());
const ref = new CpuBackend();

test("thread pool: 400 jobs of varied sizes on 3 threads give the reference results", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, async () => {
  const b = fast!;
  b.minWasmMacs = 0;
  assert.equal(b.readyHelpers, 2, "Node starts the helpers before setThreads returns");
  const chunksBefore = b.helperChunks;
  const rng = new Prng(9);
  for (let i = 0; i < 400; i++) {
    // Alternate all threads splitting (threshold 0) with the pool's default thresholds.
    b.minThreadWork = i % 3 === 0 ? 1 << 18 : 0;
    const M = 1 + rng.int(0, 6), K = 1 + rng.int(0, 80), N = 1 + rng.int(0, 300);
    const x = rng.f32(M * K), w = rng.f32(N * K);
    const got = await b.linear(b.upload(x, [M, K], "f32"), b.upload(w, [N, K], "f32"), null).read();
    const want = await ref.linear(ref.upload(x, [M, K], "f32"), ref.upload(w, [N, K], "f32"), null).read();
    for (let j = 0; j < want.length; j++) {
      assert.ok(Math.abs(got[j] - want[j]) <= 1e-5 * (1 + Math.abs(want[j])), `job ${i} [${M}, ${K}]x[${N}, ${K}] value ${j}: ${got[j]} vs ${want[j]}`);
    }
  }
  // Claimed chunks: a helper may miss a job, but over 400 it takes a share.
  assert.ok(b.helperChunks > chunksBefore, `the helpers ran no chunks (${b.helperChunks})`);
});

test("the helpers' module missing (a bundle without worker.js): a warning naming it, and the pool runs on one thread", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, async () => {
  const module = kernelsModule()!;
  const heap = new WasmHeap();
  const pool = new ThreadPool(module, heap.memory, instantiate(module, heap.memory).exports, new URL("./no-such-worker.js", import.meta.url));
  const warnings: string[] = [];
  const listen = (w: Error) => warnings.push(w.message);
  process.on("warning", listen);
  pool.setThreads(3);
  await new Promise((resolve) => setTimeout(resolve, 10)); // warnings are emitted on a later tick
  process.off("warning", listen);
  assert.equal(pool.threads, 1);
  assert.match(warnings.join("\n"), /no-such-worker\.js is missing/);
  pool.dispose();
});
