import { readFile, stat } from "node:fs/promises";
import { parseArgs } from "node:util";
import { applyThreadsFlag, threadsHelp } from "./threads.js";
import { HippoError } from "../errors.js";
import { writeReport } from "../bench/output.js";
import { parseBytes } from "../bench/memory.js";
import { defaultOptions, runBench } from "../bench/run.js";
import { SIZES } from "../bench/specs.js";
import { deriveFindings } from "../bench/findings.js";
import type { BenchOptions, BenchResults } from "../bench/types.js";
import { HELP_FLAG, intFlag, parseFlags, requireString } from "./args.js";

export const BENCH_HELP = `hippo bench --out <dir> [--quick] [--backend cpu] [--models h3,mamba,mamba2,transformer,hybrid] [options]

A quantitative comparison of SSM and attention language models, op by op: prefill latency and throughput
vs prompt length, decode latency vs context, batch sweeps, time by op class and layer kind, a roofline
against ceilings measured on this device, and memory (weights, activations, recurrent state vs KV cache,
what fits a budget). Writes <dir>/README.md, <dir>/report.html, <dir>/results.json and <dir>/plots/*.svg.
Random weights at the chosen size; each model is run with one layer of each kind and composed to full
depth (--full-depth runs every layer).

  --out <dir>                 where the report goes (created; files are replaced atomically)
  --quick                     short prompts and contexts, no repetitions: about a minute
  --backend <name>            backend to measure (default cpu)
  --models <list>             built-in models: h3, mamba, mamba2, transformer, hybrid, hybrid:<pattern>
                              (pattern letters: M Mamba-2, m Mamba, H H3, S S4D, * attention, - MLP);
                              default all five
  --model <dir>               also (or, without --models, only) a model directory, every layer (repeatable)
  --size <name>               ${Object.keys(SIZES).join(", ")} (default 125m: d_model 768, 12 blocks / 24 SSM layers)
  --prefill-lengths <list>    measured prompt lengths (default 256,512,1024,2048,4096; quick 128,256,512)
  --project-to <n>            project prefill up to this length (default 65536)
  --prefill-batches <list>    prefill batch sweep (default 1,4 at --prefill-batch-length 256)
  --prefill-batch-length <n>
  --decode-contexts <list>    decode contexts (default 256,1024,4096,16384,65536; quick 256,2048,8192)
  --decode-steps <n>          timed steps per decode point, median reported (default 5; quick 3)
  --decode-batches <list>     decode batch sweep (default 1,4,16 at --decode-batch-context 1024)
  --decode-batch-context <n>
  --memory-budget <size>      e.g. 16GiB, 80GB (default: this machine's memory)
  --memory-contexts <list>    contexts of the budget table (default 1024,4096,16384,65536,262144)
  --reps <n>                  repetitions of prefills up to 1K tokens and passes over the decode points,
                              best kept (default 2; quick 1)
  --full-depth                run every layer instead of one layer per kind (slow)
  --no-check                  skip the full-depth composition check
  --seed <n>                  seed for token ids and sampling (default 1)
${threadsHelp(30)}
  --from <results.json>       measure nothing: write the report of an earlier run's results.json again`;

const OPTIONS = {
  out: { type: "string" },
  quick: { type: "boolean" },
  backend: { type: "string" },
  threads: { type: "string" },
  models: { type: "string" },
  model: { type: "string", multiple: true },
  size: { type: "string" },
  "prefill-lengths": { type: "string" },
  "project-to": { type: "string" },
  "prefill-batches": { type: "string" },
  "prefill-batch-length": { type: "string" },
  "decode-contexts": { type: "string" },
  "decode-steps": { type: "string" },
  "decode-batches": { type: "string" },
  "decode-batch-context": { type: "string" },
  "memory-budget": { type: "string" },
  "memory-contexts": { type: "string" },
  reps: { type: "string" },
  "full-depth": { type: "boolean" },
  "no-check": { type: "boolean" },
  seed: { type: "string" },
  from: { type: "string" },
} as const;

/** "256,1K,64k" → [256, 1024, 65536]. */
export function tokenListFlag(value: string | undefined, flag: string, fallback: number[]): number[] {
  if (value === undefined) return fallback;
  const parts = value.split(",").map((s) => s.trim()).filter((s) => s !== "");
  if (parts.length === 0) throw new HippoError(`--${flag} is empty: give comma-separated sizes, e.g. 256,1024,4K`);
  return parts.map((s) => tokenCount(s, flag));
}

function tokenCount(s: string, flag: string): number {
  const m = /^(\d+)([kKmM]?)$/.exec(s);
  if (!m) throw new HippoError(`--${flag}: '${s}' is not a positive whole number of tokens (e.g. 512, 4K, 1M)`);
  const n = Number(m[1]) * (m[2] === "" ? 1 : /k/i.test(m[2]) ? 1024 : 1048576);
  if (n <= 0) throw new HippoError(`--${flag}: '${s}' must be at least 1`);
  return n;
}

function positive(value: string | undefined, flag: string, fallback: number): number {
  const n = value === undefined ? fallback : tokenCount(value.trim(), flag);
  return n;
}

export function benchOptions(v: Record<string, unknown>): BenchOptions {
  const quick = Boolean(v.quick);
  const d = defaultOptions(quick);
  const str = (k: string) => v[k] as string | undefined;
  const dirs = (v.model as string[] | undefined) ?? [];
  const models = str("models") !== undefined
    ? str("models")!.split(",").map((s) => s.trim()).filter((s) => s !== "")
    : dirs.length > 0 ? [] : d.models;
  if (str("models") !== undefined && models.length === 0) throw new HippoError("--models is empty: give comma-separated names, e.g. mamba2,transformer");
  return {
    ...d,
    backend: str("backend") ?? d.backend,
    size: str("size") ?? d.size,
    models,
    modelDirs: dirs,
    prefillLengths: tokenListFlag(str("prefill-lengths"), "prefill-lengths", d.prefillLengths),
    projectTo: positive(str("project-to"), "project-to", d.projectTo),
    prefillBatches: tokenListFlag(str("prefill-batches"), "prefill-batches", d.prefillBatches),
    prefillBatchLength: positive(str("prefill-batch-length"), "prefill-batch-length", d.prefillBatchLength),
    decodeContexts: tokenListFlag(str("decode-contexts"), "decode-contexts", d.decodeContexts),
    decodeSteps: positive(str("decode-steps"), "decode-steps", d.decodeSteps),
    decodeBatches: tokenListFlag(str("decode-batches"), "decode-batches", d.decodeBatches),
    decodeBatchContext: positive(str("decode-batch-context"), "decode-batch-context", d.decodeBatchContext),
    memoryBudget: str("memory-budget") !== undefined ? parseBytes(str("memory-budget")!, "memory-budget") : d.memoryBudget,
    memoryContexts: tokenListFlag(str("memory-contexts"), "memory-contexts", d.memoryContexts),
    reps: positive(str("reps"), "reps", d.reps),
    depth: v["full-depth"] ? "full" : "unit",
    check: v["no-check"] ? false : d.check,
    seed: intFlag(v.seed, "seed", d.seed),
  };
}

export async function runBenchCommand(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values: v } = parseFlags("bench", argv, (args) =>
    parseArgs({ args, options: { ...OPTIONS, ...HELP_FLAG }, strict: true, allowPositionals: false }));
  if (v.help) {
    out.write(BENCH_HELP + "\n");
    return 0;
  }
  const dir = requireString("bench", v.out, "out");
  const info = await stat(dir).catch(() => null);
  if (info && !info.isDirectory()) throw new HippoError(`--out ${dir}: exists and is not a directory`);
  const options = v.from !== undefined ? null : benchOptions(v);
  if (options) applyThreadsFlag(v.threads);
  const results = options ? await runBench(options, err) : await readResults(v.from as string);
  const written = await writeReport(results, dir);
  out.write(`wrote ${dir}/README.md, report.html, results.json and ${written.files.filter((f) => f.endsWith(".svg")).length} plots\n`);
  for (const f of results.findings) out.write(`- ${f}\n`);
  return 0;
}

/** An earlier run's results.json; its findings are derived again (they follow the current code). */
async function readResults(path: string): Promise<BenchResults> {
  const text = await readFile(path, "utf8").catch((e: Error) => {
    throw new HippoError(`--from ${path}: cannot read it (${e.message})`);
  });
  let results: BenchResults;
  try {
    results = JSON.parse(text) as BenchResults;
  } catch (e) {
    throw new HippoError(`--from ${path}: not JSON (${(e as Error).message})`);
  }
  if (results?.schema !== "hippo-bench-1") throw new HippoError(`--from ${path}: not a hippo bench results.json (schema '${String(results?.schema)}')`);
  results.findings = deriveFindings(results);
  return results;
}
