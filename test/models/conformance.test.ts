import assert from "node:assert/strict";
import { basename } from "node:path";
import { test } from "node:test";
import { generateAll } from "../../src/generate/generate.js";
import { loadModel } from "../../src/models/load.js";
import { tensor } from "../../src/ops/index.js";
import { modelFixtureDirs, readReferenceIo, relativeL2 } from "../fixtures.js";

for (const dir of modelFixtureDirs()) {
  test(`${basename(dir)}: full-forward logits match the reference within 1e-4`, async () => {
    const { model } = await loadModel(dir);
    const io = await readReferenceIo(dir);
    const out = model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32" }), null, { logits: "all" });
    assert.deepEqual(out.logits!.shape, [...io.inputShape, model.vocabSize]);
    const err = relativeL2(await out.logits!.readFloat32(), io.logits);
    assert.ok(err < 1e-4, `relative L2 error ${err}`);
  });

  test(`${basename(dir)}: greedy generation through the recurrent path reproduces greedy_ids`, async () => {
    const { model } = await loadModel(dir);
    const io = await readReferenceIo(dir);
    const expected = io.greedyIds.slice(io.promptIds.length);
    const [result] = await generateAll(model, [io.promptIds], {
      maxNewTokens: expected.length, sampling: { temperature: 0 }, eosTokenId: null,
    });
    assert.deepEqual(result.tokens, expected);
  });
}
