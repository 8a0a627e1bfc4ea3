// Hippo in a browser: headless Chromium (Debian's package, SwiftShader's Vulkan as its WebGPU adapter)
// loads conformance fixtures from their files' bytes with loadModelFromFiles and runs them on the WebGPU
// backend over navigator.gpu. Logits within 1e-4 relative L2 of the references, greedy ids exact.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, resolve, sep } from "node:path";
import { test } from "node:test";
import { conformanceDir } from "../fixtures.js";

const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
const FIXTURES = ["mamba-tiny", "mamba2-tiny", "hybrid-tiny"];
const TYPES: Record<string, string> = { ".js": "text/javascript", ".html": "text/html", ".json": "application/json" };

const missing = existsSync(CHROMIUM) ? false : `no Chromium at ${CHROMIUM} (apt-get install chromium, or set CHROMIUM)`;
if (missing && process.env.CI) throw new Error(`CI: the browser test needs Chromium: ${missing}`);

interface PageResult {
  ok: boolean;
  error?: string;
  adapter?: string;
  results: { name: string; logitsShape: number[]; relL2: number; greedy: number[]; expected: number[] }[];
}

/** Serves the page, the compiled library (dist/) and the fixtures' files; resolves with what the page posts. */
function serve(): Promise<{ url: string; result: Promise<PageResult>; close: () => void }> {
  let deliver!: (r: PageResult) => void;
  const result = new Promise<PageResult>((done) => (deliver = done));
  const roots: [string, string][] = [["/dist/", resolve("dist")], ...FIXTURES.map((n): [string, string] => [`/fixture/${n}/`, conformanceDir(n)])];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (req.method === "POST" && path === "/result") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => { res.end("ok"); deliver(JSON.parse(body) as PageResult); });
      return;
    }
    let file: string | null = path === "/index.html" ? resolve("test/browser/page.html") : null;
    for (const [prefix, dir] of roots) {
      if (!file && path.startsWith(prefix)) {
        const candidate = resolve(dir, path.slice(prefix.length));
        if (candidate.startsWith(dir + sep)) file = candidate;
      }
    }
    if (!file || !existsSync(file)) {
      res.statusCode = 404;
      res.end();
      return;
    }
    res.setHeader("content-type", TYPES[extname(file)] ?? "application/octet-stream");
    res.end(readFileSync(file));
  });
  return new Promise((ready) => server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo;
    ready({ url: `http://127.0.0.1:${port}/index.html?fixtures=${FIXTURES.join(",")}`, result, close: () => server.close() });
  }));
}

test("in headless Chromium: fixtures load from bytes and run on WebGPU (navigator.gpu) to the reference logits and greedy ids", { skip: missing, timeout: 240_000 }, async () => {
  const { url, result, close } = await serve();
  const profile = mkdtempSync(join(tmpdir(), "hippo-chromium-"));
  const browser = spawn(CHROMIUM, [
    "--headless=new", "--no-sandbox", "--disable-gpu-sandbox", "--no-first-run", `--user-data-dir=${profile}`,
    "--enable-unsafe-webgpu", "--enable-features=Vulkan", "--use-vulkan=swiftshader", "--use-webgpu-adapter=swiftshader", url,
  ], { stdio: ["ignore", "ignore", "pipe"], detached: true });
  let stderr = "";
  browser.stderr.on("data", (c) => (stderr = (stderr + c).slice(-4000)));
  const exited = new Promise<void>((done) => browser.once("exit", () => done()));
  try {
    const timeout = new Promise<never>((_, fail) => setTimeout(() => fail(new Error(`no result from the page in 200 s; Chromium said:\n${stderr}`)), 200_000).unref());
    const page = await Promise.race([result, timeout]);
    assert.ok(page.ok, page.error);
    assert.equal(page.results.length, FIXTURES.length);
    for (const r of page.results) {
      assert.ok(r.relL2 < 1e-4, `${r.name}: logits relative L2 ${r.relL2} (adapter ${page.adapter})`);
      assert.deepEqual(r.greedy, r.expected, `${r.name}: greedy ids`);
    }
  } finally {
    // Chromium's helper processes keep writing into the profile for a moment after the kill: wait for the
    // browser to exit, then remove with retries (a bare rmSync failed in CI with ENOTEMPTY).
    try {
      process.kill(-browser.pid!, "SIGKILL"); // the whole process group: renderer and GPU processes too
    } catch {
      browser.kill("SIGKILL");
    }
    close();
    await Promise.race([exited, new Promise<void>((done) => setTimeout(done, 10_000).unref())]);
    try {
      rmSync(profile, { recursive: true, force: true, maxRetries: 10, retryDelay: 200 });
    } catch (err) {
      console.warn(`left Chromium's profile ${profile} behind: ${(err as Error).message}`); // cleanup, not the result
    }
  }
});
