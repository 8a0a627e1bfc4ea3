// The CLI on WebGPU: `hippo generate --backend webgpu` reproduces every fixture's greedy ids and
// `hippo forward --backend webgpu` its logits within 1e-4; `info` reports the backend.
import assert from "node:assert/strict";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join } from "node:path";
import { test } from "node:test";
import { fromInt, toFloat32 } from "../../../src/io/convert.js";
import { openFileSource } from "../../../src/io/node-file-source.js";
import { writeSafetensorsFile } from "../../../src/io/node-files.js";
import { readSafetensors } from "../../../src/io/safetensors.js";
import { hippo } from "../../cli/run-cli.js";
import { conformanceDir, modelFixtureDirs, readReferenceIo, relativeL2 } from "../../fixtures.js";
import { skip } from "./setup.js";

const tmp = mkdtempSync(join(tmpdir(), "hippo-webgpu-cli-"));

for (const dir of [...modelFixtureDirs(), conformanceDir("h3-lm-tiny")]) {
  test(`hippo generate and forward --backend webgpu: ${basename(dir)}`, { skip }, async () => {
    const io = await readReferenceIo(dir);
    const expected = io.greedyIds.slice(io.promptIds.length);
    const g = hippo("generate", "--backend", "webgpu", "--model", dir, "--prompt-ids", io.promptIds.join(","), "--temperature", "0",
      "--max-new-tokens", String(expected.length), "--json");
    assert.equal(g.code, 0, g.stderr);
    assert.deepEqual(JSON.parse(g.stdout).tokens, expected);

    const input = join(tmp, `${basename(dir)}-in.safetensors`);
    const output = join(tmp, `${basename(dir)}-out.safetensors`);
    await writeSafetensorsFile(input, { input_ids: fromInt(io.inputIds, io.inputShape, "I64") });
    const f = hippo("forward", "--backend", "webgpu", "--model", dir, "--input", input, "--output", output);
    assert.equal(f.code, 0, f.stderr);
    const src = await openFileSource(output);
    const { tensors } = await readSafetensors(src);
    await src.close();
    const err = relativeL2(toFloat32(tensors.get("logits")!, "logits"), io.logits);
    assert.ok(err < 1e-4, `relative L2 ${err}`);
  });
}

test("hippo generate --backend webgpu --no-replay steps the model every token: the same sampled tokens", { skip }, () => {
  const dir = conformanceDir("mamba2-tiny");
  const args = ["generate", "--backend", "webgpu", "--model", dir, "--prompt-ids", "3,4,5", "--temperature", "1.2", "--seed", "9", "--max-new-tokens", "12", "--json"];
  const replayed = hippo(...args);
  const stepped = hippo(...args, "--no-replay");
  assert.equal(stepped.code, 0, stepped.stderr);
  assert.deepEqual(JSON.parse(stepped.stdout).tokens, JSON.parse(replayed.stdout).tokens);
  assert.equal(JSON.parse(stepped.stdout).tokens.length, 12);
});

test("hippo info --backend webgpu names the backend; an unknown backend is a one-line error", { skip }, () => {
  const r = hippo("info", "--backend", "webgpu", "--model", conformanceDir("mamba-tiny"), "--json");
  assert.equal(r.code, 0, r.stderr);
  assert.equal(JSON.parse(r.stdout).backend, "webgpu");
  const bad = hippo("generate", "--backend", "tpu", "--model", conformanceDir("mamba-tiny"), "--prompt-ids", "1");
  assert.equal(bad.code, 1);
  assert.match(bad.stderr, /^hippo: unknown backend 'tpu'/);
});
