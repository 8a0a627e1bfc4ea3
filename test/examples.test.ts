import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { test } from "node:test";

test("the README's API example runs and its cached state reproduces generation from scratch", () => {
  const r = spawnSync(process.execPath, ["dist/examples/api.js"], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /forward: logits 1×9×257/);
  assert.match(r.stdout, /cached state after \d+ tokens: \d+ bytes/);
  assert.match(r.stdout, /from cache equals from scratch: true/);
});
