// The embedding-init check of docs/synthetics/README.md: Hippo's trainer on associative recall with
// scripts/ar_torch_check.py's recipe (d64, lr 5e-4, warmup 1,600, cosine over 16,000, the 5,000-example
// pool), the embedding table re-drawn with the given std (0: the family's own init), evaluated every 500.
//   npm run build && node scripts/embed-init-check.mjs 0.1 mamba 4000
import { taskData } from "../dist/src/train/data.js";
import { GradBackend } from "../dist/src/autograd/grad-backend.js";
import { Trainer } from "../dist/src/train/trainer.js";
import { Rng } from "../dist/src/generate/rng.js";
const std = Number(process.argv[2]), arch = process.argv[3] ?? "mamba", steps = Number(process.argv[4] ?? 4000);
const s = { arch, size: { dModel: 64, nLayer: 2, vocabSize: 20, dState: 16, heads: 4 }, data: { task: "associative-recall", options: {} },
  steps: 16000, batchSize: 32, accumulate: 1, lr: 5e-4, weightDecay: 0.1, warmupSteps: 1600, minLrRatio: 0.1, clip: 1, betas: [0.9, 0.98], seed: 0,
  evalEvery: 100000, checkpointEvery: 100000, logEvery: 100 };
const t = Trainer.create(s, taskData("associative-recall", {}), "/tmp/exp-" + std + arch, { backend: GradBackend.fast() });
if (std > 0) {
  const name = [...t.params.keys()].find((n) => n.includes("embed"));
  const w = t.params.get(name).storage; const rng = new Rng(7);
  for (let i = 0; i < w.length; i++) { const u = Math.max(rng.nextFloat(), 1e-12), v = rng.nextFloat(); w[i] = std * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v); }
  console.log("re-initialised", name, "std", std);
}
const t0 = Date.now();
for (let i = 1; i <= steps; i++) {
  await t.trainStep();
  if (i % 500 === 0) { const e = await t.evaluate(); console.log(i, e.loss.toFixed(3), (100 * e.exactMatch).toFixed(1), ((Date.now() - t0) / 1000).toFixed(0) + "s"); }
}
