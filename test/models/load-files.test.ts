// loadModelFromFiles: the browser's way in (bytes, no file system) gives loadModel's logits, and its
// module graph imports nothing a browser lacks.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { test } from "node:test";
import { getBackend } from "../../src/backends/registry.js";
import { loadModelFromFiles } from "../../src/models/load-files.js";
import { tensor } from "../../src/ops/index.js";
import { modelFixtureDirs, readReferenceIo, relativeL2 } from "../fixtures.js";

function filesOf(dir: string): Map<string, Uint8Array> {
  const files = new Map<string, Uint8Array>();
  for (const name of ["config.json", "generation_config.json", "model.safetensors"]) {
    if (existsSync(join(dir, name))) files.set(name, readFileSync(join(dir, name)));
  }
  return files;
}

for (const dir of modelFixtureDirs().filter((d) => existsSync(join(d, "model.safetensors")))) {
  test(`${basename(dir)}: loadModelFromFiles gives the reference logits`, async () => {
    const { model, unusedTensors } = await loadModelFromFiles(filesOf(dir), getBackend("cpu"));
    const io = await readReferenceIo(dir);
    const out = model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32" }), null, { logits: "all" });
    const err = relativeL2(await out.logits!.readFloat32(), io.logits);
    assert.ok(err < 1e-4, `relative L2 error ${err}`);
    assert.ok(Array.isArray(unusedTensors));
  });
}

test("loadModelFromFiles: missing or mismatched files are named", async () => {
  const dir = modelFixtureDirs()[0];
  const files = filesOf(dir);
  const cpu = getBackend("cpu");
  await assert.rejects(loadModelFromFiles({ "model.safetensors": files.get("model.safetensors")! }, cpu), /no config\.json among the files/);
  await assert.rejects(loadModelFromFiles({ "config.json": files.get("config.json")! }, cpu), /no model\.safetensors among the files \(config\.json\)/);
  const other = filesOf(modelFixtureDirs().find((d) => basename(d) === "mamba2-tiny")!);
  await assert.rejects(loadModelFromFiles({ "config.json": files.get("config.json")!, "model.safetensors": other.get("model.safetensors")! }, cpu),
    /model\.safetensors/);
  await assert.rejects(loadModelFromFiles({ "config.json": new TextEncoder().encode("{"), "model.safetensors": new Uint8Array(8) }, cpu), /config\.json/);
});

test("the browser entry (hippo/browser) imports nothing of Node's and no package (its whole static module graph)", () => {
  const entry = resolve("dist/src/browser.js");
  const seen = new Set<string>();
  const bad: string[] = [];
  const visit = (file: string) => {
    if (seen.has(file)) return;
    seen.add(file);
    const code = readFileSync(file, "utf8");
    for (const m of code.matchAll(/^\s*(?:import|export)\s[^;]*?from\s+["']([^"']+)["']|^\s*import\s+["']([^"']+)["']/gm)) {
      const spec = m[1] ?? m[2];
      if (spec.startsWith(".")) visit(resolve(dirname(file), spec));
      else bad.push(`${file}: ${spec}`);
    }
  };
  visit(entry);
  assert.ok(seen.size > 20, `walked ${seen.size} modules`);
  assert.deepEqual(bad, []);
});
