import type { RawTensor } from "../../io/raw-tensor.js";
import { WeightInit } from "../init-weights.js";
import type { H3Config, H3SsmConfig } from "./config.js";
import { H3_KEYS, H3_MIXER_KEYS as K } from "./keys.js";

/**
 * Imaginary parts of A at initialisation (dplr.py): S4D-Lin π·n, S4D-Inv N/π·(N/(2n+1) − 1), with N the
 * full state size; 'diag' gives the first half of the heads S4D-Inv and the rest S4D-Lin.
 */
function initialImag(measure: string, h: number, H: number, n: number, N: number): number {
  const inverse = measure === "diag-inv" || (measure === "diag" && h < H / 2);
  return inverse ? (N / Math.PI) * (N / (1 + 2 * n) - 1) : Math.PI * n;
}

/** SSKernelDiag's parameters: Re(A) = −1/2 (stored as log 1/2), B = 1, C ~ complex normal, dt log-uniform. */
function diagKernel(init: WeightInit, m: string, H: number, s: H3SsmConfig): void {
  const N = s.dState / 2;
  const unit = init.uniform(1);
  init.put(`${m}.${K.logDt}`, [H], () => Math.log(s.dtMin) + ((unit() + 1) / 2) * (Math.log(s.dtMax) - Math.log(s.dtMin)));
  init.put(`${m}.${K.invAReal}`, [H, N], () => Math.log(0.5));
  init.put(`${m}.${K.AImag}`, [H, N], (i) => initialImag(s.measure, Math.floor(i / N), H, i % N, s.dState));
  init.put(`${m}.${K.B}`, [H, N, 2], (i) => (i % 2 === 0 ? 1 : 0));
  init.put(`${m}.${K.C}`, [1, H, N, 2], init.normal(Math.SQRT1_2));
}

/** An H3 mixer's weights under `m` (q/k/v projections, shift SSM, diagonal SSM, skips, output). */
export function initH3Mixer(init: WeightInit, m: string, D: number, ssm: H3SsmConfig): void {
  const H = D / ssm.headDim;
  const N = ssm.dState;
  for (const proj of [K.q, K.k, K.v]) init.linear(`${m}.${proj}`, D, D, true);
  init.put(`${m}.${K.shiftB}`, [D, N], (j) => (j % N === 0 ? 1 : 0));
  init.put(`${m}.${K.shiftC}`, [1, D, N], init.uniform(1 / Math.sqrt(N)));
  init.put(`${m}.${K.shiftD}`, [D], init.normal(1));
  diagKernel(init, m, H, ssm);
  init.put(`${m}.${K.D}`, [H], init.normal(1));
  init.linear(`${m}.${K.out}`, D, D, true);
}

/** The S4D-only mixer's weights under `m` (one diagonal SSM per channel, skip, output). */
export function initS4DMixer(init: WeightInit, m: string, D: number, ssm: H3SsmConfig): void {
  diagKernel(init, m, D, ssm);
  init.put(`${m}.${K.D}`, [D], init.normal(1));
  init.linear(`${m}.${K.out}`, D, D, true);
}

/**
 * Fresh weights for an H3 (or S4D-only) LM under SSMLMHeadModel's key names: linear layers
 * uniform(±1/√fan_in) (WeightInit's scheme), embeddings N(0, 0.02²), LayerNorms (1, 0); SSM parameters as
 * the H3 code initialises them (shift B = e₀, shift C uniform(±1/√N) as kaiming_uniform(a=√5), D and
 * ssm_k_D standard normal). Deterministic for a seed.
 */
export function initH3Weights(config: H3Config, seed: number, dtype: "F32" | "F16" | "BF16" = "F32"): Map<string, RawTensor> {
  const init = new WeightInit(seed, dtype);
  const { dModel: D, dInner, ssm } = config;
  init.put(H3_KEYS.embedding, [config.vocabSize, D], init.normal(0.02), true);
  const attnAt = new Set(config.attnLayerIdx);
  for (let i = 0; i < config.nLayer; i++) {
    const p = H3_KEYS.layer(i);
    const m = `${p}.mixer`;
    if (attnAt.has(i)) {
      init.linear(`${m}.Wqkv`, 3 * D, D, config.attn.bias);
      init.linear(`${m}.out_proj`, D, D, config.attn.bias);
    } else if (config.ssmLayer === "s4d") {
      initS4DMixer(init, m, D, ssm);
    } else {
      initH3Mixer(init, m, D, ssm);
    }
    init.linear(`${p}.mlp.fc1`, dInner, D, true);
    init.linear(`${p}.mlp.fc2`, D, dInner, true);
    for (const norm of ["norm1", "norm2"]) {
      init.ones(`${p}.${norm}.weight`, D);
      init.put(`${p}.${norm}.bias`, [D], () => 0);
    }
  }
  init.ones(`${H3_KEYS.lnF}.weight`, D);
  init.put(`${H3_KEYS.lnF}.bias`, [D], () => 0);
  if (!config.tieEmbeddings) init.put(H3_KEYS.lmHead, [config.vocabSize, D], init.normal(0.02), true);
  return init.tensors;
}
