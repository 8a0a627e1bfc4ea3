import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import { fromInt, toFloat32 } from "../../src/io/convert.js";
import { writeSafetensorsFile } from "../../src/io/node-files.js";
import { openFileSource } from "../../src/io/node-file-source.js";
import { readSafetensors } from "../../src/io/safetensors.js";
import { conformanceDir, LOCAL_FIXTURES, readReferenceIo, relativeL2 } from "../fixtures.js";
import { hippo } from "./run-cli.js";

const DEMO = "models/hippo-demo";
const tmp = mkdtempSync(join(tmpdir(), "hippo-cli-"));

for (const dir of ["mamba-tiny", "mamba-tiny-ssm", "mamba2-tiny", "hybrid-tiny"].map(conformanceDir).concat(join(LOCAL_FIXTURES, "mamba-odd"))) {
  test(`generate --prompt-ids --temperature 0 --json reproduces greedy_ids (${dir})`, async () => {
    const io = await readReferenceIo(dir);
    const expected = io.greedyIds.slice(io.promptIds.length);
    const r = hippo("generate", "--model", dir, "--prompt-ids", io.promptIds.join(","), "--temperature", "0",
      "--max-new-tokens", String(expected.length), "--json");
    assert.equal(r.code, 0, r.stderr);
    const out = JSON.parse(r.stdout);
    assert.deepEqual(out.tokens, expected);
    assert.equal(out.finish_reason, "length");
  });

  for (const dtype of ["I64", "I32"] as const) {
    test(`forward reads ${dtype} input_ids and writes reference logits (${dir})`, async () => {
      const io = await readReferenceIo(dir);
      const input = join(tmp, `in-${dtype}.safetensors`);
      const output = join(tmp, `out-${dtype}.safetensors`);
      await writeSafetensorsFile(input, { input_ids: fromInt(io.inputIds, io.inputShape, dtype) });
      const r = hippo("forward", "--model", dir, "--input", input, "--output", output);
      assert.equal(r.code, 0, r.stderr);
      const src = await openFileSource(output);
      const { tensors } = await readSafetensors(src);
      await src.close();
      const logits = tensors.get("logits")!;
      assert.equal(logits.dtype, "F32");
      assert.deepEqual(logits.shape.slice(0, 2), io.inputShape);
      const err = relativeL2(toFloat32(logits, "logits"), io.logits);
      assert.ok(err < 1e-4, `relative L2 ${err}`);
    });
  }
}

test("batched prompts of different lengths give what each prompt gives alone (greedy)", () => {
  const dir = conformanceDir("mamba-tiny");
  const prompts = ["5,6,7,8,9,10,11", "300", "42,43,44"];
  const alone = prompts.map((p) => JSON.parse(hippo("generate", "--model", dir, "--prompt-ids", p, "--temperature", "0", "--max-new-tokens", "12", "--json").stdout).tokens);
  const r = hippo("generate", "--model", dir, ...prompts.flatMap((p) => ["--prompt-ids", p]), "--temperature", "0", "--max-new-tokens", "12", "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.deepEqual(JSON.parse(r.stdout).tokens, alone);
});

test("sampling: the same seed gives the same text, another seed other text", () => {
  const run = (seed: string) => hippo("generate", "--model", DEMO, "--prompt", "Hippos swim", "--max-new-tokens", "24",
    "--temperature", "1.2", "--top-k", "50", "--top-p", "0.9", "--min-p", "0.01", "--repetition-penalty", "1.1", "--seed", seed, "--json");
  const a = run("7");
  assert.equal(a.code, 0, a.stderr);
  assert.deepEqual(JSON.parse(run("7").stdout).tokens, JSON.parse(a.stdout).tokens);
  assert.notDeepEqual(JSON.parse(run("8").stdout).tokens, JSON.parse(a.stdout).tokens);
});

test("generate streams the prompt and its continuation as text", () => {
  const r = hippo("generate", "--model", DEMO, "--prompt", "Once upon a time", "--max-new-tokens", "10", "--seed", "1");
  assert.equal(r.code, 0, r.stderr);
  assert.ok(r.stdout.startsWith("Once upon a time"), r.stdout);
  assert.match(r.stderr, /10 generated/);
});

test("--stop ends the text before the stop string", () => {
  // Greedy on the demo model: find a piece of its continuation, then stop on it.
  const full = JSON.parse(hippo("generate", "--model", DEMO, "--prompt", "abc", "--temperature", "0", "--max-new-tokens", "30", "--ignore-eos", "--json").stdout);
  const cut = full.text.slice(5, 7);
  const r = JSON.parse(hippo("generate", "--model", DEMO, "--prompt", "abc", "--temperature", "0", "--max-new-tokens", "30", "--ignore-eos", "--stop", cut, "--json").stdout);
  assert.equal(r.finish_reason, "stop");
  assert.equal(r.text, full.text.slice(0, full.text.indexOf(cut)));
});

test("info reports parameters, dtypes, per-layer state and the KV-cache comparison", () => {
  const r = hippo("info", "--model", conformanceDir("mamba-tiny"), "--context", "4096", "--json");
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  // 512×64 embedding + 2 layers × (in 256×64, conv 128×4+128, x 36×128, dt 128×4+128, A 128×16, D 128, out 64×128, norm 64) + norm_f 64
  assert.equal(info.parameters, 512 * 64 + 2 * (256 * 64 + 128 * 4 + 128 + 36 * 128 + 128 * 4 + 128 + 128 * 16 + 128 + 64 * 128 + 64) + 64);
  assert.deepEqual(info.weight_dtypes, { F32: 22 });
  assert.equal(info.layers.length, 2);
  assert.equal(info.layers[0].state_bytes, (3 * 128 + 128 * 16) * 4);
  assert.equal(info.transformer_kv_cache_bytes.f16, 2 * 2 * 64 * 4096 * 2);
  const text = hippo("info", "--model", join(LOCAL_FIXTURES, "mamba-tiny-bf16"));
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /22 × BF16|BF16/);
  assert.match(text.stdout, /KV cache/);
});

test("help for every command", () => {
  for (const cmd of ["generate", "forward", "info"]) {
    const r = hippo(cmd, "--help");
    assert.equal(r.code, 0);
    assert.match(r.stdout, new RegExp(`hippo ${cmd}`));
  }
  assert.equal(hippo("--help").code, 0);
});

test("the demo model's tokenizer round-trips through generate's prompt", () => {
  const r = JSON.parse(hippo("generate", "--model", DEMO, "--prompt", "naïve 😀", "--max-new-tokens", "1", "--json").stdout);
  assert.deepEqual(r.prompt_ids, [...Buffer.from("naïve 😀", "utf8")]);
  assert.ok(readFileSync(join(DEMO, "tokenizer.json"), "utf8").includes("ByteLevel"));
});

test("info on a hybrid reports per-layer recurrent state and KV cache at the given context", () => {
  const r = hippo("info", "--model", conformanceDir("hybrid-tiny"), "--context", "1000", "--json");
  assert.equal(r.code, 0, r.stderr);
  const info = JSON.parse(r.stdout);
  assert.deepEqual(info.layers.map((l: { kind: string }) => l.kind), ["mamba2", "attention", "mamba2", "mlp"]);
  const mambaState = (3 * 192 + 8 * 16 * 16) * 4; // conv window [3, x+B+C channels] + SSM state [heads, head_dim, d_state]
  assert.equal(info.layers[0].state_bytes, mambaState);
  assert.equal(info.layers[1].kv_cache_bytes, 2 * 1000 * 2 * 16 * 4); // K and V, 1000 tokens, 2 KV heads × 16
  assert.equal(info.total_bytes_per_sequence, 2 * mambaState + 2 * 1000 * 2 * 16 * 4);
  const text = hippo("info", "--model", conformanceDir("hybrid-tiny"), "--context", "8192");
  assert.match(text.stdout, /KV cache 2\.00 MiB, grows with context/);
});

test("a bad hybrid pattern through the CLI is a one-line error", () => {
  const dir = mkdtempSync(join(tmpdir(), "hippo-pattern-"));
  writeFileSync(join(dir, "config.json"), JSON.stringify({ model_type: "hippo_hybrid", pattern: "M*Q", hidden_size: 8, vocab_size: 10 }));
  const r = hippo("info", "--model", dir);
  assert.equal(r.code, 1);
  assert.match(r.stderr, /^hippo: .*config\.json: unknown letter 'Q' at position 2 of pattern 'M\*Q'/);
});
