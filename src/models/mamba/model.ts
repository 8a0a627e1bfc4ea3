import type { Backend } from "../../backends/backend.js";
import { add, embedding, linear, selectPositions, tensor, tidy } from "../../ops/index.js";
import { check, shapeString } from "../../errors.js";
import { MambaMixer } from "../../nn/mamba-mixer.js";
import { Norm } from "../../nn/norm.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { CausalLM, ForwardOptions, ForwardResult, ModelDescription } from "../causal-lm.js";
import { InferenceState, type LayerState } from "../state.js";
import type { WeightLoader } from "../weights.js";
import type { MambaConfig } from "./config.js";
import { MAMBA_KEYS } from "./keys.js";

interface MambaBlock {
  norm: Norm;
  mixer: MambaMixer;
}

/** A Mamba language model: embedding → pre-norm residual Mamba blocks → final norm → LM head. */
export class MambaLM implements CausalLM {
  readonly family = "mamba";

  private constructor(
    readonly config: MambaConfig,
    readonly backend: Backend,
    private readonly embeddings: Tensor,
    private readonly blocks: MambaBlock[],
    private readonly normF: Norm,
    private readonly lmHead: Tensor,
    readonly parameterCount: number,
  ) {}

  get vocabSize(): number {
    return this.config.vocabSize;
  }

  get eosTokenId(): number | undefined {
    return this.config.eosTokenId;
  }

  get bosTokenId(): number | undefined {
    return this.config.bosTokenId;
  }

  static async load(config: MambaConfig, weights: WeightLoader): Promise<MambaLM> {
    const { dModel: Dm, dInner: E, dState: N, dConv: K, dtRank: R, vocabSize: V } = config;
    const why = (what: string) => `${what} from config: d_model=${Dm}, d_inner=${E}, d_state=${N}, d_conv=${K}, dt_rank=${R}, vocab=${V}`;
    const embeddings = await weights.matrix(MAMBA_KEYS.embedding, [V, Dm], why("embedding"));
    const norm = async (prefix: string): Promise<Norm> => config.rmsNorm
      ? new Norm("rms", await weights.vector(`${prefix}.weight`, [Dm], why("norm")), null, config.normEps)
      : new Norm("layer", await weights.vector(`${prefix}.weight`, [Dm], why("norm")),
        weights.has(`${prefix}.bias`) ? await weights.vector(`${prefix}.bias`, [Dm], why("norm")) : null, config.normEps);
    const blocks: MambaBlock[] = [];
    for (let i = 0; i < config.nLayer; i++) {
      const p = MAMBA_KEYS.layer(i);
      const m = `${p}.mixer`;
      const aLog = await weights.floats(`${m}.A_log`, [E, N], why("A_log"));
      const A = new Float32Array(aLog.length);
      for (let j = 0; j < A.length; j++) A[j] = -Math.exp(aLog[j]);
      const mixer = new MambaMixer({
        inProj: await weights.matrix(`${m}.in_proj.weight`, [2 * E, Dm], why("in_proj")),
        inProjBias: config.projBias ? await weights.vector(`${m}.in_proj.bias`, [2 * E], why("in_proj bias")) : null,
        // Stored [E, 1, K] (torch Conv1d, depthwise); the kernel reads it as [E, K].
        convWeight: weights.backend.upload(await weights.floats(`${m}.conv1d.weight`, [E, 1, K], why("conv1d")), [E, K], "f32"),
        convBias: config.convBias ? await weights.vector(`${m}.conv1d.bias`, [E], why("conv1d bias")) : null,
        xProj: await weights.matrix(`${m}.x_proj.weight`, [R + 2 * N, E], why("x_proj")),
        dtProj: await weights.matrix(`${m}.dt_proj.weight`, [E, R], why("dt_proj")),
        dtProjBias: await weights.vector(`${m}.dt_proj.bias`, [E], why("dt_proj bias")),
        A: weights.backend.upload(A, [E, N], "f32"),
        D: await weights.vector(`${m}.D`, [E], why("D")),
        outProj: await weights.matrix(`${m}.out_proj.weight`, [Dm, E], why("out_proj")),
        outProjBias: config.projBias ? await weights.vector(`${m}.out_proj.bias`, [Dm], why("out_proj bias")) : null,
      }, { dInner: E, dState: N, dtRank: R, dConv: K });
      blocks.push({ norm: await norm(`${p}.norm`), mixer });
    }
    const normF = await norm(MAMBA_KEYS.normF);
    const untied = !config.tieEmbeddings;
    const lmHead = untied ? await weights.matrix(MAMBA_KEYS.lmHead, [V, Dm], why("lm_head")) : embeddings;
    const perLayer = 2 * E * Dm + (config.projBias ? 3 * E : 0) + E * K + (config.convBias ? E : 0) + (R + 2 * N) * E
      + E * R + E + E * N + E + Dm * E + (config.projBias ? Dm : 0) + Dm * (config.rmsNorm ? 1 : 2);
    const params = V * Dm + config.nLayer * perLayer + Dm * (config.rmsNorm ? 1 : 2) + (untied ? V * Dm : 0);
    return new MambaLM(config, weights.backend, embeddings, blocks, normF, lmHead, params);
  }

  /** A key that identifies the architecture a state belongs to. */
  get stateKey(): string {
    const c = this.config;
    return `mamba:d${c.dModel}:l${c.nLayer}:e${c.dInner}:n${c.dState}:k${c.dConv}`;
  }

  initialState(batch: number): InferenceState {
    const layers = this.blocks.map((b): LayerState => Object.fromEntries(
      Object.entries(b.mixer.stateShapes()).map(([k, s]) => [k, this.backend.zeros([batch, ...s])])));
    return new InferenceState(layers, new Array(batch).fill(0), this.stateKey);
  }

  forward(ids: Tensor, state: InferenceState | null = null, options: ForwardOptions = {}): ForwardResult {
    check(ids.rank === 2 && ids.dtype === "i32", `forward: ids must be i32 [batch, length], got ${ids.dtype} ${shapeString(ids.shape)}`);
    const [B, L] = ids.shape;
    check(L > 0, "forward: empty sequence");
    if (state) check(state.batch === B, `forward: state has ${state.batch} rows, ids have ${B}`);
    return tidy(() => {
      const { hidden, layers } = this.trunk(ids, state, false);
      const mode = options.logits ?? "all";
      let logits: Tensor | null = null;
      if (mode === "all") logits = linear(hidden, this.lmHead);
      else if (mode === "last") {
        const last = selectPositions(hidden, tensor(new Int32Array(B).fill(L - 1), [B], { backend: this.backend }));
        logits = linear(last, this.lmHead);
      }
      const positions = state ? state.positions.map((p) => p + L) : new Array(B).fill(L);
      return { logits, hidden, state: new InferenceState(layers, positions, this.stateKey) };
    });
  }

  step(ids: Tensor, state: InferenceState): { logits: Tensor; state: InferenceState } {
    check(ids.rank === 2 && ids.shape[1] === 1 && ids.dtype === "i32", `step: ids must be i32 [batch, 1], got ${ids.dtype} ${shapeString(ids.shape)}`);
    check(state.batch === ids.shape[0], `step: state has ${state.batch} rows, ids have ${ids.shape[0]}`);
    return tidy(() => {
      const { hidden, layers } = this.trunk(ids, state, true);
      const B = ids.shape[0];
      const logits = linear(selectPositions(hidden, tensor(new Int32Array(B), [B], { backend: this.backend })), this.lmHead);
      return { logits, state: new InferenceState(layers, state.positions.map((p) => p + 1), this.stateKey) };
    });
  }

  /** Embedding through the final norm; `single` selects the recurrent step of each mixer. */
  private trunk(ids: Tensor, state: InferenceState | null, single: boolean): { hidden: Tensor; layers: LayerState[] } {
    let h = embedding(this.embeddings, ids);
    const layers: LayerState[] = [];
    this.blocks.forEach((block, i) => {
      const normed = block.norm.apply(h);
      const prev = state?.layers[i] ?? null;
      const out = single && prev ? block.mixer.step(normed, prev) : block.mixer.forward(normed, prev);
      h = add(h, out.y);
      layers.push(out.state);
    });
    return { hidden: this.normF.apply(h), layers };
  }

  describe(): ModelDescription {
    const c = this.config;
    return {
      family: "mamba",
      architecture: `Mamba LM (${c.layout === "hf" ? "Hugging Face MambaForCausalLM" : "mamba_ssm MambaLMHeadModel"} layout)`,
      dModel: c.dModel,
      nLayer: c.nLayer,
      vocabSize: c.vocabSize,
      parameters: this.parameterCount,
      layers: this.blocks.map((b) => ({ kind: "mamba", state: b.mixer.stateShapes() })),
      config: { ...c },
    };
  }

  dispose(): void {
    this.embeddings.dispose();
    this.lmHead.dispose();
    for (const b of this.blocks) {
      for (const t of Object.values(b.mixer.w)) t?.dispose();
      b.norm.weight.dispose();
      b.norm.bias?.dispose();
    }
    this.normF.weight.dispose();
  }
}
