/**
 * The library API end to end: load, forward, stream, and cache a prompt's state.
 *   npm run build && node dist/examples/api.js [model dir]
 */
import { generate, InferenceState, loadModel, tensor } from "hippo-ssm";

const dir = process.argv[2] ?? "models/hippo-demo";
const { model, tokenizer } = await loadModel(dir); // config.json + model.safetensors + tokenizer.json
if (!tokenizer) throw new Error(`${dir} has no tokenizer.json`);

// 1. A forward pass (the parallel mode): logits for every position.
const ids = tokenizer.encode("The hippo");
const { logits } = model.forward(tensor(Int32Array.from(ids), [1, ids.length], { dtype: "i32" }));
console.log(`forward: logits ${logits!.shape.join("×")}`);

// 2. Streaming generation: prefill once, then one recurrent step per token.
process.stdout.write("stream: ");
for await (const step of generate(model, [tokenizer.encode("Once upon a time")], { maxNewTokens: 16, tokenizer, seed: 42 })) {
  process.stdout.write(step.text);
}
process.stdout.write("\n");

// 3. Cache a long prompt's state (a few KiB for an SSM, whatever the prompt length), restore it later.
const context = tokenizer.encode("A long document that many questions will share. ".repeat(20));
const prefill = model.forward(tensor(Int32Array.from(context), [1, context.length], { dtype: "i32" }), null, { logits: "none" });
const bytes = await prefill.state.serialize(); // save these anywhere: a file, IndexedDB, a cache server
console.log(`cached state after ${context.length} tokens: ${bytes.length} bytes`);
const restored = await InferenceState.deserialize(bytes, model.backend, model.initialState(1));
const question = tokenizer.encode(" Question:");
const fromCache = await collect(generate(model, [question], { maxNewTokens: 8, tokenizer, seed: 1, state: restored }));
const fromScratch = await collect(generate(model, [[...context, ...question]], { maxNewTokens: 8, tokenizer, seed: 1 }));
console.log(`from cache equals from scratch: ${fromCache.join(",") === fromScratch.join(",")}`);

async function collect(steps: AsyncIterable<{ token: number }>): Promise<number[]> {
  const tokens: number[] = [];
  for await (const s of steps) tokens.push(s.token);
  return tokens;
}
