// The WebGPU buffer pool: freed buffers are reused by size class, and over the pool's limit the largest
// pooled buffers make room (so a decode step after a long prefill still reuses its small buffers).
import assert from "node:assert/strict";
import { test } from "node:test";
import { sizeClass } from "../../../src/backends/webgpu/runtime.js";
import { gpu, skip } from "./setup.js";

test("buffer pool: reuse by size class; eviction of the largest pooled buffers over the limit", { skip }, async () => {
  const rt = gpu!.rt;
  rt.trim();
  const limit = rt.poolLimitBytes;
  try {
    rt.poolLimitBytes = 1 << 20;
    const big = rt.alloc(768 << 10);
    const small = rt.alloc(1000);
    assert.equal(small.size, sizeClass(1000));
    rt.releaseBuffer(big);
    rt.releaseBuffer(small);
    assert.equal(rt.alloc(1000), small, "a freed buffer of the same size class is reused");
    rt.releaseBuffer(small);
    // Pool: 768 KiB + 1 KiB. Freeing 512 KiB more exceeds 1 MiB: the 768 KiB buffer goes, both others stay.
    const mid = rt.alloc(512 << 10);
    const before = rt.allocatedBytes;
    rt.releaseBuffer(mid);
    assert.equal(rt.allocatedBytes, before - big.size, "the largest pooled buffer was destroyed");
    assert.equal(rt.alloc(512 << 10), mid, "the released buffer is pooled");
    assert.equal(rt.alloc(1000), small, "small buffers survive eviction");
    assert.notEqual(rt.alloc(768 << 10), big, "the evicted buffer is not handed out again");
    // A buffer larger than the whole pool is destroyed on release.
    const huge = rt.alloc(2 << 20);
    const withHuge = rt.allocatedBytes;
    rt.releaseBuffer(huge);
    assert.equal(rt.allocatedBytes, withHuge - huge.size);
    await rt.sync();
  } finally {
    rt.poolLimitBytes = limit;
    rt.trim();
  }
});
