/**
 * Checkpoint key names of H3 language models: SSMLMHeadModel's state_dict (what H3 checkpoints and Hippo
 * use), plus the renaming SSMLMHeadModel.load_state_dict applies to the H3 team's older checkpoints and
 * the 'model.' prefix of PyTorch Lightning checkpoints (examples/generate_text_h3.py strips it).
 */
export const H3_KEYS = {
  embedding: "backbone.embeddings.word_embeddings.weight",
  layer: (i: number): string => `backbone.layers.${i}`,
  lnF: "backbone.ln_f",
  lmHead: "lm_head.weight",
} as const;

/** Names inside one H3 mixer (relative to `<layer>.mixer`). */
export const H3_MIXER_KEYS = {
  q: "q_proj", k: "k_proj", v: "v_proj", out: "output_linear",
  shiftB: "ssm_k_kernel.kernel.B", shiftC: "ssm_k_kernel.kernel.C", shiftD: "ssm_k_D",
  logDt: "kernel.kernel.log_dt", invAReal: "kernel.kernel.inv_A_real", AImag: "kernel.kernel.A_imag",
  B: "kernel.kernel.B", C: "kernel.kernel.C", D: "D",
} as const;

/** `prefix.name`, or `name` alone for an empty prefix (a bare layer's state_dict). */
export function key(prefix: string, name: string): string {
  return prefix ? `${prefix}.${name}` : name;
}

/**
 * Maps the names a checkpoint actually has to the canonical names above, following
 * SSMLMHeadModel.load_state_dict: 's4seq.encoder.' → 'backbone.', 'embedding.' → the word embeddings,
 * 'backbone.norm' → 'backbone.ln_0'; and when 'backbone.ln_0' exists (old block order: mixer → add → LN),
 * every LayerNorm moves one slot: ln_0 → layers.0.norm1, layers.l.norm1 → layers.l.norm2,
 * layers.l.norm2 → layers.(l+1).norm1, and the last layer's norm2 → ln_f.
 * Returns canonical name → stored name (only for names that differ).
 */
export function legacyH3Names(stored: readonly string[], nLayer: number): Map<string, string> {
  // Lightning checkpoints prefix the model's keys with 'model.' (and may hold other entries beside them).
  const bare = stored.some((n) => /^(backbone|s4seq|embedding)\./.test(n));
  const strip = (n: string) => (!bare && n.startsWith("model.") ? n.slice("model.".length) : n);
  const step1 = (n: string) => strip(n)
    .replace(/^s4seq\.encoder\./, "backbone.")
    .replace(/^embedding\./, "backbone.embeddings.word_embeddings.")
    .replace(/^backbone\.norm/, "backbone.ln_0");
  const renamed = stored.map((n) => [n, step1(n)] as const);
  const oldOrder = renamed.some(([, n]) => n === "backbone.ln_0.weight");
  const reorder = (n: string): string => {
    if (!oldOrder) return n;
    if (n.startsWith("backbone.ln_0.")) return `backbone.layers.0.norm1.${n.slice("backbone.ln_0.".length)}`;
    const m = /^backbone\.layers\.(\d+)\.norm([12])\.(.*)$/.exec(n);
    if (!m) return n;
    const l = Number(m[1]);
    if (m[2] === "1") return `backbone.layers.${l}.norm2.${m[3]}`;
    return l === nLayer - 1 ? `backbone.ln_f.${m[3]}` : `backbone.layers.${l + 1}.norm1.${m[3]}`;
  };
  const map = new Map<string, string>();
  for (const [orig, n] of renamed) {
    const canonical = reorder(n);
    if (canonical !== orig) map.set(canonical, orig);
  }
  return map;
}
