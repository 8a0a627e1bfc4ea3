import { parseArgs } from "node:util";
import { HippoError } from "../errors.js";
import { createBackend } from "../backends/registry.js";
import { loadModel } from "../models/load.js";
import { formatBytes, memoryReport } from "../models/memory.js";
import { intFlag, HELP_FLAG, parseFlags, requireString } from "./args.js";

export const INFO_HELP = `hippo info --model <dir> [--context <tokens>] [--json]

Architecture, parameter count, stored dtypes, per-layer recurrent-state bytes, and the KV cache a
Transformer of the same width and depth would need at --context tokens (default 2048).

  --model <dir>        model directory
  --context <tokens>   context length for the KV-cache comparison (default 2048)
  --json               print JSON
  --backend <name>     auto (default: webgpu when a GPU adapter exists, else cpu), cpu or webgpu`;

const OPTIONS = {
  model: { type: "string" },
  context: { type: "string" },
  json: { type: "boolean" },
  tokenizer: { type: "string" },
  backend: { type: "string" },
} as const;

export async function runInfo(argv: string[], out: NodeJS.WritableStream): Promise<number> {
  const { values: v } = parseFlags("info", argv, (args) =>
    parseArgs({ args, options: { ...OPTIONS, ...HELP_FLAG }, strict: true, allowPositionals: false }));
  if (v.help) {
    out.write(INFO_HELP + "\n");
    return 0;
  }
  const modelDir = requireString("info", v.model, "model");
  const context = intFlag(v.context, "context", 2048);
  if (context <= 0) throw new HippoError(`--context must be at least 1, got ${context}`);
  const backend = await createBackend(v.backend ?? "auto");
  const loaded = await loadModel(modelDir, { tokenizer: v.tokenizer, backend });
  const desc = loaded.model.describe();
  const mem = memoryReport(desc, context);
  if (v.json) {
    out.write(JSON.stringify({
      model: modelDir, backend: backend.name, architecture: desc.architecture, family: desc.family, parameters: desc.parameters,
      d_model: desc.dModel, n_layer: desc.nLayer, vocab_size: desc.vocabSize, weights_file: loaded.weightsFile,
      weight_dtypes: loaded.weightDtypes, unused_tensors: loaded.unusedTensors, tokenizer: loaded.tokenizer !== null,
      layers: desc.layers.map((l, i) => ({ ...l, state_bytes: mem.layers[i].stateBytes, kv_cache_bytes: mem.layers[i].kvCacheBytes })),
      state_bytes_per_sequence: mem.stateBytesPerSequence, kv_cache_bytes_per_sequence: mem.kvCacheBytesPerSequence,
      total_bytes_per_sequence: mem.totalBytesPerSequence, context,
      transformer_kv_cache_bytes: mem.transformerKvBytes, config: desc.config,
    }, null, 2) + "\n");
    loaded.model.dispose();
    return 0;
  }
  const lines: string[] = [];
  lines.push(`model         ${modelDir}`);
  lines.push(`architecture  ${desc.architecture}`);
  lines.push(`backend       ${backend.name}`);
  lines.push(`parameters    ${desc.parameters.toLocaleString("en-US")} (${(desc.parameters / 1e6).toFixed(1)}M)`);
  lines.push(`shape         d_model ${desc.dModel}, ${desc.nLayer} layers, vocab ${desc.vocabSize}`);
  lines.push(`weights       ${loaded.weightsFile}: ${Object.entries(loaded.weightDtypes).map(([d, n]) => `${n} × ${d}`).join(", ")}`);
  if (loaded.unusedTensors.length) lines.push(`unused        ${loaded.unusedTensors.length} tensors: ${loaded.unusedTensors.slice(0, 5).join(", ")}${loaded.unusedTensors.length > 5 ? ", …" : ""}`);
  lines.push(`tokenizer     ${loaded.tokenizer ? "tokenizer.json" : "none (pass --tokenizer to generate from text)"}`);
  lines.push("");
  lines.push(`layer  kind       state (f32)  KV cache at ${context} (f32)  shapes per sequence`);
  desc.layers.forEach((l, i) => {
    const shapes = [
      ...Object.entries(l.state).map(([k, s]) => `${k} [${s.join(", ")}]`),
      ...Object.entries(l.cachePerToken ?? {}).map(([k, s]) => `${k} [tokens, ${s.join(", ")}]`),
    ].join(" + ") || "none";
    const m = mem.layers[i];
    lines.push(`${String(i).padStart(5)}  ${l.kind.padEnd(9)}  ${formatBytes(m.stateBytes).padStart(11)}  ${formatBytes(m.kvCacheBytes).padStart(21)}  ${shapes}`);
  });
  lines.push("");
  lines.push(`per sequence at ${context} tokens: ${formatBytes(mem.totalBytesPerSequence)} ` +
    `(recurrent state ${formatBytes(mem.stateBytesPerSequence)}, constant; KV cache ${formatBytes(mem.kvCacheBytesPerSequence)}, grows with context)`);
  const ratio = mem.transformerKvBytes.f32 / Math.max(1, mem.totalBytesPerSequence);
  lines.push(`a Transformer of the same width (${desc.dModel}) and depth (${desc.nLayer}) would cache ` +
    `${formatBytes(mem.transformerKvBytes.f32)} (f32) / ${formatBytes(mem.transformerKvBytes.f16)} (f16) per sequence at ${context} tokens ` +
    `— ${ratio.toFixed(1)}× this model at f32`);
  out.write(lines.join("\n") + "\n");
  loaded.model.dispose();
  return 0;
}
