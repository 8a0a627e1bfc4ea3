// The WebGPU buffer pool: freed buffers are reused by size class, and over the pool's limit the buffers
// released longest ago make room (so a decode step after a long prefill still reuses its small buffers,
// and a repeated long prompt its large ones).
import assert from "node:assert/strict";
import { test } from "node:test";
import { sizeClass } from "../../../src/backends/webgpu/runtime.js";
import { gpu, skip } from "./setup.js";

test("buffer pool: reuse by size class; eviction of the least recently released over the limit", { skip }, async () => {
  const rt = gpu!.rt;
  rt.trim();
  const limit = rt.poolLimitBytes;
  try {
    rt.poolLimitBytes = 1 << 20;
    const big = rt.alloc(600 << 10);
    const small = rt.alloc(1000);
    assert.equal(small.size, sizeClass(1000));
    rt.releaseBuffer(big);
    rt.releaseBuffer(small);
    assert.equal(rt.alloc(1000), small, "a freed buffer of the same size class is reused");
    rt.releaseBuffer(small);
    // Pool: 600 KiB (released first) + 1 KiB. Freeing 512 KiB more exceeds 1 MiB: the oldest goes.
    const mid = rt.alloc(512 << 10);
    const before = rt.allocatedBytes;
    rt.releaseBuffer(mid);
    assert.equal(rt.allocatedBytes, before - big.size, "the least recently released buffer was destroyed");
    assert.equal(rt.alloc(1000), small, "more recently released buffers survive eviction");
    assert.notEqual(rt.alloc(600 << 10), big, "the evicted buffer is not handed out again");
    // Order of release decides: with mid (released earlier) and small (later) pooled, the next release
    // over the limit evicts mid.
    rt.releaseBuffer(small);
    const other = rt.alloc(700 << 10);
    const withOther = rt.allocatedBytes;
    rt.releaseBuffer(other);
    assert.equal(rt.allocatedBytes, withOther - mid.size, "mid, released before small, is evicted first");
    assert.equal(rt.alloc(1000), small);
    assert.equal(rt.alloc(700 << 10), other);
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
