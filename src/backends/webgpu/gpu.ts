// WebGPU types (GPUDevice, GPUBuffer, …) come from @webgpu/types, which the `webgpu` package pulls in.
import type {} from "webgpu";

/** Numeric GPUBufferUsage / GPUMapMode flags (the named globals exist only after Dawn's globals are installed). */
export const USAGE = { MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80 } as const;
export const MAP_READ = 0x1;

/** Storage buffers one kernel binds at most (the scan and SSD kernels); adapters must offer this many. */
export const STORAGE_BUFFERS_NEEDED = 10;

export interface GpuHandle {
  device: GPUDevice;
  adapterInfo: { vendor: string; architecture: string; description: string; isFallbackAdapter: boolean };
  features: string[];
}

let nodeGpu: Promise<GPU | null> | null = null;

/** navigator.gpu in browsers; in Node, the `webgpu` npm package (Dawn). null when neither is there. */
export async function gpuEntryPoint(): Promise<GPU | null> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu) return nav.gpu;
  const proc = (globalThis as { process?: { versions?: { node?: string }; env: Record<string, string | undefined> } }).process;
  if (!proc?.versions?.node) return null;
  nodeGpu ??= (async () => {
    // Vulkan loaders complain on stderr when XDG_RUNTIME_DIR is unset; any writable folder will do.
    if (!proc.env.XDG_RUNTIME_DIR) proc.env.XDG_RUNTIME_DIR = (await import("node:os")).tmpdir();
    try {
      // Browser bundles never get here (navigator.gpu); mark `webgpu` external when bundling for them.
      const mod = (await import("webgpu")) as { create(options: string[]): GPU };
      // HIPPO_WEBGPU_FLAGS: Dawn options, e.g. "disable-dawn-features=timestamp_quantization" for profiling.
      const flags = proc.env.HIPPO_WEBGPU_FLAGS ? proc.env.HIPPO_WEBGPU_FLAGS.split(/\s+/).filter(Boolean) : [];
      return mod.create(flags);
    } catch {
      return null;
    }
  })();
  return nodeGpu;
}

/** The best adapter, or null. */
export async function requestAdapter(): Promise<GPUAdapter | null> {
  const gpu = await gpuEntryPoint();
  if (!gpu) return null;
  return gpu.requestAdapter({ powerPreference: "high-performance" }).catch(() => null);
}

function adapterInfo(adapter: GPUAdapter): GpuHandle["adapterInfo"] {
  const info = adapter.info as GPUAdapterInfo & { isFallbackAdapter?: boolean };
  const legacy = (adapter as { isFallbackAdapter?: boolean }).isFallbackAdapter;
  return {
    vendor: info?.vendor ?? "",
    architecture: info?.architecture ?? "",
    description: info?.description ?? "",
    isFallbackAdapter: Boolean(info?.isFallbackAdapter ?? legacy ?? false),
  };
}

/** Whether a hardware (non-fallback) adapter exists: the condition for choosing WebGPU by default. */
export async function hasHardwareAdapter(): Promise<boolean> {
  const adapter = await requestAdapter();
  return adapter !== null && !adapterInfo(adapter).isFallbackAdapter;
}

/** A device with the adapter's largest buffer, storage and workgroup limits; null when no adapter exists. */
export async function requestDevice(adapter?: GPUAdapter | null): Promise<GpuHandle | null> {
  const a = adapter ?? (await requestAdapter());
  if (!a) return null;
  const l = a.limits;
  if (l.maxStorageBuffersPerShaderStage < STORAGE_BUFFERS_NEEDED) {
    throw new Error(`WebGPU adapter offers ${l.maxStorageBuffersPerShaderStage} storage buffers per shader stage; Hippo needs ${STORAGE_BUFFERS_NEEDED}`);
  }
  const requiredLimits: Record<string, number> = {
    maxStorageBufferBindingSize: l.maxStorageBufferBindingSize,
    maxBufferSize: l.maxBufferSize,
    maxStorageBuffersPerShaderStage: l.maxStorageBuffersPerShaderStage,
    maxComputeWorkgroupStorageSize: l.maxComputeWorkgroupStorageSize,
    maxComputeInvocationsPerWorkgroup: l.maxComputeInvocationsPerWorkgroup,
    maxComputeWorkgroupSizeX: l.maxComputeWorkgroupSizeX,
    maxComputeWorkgroupsPerDimension: l.maxComputeWorkgroupsPerDimension,
  };
  const wanted = ["timestamp-query", "subgroups"] as const;
  const requiredFeatures = wanted.filter((f) => a.features.has(f)) as GPUFeatureName[];
  const device = await a.requestDevice({ requiredLimits, requiredFeatures });
  return { device, adapterInfo: adapterInfo(a), features: [...device.features] as string[] };
}
