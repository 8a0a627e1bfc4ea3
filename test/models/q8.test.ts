// 8-bit weights end to end: quantized at load (loadModel { quantize: "q8" }) and ahead of time
// (quantizeModelDir, what `hippo quantize` runs), on every reference fixture.
//
// Two checks per fixture. (1) The machinery: the q8 model's logits equal those of the f32 model whose
// matrices were replaced by their dequantized values, up to the kernels' int16 rounding of x (per block of
// 32, ≤ 1.5e-5 of the block's largest value; these models amplify it to 0.6–1.8e-4 in the logits, 200×
// below the weights' own drift): rel L2 < 5e-4, where a wrong scale or block is off by 1e-2 or more. So
// kernel and loader add nothing material to the quantization error (the quantizer's own bounds are
// test/tensor/q8.test.ts's).
// (2) Drift against the PyTorch reference, bounded per fixture: q8 rounds each weight to within half a step
// of its block's scale (rms error ≈ 0.53% of the weights' rms on these fixtures), and these tiny
// random-weight models amplify a weight perturbation 3–8× into their logits, fixture by fixture (the same
// drift with fake-quantized f32 weights; docs/quantization.md has the table, 1.8e-2 to 4.0e-2). The drift
// is deterministic, so each fixture's bound is its measured drift + 25%: rounding by truncation instead
// (measured 1.45–2.9× the drift), a scale off by a factor or a block read with another block's scale all
// exceed it, while a better quantizer passes. Teacher-forced argmax agreement stays ≥ 85% (worst measured
// 89%); free-running greedy continuations are reported, not asserted: one flipped near-tie of these
// random models' logits makes every later token differ.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { HippoError } from "../../src/errors.js";
import { fromFloat32, toFloat32 } from "../../src/io/convert.js";
import { openFileSource } from "../../src/io/node-file-source.js";
import { writeSafetensorsFile } from "../../src/io/node-files.js";
import type { RawTensor } from "../../src/io/raw-tensor.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { loadModel, openWeights } from "../../src/models/load.js";
import { quantizeModelDir } from "../../src/models/quantize.js";
import { tensor } from "../../src/ops/index.js";
import { dequantizeQ8, quantizeQ8 } from "../../src/tensor/q8.js";
import { LOCAL_FIXTURES, conformanceDir, readReferenceIo, relativeL2 } from "../fixtures.js";
import { driftFixtureDirs, measureDrift } from "./q8-drift.js";

const tmp = mkdtempSync(join(tmpdir(), "hippo-q8-"));
let counter = 0;
const freshDir = (tag: string) => join(tmp, `${tag}-${counter++}`);

/** Measured rel L2 of q8 logits (embeddings included) vs the reference, bench/results/q8-drift.json. */
const MEASURED_DRIFT: Record<string, number> = {
  "mamba-tiny": 3.95e-2, "mamba-tiny-ssm": 3.95e-2, "mamba2-tiny": 1.92e-2, "hybrid-tiny": 2.39e-2,
  "mamba-tiny-bf16": 3.59e-2, "mamba-tiny-f16-sharded": 3.97e-2, "mamba-tiny-ssm-bf16": 3.59e-2, "mamba-odd": 3.75e-2,
  "llama-tiny": 2.51e-2, "llama-odd": 1.82e-2, "mamba2-ssm-tiny": 2.07e-2, "mamba2attn-ssm-tiny": 3.11e-2, "h3-lm-tiny": 3.17e-2,
};
const DRIFT_MARGIN = 1.25;
const ARGMAX_AGREEMENT = 0.85;

/** Full-forward logits of model directory `dir` on the input ids of fixture `fixture`. */
async function logitsOf(dir: string, opts: Parameters<typeof loadModel>[1] = {}, fixture = dir): Promise<Float32Array> {
  const { model } = await loadModel(dir, opts);
  const io = await readReferenceIo(fixture);
  const out = model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32" }), null, { logits: "all" });
  const logits = await out.logits!.readFloat32();
  model.dispose();
  return logits;
}

/** A copy of fixture `dir` whose tensors `names` hold their q8-dequantized values in f32. */
async function fakeQuantizedCopy(dir: string, names: Set<string>): Promise<string> {
  const out = freshDir("fakeq");
  mkdirSync(out);
  const { source } = await openWeights(dir);
  const tensors = new Map<string, RawTensor>();
  for (const name of source.names()) {
    const raw = await source.read(name);
    if (!names.has(name)) {
      tensors.set(name, raw);
      continue;
    }
    const [N, K] = raw.shape;
    tensors.set(name, fromFloat32(dequantizeQ8(quantizeQ8(toFloat32(raw, name), N, K)), [N, K], "F32"));
  }
  await source.close();
  await writeSafetensorsFile(join(out, "model.safetensors"), tensors);
  copyFileSync(join(dir, "config.json"), join(out, "config.json"));
  return out;
}

for (const dir of driftFixtureDirs()) {
  const bound = DRIFT_MARGIN * MEASURED_DRIFT[basename(dir)];
  test(`${basename(dir)}: q8 logits equal the dequantized-f32 model's, drift from the reference < ${bound.toExponential(2)}`, async () => {
    assert.ok(bound > 0, `no measured drift recorded for ${basename(dir)}`);
    const loaded = await loadModel(dir, { quantize: "q8" });
    const quantized = new Set(loaded.quantizedTensors);
    loaded.model.dispose();
    assert.ok(quantized.size >= 3, `only ${quantized.size} tensors quantized`);
    for (const n of quantized) assert.doesNotMatch(n, /A_log|\.D$|dt_bias|conv1d|norm|bias$/, `${n} must stay f32`);
    const fake = await fakeQuantizedCopy(dir, quantized);
    const exact = relativeL2(await logitsOf(dir, { quantize: "q8" }), await logitsOf(fake, {}, dir));
    assert.ok(exact < 5e-4, `q8 vs dequantized f32: rel L2 ${exact}`);

    const d = await measureDrift(dir, { quantize: "q8" });
    assert.ok(d.relL2 < bound, `rel L2 vs reference ${d.relL2} (measured ${MEASURED_DRIFT[basename(dir)]})`);
    assert.ok(d.argmaxAgree >= ARGMAX_AGREEMENT * d.positions, `argmax agreement ${d.argmaxAgree}/${d.positions}`);
  });
}

test("quantizeModelDir: a q8 directory loads to the same logits as quantizing at load; odd K; embeddings optional", async () => {
  const dir = join(LOCAL_FIXTURES, "mamba-odd"); // hidden 40, dt_rank 5: short last blocks
  const out = freshDir("aot");
  const r = await quantizeModelDir(dir, out);
  assert.equal(r.weightsFile, join(out, "model.safetensors"));
  assert.ok(r.copied.includes("config.json"));
  // A valid safetensors file: I8 values, F32 scales [N, ceil(K/32)], the quantization in the metadata.
  const src = await openFileSource(r.weightsFile);
  const { metadata, tensors } = await readSafetensors(src);
  await src.close();
  assert.deepEqual(JSON.parse(metadata.quantization), { type: "q8_0", block: 32, scale_dtype: "F32" });
  const xProj = tensors.get("backbone.layers.0.mixer.dt_proj.weight")!;
  assert.equal(xProj.dtype, "I8");
  assert.deepEqual(tensors.get("backbone.layers.0.mixer.dt_proj.weight.q8_scale")!.shape, [xProj.shape[0], 1]);
  assert.equal(tensors.get("backbone.layers.0.mixer.A_log")!.dtype, "F32");
  const loaded = await loadModel(out);
  assert.equal(loaded.weightDtypes.I8, undefined);
  assert.ok(loaded.weightDtypes.Q8_0 >= r.quantized.length);
  loaded.model.dispose();
  assert.deepEqual(await logitsOf(out, {}, dir), await logitsOf(dir, { quantize: "q8" }));

  const keep = freshDir("aot");
  const r2 = await quantizeModelDir(dir, keep, { quantizeEmbeddings: false });
  assert.equal(r2.quantized.length, r.quantized.length - 2, "embedding and untied LM head left out");
  assert.ok(r2.kept.includes("backbone.embeddings.weight") && r2.kept.includes("lm_head.weight"));
});

test("quantizeModelDir: a torch checkpoint with a tied LM head saved anyway becomes q8 safetensors without it", async () => {
  const dir = join(LOCAL_FIXTURES, "mamba-tiny-ssm-bf16");
  const out = freshDir("aot");
  const r = await quantizeModelDir(dir, out);
  assert.deepEqual(r.dropped, ["lm_head.weight"]);
  assert.ok(!existsSync(join(out, "pytorch_model.bin")));
  assert.deepEqual(await logitsOf(out, {}, dir), await logitsOf(dir, { quantize: "q8" }));
});

/** The q8 copy of mamba-tiny with its safetensors tensors edited by `edit`. */
async function editedQ8Copy(edit: (t: Map<string, RawTensor>) => void): Promise<string> {
  const base = freshDir("q8base");
  await quantizeModelDir(conformanceDir("mamba-tiny"), base);
  const src = await openFileSource(join(base, "model.safetensors"));
  const { metadata, tensors } = await readSafetensors(src);
  await src.close();
  edit(tensors);
  const out = freshDir("edited");
  mkdirSync(out);
  await writeSafetensorsFile(join(out, "model.safetensors"), tensors, metadata);
  copyFileSync(join(base, "config.json"), join(out, "config.json"));
  return out;
}

async function rejects(p: Promise<unknown>, ...fragments: (string | RegExp)[]): Promise<void> {
  await assert.rejects(p, (e: unknown) => {
    assert.ok(e instanceof HippoError, `expected a HippoError, got ${e}`);
    for (const f of fragments) {
      if (typeof f === "string") assert.ok(e.message.includes(f), `'${e.message}' lacks '${f}'`);
      else assert.match(e.message, f);
    }
    return true;
  });
}

test("q8 checkpoints: scales of the wrong shape or dtype, I8 without scales, non-I8 values, −128 are clear errors", async () => {
  const W = "backbone.layers.1.mixer.in_proj.weight";
  const S = `${W}.q8_scale`;
  const wrongShape = await editedQ8Copy((t) => { t.set(S, fromFloat32(new Float32Array(256 * 3), [256, 3], "F32")); });
  await rejects(loadModel(wrongShape), S, "[256, 3]", "expected [256, 2]", "block of 32");
  const noScale = await editedQ8Copy((t) => { t.delete(S); });
  await rejects(loadModel(noScale), W, "is I8", S);
  const i8Scale = await editedQ8Copy((t) => { t.set(S, { dtype: "I8", shape: [256, 2], bytes: new Uint8Array(512) }); });
  await rejects(loadModel(i8Scale), S, "I8", "F32");
  const f32Values = await editedQ8Copy((t) => { t.set(W, fromFloat32(new Float32Array(256 * 64), [256, 64], "F32")); });
  await rejects(loadModel(f32Values), W, "F32", "expected I8");
  const nanScale = await editedQ8Copy((t) => { t.set(S, fromFloat32(new Float32Array(512).fill(Number.NaN), [256, 2], "F32")); });
  await rejects(loadModel(nanScale), S, "non-finite");
  const minus128 = await editedQ8Copy((t) => {
    const bytes = new Uint8Array(256 * 64);
    bytes[300] = 0x80; // −128
    t.set(W, { dtype: "I8", shape: [256, 64], bytes });
  });
  await rejects(loadModel(minus128), W, "−128", "flat index 300", "−127..127");
});

test("quantize: unknown types, an already-quantized directory and an occupied --out are refused", async () => {
  const dir = conformanceDir("mamba-tiny");
  await rejects(quantizeModelDir(dir, freshDir("x"), { type: "q4" }), "unknown quantization type 'q4'", "q8");
  await rejects(loadModel(dir, { quantize: "int4" as "q8" }), "unknown quantization type 'int4'");
  const q = freshDir("q");
  await quantizeModelDir(dir, q);
  const again = freshDir("again");
  await rejects(quantizeModelDir(q, again), "already quantized", ".q8_scale");
  await rejects(quantizeModelDir(dir, q), "not empty");
  await rejects(quantizeModelDir(dir, dir), "model directory itself");
  // Nothing is left behind by a refused run.
  assert.ok(!existsSync(again));
  assert.deepEqual(readdirSync(tmp).filter((n) => n.includes(".tmp-")), []);
});
