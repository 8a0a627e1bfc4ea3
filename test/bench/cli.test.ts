import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { test } from "node:test";
import type { BenchResults } from "../../src/bench/types.js";
import { hippo } from "../cli/run-cli.js";

const tmp = mkdtempSync(join(tmpdir(), "hippo-bench-"));

/** Every user error: exit code 1, one line on stderr naming the problem, no stack trace, nothing run. */
function expectError(args: string[], pattern: RegExp): void {
  const r = hippo("bench", ...args);
  assert.equal(r.code, 1, `expected exit 1 for ${args.join(" ")}, got ${r.code}\n${r.stderr}`);
  const lines = r.stderr.trim().split("\n").filter((l) => !l.startsWith("[bench]"));
  assert.equal(lines.length, 1, `expected one error line, got:\n${r.stderr}`);
  assert.match(lines[0], /^hippo: /);
  assert.doesNotMatch(r.stderr, /\n\s+at /);
  assert.match(lines[0], pattern);
}

const out = (name: string) => join(tmp, name);

test("bench --quick at the tiny size writes the report, plots and JSON", () => {
  const dir = out("tiny");
  const r = hippo("bench", "--quick", "--size", "tiny", "--out", dir);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /wrote .*README\.md, report\.html, results\.json and 10 plots/);
  assert.match(r.stderr, /\[bench\] \d+\/\d+ /, "progress lines on stderr");
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as BenchResults;
  assert.equal(results.schema, "hippo-bench-1");
  assert.deepEqual(results.models.map((m) => m.name), ["h3", "mamba", "mamba2", "transformer", "hybrid"]);
  for (const m of results.models) {
    assert.ok(results.prefill.some((p) => p.model === m.name && p.source === "measured"));
    assert.ok(results.prefill.some((p) => p.model === m.name && p.source === "projected" && p.length === 65536));
    assert.ok(results.decode.some((d) => d.model === m.name && d.batch > 1));
    assert.ok(results.roofline.some((x) => x.model === m.name && x.phase === "decode"));
    assert.ok(m.weightBytes > 0 && m.parameters > 0);
  }
  assert.ok(results.findings.length > 5);
  assert.ok(results.budget.rows.length > 0 && results.memory.length > 0);
  const transformer = results.models.find((m) => m.name === "transformer")!;
  assert.equal(transformer.stateBytesPerSequence, 0);
  assert.ok(transformer.kvBytesPerToken > 0);
  const svgs = readdirSync(join(dir, "plots")).filter((f) => f.endsWith(".svg"));
  assert.equal(svgs.length, 10);
  for (const f of svgs) assert.match(readFileSync(join(dir, "plots", f), "utf8"), /^<svg /);
  const md = readFileSync(join(dir, "README.md"), "utf8");
  for (const [, path] of md.matchAll(/!\[[^\]]*\]\(([^)]+)\)/g)) assert.ok(existsSync(join(dir, path)), `README.md links ${path}`);
  const html = readFileSync(join(dir, "report.html"), "utf8");
  assert.equal(html.match(/<svg /g)?.length, 10, "report.html inlines every plot");
  assert.ok(readdirSync(dir).every((f) => !f.includes(".tmp-")), "no temporary files left");

  // --from writes the same report again without measuring anything.
  const again = out("again");
  const r2 = hippo("bench", "--from", join(dir, "results.json"), "--out", again);
  assert.equal(r2.code, 0, r2.stderr);
  assert.equal(readFileSync(join(again, "README.md"), "utf8"), md);
  assert.doesNotMatch(r2.stderr, /\[bench\]/);
});

test("bench --model <dir>: model directories run as they are, every layer", () => {
  const dir = out("dirs");
  const r = hippo("bench", "--quick", "--model", "models/hippo-demo", "--model", "test/fixtures/llama-tiny", "--out", dir,
    "--prefill-lengths", "8,16", "--decode-contexts", "8,32", "--decode-batches", "1,2", "--decode-batch-context", "8",
    "--prefill-batch-length", "8", "--memory-contexts", "64,1K");
  assert.equal(r.code, 0, r.stderr);
  const results = JSON.parse(readFileSync(join(dir, "results.json"), "utf8")) as BenchResults;
  assert.deepEqual(results.models.map((m) => m.name), ["hippo-demo", "llama-tiny"]);
  for (const m of results.models) assert.deepEqual(m.layers, m.measuredLayers);
  assert.ok(results.findings.some((f) => f.includes("llama-tiny")));
});

test("bench: bad input is one clear line", () => {
  expectError(["--quick"], /bench: --out is required/);
  expectError(["--out", out("x"), "--models", "mamba,gpt5"], /unknown model 'gpt5' \(models: h3, mamba, mamba2, transformer, hybrid, hybrid:<pattern>; or --model <dir>\)/);
  expectError(["--out", out("x"), "--backend", "nosuch"], /backend 'nosuch'/);
  expectError(["--out", out("x"), "--size", "huge"], /unknown --size 'huge'/);
  expectError(["--out", out("x"), "--models", "hybrid:M?"], /unknown letter '\?'/);
  expectError(["--out", out("x"), "--prefill-lengths", "256,12x"], /--prefill-lengths: '12x' is not a positive whole number of tokens/);
  expectError(["--out", out("x"), "--memory-budget", "lots"], /--memory-budget must be a size such as 16GiB/);
  expectError(["--out", out("x"), "--size", "tiny", "--quick", "--models", "mamba", "--memory-budget", "1KB"],
    /model 'mamba' needs .* for its weights alone; --memory-budget 1000 B cannot hold it/);
  expectError(["--out", out("x"), "--size", "tiny", "--quick", "--models", "mamba", "--prefill-lengths", "300M"],
    /prefill of 314572800 tokens on 'mamba' needs about .* of activations; this machine has .* free/);
  expectError(["--out", out("x"), "--model", join(tmp, "missing")], /model directory does not exist/);
  expectError(["--out", out("x"), "--frobnicate"], /bench: Unknown option '--frobnicate'/);
  expectError(["--out", out("x"), "--from", join(tmp, "nope.json")], /--from .*nope\.json: cannot read it/);
  const file = join(tmp, "a-file");
  writeFileSync(file, "not a directory");
  expectError(["--out", file, "--quick"], /--out .*a-file: exists and is not a directory/);
  expectError(["--out", out("y"), "--from", file], /--from .*a-file: not JSON/);
});
