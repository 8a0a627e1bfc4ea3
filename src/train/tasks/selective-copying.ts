import { Rng } from "../../generate/rng.js";
import { COMMON_OPTIONS, formatOptions, resolveOptions, type ResolvedOptions, type TaskOptions } from "./options.js";
import { IGNORE_INDEX, randInt, SyntheticTask, type Example } from "./task.js";

/**
 * Selective copying (Mamba paper, Gu & Dao 2023, §3.1 Fig. 2 and Appendix E.1), built as the S4
 * repository's copying dataset with `variable=True` (state-spaces/s4 src/dataloaders/datasets/copying.py,
 * torch_copying_data(L, M, A, variable=True)), which the Mamba paper's task extends from:
 *   - M data tokens, each uniform in 1 .. A-2, placed in order at M distinct random positions (sorted) of
 *     the first L + M positions; every other of those positions holds the noise token 0;
 *   - then M marker tokens A-1;
 *   - at the i-th marker the model must output the i-th data token. Nothing else is scored (S4 keeps
 *     only the outputs at the last M positions), so training and test targets are the same positions.
 * seqLen = L + 2M.
 *
 * The paper's setting (Appendix E.1, as we read it): vocabulary 16 including the noise token (A = 16),
 * 16 data tokens to memorise (M = 16), sequence length 4096. We read "length 4096" as S4's l_noise
 * (L = 4096, seqLen 4128); `noiseLength: 4064` gives a total of exactly 4096. The default here is a
 * CPU-sized L = 224 (seqLen 256): pass `noiseLength: 4096` for the paper's. The paper trains on fresh
 * samples (S4's CopyingTrainDataset draws each item anew), hence numTrainExamples 0.
 */
export const SELECTIVE_COPYING_OPTIONS = {
  vocabSize: { kind: "int", default: 16, min: 3, max: 1 << 20, doc: "A: noise 0, data 1..A-2, marker A-1 (Mamba paper: 16)" },
  numTokens: { kind: "int", default: 16, min: 1, max: 1 << 20, doc: "M: data tokens to copy (Mamba paper: 16)" },
  noiseLength: {
    kind: "int", default: 224, min: 0, max: 1 << 24,
    doc: "L: noise positions among which the data tokens are spread (Mamba paper: 4096; CPU default 224)",
  },
  numTrainExamples: { kind: "int", default: 0, min: 0, doc: "fixed training pool; 0 = fresh examples (S4/Mamba: fresh)" },
  ...COMMON_OPTIONS,
} as const;

export class SelectiveCopying extends SyntheticTask {
  readonly name = "selective-copying";
  readonly vocabSize: number;
  readonly seqLen: number;
  readonly options: ResolvedOptions<typeof SELECTIVE_COPYING_OPTIONS>;
  readonly noiseToken = 0;
  readonly markerToken: number;

  constructor(options: TaskOptions = {}) {
    const o = resolveOptions("selective-copying", SELECTIVE_COPYING_OPTIONS, options);
    super({ ...o, trainTargets: "answer" });
    this.options = o;
    this.vocabSize = o.vocabSize;
    this.markerToken = o.vocabSize - 1;
    this.seqLen = o.noiseLength + 2 * o.numTokens;
  }

  describe(): string {
    return `selective-copying (Mamba §3.1 / S4 copying, variable): ${formatOptions(SELECTIVE_COPYING_OPTIONS, this.options)}; ` +
      `seqLen ${this.seqLen}; ${this.commonDescription()}`;
  }

  tokenLabel(id: number): string {
    if (id === this.noiseToken) return "_";
    if (id === this.markerToken) return "?";
    return `d${id}`;
  }

  protected generate(rng: Rng): Example {
    const { numTokens: M, noiseLength: L } = this.options;
    const span = L + M;
    const input = new Int32Array(this.seqLen);
    const target = new Int32Array(this.seqLen).fill(IGNORE_INDEX);
    // M distinct positions of [0, L+M): a partial Fisher-Yates shuffle, then sorted.
    const perm = Int32Array.from({ length: span }, (_, i) => i);
    for (let i = 0; i < M; i++) {
      const j = i + randInt(rng, span - i);
      const t = perm[i]; perm[i] = perm[j]; perm[j] = t;
    }
    const positions = perm.slice(0, M).sort();
    for (let i = 0; i < M; i++) {
      const token = 1 + randInt(rng, this.vocabSize - 2);
      input[positions[i]] = token;
      input[span + i] = this.markerToken;
      target[span + i] = token;
    }
    return { input, target, answerStart: span };
  }
}
