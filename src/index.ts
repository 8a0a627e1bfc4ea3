/** Hippo's library API: load state-space language models, run them, generate, cache their state. */
export { loadModel, type LoadOptions, type LoadedModel } from "./models/load.js";
export type { CausalLM, ForwardOptions, ForwardResult, ModelDescription } from "./models/causal-lm.js";
export { InferenceState, type LayerState } from "./models/state.js";
export { memoryReport, formatBytes, type MemoryReport } from "./models/memory.js";
export { generate, generateAll, type GenerateOptions, type GenerateResult, type GenerateStep, type FinishReason } from "./generate/generate.js";
export { DEFAULT_SAMPLING, sampleToken, type SamplingOptions } from "./generate/sampling.js";
export { Rng } from "./generate/rng.js";
export { loadTokenizer, tokenizerFromJson, IncrementalDecoder, type TextTokenizer } from "./tokenizer/tokenizer.js";
export { Tensor } from "./tensor/tensor.js";
export type { DType } from "./tensor/dtype.js";
export * as ops from "./ops/index.js";
export { tensor, zeros, tidy, keep } from "./ops/index.js";
export { getBackend, registerBackend } from "./backends/registry.js";
export type { Backend } from "./backends/backend.js";
export { HippoError } from "./errors.js";
export { readSafetensors, encodeSafetensors } from "./io/safetensors.js";
export { MambaLM } from "./models/mamba/model.js";
export { initMambaWeights, mambaConfig, mambaHfConfigJson } from "./models/mamba/init.js";
