import { parseArgs } from "node:util";
import { HippoError, shapeString } from "../errors.js";
import { toInt32Ids } from "../io/convert.js";
import { openFileSource } from "../io/node-file-source.js";
import { writeSafetensorsFile } from "../io/node-files.js";
import { readSafetensorsHeader, readSafetensorsTensor } from "../io/safetensors.js";
import { createBackend } from "../backends/registry.js";
import { applyThreadsFlag, threadsHelp } from "./threads.js";
import { loadModel } from "../models/load.js";
import { checkQuantizationType } from "../models/weights.js";
import { tensor } from "../ops/index.js";
import { HELP_FLAG, parseFlags, requireString } from "./args.js";

export const FORWARD_HELP = `hippo forward --model <dir> --input <in.safetensors> --output <out.safetensors>

Runs one full forward pass (the parallel mode) over the tensor 'input_ids' ([batch, length], int64 or
int32) and writes float32 'logits' [batch, length, vocab].

  --model <dir>       model directory
  --input <file>      safetensors file holding input_ids
  --output <file>     where to write logits (written atomically)
  --backend <name>    auto (default: webgpu when a GPU adapter exists, else cpu), cpu or webgpu
${threadsHelp(22)}
  --quantize q8       quantize the weight matrices to 8 bits as they load (CPU backend; the default
                      backend becomes cpu)`;

const OPTIONS = {
  model: { type: "string" },
  input: { type: "string" },
  output: { type: "string" },
  backend: { type: "string" },
  threads: { type: "string" },
  quantize: { type: "string" },
} as const;

/** Reads and checks input_ids: rank 2, integer dtype, ids inside the vocabulary. */
async function readInputIds(path: string, vocabSize: number): Promise<{ ids: Int32Array; shape: number[] }> {
  const src = await openFileSource(path);
  try {
    const header = await readSafetensorsHeader(src);
    if (!header.tensors.has("input_ids")) {
      const names = [...header.tensors.keys()];
      throw new HippoError(`${path}: no tensor 'input_ids' (found: ${names.length ? names.join(", ") : "none"})`);
    }
    const raw = await readSafetensorsTensor(src, header, "input_ids");
    if (raw.shape.length !== 2) throw new HippoError(`${path}: input_ids has shape ${shapeString(raw.shape)}, expected [batch, length]`);
    if (raw.shape[0] === 0 || raw.shape[1] === 0) throw new HippoError(`${path}: input_ids ${shapeString(raw.shape)} is empty`);
    const ids = toInt32Ids(raw, `${path}: input_ids`);
    const bad = ids.findIndex((id) => id < 0 || id >= vocabSize);
    if (bad >= 0) {
      const [row, col] = [Math.floor(bad / raw.shape[1]), bad % raw.shape[1]];
      throw new HippoError(`${path}: input_ids[${row}, ${col}] = ${ids[bad]} is outside the vocabulary [0, ${vocabSize})`);
    }
    return { ids, shape: raw.shape };
  } finally {
    await src.close();
  }
}

export async function runForward(argv: string[], out: NodeJS.WritableStream, err: NodeJS.WritableStream): Promise<number> {
  const { values: v } = parseFlags("forward", argv, (args) =>
    parseArgs({ args, options: { ...OPTIONS, ...HELP_FLAG }, strict: true, allowPositionals: false }));
  if (v.help) {
    out.write(FORWARD_HELP + "\n");
    return 0;
  }
  const modelDir = requireString("forward", v.model, "model");
  const input = requireString("forward", v.input, "input");
  const output = requireString("forward", v.output, "output");
  const quantize = v.quantize === undefined ? undefined : checkQuantizationType(v.quantize, "--quantize");
  const backend = await createBackend(v.backend ?? (quantize ? "cpu" : "auto"));
  applyThreadsFlag(v.threads);
  const { model } = await loadModel(modelDir, { backend, quantize });
  const { ids, shape } = await readInputIds(input, model.vocabSize);
  const started = performance.now();
  const result = model.forward(tensor(ids, shape, { backend: model.backend, dtype: "i32" }), null, { logits: "all" });
  const logits = await result.logits!.readFloat32();
  const seconds = (performance.now() - started) / 1000;
  await writeSafetensorsFile(output, {
    logits: { dtype: "F32", shape: [...result.logits!.shape], bytes: new Uint8Array(logits.buffer, logits.byteOffset, logits.byteLength) },
  });
  err.write(`[logits ${shapeString(result.logits!.shape)} written to ${output}; ${shape[0] * shape[1]} tokens in ${seconds.toFixed(3)} s]\n`);
  model.dispose();
  return 0;
}
