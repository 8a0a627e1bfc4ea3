import { CpuBackend } from "../cpu/index.js";
import { WasmCpuBackend } from "./index.js";

/**
 * The fastest CPU backend a browser page (or worker) can have: the WebAssembly SIMD kernels with
 * `threads` threads (default: the machine's logical cores), of which all but the calling one are Web
 * Workers — on cross-origin-isolated pages (served with `Cross-Origin-Opener-Policy: same-origin` and
 * `Cross-Origin-Embedder-Policy: require-corp`), where shared memory exists. Elsewhere it is the
 * TypeScript reference backend, which gives the same results more slowly.
 */
export async function createCpuBackend(options: { threads?: number } = {}): Promise<CpuBackend> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  const threads = options.threads ?? nav?.hardwareConcurrency ?? 1;
  return (await WasmCpuBackend.createAsync(threads)) ?? new CpuBackend();
}
