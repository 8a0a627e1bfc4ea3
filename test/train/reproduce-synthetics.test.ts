// The synthetics script spreads one schedule over several time-limited calls (--minutes, then --resume):
// the pieces must add up to the uninterrupted run.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const SCRIPT = resolve("dist/scripts/reproduce-synthetics.js");
const FLAGS = ["--only", "associative-recall/mamba2", "--steps", "4", "--warmup", "1", "--lr", "1e-3", "--eval-every", "2", "--checkpoint-every", "1"];

function script(out: string, ...extra: string[]): string {
  const r = spawnSync(process.execPath, [SCRIPT, "--out", out, ...FLAGS, ...extra], { encoding: "utf8", timeout: 120_000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stderr;
}

interface Record { updatesDone: number; seconds: number; exactMatch: number; log: { type: string; step: number; loss: number }[] }
const record = (out: string): Record => JSON.parse(readFileSync(join(out, "runs", "associative-recall--mamba2.json"), "utf8"));

test("reproduce-synthetics: --minutes then --resume gives the uninterrupted run's losses", () => {
  const dir = mkdtempSync(join(tmpdir(), "hippo-synth-"));
  try {
    const straight = join(dir, "straight");
    script(straight);
    const split = join(dir, "split");
    script(split, "--minutes", "0"); // stops after its first update
    assert.equal(record(split).updatesDone, 1);
    const skipped = script(split, "--minutes", "0"); // a saved record without --resume is not run again
    assert.doesNotMatch(skipped, /updates|resuming/);
    assert.match(script(split, "--resume", "--minutes", "0"), /resuming at update 1 of 4/);
    assert.equal(record(split).updatesDone, 2);
    const firstSeconds = record(split).seconds;
    assert.match(script(split, "--resume"), /resuming at update 2 of 4/);
    const a = record(straight);
    const b = record(split);
    assert.equal(b.updatesDone, 4);
    assert.ok(b.seconds > firstSeconds, "seconds add up over the pieces");
    const losses = (r: Record) => r.log.filter((e) => e.step % 2 === 0).map((e) => `${e.type}@${e.step}:${e.loss}`);
    assert.deepEqual(losses(b), losses(a));
    assert.equal(b.exactMatch, a.exactMatch);
    // A finished run is not resumed again.
    assert.doesNotMatch(script(split, "--resume"), /resuming/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
