import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { GradBackend } from "../../src/autograd/grad-backend.js";
import { crossEntropy } from "../../src/autograd/loss.js";
import { Tape } from "../../src/autograd/tape.js";
import { toFloat32, toInt32Ids } from "../../src/io/convert.js";
import { bufferSource } from "../../src/io/byte-source.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { ConfigReader, parseConfigJson } from "../../src/models/config-json.js";
import { findFamily } from "../../src/models/registry.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { ParameterLoader } from "../../src/train/parameter-loader.js";
import { relativeL2 } from "../fixtures.js";

/**
 * Whole tiny models' loss and every parameter's gradient against PyTorch (float64 reference runs of
 * HF transformers and the H3 reference code; test/fixtures/README.md says how they were made).
 */
const GRAD_FIXTURES = ["mamba-grad", "mamba2-grad", "llama-grad", "h3-grad", "h3-hd4-grad", "s4d-grad", "hybrid-grad"];
const dirOf = (name: string) => join(import.meta.dirname, "..", "..", "..", "test", "fixtures", "grads", name);

async function safetensors(path: string) {
  const bytes = await readFile(path);
  return (await readSafetensors(bufferSource(path, new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength)))).tensors;
}

// The reference autograd backend (TypeScript kernels) and the fast one (WebAssembly forward and backward kernels).
const BACKENDS: [string, () => GradBackend][] = [["reference", () => new GradBackend()], ["fast", () => GradBackend.fast()]];

for (const [which, makeBackend] of BACKENDS) for (const name of GRAD_FIXTURES) {
  test(`${name} (${which} backend): loss and gradients of every parameter match PyTorch`, async () => {
    const dir = dirOf(name);
    const backend = makeBackend();
    const params = new Map<string, Tensor>();
    for (const [key, raw] of await safetensors(join(dir, "model.safetensors"))) params.set(key, backend.upload(toFloat32(raw, key), raw.shape, "f32"));
    const ref = await safetensors(join(dir, "grads.safetensors"));
    const configPath = join(dir, "config.json");
    const reader = new ConfigReader(parseConfigJson(await readFile(configPath, "utf8"), configPath), configPath);
    const ids = ref.get("input_ids")!, labels = ref.get("labels")!;
    const tape = new Tape();
    tape.watch(...params.values());
    backend.tape = tape;
    let loss: Tensor;
    try {
      const model = await findFamily(reader).load(reader, new ParameterLoader(params, backend, dir));
      const { logits } = model.forward(backend.upload(toInt32Ids(ids, "input_ids"), ids.shape, "i32"), null, { logits: "all" });
      assert.ok(relativeL2(logits!.storage as Float32Array, toFloat32(ref.get("logits")!, "logits")) < 1e-5, "logits match the reference");
      loss = crossEntropy(logits!, backend.upload(toInt32Ids(labels, "labels"), labels.shape, "i32")).loss;
    } finally {
      backend.tape = null;
    }
    const refLoss = toFloat32(ref.get("loss")!, "loss")[0];
    assert.ok(Math.abs((loss.storage as Float32Array)[0] - refLoss) < 1e-5 * Math.max(1, refLoss), `loss ${(loss.storage as Float32Array)[0]} vs ${refLoss}`);
    const grads = await tape.backward(loss, [...params.values()]);
    const worst: string[] = [];
    for (const [key, t] of params) {
      const expected = ref.get(`grad.${key}`);
      assert.ok(expected, `reference has grad.${key}`);
      const err = relativeL2(grads.get(t)!, toFloat32(expected, key));
      if (!(err < 1e-4)) worst.push(`${key}: rel L2 ${err.toExponential(2)}`);
    }
    assert.deepEqual(worst, [], `gradients off (tolerance 1e-4):\n${worst.join("\n")}`);
  });
}
