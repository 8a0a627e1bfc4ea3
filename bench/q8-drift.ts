// Accuracy of 8-bit weights: for every reference fixture, the drift of the logits against the PyTorch
// reference with f32 weights (as stored), q8 linear weights only, and q8 everything (embedding/LM head too).
//
//   npx tsc -p tsconfig.json && node dist/bench/q8-drift.js [--out bench/results/q8-drift.json]
//
// Prints a Markdown table (docs/quantization.md has the numbers) and writes JSON.
import { mkdir } from "node:fs/promises";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import { writeFileAtomic } from "../src/io/node-files.js";
import { driftFixtureDirs, measureDrift, type Drift } from "../test/models/q8-drift.js";

const { values } = parseArgs({ options: { out: { type: "string" } }, strict: true });
const out = values.out ?? "bench/results/q8-drift.json";

const VARIANTS = [
  { name: "stored", opts: {} },
  { name: "q8 linear", opts: { quantize: "q8" as const, quantizeEmbeddings: false } },
  { name: "q8 all", opts: { quantize: "q8" as const, quantizeEmbeddings: true } },
];

const fmtE = (x: number) => x.toExponential(2);
const rows: { fixture: string; variant: string; drift: Drift }[] = [];
const lines = [
  "| fixture | weights | rel L2 of logits | argmax agreement | greedy tokens (prefix / equal / total) |",
  "|---|---|---:|---:|---:|",
];
for (const dir of driftFixtureDirs()) {
  for (const v of VARIANTS) {
    const d = await measureDrift(dir, v.opts);
    rows.push({ fixture: basename(dir), variant: v.name, drift: d });
    lines.push(`| ${basename(dir)} | ${v.name} | ${fmtE(d.relL2)} | ${d.argmaxAgree}/${d.positions} | ${d.greedyPrefix} / ${d.greedyAgree} / ${d.greedyTokens} |`);
    process.stderr.write(`[q8-drift] ${basename(dir)} ${v.name}: rel L2 ${fmtE(d.relL2)}\n`);
  }
}
process.stdout.write(`${lines.join("\n")}\n`);
await mkdir(dirname(out), { recursive: true });
await writeFileAtomic(out, `${JSON.stringify({ date: new Date().toISOString(), node: process.version, results: rows }, null, 2)}\n`);
process.stderr.write(`[q8-drift] wrote ${out}\n`);
