// Prints the ceilings `hippo bench` measures on a backend, by GPU timestamps and by the host clock, to check
// the two against each other (and against in-model op rates): node dist/bench/ceilings-check.js [backend]
import { hostTimer, OpProfiler } from "../src/backends/profiling.js";
import { createBackend } from "../src/backends/registry.js";
import { measureCeilings } from "../src/bench/ceilings.js";
import { measurePrefill, Rng } from "../src/bench/measure.js";
import { modelSpec, sizePreset } from "../src/bench/specs.js";
import { tensor } from "../src/ops/index.js";

process.env.HIPPO_WEBGPU_FLAGS ??= "disable-dawn-features=timestamp_quantization";
const backend = await createBackend(process.argv[2] ?? "webgpu");
const quick = process.argv.includes("--quick");
const report = async (label: string, timer?: typeof hostTimer) => {
  const profiler = new OpProfiler(backend, timer).attach();
  const c = await measureCeilings(backend, quick, profiler);
  profiler.detach();
  console.log(`${label}, ${profiler.timer.name.slice(0, 30)}: bandwidth ${(c.bytesPerS / 1e12).toFixed(3)} TB/s (copy ${(c.allocatingCopyBytesPerS / 1e12).toFixed(3)}, add ${(c.elementwiseBytesPerS / 1e12).toFixed(3)}), ` +
    `linear ${c.linearShape.join("×")} ${(c.flopsPerS / 1e12).toFixed(2)} TFLOP/s, matvec ${(c.matvecFlopsPerS / 1e12).toFixed(3)} TFLOP/s`);
};
await report("alone");
await report("alone", hostTimer);
if (process.argv.includes("--after-models")) {
  // As in `hippo bench`: the five default models built at full depth and run once, then the ceilings again.
  const models = [];
  for (const name of ["h3", "mamba", "mamba2", "transformer", "hybrid"]) {
    const model = await modelSpec(name, sizePreset("125m")).build("full", backend);
    const ids = tensor(new Int32Array(64).fill(7), [1, 64], { backend, dtype: "i32" });
    const out = model.forward(ids, null, { logits: "last" });
    await out.logits!.read();
    models.push(model);
  }
  await report("after building the models");
  const profiler = new OpProfiler(backend).attach();
  for (const m of models) await measurePrefill(m, profiler, 1, 64, 1, new Rng(1));
  profiler.detach();
  await report("after profiled prefills");
}
process.exit(0);
