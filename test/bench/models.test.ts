import assert from "node:assert/strict";
import { test } from "node:test";
import { CpuBackend } from "../../src/backends/cpu/index.js";
import { OpProfiler } from "../../src/backends/profiling.js";
import { HippoError } from "../../src/errors.js";
import { byClass, composeRun } from "../../src/bench/compose.js";
import { attributeLayers, layerCounts, modelKinds } from "../../src/bench/instrument.js";
import { measureDecode, measurePrefill, Rng, syntheticState } from "../../src/bench/measure.js";
import { maxDecodeBatch, maxPrefillLength, modelMemory, parseBytes } from "../../src/bench/memory.js";
import { BUILTIN_MODELS, modelSpec, sizePreset, unitPattern } from "../../src/bench/specs.js";
import { memoryReport } from "../../src/models/memory.js";

const tiny = sizePreset("tiny");

test("specs: names, sizes and patterns are checked with clear errors", () => {
  assert.equal(unitPattern("M-M-*-M-"), "M-*");
  assert.throws(() => modelSpec("gpt5", tiny), (e: Error) => e instanceof HippoError && /unknown model 'gpt5' \(models: h3, mamba, mamba2, transformer, hybrid/.test(e.message));
  assert.throws(() => sizePreset("huge"), /unknown --size 'huge' \(sizes: tiny, 125m/);
  assert.throws(() => modelSpec("hybrid:MX", tiny), /unknown letter 'X'/);
  assert.throws(() => modelSpec("hybrid:", tiny), /needs a layer pattern/);
  assert.deepEqual(modelSpec("hybrid:M*-", tiny).fullKinds, ["mamba2", "attention", "mlp"]);
  const h3 = modelSpec("h3", sizePreset("125m"));
  assert.equal(h3.fullKinds.length, 24);
  assert.deepEqual(layerCounts(h3.fullKinds), { h3: 11, mlp: 12, attention: 1 });
});

test("parseBytes: sizes with units; junk is refused", () => {
  assert.equal(parseBytes("16GiB", "memory-budget"), 16 * 2 ** 30);
  assert.equal(parseBytes("512 MiB", "memory-budget"), 512 * 2 ** 20);
  assert.equal(parseBytes("80GB", "memory-budget"), 80e9);
  assert.equal(parseBytes("2e9", "memory-budget"), 2e9);
  assert.throws(() => parseBytes("lots", "memory-budget"), /--memory-budget must be a size such as 16GiB/);
  assert.throws(() => parseBytes("0", "memory-budget"), /must be positive/);
});

for (const name of BUILTIN_MODELS) {
  test(`${name}: memory and op counts composed from one layer per kind equal the full model's`, async () => {
    const backend = new CpuBackend();
    const spec = modelSpec(name, tiny);
    const unit = await spec.build("unit", backend);
    const full = await spec.build("full", backend);
    const fullCounts = layerCounts(spec.fullKinds);
    assert.deepEqual(modelKinds(full), spec.fullKinds);
    // Memory: parameters, weights, state and KV cache per token.
    const composed = modelMemory(unit, fullCounts);
    const direct = modelMemory(full, fullCounts);
    assert.equal(composed.parameters, direct.parameters);
    assert.equal(composed.parameters, full.describe().parameters);
    assert.equal(composed.weightBytes, direct.weightBytes);
    const report = memoryReport(full.describe(), 100);
    assert.equal(composed.stateBytes, report.stateBytesPerSequence);
    assert.equal(composed.kvBytesPerToken * 100, report.kvCacheBytesPerSequence);

    // Work: FLOPs, bytes and calls per op class of a prefill and a decode step (deterministic, unlike time).
    const profiler = new OpProfiler(backend).attach();
    try {
      attributeLayers(unit, profiler);
      attributeLayers(full, profiler);
      const rng = new Rng(3);
      const pu = composeRun(await measurePrefill(unit, profiler, 2, 24, 1, rng), layerCounts(modelKinds(unit)), fullCounts);
      const pf = composeRun(await measurePrefill(full, profiler, 2, 24, 1, rng), fullCounts, fullCounts);
      assert.deepEqual(roundAll(byClass(pu, "flops")), roundAll(byClass(pf, "flops")));
      assert.deepEqual(roundAll(byClass(pu, "bytes")), roundAll(byClass(pf, "bytes")));
      // One timed step each: with several, the median step's context (and attention work) could differ.
      const du = composeRun(await measureDecode(unit, profiler, 2, 40, 1, rng, 1), layerCounts(modelKinds(unit)), fullCounts);
      const df = composeRun(await measureDecode(full, profiler, 2, 40, 1, rng, 1), fullCounts, fullCounts);
      assert.deepEqual(roundAll(byClass(du, "flops")), roundAll(byClass(df, "flops")));
      assert.ok(du.peakBytes > 0 && pu.peakBytes > 0);
      // Ops ran inside the layers they belong to.
      const kinds = new Set(pf.rows.map((r) => r.kind));
      for (const k of Object.keys(fullCounts)) assert.ok(kinds.has(k), `no ops recorded for ${k}`);
    } finally {
      profiler.detach();
      unit.dispose();
      full.dispose();
    }
  });
}

function roundAll(x: Record<string, number>): Record<string, number> {
  // Sampling is host work whose FLOPs are counted per logits row, the same for both; round away float noise.
  return Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Math.round(v * 1000) / 1000]));
}

test("syntheticState: a state as after `context` tokens, with KV caches of that length", async () => {
  const backend = new CpuBackend();
  const model = await modelSpec("hybrid", tiny).build("unit", backend);
  const state = syntheticState(model, 3, 17);
  assert.equal(state.batch, 3);
  assert.deepEqual(state.positions, [17, 17, 17]);
  const attn = modelKinds(model).indexOf("attention");
  assert.equal(state.layers[attn].k.shape[1], 17);
  const step = model.step(backend.upload(new Int32Array([1, 2, 3]), [3, 1], "i32"), state);
  assert.deepEqual(step.logits.shape, [3, model.vocabSize]);
  assert.deepEqual(step.state.positions, [18, 18, 18]);
});

test("budget arithmetic: batch and prompt length that fit", () => {
  const m = { parameters: 0, weightBytes: 1000, stateBytes: 10, kvBytesPerToken: 1, perKind: {} };
  assert.equal(maxDecodeBatch(m, 90, 2000, 0, 1), 10); // 1000 / (10 + 90)
  assert.equal(maxDecodeBatch(m, 90, 2000, 0, 2), 5);
  assert.equal(maxDecodeBatch(m, 90, 2000, 100, 1), 5);
  assert.equal(maxDecodeBatch(m, 90, 500, 0, 1), 0);
  assert.equal(maxPrefillLength(m, 2000, 9), 99); // (2000 − 1000 − 10) / (9 + 1)
});
