// Prints the ceilings `hippo bench` measures on a backend, by GPU timestamps and by the host clock, to check
// the two against each other (and against in-model op rates): node dist/bench/ceilings-check.js [backend]
import { hostTimer, OpProfiler } from "../src/backends/profiling.js";
import { createBackend } from "../src/backends/registry.js";
import { measureCeilings } from "../src/bench/ceilings.js";

process.env.HIPPO_WEBGPU_FLAGS ??= "disable-dawn-features=timestamp_quantization";
const backend = await createBackend(process.argv[2] ?? "webgpu");
const quick = process.argv.includes("--quick");
for (const timer of [undefined, hostTimer]) {
  const profiler = new OpProfiler(backend, timer).attach();
  const c = await measureCeilings(backend, quick, profiler);
  profiler.detach();
  console.log(`${profiler.timer.name.slice(0, 30)}: bandwidth ${(c.bytesPerS / 1e12).toFixed(3)} TB/s (copy ${(c.allocatingCopyBytesPerS / 1e12).toFixed(3)}, add ${(c.elementwiseBytesPerS / 1e12).toFixed(3)}), ` +
    `linear ${c.linearShape.join("×")} ${(c.flopsPerS / 1e12).toFixed(2)} TFLOP/s, matvec ${(c.matvecFlopsPerS / 1e12).toFixed(3)} TFLOP/s`);
}
process.exit(0);
