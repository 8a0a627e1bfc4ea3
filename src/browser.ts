// The library for browsers (and any runtime without a file system): `import … from "hippo/browser"`.
// Nothing here imports Node's modules; models load from their files' bytes, the GPU is navigator.gpu.
export { loadModelFromFiles, type ModelFiles } from "./models/load-files.js";
export type { BuildOptions, BuiltModel } from "./models/build.js";
export type { CausalLM, ForwardOptions, ForwardResult } from "./models/causal-lm.js";
export { InferenceState, type LayerState } from "./models/state.js";
export { WebGpuBackend } from "./backends/webgpu/index.js";
export { CpuBackend } from "./backends/cpu/index.js";
export { WasmCpuBackend } from "./backends/wasm/index.js";
export { createCpuBackend } from "./backends/wasm/browser-cpu.js";
export type { Backend } from "./backends/backend.js";
export { Tensor } from "./tensor/tensor.js";
export * as ops from "./ops/index.js";
export { tidy, keep } from "./ops/index.js";
export { readSafetensors } from "./io/safetensors.js";
export { bufferSource } from "./io/byte-source.js";
export { HippoError } from "./errors.js";
