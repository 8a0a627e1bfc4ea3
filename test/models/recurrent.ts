import type { CausalLM } from "../../src/models/causal-lm.js";
import { tensor } from "../../src/ops/index.js";

/** Logits of every position by the recurrent path: one step per token from the empty state. */
export async function recurrentLogits(model: CausalLM, tokens: Int32Array): Promise<Float32Array> {
  const V = model.vocabSize;
  const out = new Float32Array(tokens.length * V);
  let state = model.initialState(1);
  for (let t = 0; t < tokens.length; t++) {
    const r = model.step(tensor(Int32Array.of(tokens[t]), [1, 1], { dtype: "i32" }), state);
    out.set(await r.logits.readFloat32(), t * V);
    state = r.state;
  }
  return out;
}
