// The WebGPU device shared by one test file (node --test runs each file in its own process). The adapter is
// requested once, here, at module level. Without an adapter the WebGPU tests are skipped with a loud
// message — except in CI (process.env.CI set), where a missing adapter is a failure.
import { after } from "node:test";
import type { Backend } from "../../../src/backends/backend.js";
import { createBackend, disposeBackends, getBackend } from "../../../src/backends/registry.js";
import type { WebGpuBackend } from "../../../src/backends/webgpu/index.js";

async function open(): Promise<WebGpuBackend | null> {
  try {
    return (await createBackend("webgpu")) as WebGpuBackend;
  } catch (e) {
    if (process.env.CI) throw new Error(`CI: the WebGPU tests need an adapter (${(e as Error).message})`);
    return null;
  }
}

export const gpu: WebGpuBackend | null = await open();
export const cpu: Backend = getBackend("cpu");

/** node:test `skip` option: false when a device exists, else the reason. */
export const skip: string | false = gpu ? false : "no WebGPU adapter (install chromium + libvulkan1 and set VK_ICD_FILENAMES=/usr/lib/chromium/vk_swiftshader_icd.json)";

if (!gpu) {
  process.stderr.write(`\n${"!".repeat(100)}\n!!! WebGPU tests SKIPPED: ${skip}\n${"!".repeat(100)}\n\n`);
}

// Destroying the device lets the test process exit.
after(() => disposeBackends());
