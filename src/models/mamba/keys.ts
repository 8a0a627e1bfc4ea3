/**
 * Checkpoint key names of Mamba LMs. HF (`-hf` repos) and mamba_ssm share them except the embedding:
 * `backbone.embeddings.weight` (HF) vs `backbone.embedding.weight` (mamba_ssm).
 */
export const MAMBA_KEYS = {
  embedding: ["backbone.embeddings.weight", "backbone.embedding.weight"],
  layer: (i: number): string => `backbone.layers.${i}`,
  normF: "backbone.norm_f",
  lmHead: "lm_head.weight",
} as const;
