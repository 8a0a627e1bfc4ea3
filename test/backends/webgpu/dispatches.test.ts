// Dispatches per decoded token and layer: the decoding fusions (add + RMSNorm computed by the projection
// that reads it, the gated norm inside out_proj, dt_proj inside the scan step) each have a fallback that
// is just as correct, so only a count notices when one of them stops applying.
import assert from "node:assert/strict";
import { test } from "node:test";
import { generate } from "../../../src/generate/generate.js";
import { memoryTensorSource } from "../../../src/io/memory-source.js";
import { ConfigReader } from "../../../src/models/config-json.js";
import { parseHybridConfig } from "../../../src/models/hybrid/config.js";
import { initHybridWeights } from "../../../src/models/hybrid/init.js";
import { buildHybrid } from "../../../src/models/hybrid/model.js";
import { WeightLoader } from "../../../src/models/weights.js";
import { gpu, skip } from "./setup.js";

async function dispatchesPerToken(pattern: string): Promise<number> {
  const reader = new ConfigReader({
    model_type: "hippo_hybrid", hidden_size: 64, vocab_size: 97, tie_word_embeddings: true, pattern,
    mamba: { state_size: 8, conv_kernel: 4, expand: 2 },
    mamba2: { state_size: 16, head_dim: 16, n_groups: 1, expand: 2, conv_kernel: 4, chunk_size: 32 },
  }, "dispatch test config");
  const model = await buildHybrid(reader, new WeightLoader(memoryTensorSource(initHybridWeights(parseHybridConfig(reader), 0)), gpu!, "random"));
  // Whole runs of 12 and 24 new tokens: their difference is 12 steps exactly (prefill and the step
  // decoding records ahead cancel).
  const run = async (tokens: number) => {
    const d0 = gpu!.rt.dispatchCount;
    for await (const _ of generate(model, [[1, 2, 3]], { maxNewTokens: tokens, sampling: { temperature: 0 }, eosTokenId: null }));
    return gpu!.rt.dispatchCount - d0;
  };
  await run(2); // one-time work (packed parameters, first allocations)
  const perStep = ((await run(24)) - (await run(12))) / 12;
  model.dispose?.();
  return perStep;
}

test("decoding: 5 dispatches per Mamba layer and 4 per Mamba-2 layer and token (6 before the fusions), 4 outside the layers", { skip }, async () => {
  for (const [letter, perLayer] of [["m", 5], ["M", 4]] as const) {
    const two = await dispatchesPerToken(letter.repeat(2)), three = await dispatchesPerToken(letter.repeat(3));
    assert.equal(three - two, perLayer, `'${letter}': ${three - two} dispatches per layer and token`);
    // Embedding, the first layer's norm, the LM head with the final add + norm, sampling.
    assert.equal(two - 2 * perLayer, 4, `'${letter}': ${two - 2 * perLayer} dispatches per token outside the layers`);
  }
});
