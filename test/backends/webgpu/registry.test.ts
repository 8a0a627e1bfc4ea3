// Backend selection: names, the "auto" policy (WebGPU only on a hardware adapter), and the errors.
import assert from "node:assert/strict";
import { test } from "node:test";
import { createBackend, disposeBackends, getBackend } from "../../../src/backends/registry.js";
import { hasHardwareAdapter } from "../../../src/backends/webgpu/gpu.js";
import type { WebGpuBackend } from "../../../src/backends/webgpu/index.js";
import { HippoError } from "../../../src/errors.js";

test("getBackend('webgpu') before the device exists says how to create it; unknown names are refused", async () => {
  assert.throws(() => getBackend("webgpu"), (e: unknown) => e instanceof HippoError && /createBackend\("webgpu"\)/.test(e.message));
  await assert.rejects(createBackend("tpu"), (e: unknown) => e instanceof HippoError && /unknown backend 'tpu'/.test(e.message));
  assert.equal((await createBackend("cpu")).name, "cpu");
});

test("'auto' is WebGPU exactly when a hardware (non-fallback) adapter exists", async () => {
  const hardware = await hasHardwareAdapter();
  const b = await createBackend("auto");
  assert.equal(b.name, hardware ? "webgpu" : "cpu");
  if (b.name === "webgpu") assert.equal((b as WebGpuBackend).handle.adapterInfo.isFallbackAdapter, false);
  disposeBackends();
});
