import type { Backend } from "./backend.js";
import type { Tensor } from "../tensor/tensor.js";

/** The sampling settings a backend sampler applies (repetition penalty stays on the host). */
export interface TokenSamplingOptions {
  temperature: number;
  topK: number;
  topP: number;
  minP: number;
}

/**
 * An optional backend capability: choosing next tokens where the logits are, so decoding reads back token
 * ids instead of [batch, vocab] logits. Semantics are sampleToken's (src/generate/sampling.ts) without the
 * repetition penalty; `uniforms` holds one number in [0, 1) per row for the inverse-CDF draw (ignored when
 * temperature is 0). Returns i32 [batch].
 */
export interface TokenSampler {
  sampleTokens(logits: Tensor, opts: TokenSamplingOptions, uniforms: Float32Array): Tensor;
}

export function tokenSamplerOf(backend: Backend): TokenSampler | null {
  const s = backend as Partial<TokenSampler>;
  return typeof s.sampleTokens === "function" ? (s as TokenSampler) : null;
}
