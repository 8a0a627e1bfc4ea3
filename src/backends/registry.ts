import { HippoError } from "../errors.js";
import type { Backend } from "./backend.js";
import { CpuBackend } from "./cpu/index.js";

const backends = new Map<string, Backend>();

/** Backends register a factory-made instance under their name; the CPU backend is always there. */
export function registerBackend(backend: Backend): void {
  backends.set(backend.name, backend);
}

export function getBackend(name = "cpu"): Backend {
  if (!backends.has("cpu")) registerBackend(new CpuBackend());
  const backend = backends.get(name);
  if (!backend) throw new HippoError(`backend '${name}' is not available (available: ${[...backends.keys()].join(", ")})`);
  return backend;
}
