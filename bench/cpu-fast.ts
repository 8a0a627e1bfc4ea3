// llama-bench-style CPU throughput of the fast CPU backend (WebAssembly SIMD kernels, 1..N threads) on
// three 130M-class shapes with random weights: mamba-130m, mamba2-130m and a gpt2-124m-shaped
// Transformer (12 layers of attention + a GELU MLP of 3072, as Hippo hybrid patterns). Prompt
// processing (pp: one forward pass of L tokens, logits at the last position) and text generation (tg:
// N recurrent steps at batch 1 from a 1-token prompt), per weight dtype and thread count; optionally
// the TypeScript reference backend ("cpu-ref") for comparison.
//
//   npx tsc -p tsconfig.json && node dist/bench/cpu-fast.js [--quick] [--models mamba,mamba2,gpt2]
//       [--dtypes f32,f16,q8] [--threads 1,2] [--prompts 512,2048] [--gen 128] [--ref]
import os from "node:os";
import { parseArgs } from "node:util";
import { getBackend, setCpuThreads } from "../src/backends/registry.js";
import { Rng } from "../src/generate/rng.js";
import { writeFileAtomic } from "../src/io/node-files.js";
import { argHelpers } from "./common.js";
import { build, generation, MODELS, promptProcessing } from "./cpu-models.js";

const USAGE = `usage: node dist/bench/cpu-fast.js [options]
  --models <list>    mamba, mamba2, gpt2 (default all three)
  --dtypes <list>    weight dtypes: f32, f16, bf16, q8 (f32 weights quantized at load, embedding/LM head
                     included, like llama.cpp's Q8_0) (default f32,f16,q8)
  --threads <list>   kernel thread counts (default 1,<cores> e.g. 1,2)
  --prompts <list>   prompt-processing lengths (default 512,2048)
  --gen <n>          generated tokens for tg (default 128)
  --reps <n>         repetitions per test, best kept (default 1)
                     (each row also records the process CPU time and the load average: on a shared
                     machine, CPU seconds well under wall seconds × threads mean the threads waited)
  --ref              also measure the TypeScript reference backend (cpu-ref; pp at the first length, tg 16)
  --layers <n>       override the layer count (default: the real model's)
  --out <path>       JSON results (default bench/results/cpu-fast[-quick]-<date and time>.json: a new
                     file each run, so that a run never overwrites a committed table)
  --quick            2 layers, pp 64, tg 8: checks the script in seconds
  -h, --help`;

const args = argHelpers("cpu-fast", USAGE);

/** llama.cpp (llama-bench, 2 threads) on one of these 2-core machines, from issue 8: [pp512, tg128] tok/s. */
const LLAMA_CPP: Record<string, Record<string, [number, string]>> = {
  "mamba-130m": { f32: [274, "39"], f16: [272, "65-74"], q8: [318, "92"] },
  "mamba2-130m": { f32: [520, "49"], f16: [517, "89"], q8: [673, "103"] },
  "gpt2-124m": { f32: [539, "52"], f16: [586, "102"], q8: [648, "145"] },
};

interface Row {
  model: string; dtype: string; backend: string; threads: number; test: string; tokens: number;
  seconds: number; tokens_per_s: number;
  /** Process CPU time (all threads) of the best repetition: well under seconds × threads means the threads waited for cores. */
  cpu_seconds: number;
  /** 1-minute load average when the test finished (the machine is shared). */
  load: number;
}

/** Runs f, returning its wall seconds and the process CPU seconds it used. */
async function timed(f: () => Promise<number>): Promise<{ wall: number; cpu: number }> {
  const c0 = process.cpuUsage();
  const wall = await f();
  const c = process.cpuUsage(c0);
  return { wall, cpu: (c.user + c.system) / 1e6 };
}

const OPTIONS = {
  models: { type: "string" }, dtypes: { type: "string" }, threads: { type: "string" }, prompts: { type: "string" },
  gen: { type: "string" }, reps: { type: "string" }, ref: { type: "boolean" }, layers: { type: "string" },
  out: { type: "string" }, quick: { type: "boolean" }, help: { type: "boolean", short: "h" },
} as const;

function options() {
  let values: ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>["values"] = {};
  try {
    ({ values } = parseArgs({ options: OPTIONS }));
  } catch (e) {
    args.fail((e as Error).message);
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    process.exit(0);
  }
  const quick = values.quick ?? false;
  const models = (values.models ?? "mamba,mamba2,gpt2").split(",");
  for (const m of models) if (!MODELS[m]) args.fail(`unknown model '${m}' (mamba, mamba2, gpt2)`);
  const dtypes = (values.dtypes ?? "f32,f16,q8").split(",");
  for (const d of dtypes) if (!["f32", "f16", "bf16", "q8"].includes(d)) args.fail(`--dtypes: '${d}' is not f32, f16, bf16 or q8`);
  const cores = os.availableParallelism();
  return {
    quick, models, dtypes,
    threads: values.threads ? args.intList("threads", values.threads) : cores > 1 ? [1, cores] : [1],
    prompts: quick ? [64] : values.prompts ? args.intList("prompts", values.prompts) : [512, 2048],
    gen: quick ? 8 : values.gen ? args.positiveInt("gen", values.gen) : 128,
    reps: values.reps ? args.positiveInt("reps", values.reps) : 1,
    ref: values.ref ?? false,
    layers: quick ? 2 : values.layers ? args.positiveInt("layers", values.layers) : null,
    out: values.out ?? `bench/results/cpu-fast${quick ? "-quick" : ""}-${new Date().toISOString().slice(0, 19).replace(/[:T]/g, "-")}.json`,
  };
}

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

async function main(): Promise<void> {
  const o = options();
  const rows: Row[] = [];
  const runs: { backend: string; threads: number }[] = o.threads.map((t) => ({ backend: "cpu", threads: t }));
  if (o.ref) runs.push({ backend: "cpu-ref", threads: 1 });
  for (const key of o.models) {
    const shape = MODELS[key];
    const layers = o.layers ?? shape.layers;
    const vocab = Number(shape.config(1).vocab_size);
    for (const dtype of o.dtypes) {
      for (const run of runs) {
        const backend = getBackend(run.backend);
        const threads = run.backend === "cpu" ? setCpuThreads(run.threads) : 1;
        if (threads !== run.threads) log(`asked for ${run.threads} threads, running ${threads}`);
        const model = await build(shape, layers, dtype, backend);
        const rng = new Rng(1);
        const ref = run.backend === "cpu-ref";
        // Warm-up (JIT, workers, wasm memory for a prompt's activations), as llama-bench warms up.
        await promptProcessing(model, ref ? Math.min(32, o.prompts[0]) : o.prompts[0], vocab, rng, backend);
        await generation(model, 2, vocab, rng, backend);
        const record = (test: string, tokens: number, t: { wall: number; cpu: number }) => {
          const load = os.loadavg()[0];
          rows.push({ model: shape.name, dtype, backend: run.backend, threads, test, tokens, seconds: t.wall, tokens_per_s: tokens / t.wall, cpu_seconds: t.cpu, load });
          log(`${shape.name} ${dtype} ${run.backend} t${threads} ${test}: ${(tokens / t.wall).toFixed(2)} tok/s (cpu ${t.cpu.toFixed(2)} s of ${t.wall.toFixed(2)} s wall, load ${load.toFixed(1)})`);
        };
        const best = async (f: () => Promise<number>) => {
          let b = { wall: Infinity, cpu: 0 };
          for (let r = 0; r < o.reps; r++) {
            const t = await timed(f);
            if (t.wall < b.wall) b = t;
          }
          return b;
        };
        for (const L of ref ? o.prompts.slice(0, 1) : o.prompts) record(`pp${L}`, L, await best(() => promptProcessing(model, L, vocab, rng, backend)));
        const gen = ref ? Math.min(16, o.gen) : o.gen;
        record(`tg${gen}`, gen, await best(() => generation(model, gen, vocab, rng, backend)));
        model.dispose();
      }
    }
  }
  setCpuThreads(1);

  const cpu = os.cpus()[0]?.model ?? "?";
  const lines = [
    `## Hippo fast CPU backend — random weights of real shapes${o.layers ? ` (${o.layers} layers)` : ""}`,
    "",
    `machine: ${cpu}, ${os.availableParallelism()} cores, node ${process.version}, load average ${os.loadavg().map((l) => l.toFixed(1)).join(" ")}`,
    "",
    "| model | dtype | backend | threads | test | tok/s | cpu s / wall s | load | llama.cpp (2 threads) |",
    "|---|---|---|---:|---|---:|---:|---:|---:|",
    ...rows.map((r) => {
      const lc = LLAMA_CPP[r.model]?.[r.dtype];
      const target = lc ? (r.test === "pp512" ? String(lc[0]) : r.test === "tg128" ? lc[1] : "") : "";
      return `| ${r.model} | ${r.dtype} | ${r.backend} | ${r.threads} | ${r.test} | ${r.tokens_per_s.toFixed(1)} | ${(r.cpu_seconds / r.seconds).toFixed(2)} | ${r.load.toFixed(1)} | ${target} |`;
    }),
  ];
  process.stdout.write(lines.join("\n") + "\n");
  await writeFileAtomic(o.out, JSON.stringify({
    schema: "hippo-cpu-fast-2",
    machine: { cpu, cores: os.availableParallelism(), node: process.version, loadavg: os.loadavg() },
    models: Object.fromEntries(o.models.map((m) => [MODELS[m].name, MODELS[m].reference])),
    llama_cpp_2_threads: LLAMA_CPP,
    results: rows,
  }, null, 2) + "\n");
  log(`wrote ${o.out}`);
}

main().catch((e) => {
  process.stderr.write(`${e instanceof Error ? e.stack ?? e.message : e}\n`);
  process.exit(1);
});
