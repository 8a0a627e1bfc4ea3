// The fast CPU backend as users get it: "cpu" in the registry, "cpu-ref" beside it, --threads on the
// CLI giving the same tokens as the reference, and processes that exit with their workers running.
import assert from "node:assert/strict";
import { test } from "node:test";
import { getBackend, setCpuThreads } from "../../../src/backends/registry.js";
import { WasmCpuBackend } from "../../../src/backends/wasm/index.js";
import { hippo } from "../../cli/run-cli.js";

const fast = getBackend("cpu") instanceof WasmCpuBackend;

test("the registry's cpu backend is the wasm one, cpu-ref the TypeScript reference", { skip: fast ? false : "no WebAssembly SIMD with shared memory here" }, () => {
  assert.ok(getBackend() instanceof WasmCpuBackend);
  assert.equal(getBackend("cpu-ref").name, "cpu-ref");
  assert.ok(!(getBackend("cpu-ref") instanceof WasmCpuBackend));
  assert.equal(setCpuThreads(2), 2);
  assert.equal((getBackend("cpu") as WasmCpuBackend).threads, 2);
  assert.equal(setCpuThreads(1), 1);
});

test("hippo generate: --threads 2, --threads 1 and --backend cpu-ref give the same tokens, and the process exits", () => {
  const run = (...extra: string[]) => {
    const r = hippo("generate", "--prompt-ids", "1,2,3,4,5", "--max-new-tokens", "6", "--temperature", "0", "--json", ...extra);
    assert.equal(r.code, 0, r.stderr);
    return JSON.parse(r.stdout).tokens as number[];
  };
  const want = run("--backend", "cpu-ref");
  assert.deepEqual(run("--backend", "cpu", "--threads", "2"), want);
  assert.deepEqual(run("--backend", "cpu", "--threads", "1"), want);
  const bad = hippo("generate", "--prompt-ids", "1", "--threads", "0");
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /--threads/);
});
