// Every language-model conformance fixture on WebGPU: full-forward logits within 1e-4 relative L2 of the
// reference, and greedy generation (prefill, then recurrent steps with the token chosen on the GPU)
// reproducing the reference ids exactly. H3 (h3-lm-tiny) included.
import assert from "node:assert/strict";
import { basename } from "node:path";
import { test } from "node:test";
import { generateAll } from "../../../src/generate/generate.js";
import { loadModel } from "../../../src/models/load.js";
import { tensor } from "../../../src/ops/index.js";
import { conformanceDir, modelFixtureDirs, readReferenceIo, relativeL2 } from "../../fixtures.js";
import { gpu, skip } from "./setup.js";

const dirs = [...modelFixtureDirs(), conformanceDir("h3-lm-tiny")];

for (const dir of dirs) {
  test(`${basename(dir)} on WebGPU: logits within 1e-4 and greedy ids exact`, { skip }, async () => {
    const { model } = await loadModel(dir, { backend: gpu! });
    const io = await readReferenceIo(dir);
    const out = model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32", backend: gpu! }), null, { logits: "all" });
    assert.deepEqual(out.logits!.shape, [...io.inputShape, model.vocabSize]);
    const err = relativeL2(await out.logits!.readFloat32(), io.logits);
    assert.ok(err < 1e-4, `relative L2 error ${err}`);
    out.logits!.dispose();
    out.hidden.dispose();
    out.state.dispose();
    const expected = io.greedyIds.slice(io.promptIds.length);
    const [result] = await generateAll(model, [io.promptIds], { maxNewTokens: expected.length, sampling: { temperature: 0 }, eosTokenId: null });
    assert.deepEqual(result.tokens, expected);
    model.dispose();
  });
}
