import { HippoError } from "../errors.js";
import type { Backend } from "./backend.js";
import { CpuBackend } from "./cpu/index.js";
import { WasmCpuBackend } from "./wasm/index.js";
import { hasHardwareAdapter } from "./webgpu/gpu.js";
import { WebGpuBackend } from "./webgpu/index.js";

const backends = new Map<string, Backend>();

/**
 * Names `createBackend` understands: a backend, or "auto" (WebGPU on a hardware GPU, else the CPU). "cpu"
 * is the fast CPU backend (WebAssembly SIMD kernels, optionally on several threads) where the runtime
 * has WebAssembly SIMD and shared memory, else the reference; "cpu-ref" is always the reference
 * (plain TypeScript kernels, one thread).
 */
export const BACKEND_NAMES = ["auto", "cpu", "cpu-ref", "webgpu"] as const;

/** The TypeScript reference kernels under their own name, for comparisons with the fast CPU backend. */
class ReferenceCpuBackend extends CpuBackend {
  override readonly name = "cpu-ref";
}

function registerCpuBackends(): void {
  if (backends.has("cpu")) return;
  registerBackend(WasmCpuBackend.create() ?? new CpuBackend());
  registerBackend(new ReferenceCpuBackend());
}

/**
 * Threads the "cpu" backend's kernels use (1 = the calling thread alone, the default for library use;
 * the CLI defaults to os.availableParallelism()). Returns the count in effect: 1 where the backend is the
 * reference or worker threads cannot start.
 */
export function setCpuThreads(n: number): number {
  registerCpuBackends();
  const cpu = backends.get("cpu");
  if (!(cpu instanceof WasmCpuBackend)) return 1;
  cpu.setThreads(n);
  return cpu.threads;
}

/** Backends register a factory-made instance under their name; the CPU backend is always there. */
export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

/** A registered backend by name. The WebGPU backend exists only after `await createBackend("webgpu")`. */
export function getBackend(name = "cpu"): Backend {
  registerCpuBackends();
  const backend = backends.get(name);
  if (backend) return backend;
  if (name === "webgpu") throw new HippoError("backend 'webgpu' is not created yet: call `await createBackend(\"webgpu\")` first");
  throw new HippoError(`backend '${name}' is not available (available: ${[...backends.keys()].join(", ")})`);
}

/**
 * On Linux, a hardware GPU shows up as a device node; without one there is nothing for WebGPU to use but a
 * software rasteriser, so "auto" need not load Dawn at all (which also keeps Vulkan loader messages away).
 */
async function mayHaveGpu(): Promise<boolean> {
  const proc = (globalThis as { process?: { platform?: string; versions?: { node?: string } } }).process;
  if (!proc?.versions?.node || proc.platform !== "linux") return true;
  const { readdir } = await import("node:fs/promises");
  const dev = await readdir("/dev").catch(() => [] as string[]);
  if (dev.some((d) => d.startsWith("nvidia"))) return true;
  const dri = await readdir("/dev/dri").catch(() => [] as string[]);
  return dri.some((d) => d.startsWith("renderD"));
}

let creating: Promise<Backend | null> | null = null;

async function webgpu(): Promise<Backend | null> {
  const have = backends.get("webgpu");
  if (have) return have;
  creating ??= WebGpuBackend.create().then((b) => {
    if (b) registerBackend(b);
    return b;
  }, () => null).finally(() => { creating = null; });
  return creating;
}

/**
 * The backend called `name`, created and registered on first use (creating a GPU device is async).
 * - "cpu": the fast CPU backend (see BACKEND_NAMES); "cpu-ref": the reference.
 * - "webgpu": a WebGPU device (navigator.gpu in browsers, the `webgpu` package in Node); a HippoError
 *   when no adapter exists.
 * - "auto" (the default): WebGPU when a hardware adapter exists, else the CPU, silently. Software adapters
 *   (SwiftShader, lavapipe) are slower than the CPU backend, so they are used only when asked for.
 */
export async function createBackend(name = "auto"): Promise<Backend> {
  if (!(BACKEND_NAMES as readonly string[]).includes(name) && !backends.has(name)) {
    throw new HippoError(`unknown backend '${name}' (choose ${BACKEND_NAMES.join(", ")})`);
  }
  if (name === "webgpu") {
    const b = await webgpu();
    if (!b) {
      throw new HippoError("backend 'webgpu': no WebGPU adapter found (in Node this needs a GPU with Vulkan/Metal/D3D12 drivers, " +
        "or a software driver such as SwiftShader named by VK_ICD_FILENAMES)");
    }
    return b;
  }
  if (name === "auto") {
    const existing = backends.get("webgpu");
    if (existing) return existing;
    if ((await mayHaveGpu()) && (await hasHardwareAdapter())) {
      const b = await webgpu();
      if (b) return b;
    }
    return getBackend("cpu");
  }
  return getBackend(name);
}

/** Same as createBackend. */
export const getBackendAsync = createBackend;

/**
 * Destroys GPU devices (so that Node can exit) and forgets them; the CPU backend stays, its worker
 * threads stopped (they are unref'd and never hold the process open; this ends them now).
 */
export function disposeBackends(): void {
  const cpu = backends.get("cpu");
  if (cpu instanceof WasmCpuBackend) cpu.dispose();
  const gpu = backends.get("webgpu");
  if (gpu instanceof WebGpuBackend) gpu.destroy();
  backends.delete("webgpu");
}
