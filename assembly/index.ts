// Hippo's WebAssembly SIMD kernels (built by scripts/build-wasm.mjs). Every export works on
// caller-owned pointers into the (shared) linear memory and on one thread's share of the work (the
// last range arguments); nothing here allocates, so instances on several threads share one memory.
export { linear_f32, linear_f16, linear_bf16, linearScratchBytes } from "./linear";
export { linear_q8, linearQ8ScratchBytes, quantize_q16, q16Bytes } from "./linear-q8";
export { selective_scan, selectiveScanScratchBytes, causal_conv1d } from "./scan";
export { ssd_step, ssd_chunked, ssdChunkedScratchBytes } from "./ssd";
export { causal_attention, attentionScratchBytes } from "./attention";
export { unary_f32, gated_rms_norm, add_norm } from "./elementwise";
export { fft_conv, fftConvScratchBytes } from "./fft";
export { matmul_strided, selective_scan_backward, selectiveScanBackwardScratchBytes, ssd_backward, ssdBackwardScratchBytes, attention_backward, attentionBackwardScratchBytes, causal_conv1d_backward, attention_forward, gelu_forward, gelu_backward } from "./train";
