import { HippoError } from "../errors.js";
import { Attention, type AttentionShape } from "../nn/attention.js";
import { Mamba2Mixer, type Mamba2Shape } from "../nn/mamba2-mixer.js";
import { MambaMixer, type MambaMixerShape } from "../nn/mamba-mixer.js";
import { Mlp, type MlpActivation } from "../nn/mlp.js";
import { Norm } from "../nn/norm.js";
import type { WeightLoader } from "./weights.js";

/**
 * Builders of each layer kind from checkpoint tensors under a key prefix. The mixers' inner key names
 * (in_proj, conv1d, A_log, …) are the same in HF, mamba_ssm and NemotronH checkpoints; attention and
 * MLP names differ by family and are passed in.
 */

export async function loadNorm(
  w: WeightLoader, prefix: string, kind: "rms" | "layer", width: number, eps: number, why: string,
): Promise<Norm> {
  const weight = await w.vector(`${prefix}.weight`, [width], why);
  const bias = kind === "layer" && w.has(`${prefix}.bias`) ? await w.vector(`${prefix}.bias`, [width], why) : null;
  return new Norm(kind, weight, bias, eps);
}

/** Depthwise conv1d weight stored [C, 1, K] (torch Conv1d); kernels read it as [C, K]. */
function convWeight(w: WeightLoader, name: string, C: number, K: number, why: string) {
  return w.reshaped(name, [C, 1, K], [C, K], why);
}

export async function loadMambaMixer(
  w: WeightLoader, m: string, dModel: number, s: MambaMixerShape, bias: { proj: boolean; conv: boolean }, why: string,
): Promise<MambaMixer> {
  const { dInner: E, dState: N, dtRank: R, dConv: K } = s;
  return new MambaMixer({
    inProj: await w.matrix(`${m}.in_proj.weight`, [2 * E, dModel], why),
    inProjBias: bias.proj ? await w.vector(`${m}.in_proj.bias`, [2 * E], why) : null,
    convWeight: await convWeight(w, `${m}.conv1d.weight`, E, K, why),
    convBias: bias.conv ? await w.vector(`${m}.conv1d.bias`, [E], why) : null,
    xProj: await w.matrix(`${m}.x_proj.weight`, [R + 2 * N, E], why),
    dtProj: await w.matrix(`${m}.dt_proj.weight`, [E, R], why),
    dtProjBias: await w.vector(`${m}.dt_proj.bias`, [E], why),
    A: await w.negExp(`${m}.A_log`, [E, N], why),
    D: await w.vector(`${m}.D`, [E], why),
    outProj: await w.matrix(`${m}.out_proj.weight`, [dModel, E], why),
    outProjBias: bias.proj ? await w.vector(`${m}.out_proj.bias`, [dModel], why) : null,
  }, s);
}

export async function loadMamba2Mixer(
  w: WeightLoader, m: string, dModel: number, s: Mamba2Shape, bias: { proj: boolean; conv: boolean }, why: string,
): Promise<Mamba2Mixer> {
  const { dInner: E, nHeads: H, nGroups: G, dState: N, dConv: K } = s;
  const convDim = E + 2 * G * N;
  const inDim = 2 * E + 2 * G * N + H;
  const dName = `${m}.D`;
  const dShape = w.has(dName) && w.source.info(dName).shape[0] === E && E !== H ? [E] : [H];
  return new Mamba2Mixer({
    inProj: await w.matrix(`${m}.in_proj.weight`, [inDim, dModel], why),
    inProjBias: bias.proj ? await w.vector(`${m}.in_proj.bias`, [inDim], why) : null,
    convWeight: await convWeight(w, `${m}.conv1d.weight`, convDim, K, why),
    convBias: bias.conv ? await w.vector(`${m}.conv1d.bias`, [convDim], why) : null,
    dtBias: await w.vector(`${m}.dt_bias`, [H], why),
    A: await w.negExp(`${m}.A_log`, [H], why),
    D: await w.vector(dName, dShape, why),
    norm: await w.vector(`${m}.norm.weight`, [E], why),
    outProj: await w.matrix(`${m}.out_proj.weight`, [dModel, E], why),
    outProjBias: bias.proj ? await w.vector(`${m}.out_proj.bias`, [dModel], why) : null,
  }, s);
}

export interface AttentionKeys {
  /** Separate projections (q_proj, k_proj, v_proj) or one fused qkv projection (Wqkv, in_proj). */
  q?: string;
  k?: string;
  v?: string;
  qkv?: string;
  o: string;
  /** Depthwise conv over the fused qkv (mamba_ssm MHA d_conv), with its kernel size. */
  qkvConv?: { name: string; kernel: number; bias: boolean };
}

export async function loadAttention(
  w: WeightLoader, prefix: string, dModel: number, s: AttentionShape, keys: AttentionKeys, bias: { qkv: boolean; o: boolean }, why: string,
): Promise<Attention> {
  const { numHeads: H, numKvHeads: Hkv, headDim: hd } = s;
  const mat = (name: string, rows: number) => w.matrix(`${prefix}.${name}.weight`, [rows, dModel], why);
  const vec = async (name: string, rows: number, on: boolean) => (on ? w.vector(`${prefix}.${name}.bias`, [rows], why) : null);
  const fused = keys.qkv !== undefined;
  const qkvRows = (H + 2 * Hkv) * hd;
  return new Attention({
    q: fused ? null : await mat(keys.q!, H * hd),
    k: fused ? null : await mat(keys.k!, Hkv * hd),
    v: fused ? null : await mat(keys.v!, Hkv * hd),
    qkv: fused ? await mat(keys.qkv!, qkvRows) : null,
    qBias: fused ? null : await vec(keys.q!, H * hd, bias.qkv),
    kBias: fused ? null : await vec(keys.k!, Hkv * hd, bias.qkv),
    vBias: fused ? null : await vec(keys.v!, Hkv * hd, bias.qkv),
    qkvBias: fused ? await vec(keys.qkv!, qkvRows, bias.qkv) : null,
    o: await w.matrix(`${prefix}.${keys.o}.weight`, [dModel, H * hd], why),
    oBias: await vec(keys.o, dModel, bias.o),
    qkvConv: keys.qkvConv ? await convWeight(w, `${prefix}.${keys.qkvConv.name}.weight`, qkvRows, keys.qkvConv.kernel, why) : null,
    qkvConvBias: keys.qkvConv?.bias ? await w.vector(`${prefix}.${keys.qkvConv.name}.bias`, [qkvRows], why) : null,
  }, s);
}

export interface MlpKeys {
  up: string;
  down: string;
  /** Separate gate projection (Llama gate_proj); absent for plain or fused-gated MLPs. */
  gate?: string;
}

export async function loadMlp(
  w: WeightLoader, prefix: string, dModel: number, hidden: number, act: MlpActivation,
  layout: "plain" | "gated" | "fused-gated", keys: MlpKeys, bias: boolean, why: string,
): Promise<Mlp> {
  const upRows = layout === "fused-gated" ? 2 * hidden : hidden;
  return new Mlp({
    up: await w.matrix(`${prefix}.${keys.up}.weight`, [upRows, dModel], why),
    upBias: bias ? await w.vector(`${prefix}.${keys.up}.bias`, [upRows], why) : null,
    gate: layout === "gated" ? await w.matrix(`${prefix}.${keys.gate!}.weight`, [hidden, dModel], why) : null,
    gateBias: layout === "gated" && bias ? await w.vector(`${prefix}.${keys.gate!}.bias`, [hidden], why) : null,
    down: await w.matrix(`${prefix}.${keys.down}.weight`, [dModel, hidden], why),
    downBias: bias ? await w.vector(`${prefix}.${keys.down}.bias`, [dModel], why) : null,
  }, act, layout !== "plain");
}

/** Checks that attention heads fit the width: a clear error instead of a shape mismatch later. */
export function checkHeads(file: string, dModel: number, heads: number, kvHeads: number, headDim: number | undefined): number {
  if (heads <= 0) throw new HippoError(`${file}: number of attention heads must be positive, got ${heads}`);
  if (headDim === undefined && dModel % heads !== 0) {
    throw new HippoError(`${file}: ${heads} attention heads do not divide the width ${dModel}`);
  }
  if (kvHeads <= 0 || heads % kvHeads !== 0) {
    throw new HippoError(`${file}: ${kvHeads} key/value heads do not divide ${heads} attention heads`);
  }
  return headDim ?? dModel / heads;
}
