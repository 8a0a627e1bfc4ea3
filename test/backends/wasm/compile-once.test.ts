// The wasm kernels compile once however many callers ask at the same time (a file of its own: the module
// is compiled once per process, so no other test may have asked first).
import assert from "node:assert/strict";
import { test } from "node:test";
import { kernelsModule, kernelsModuleAsync } from "../../../src/backends/wasm/runtime.js";

test("kernelsModuleAsync: concurrent callers share one compilation", async () => {
  const [a, b] = await Promise.all([kernelsModuleAsync(), kernelsModuleAsync()]);
  assert.ok(a instanceof WebAssembly.Module);
  assert.equal(a, b);
  assert.equal(await kernelsModuleAsync(), a);
  assert.equal(kernelsModule(), a);
});
