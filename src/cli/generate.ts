import { parseArgs } from "node:util";
import { HippoError } from "../errors.js";
import { generate, type GenerateResult } from "../generate/generate.js";
import { createBackend } from "../backends/registry.js";
import { applyThreadsFlag, threadsHelp } from "./threads.js";
import { loadModel } from "../models/load.js";
import { checkQuantizationType } from "../models/weights.js";
import { DEFAULT_MODEL_DIR } from "./default-model.js";
import { HELP_FLAG, idListFlag, intFlag, numberFlag, parseFlags } from "./args.js";

export const GENERATE_HELP = `hippo generate [--model <dir>] (--prompt <text> | --prompt-ids <ids>)... [options]

Streams a continuation of each prompt. Several --prompt / --prompt-ids run as one batch.

  --model <dir>             model directory (config.json + weights [+ tokenizer.json]);
                            default: the tiny demo model that ships with Hippo
  --tokenizer <path>        tokenizer.json (or its directory) when the model directory has none
  --prompt <text>           a text prompt (repeatable)
  --prompt-ids <1,2,3>      a prompt as token ids (repeatable)
  --max-new-tokens <n>      tokens to generate per prompt (default 64)
  --temperature <t>         0 = greedy (default 0.8)
  --top-k <k>               keep the k most likely tokens, 0 = off (default 40)
  --top-p <p>               nucleus sampling, 1 = off (default 0.95)
  --min-p <p>               drop tokens below p x the top probability, 0 = off (default 0.05)
  --repetition-penalty <r>  1 = off (default 1)
  --seed <n>                sampler seed; the same seed gives the same text (default: random)
  --stop <text>             stop a row when its text contains this (repeatable)
  --ignore-eos              keep going past the end-of-sequence token (default with --prompt-ids)
  --stop-at-eos             stop at the end-of-sequence token (default with --prompt)
  --json                    print one JSON object (tokens, text, ...) instead of streaming
  --backend <name>          auto (default: webgpu when a GPU adapter exists, else cpu), cpu or webgpu
  --no-replay               WebGPU: run the model's code at every decoding step instead of replaying a
                            captured step (the same tokens, slower; for comparisons and diagnosis)
${threadsHelp(28)}
  --quantize q8             quantize the weight matrices to 8 bits as they load (CPU backend; the
                            default backend becomes cpu); see 'hippo quantize' to store them so`;

const OPTIONS = {
  model: { type: "string" },
  tokenizer: { type: "string" },
  prompt: { type: "string", multiple: true },
  "prompt-ids": { type: "string", multiple: true },
  "max-new-tokens": { type: "string" },
  temperature: { type: "string" },
  "top-k": { type: "string" },
  "top-p": { type: "string" },
  "min-p": { type: "string" },
  "repetition-penalty": { type: "string" },
  seed: { type: "string" },
  stop: { type: "string", multiple: true },
  "ignore-eos": { type: "boolean" },
  "stop-at-eos": { type: "boolean" },
  json: { type: "boolean" },
  backend: { type: "string" },
  "no-replay": { type: "boolean" },
  threads: { type: "string" },
  quantize: { type: "string" },
} as const;

export async function runGenerate(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values: v } = parseFlags("generate", argv, (args) =>
    parseArgs({ args, options: { ...OPTIONS, ...HELP_FLAG }, strict: true, allowPositionals: false }));
  if (v.help) {
    out.write(GENERATE_HELP + "\n");
    return 0;
  }
  const modelDir = v.model ?? DEFAULT_MODEL_DIR;
  const textPrompts = v.prompt ?? [];
  const idPrompts = (v["prompt-ids"] ?? []).map((s) => idListFlag(s, "prompt-ids"));
  if (textPrompts.length + idPrompts.length === 0) throw new HippoError("generate: give --prompt <text> or --prompt-ids <ids>");
  const maxNewTokens = intFlag(v["max-new-tokens"], "max-new-tokens", 64);
  if (maxNewTokens <= 0) throw new HippoError(`--max-new-tokens must be at least 1, got ${maxNewTokens}`);
  const sampling = {
    temperature: numberFlag(v.temperature, "temperature", 0.8),
    topK: intFlag(v["top-k"], "top-k", 40),
    topP: numberFlag(v["top-p"], "top-p", 0.95),
    minP: numberFlag(v["min-p"], "min-p", 0.05),
    repetitionPenalty: numberFlag(v["repetition-penalty"], "repetition-penalty", 1),
  };
  const seed = intFlag(v.seed, "seed", Math.floor(Math.random() * 2 ** 31));
  textPrompts.forEach((p, i) => { if (p === "") throw new HippoError(`--prompt ${i + 1} is empty`); });

  const quantize = v.quantize === undefined ? undefined : checkQuantizationType(v.quantize, "--quantize");
  const backend = await createBackend(v.backend ?? (quantize ? "cpu" : "auto"));
  applyThreadsFlag(v.threads);
  const { model, tokenizer } = await loadModel(modelDir, { tokenizer: v.tokenizer, backend, quantize });
  if (textPrompts.length && !tokenizer) {
    throw new HippoError(`${modelDir}: no tokenizer.json; pass --tokenizer <path> or use --prompt-ids`);
  }
  const prompts = [...textPrompts.map((p) => tokenizer!.encode(p)), ...idPrompts];
  prompts.forEach((p, i) => { if (p.length === 0) throw new HippoError(`prompt ${i + 1} encodes to no tokens`); });

  if (v["ignore-eos"] && v["stop-at-eos"]) throw new HippoError("generate: --ignore-eos and --stop-at-eos contradict each other");
  // Text prompts stop at the end-of-sequence token, as chat/completion users expect; raw --prompt-ids
  // runs produce exactly --max-new-tokens tokens, as reference greedy continuations are compared.
  const stopAtEos = v["stop-at-eos"] || (!v["ignore-eos"] && idPrompts.length === 0);
  const stream = !v.json && prompts.length === 1;
  const started = performance.now();
  let firstTokenAt = 0;
  let generated = 0;
  if (stream && textPrompts.length === 1) out.write(textPrompts[0]);
  const it = generate(model, prompts, {
    maxNewTokens, sampling, seed, stop: v.stop, tokenizer, eosTokenId: stopAtEos ? undefined : null, replay: !v["no-replay"],
  });
  let results: GenerateResult[];
  for (;;) {
    const next = await it.next();
    if (next.done) {
      results = next.value;
      break;
    }
    if (generated === 0) firstTokenAt = performance.now();
    generated++;
    if (stream) out.write(tokenizer ? next.value.text : `${next.value.token} `);
  }
  const seconds = (performance.now() - started) / 1000;
  const decodeSeconds = (performance.now() - firstTokenAt) / 1000;
  const promptTokens = prompts.reduce((n, p) => n + p.length, 0);
  const stats = {
    prompt_tokens: promptTokens,
    generated_tokens: generated,
    seconds: Number(seconds.toFixed(3)),
    prefill_tokens_per_s: Number((promptTokens / Math.max(1e-9, (firstTokenAt - started) / 1000)).toFixed(1)),
    decode_tokens_per_s: Number(((generated - prompts.length) / Math.max(1e-9, decodeSeconds)).toFixed(1)),
  };
  if (v.json) {
    const single = results.length === 1;
    out.write(JSON.stringify({
      tokens: single ? results[0].tokens : results.map((r) => r.tokens),
      text: single ? results[0].text : results.map((r) => r.text),
      finish_reason: single ? results[0].finishReason : results.map((r) => r.finishReason),
      prompt_ids: single ? prompts[0] : prompts,
      seed,
      ...stats,
    }) + "\n");
  } else {
    if (stream) out.write("\n");
    else {
      results.forEach((r, i) => {
        out.write(`--- prompt ${i + 1} (${r.finishReason}) ---\n`);
        out.write(tokenizer ? `${i < textPrompts.length ? textPrompts[i] : ""}${r.text}\n` : `${r.tokens.join(" ")}\n`);
      });
    }
    err.write(`[${stats.prompt_tokens} prompt tokens, ${generated} generated in ${stats.seconds} s; prefill ${stats.prefill_tokens_per_s} tok/s, decode ${stats.decode_tokens_per_s} tok/s; seed ${seed}]\n`);
  }
  model.dispose();
  return 0;
}
