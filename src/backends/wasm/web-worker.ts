// Browser entry of a kernel helper thread (a module Web Worker of a cross-origin-isolated page): receives
// the compiled kernels and the shared memory once, instantiates them, then runs the same fork-join loop
// as a Node helper (pool-protocol.ts) until told to exit. A worker may block in Atomics.wait; the page's
// main thread may not, which is why the caller side never waits for a helper to start.
import { helperLoop, type HelperData } from "./pool-protocol.js";
import { instantiateAsync } from "./runtime.js";

const scope = globalThis as unknown as { onmessage: ((e: { data: HelperData }) => void) | null };
scope.onmessage = (e) => {
  scope.onmessage = null; // one setup message; everything after goes through shared memory
  const d = e.data;
  void instantiateAsync(d.module, d.memory).then((instance) => {
    helperLoop(new Int32Array(d.ctl), new Float64Array(d.args), instance.exports, d.index);
  });
};
