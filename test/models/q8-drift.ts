// Drift of q8 weights against the PyTorch reference on a fixture: relative L2 of the full-forward logits,
// agreement of their per-position argmax, and the greedy continuation through the recurrent path.
// Shared by test/models/q8-drift.test.ts and bench/q8-drift.ts.
import { join } from "node:path";
import { generateAll } from "../../src/generate/generate.js";
import { loadModel } from "../../src/models/load.js";
import { tensor } from "../../src/ops/index.js";
import { CONFORMANCE, modelFixtureDirs, readReferenceIo, relativeL2 } from "../fixtures.js";

/** Every language-model fixture with reference logits: modelFixtureDirs() plus the H3 LM. */
export function driftFixtureDirs(): string[] {
  return [...modelFixtureDirs(), join(CONFORMANCE, "h3-lm-tiny")];
}

export interface Drift {
  /** ‖logits − ref‖ / ‖ref‖ over the full forward pass. */
  relL2: number;
  /** Positions whose logits argmax equals the reference's, out of `positions`. */
  argmaxAgree: number;
  positions: number;
  /** Leading greedy tokens (recurrent path) equal to the reference continuation, out of `greedyTokens`. */
  greedyPrefix: number;
  /** Greedy tokens equal position by position. */
  greedyAgree: number;
  greedyTokens: number;
}

function argmaxRows(logits: Float32Array, V: number): number[] {
  const out: number[] = [];
  for (let o = 0; o < logits.length; o += V) {
    let best = 0;
    for (let v = 1; v < V; v++) if (logits[o + v] > logits[o + best]) best = v;
    out.push(best);
  }
  return out;
}

/** Loads `dir` with the given quantization and measures its drift against the fixture's reference. */
export async function measureDrift(dir: string, opts: { quantize?: "q8"; quantizeEmbeddings?: boolean } = {}): Promise<Drift> {
  const { model } = await loadModel(dir, { quantize: opts.quantize, quantizeEmbeddings: opts.quantizeEmbeddings });
  try {
    const io = await readReferenceIo(dir);
    const out = model.forward(tensor(io.inputIds, io.inputShape, { dtype: "i32" }), null, { logits: "all" });
    const logits = await out.logits!.readFloat32();
    const V = model.vocabSize;
    const got = argmaxRows(logits, V);
    const ref = argmaxRows(io.logits, V);
    const expected = io.greedyIds.slice(io.promptIds.length);
    const [result] = await generateAll(model, [io.promptIds], {
      maxNewTokens: expected.length, sampling: { temperature: 0 }, eosTokenId: null,
    });
    let prefix = 0;
    while (prefix < expected.length && result.tokens[prefix] === expected[prefix]) prefix++;
    return {
      relL2: relativeL2(logits, io.logits),
      argmaxAgree: got.filter((t, i) => t === ref[i]).length,
      positions: ref.length,
      greedyPrefix: prefix,
      greedyAgree: expected.filter((t, i) => result.tokens[i] === t).length,
      greedyTokens: expected.length,
    };
  } finally {
    model.dispose();
  }
}
