import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { gunzipSync } from "node:zlib";
import { loadModel } from "../../src/models/load.js";
import { generateAll } from "../../src/generate/generate.js";

/**
 * The shipped default model (models/hippo-kjv, trained by `hippo train` on data/kjv.txt.gz) must be a
 * trained model: low loss on verses from the corpus' held-out tail, and readable greedy text.
 */
test("models/hippo-kjv: held-out loss far below chance, readable text", async () => {
  const { model, tokenizer } = await loadModel("models/hippo-kjv");
  const corpus = gunzipSync(await readFile("data/kjv.txt.gz"));
  // The last 5% of the corpus was held out in training; take 4 windows of 128 bytes from it.
  const tail = corpus.subarray(corpus.length - 20_000);
  const B = 4, L = 128;
  const ids = new Int32Array(B * (L + 1));
  for (let b = 0; b < B; b++) ids.set(tail.subarray(b * 4000, b * 4000 + L + 1), b * (L + 1));
  const inputs = new Int32Array(B * L);
  for (let b = 0; b < B; b++) inputs.set(ids.subarray(b * (L + 1), b * (L + 1) + L), b * L);
  const logits = await model.forward(model.backend.upload(inputs, [B, L], "i32")).logits!.readFloat32();
  const V = model.vocabSize;
  let nll = 0;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < L; t++) {
      const row = logits.subarray((b * L + t) * V, (b * L + t + 1) * V);
      const max = row.reduce((m, v) => Math.max(m, v), -Infinity);
      const logZ = max + Math.log(row.reduce((s, v) => s + Math.exp(v - max), 0));
      nll += logZ - row[ids[b * (L + 1) + t + 1]];
    }
  }
  const perByte = nll / (B * L);
  assert.ok(perByte < 1.8, `held-out loss ${perByte.toFixed(3)} nats/byte (chance: ${Math.log(V).toFixed(2)})`);
  const prompt = tokenizer!.encode("And the LORD said unto");
  const [out] = await generateAll(model, [prompt], { maxNewTokens: 60, sampling: { temperature: 0 }, eosTokenId: null });
  const text = tokenizer!.decode(out.tokens);
  assert.match(text, /^[\x20-\x7e\n]+$/, `printable text: ${JSON.stringify(text)}`);
  assert.ok((text.match(/\b(the|of|and|unto|LORD|him|them)\b/g) ?? []).length >= 3, `English words: ${JSON.stringify(text)}`);
});
