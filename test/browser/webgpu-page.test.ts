// Hippo in a browser: headless Chromium (Debian's package, SwiftShader's Vulkan as its WebGPU adapter)
// loads conformance fixtures from their files' bytes with loadModelFromFiles and runs them on the WebGPU
// backend over navigator.gpu, and on the WebAssembly CPU backend with a Web Worker helper thread (the
// pages are served cross-origin isolated, as shared memory requires). Logits within 1e-4 relative L2 of
// the references, greedy ids exact.
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
  /** CPU page: whether the page was cross-origin isolated, helpers started, chunks they ran. */
  isolated?: boolean;
  readyHelpers?: number;
  helperChunks?: number;
  results: { name: string; logitsShape: number[]; relL2: number; greedy: number[]; expected: number[] }[];
}

/** Serves `page`, the compiled library (dist/) and the fixtures' files; resolves with what the page posts. */
function serve(page: string): Promise<{ url: string; result: Promise<PageResult>; close: () => void }> {
  let deliver!: (r: PageResult) => void;
  const result = new Promise<PageResult>((done) => (deliver = done));
  const roots: [string, string][] = [
    ["/dist/", resolve("dist")], ["/page/", resolve("test/browser")], ...FIXTURES.map((n): [string, string] => [`/fixture/${n}/`, conformanceDir(n)]),
  ];
  const server = createServer((req, res) => {
    const path = decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname);
    if (req.method === "POST" && path === "/result") {
      let body = "";
      req.on("data", (c) => (body += c));
      req.on("end", () => { res.end("ok"); deliver(JSON.parse(body) as PageResult); });
      return;
    }
    let file: string | null = path === "/index.html" ? resolve(page) : null;
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
    // Cross-origin isolation: what makes SharedArrayBuffer (the CPU backend's shared memory) exist.
    res.setHeader("cross-origin-opener-policy", "same-origin");
    res.setHeader("cross-origin-embedder-policy", "require-corp");
    res.end(readFileSync(file));
  });
  return new Promise((ready) => server.listen(0, "127.0.0.1", () => {
    const { port } = server.address() as AddressInfo;
    ready({ url: `http://127.0.0.1:${port}/index.html?fixtures=${FIXTURES.join(",")}`, result, close: () => server.close() });
  }));
}

/** Opens `page` in headless Chromium and returns what it posts (its checks are the caller's). */
async function inChromium(page: string): Promise<PageResult> {
  const { url, result, close } = await serve(page);
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
    return await Promise.race([result, timeout]);
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
}

function checkFixtures(page: PageResult, what: string): void {
  assert.ok(page.ok, page.error);
  assert.equal(page.results.length, FIXTURES.length);
  for (const r of page.results) {
    assert.ok(r.relL2 < 1e-4, `${what}, ${r.name}: logits relative L2 ${r.relL2}`);
    assert.deepEqual(r.greedy, r.expected, `${what}, ${r.name}: greedy ids`);
  }
}

test("in headless Chromium: fixtures load from bytes and run on WebGPU (navigator.gpu) to the reference logits and greedy ids", { skip: missing, timeout: 240_000 }, async () => {
  const page = await inChromium("test/browser/page.html");
  checkFixtures(page, `WebGPU (adapter ${page.adapter})`);
});

test("in headless Chromium: the WebAssembly CPU backend with a Web Worker helper runs the fixtures to the reference logits and greedy ids", { skip: missing, timeout: 240_000 }, async () => {
  const page = await inChromium("test/browser/cpu-page.html");
  checkFixtures(page, "wasm CPU, 2 threads");
  assert.equal(page.isolated, true, "the page was not cross-origin isolated");
  assert.equal(page.readyHelpers, 1, "the Web Worker helper never started");
  assert.ok((page.helperChunks ?? 0) > 0, `the helper ran no chunks (${page.helperChunks})`);
});
