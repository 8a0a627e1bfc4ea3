// `hippo bench --backend webgpu` end to end (SwiftShader in CI): ops are timed by GPU timestamps, the
// ceilings too, and the report says so.
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { BenchResults } from "../../src/bench/types.js";
import { skip } from "../backends/webgpu/setup.js";
import { hippo } from "../cli/run-cli.js";

test("bench on WebGPU: GPU-timestamp op times and ceilings", { skip }, () => {
  const dir = join(mkdtempSync(join(tmpdir(), "hippo-bench-gpu-")), "out");
  const r = hippo("bench", "--quick", "--backend", "webgpu", "--size", "tiny", "--models", "mamba,transformer",
    "--prefill-lengths", "32,64", "--decode-contexts", "64,256", "--decode-batches", "1,2", "--out", dir);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /offers no op timer/);
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as BenchResults;
  assert.equal(results.backend.name, "webgpu");
  assert.match(results.backend.timer, /GPU timestamps/);
  assert.match(results.ceilings.copyMethod, /timestamps/);
  assert.ok(results.ceilings.flopsPerS > 0 && Number.isFinite(results.ceilings.flopsPerS));
  for (const model of ["mamba", "transformer"]) {
    const measured = results.prefill.filter((p) => p.model === model && p.source === "measured");
    assert.ok(measured.length >= 2);
    for (const p of measured) assert.ok(p.byClass.projection > 0, `${model} prefill ${p.length}: projections took GPU time`);
    const attention = results.decode.find((d) => d.model === model && d.context === 256)!;
    if (model === "transformer") assert.ok(attention.byClass.attention > 0, "attention timed on the GPU");
  }
  assert.match(readFileSync(join(dir, "README.md"), "utf8"), /GPU timestamps/);
});
