import { parseArgs } from "node:util";
import { HippoError } from "../errors.js";
import { quantizeModelDir } from "../models/quantize.js";
import { HELP_FLAG, parseFlags, requireString } from "./args.js";

export const QUANTIZE_HELP = `hippo quantize <model-dir> --out <dir> [--type q8] [--keep-embeddings]

Writes a copy of a model directory with 8-bit weights: every weight matrix of a linear layer, and the
embedding table and LM head, as int8 blocks of 32 values along the input dimension with one f32 scale per
block (Q8_0-like; docs/quantization.md). SSM parameters, convolutions, norms and biases stay as stored.
config.json and the tokenizer files are copied. The result loads with every command (CPU backend).

  --out <dir>          the new model directory (must not exist, or be empty); written atomically
  --type <type>        quantization type: q8 (the default and only one)
  --keep-embeddings    leave the embedding table and LM head unquantized`;

const OPTIONS = {
  out: { type: "string" },
  type: { type: "string" },
  "keep-embeddings": { type: "boolean" },
} as const;

export async function runQuantize(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values: v, positionals } = parseFlags("quantize", argv, (args) =>
    parseArgs({ args, options: { ...OPTIONS, ...HELP_FLAG }, strict: true, allowPositionals: true }));
  if (v.help) {
    out.write(QUANTIZE_HELP + "\n");
    return 0;
  }
  if (positionals.length !== 1) {
    throw new HippoError(`quantize: give exactly one model directory, got ${positionals.length ? positionals.join(" ") : "none"} (see 'hippo quantize --help')`);
  }
  const outDir = requireString("quantize", v.out, "out");
  const started = performance.now();
  const r = await quantizeModelDir(positionals[0], outDir, { type: v.type ?? "q8", quantizeEmbeddings: !v["keep-embeddings"] });
  const seconds = (performance.now() - started) / 1000;
  err.write(`[${r.quantized.length} matrices quantized to q8, ${r.kept.length} tensors kept as stored` +
    `${r.dropped.length ? `, ${r.dropped.length} unused dropped` : ""}; ${r.weightsFile}: ${(r.bytesOut / 1e6).toFixed(2)} MB; ` +
    `copied ${r.copied.join(", ") || "nothing"}; ${seconds.toFixed(1)} s]\n`);
  return 0;
}
