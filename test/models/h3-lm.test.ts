// The H3 LM fixture (h3-lm-tiny: SSMLMHeadModel with H3 mixers and one attention layer) loaded from
// model.safetensors and from the H3 repo's model.pt: full-forward logits within 1e-4, greedy ids exact
// (library and CLI), the recurrent path's step logits; the H3 team's legacy key names; family detection;
// and bad input (a pickle asking for other globals, bad head_dim / d_state).
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { getBackend } from "../../src/backends/registry.js";
import { HippoError } from "../../src/errors.js";
import { generateAll } from "../../src/generate/generate.js";
import { toFloat32 } from "../../src/io/convert.js";
import { memoryTensorSource } from "../../src/io/memory-source.js";
import { openFileSource } from "../../src/io/node-file-source.js";
import type { RawTensor } from "../../src/io/raw-tensor.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { readEntry, readZipDirectory } from "../../src/io/torch/zip.js";
import { ConfigReader } from "../../src/models/config-json.js";
import { parseH3Config } from "../../src/models/h3/config.js";
import { legacyH3Names } from "../../src/models/h3/keys.js";
import { buildH3LM } from "../../src/models/h3/model.js";
import { loadModel } from "../../src/models/load.js";
import { findFamily } from "../../src/models/registry.js";
import { WeightLoader } from "../../src/models/weights.js";
import { tensor } from "../../src/ops/index.js";
import { hippo } from "../cli/run-cli.js";
import { conformanceDir, readReferenceIo, relativeL2 } from "../fixtures.js";
import { buildZip } from "../io/zip-builder.js";

const FIXTURE = conformanceDir("h3-lm-tiny");
const tmp = mkdtempSync(join(tmpdir(), "hippo-h3-"));

/** A copy of the fixture with only config.json and the given weights file (so the loader must use it). */
function modelDirWith(weights: string, bytes?: Uint8Array, config?: Record<string, unknown>): string {
  const dir = join(tmp, `${basename(weights)}-${Math.random().toString(36).slice(2, 8)}`);
  mkdirSync(dir);
  if (config) writeFileSync(join(dir, "config.json"), JSON.stringify(config));
  else copyFileSync(join(FIXTURE, "config.json"), join(dir, "config.json"));
  copyFileSync(join(FIXTURE, "io.safetensors"), join(dir, "io.safetensors"));
  if (bytes) writeFileSync(join(dir, weights), bytes);
  else copyFileSync(join(FIXTURE, weights), join(dir, weights));
  return dir;
}

const PT_DIR = modelDirWith("model.pt");
const fixtureConfig = (): Record<string, unknown> => JSON.parse(readFileSync(join(FIXTURE, "config.json"), "utf8"));

for (const [weights, dir] of [["model.safetensors", FIXTURE], ["model.pt", PT_DIR]] as const) {
  test(`h3-lm-tiny from ${weights}: full-forward logits match the reference within 1e-4`, async () => {
    const loaded = await loadModel(dir);
    assert.equal(basename(loaded.weightsFile), weights);
    assert.equal(loaded.model.family, "h3");
    const io = await readReferenceIo(dir);
    const out = loaded.model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32" }), null, { logits: "all" });
    const err = relativeL2(await out.logits!.readFloat32(), io.logits);
    assert.ok(err < 1e-4, `relative L2 ${err}`);
  });

  test(`h3-lm-tiny from ${weights}: greedy generation (prefill, then recurrent steps) reproduces greedy_ids`, async () => {
    const { model } = await loadModel(dir);
    const io = await readReferenceIo(dir);
    const expected = io.greedyIds.slice(io.promptIds.length);
    const [result] = await generateAll(model, [io.promptIds], { maxNewTokens: expected.length, sampling: { temperature: 0 }, eosTokenId: null });
    assert.deepEqual(result.tokens, expected);
  });

  test(`h3-lm-tiny from ${weights}: hippo generate --prompt-ids --temperature 0 --json reproduces greedy_ids`, async () => {
    const io = await readReferenceIo(dir);
    const expected = io.greedyIds.slice(io.promptIds.length);
    const r = hippo("generate", "--model", dir, "--prompt-ids", io.promptIds.join(","), "--temperature", "0",
      "--max-new-tokens", String(expected.length), "--json");
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout).tokens, expected);
  });
}

test("h3-lm-tiny: the recurrent step logits match the reference's greedy_step_logits within 1e-4", async () => {
  const { model } = await loadModel(FIXTURE);
  const io = await readReferenceIo(FIXTURE);
  const src = await openFileSource(join(FIXTURE, "io.safetensors"));
  const want = toFloat32((await readSafetensors(src)).tensors.get("greedy_step_logits")!, "greedy_step_logits");
  await src.close();
  const P = io.promptIds.length;
  const V = model.vocabSize;
  const prefill = model.forward(tensor(Int32Array.from(io.promptIds), [1, P], { dtype: "i32" }), null, { logits: "last" });
  const got = new Float32Array(want.length);
  got.set(await prefill.logits!.readFloat32(), 0);
  let state = prefill.state;
  for (let i = 1; i < want.length / V; i++) {
    const r = model.step(tensor(Int32Array.of(io.greedyIds[P + i - 1]), [1, 1], { dtype: "i32" }), state);
    got.set(await r.logits.readFloat32(), i * V);
    state = r.state;
  }
  const err = relativeL2(got, want);
  assert.ok(err < 1e-4, `relative L2 ${err}`);
});

test("legacy H3 checkpoints (s4seq.encoder., embedding., ln_0 and the old LayerNorm order, 'model.' prefix) load to the same logits", async () => {
  const src = await openFileSource(join(FIXTURE, "model.safetensors"));
  const { tensors } = await readSafetensors(src);
  await src.close();
  const nLayer = 3;
  // Inverse of SSMLMHeadModel.load_state_dict's remapping.
  const legacy = new Map<string, RawTensor>();
  for (const [name, t] of tensors) {
    if (name === "lm_head.weight") continue;
    let n = name;
    const norm = /^backbone\.layers\.(\d+)\.norm([12])\.(.*)$/.exec(n);
    if (n.startsWith("backbone.ln_f.")) n = `backbone.layers.${nLayer - 1}.norm2.${n.slice("backbone.ln_f.".length)}`;
    else if (norm && norm[2] === "2") n = `backbone.layers.${norm[1]}.norm1.${norm[3]}`;
    else if (norm && norm[1] === "0") n = `backbone.ln_0.${norm[3]}`;
    else if (norm) n = `backbone.layers.${Number(norm[1]) - 1}.norm2.${norm[3]}`;
    n = n.replace(/^backbone\.embeddings\.word_embeddings\./, "embedding.").replace(/^backbone\.ln_0\./, "backbone.norm.")
      .replace(/^backbone\./, "s4seq.encoder.");
    legacy.set(`model.${n}`, t);
  }
  assert.ok(legacy.has("model.s4seq.encoder.norm.weight") && legacy.has("model.embedding.weight"));
  const w = new WeightLoader(memoryTensorSource(legacy, "legacy.pt"), getBackend("cpu"), "legacy.pt");
  const model = await buildH3LM(parseH3Config(new ConfigReader(fixtureConfig(), "config.json")), w);
  assert.deepEqual(w.unused(), []);
  const io = await readReferenceIo(FIXTURE);
  const out = model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32" }), null, { logits: "all" });
  const err = relativeL2(await out.logits!.readFloat32(), io.logits);
  assert.ok(err < 1e-4, `relative L2 ${err}`);
});

test("legacyH3Names: Lightning 'model.' prefix (other entries beside it), old names and LayerNorm order; canonical names untouched", () => {
  const map = legacyH3Names([
    "model.s4seq.encoder.layers.0.mixer.D", "model.embedding.weight", "model.s4seq.encoder.norm.weight",
    "model.s4seq.encoder.layers.0.norm1.weight", "model.s4seq.encoder.layers.0.norm2.weight",
    "model.s4seq.encoder.layers.1.norm1.weight", "model.s4seq.encoder.layers.1.norm2.weight", "loss_scale",
  ], 2);
  assert.equal(map.get("backbone.layers.0.mixer.D"), "model.s4seq.encoder.layers.0.mixer.D");
  assert.equal(map.get("backbone.embeddings.word_embeddings.weight"), "model.embedding.weight");
  assert.equal(map.get("backbone.layers.0.norm1.weight"), "model.s4seq.encoder.norm.weight");
  assert.equal(map.get("backbone.layers.0.norm2.weight"), "model.s4seq.encoder.layers.0.norm1.weight");
  assert.equal(map.get("backbone.layers.1.norm1.weight"), "model.s4seq.encoder.layers.0.norm2.weight");
  assert.equal(map.get("backbone.layers.1.norm2.weight"), "model.s4seq.encoder.layers.1.norm1.weight");
  assert.equal(map.get("backbone.ln_f.weight"), "model.s4seq.encoder.layers.1.norm2.weight");
  assert.equal(legacyH3Names(["backbone.layers.0.norm1.weight", "backbone.ln_f.weight", "lm_head.weight"], 1).size, 0);
});

test("family detection: H3 configs with or without model_type; mamba_ssm configs stay mamba_ssm", () => {
  const family = (raw: Record<string, unknown>) => findFamily(new ConfigReader(raw, "config.json")).name;
  const h3 = fixtureConfig();
  assert.match(family(h3), /^h3/);
  const { model_type: _, ...noType } = h3;
  assert.match(family(noType), /^h3/);
  assert.match(family({ d_model: 768, n_layer: 12, vocab_size: 50257, ssm_cfg: { mode: "diag", measure: "diag-lin" }, attn_layer_idx: [6] }), /^h3/);
  assert.match(family({ d_model: 768, n_layer: 12, vocab_size: 50257, d_inner: 3072 }), /^h3/);
  const ssm = JSON.parse(readFileSync(join(conformanceDir("mamba-tiny-ssm"), "config.json"), "utf8"));
  assert.match(family(ssm), /mamba_ssm/);
  assert.match(family({ ...ssm, attn_layer_idx: [1], attn_cfg: { num_heads: 4 } }), /mamba_ssm/);
});

/** The fixture's model.pt with one global of its pickle replaced (`module\nname`). */
async function modelPtAsking(global: string): Promise<Uint8Array> {
  const file = await openFileSource(join(FIXTURE, "model.pt"));
  const entries = await readZipDirectory(file);
  const files = [];
  for (const e of entries) {
    let data = await readEntry(file, e);
    if (e.name.endsWith("data.pkl")) {
      const text = Buffer.from(data).toString("latin1").replace("ccollections\nOrderedDict\n", `c${global}\n`);
      data = Uint8Array.from(Buffer.from(text, "latin1"));
    }
    files.push({ name: e.name, data });
  }
  await file.close();
  return buildZip(files);
}

test("a model.pt whose pickle asks for any other global is refused before anything runs", async () => {
  for (const global of ["os\nsystem", "builtins\neval", "torch\nload"]) {
    const dir = modelDirWith("model.pt", await modelPtAsking(global));
    await assert.rejects(loadModel(dir), (e: Error) => {
      assert.ok(e instanceof HippoError, String(e));
      assert.match(e.message, /model\.pt/);
      assert.ok(e.message.includes(`'${global.replace("\n", ".")}'`), e.message);
      assert.match(e.message, /only tensor rebuilding is allowed/);
      return true;
    });
  }
  const r = hippo("generate", "--model", modelDirWith("model.pt", await modelPtAsking("os\nsystem")), "--prompt-ids", "1");
  assert.equal(r.code, 1);
  assert.match(r.stderr.trim(), /^hippo: .*model\.pt.*'os\.system'/);
});

test("H3 configs naming a head_dim that does not divide d_model, or an unsupported d_state, fail with clear errors", async () => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ head_dim: 3 }, /config\.json \(ssm_cfg\): head_dim 3 does not divide d_model 64/],
    [{ d_state: 63 }, /config\.json \(ssm_cfg\): d_state 63 is not supported: it must be an even integer/],
    [{ d_state: "big" }, /d_state "big" is not supported/],
    [{ mode: "nplr" }, /SSM kernel mode 'nplr' is not supported/],
  ];
  for (const [ssm, pattern] of cases) {
    const config = fixtureConfig();
    config.ssm_cfg = { ...(config.ssm_cfg as object), ...ssm };
    await assert.rejects(loadModel(modelDirWith("model.safetensors", undefined, config)), (e: Error) => e instanceof HippoError && pattern.test(e.message));
  }
  // d_state that contradicts the checkpoint: the tensor named, with both shapes.
  const config = fixtureConfig();
  config.ssm_cfg = { ...(config.ssm_cfg as object), d_state: 32 };
  await assert.rejects(loadModel(modelDirWith("model.safetensors", undefined, config)),
    /tensor 'backbone\.layers\.0\.mixer\.ssm_k_kernel\.kernel\.B' has shape \[64, 64\], expected \[64, 32\]/);
  const attn = fixtureConfig();
  attn.attn_cfg = { num_heads: 5 };
  await assert.rejects(loadModel(modelDirWith("model.safetensors", undefined, attn)), /5 attention heads do not divide d_model 64/);
});
