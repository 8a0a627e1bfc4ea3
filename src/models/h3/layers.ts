import { HippoError, shapeString } from "../../errors.js";
import type { DiagSsmParams } from "../../backends/backend.js";
import { H3Mixer } from "../../nn/h3.js";
import { S4DMixer } from "../../nn/s4d.js";
import { add, exp, linear, neg, reshape } from "../../ops/index.js";
import type { Tensor } from "../../tensor/tensor.js";
import type { WeightLoader } from "../weights.js";
import type { H3SsmConfig, RealType } from "./config.js";
import { H3_MIXER_KEYS as K, key } from "./keys.js";

/** Canonical key → the name the checkpoint stores it under (legacy checkpoints rename some). */
export type KeyResolver = (canonical: string) => string;

export const identityKeys: KeyResolver = (k) => k;

/** Re(A) from SSKernelDiag's stored inv_A_real, per its real_type. */
function realPart(inv: number, realType: RealType): number {
  switch (realType) {
    case "exp": return -Math.exp(inv);
    case "none": return -inv;
    case "relu": return -Math.max(inv, 0) - 1e-4;
    case "sigmoid": return -1 / (1 + Math.exp(-inv));
    case "softplus": return -(inv > 20 ? inv : Math.log1p(Math.exp(inv)));
  }
}

/**
 * SSKernelDiag's parameters (log_dt [H], inv_A_real and A_imag [n_ssm, N], B [n_ssm, N, 2], C [1, H, N, 2])
 * as the op's continuous-time complex A, B, C [H, N, 2]. A and B may be shared by H / n_ssm heads
 * (head h uses row h mod n_ssm, einops' '(v t)'); real_type, force_real and bandlimit are applied here.
 */
export async function loadDiagSsm(
  w: WeightLoader, prefix: string, H: number, N: number, cfg: H3SsmConfig, why: string, name: KeyResolver = identityKeys,
): Promise<DiagSsmParams> {
  const at = (k: string) => name(key(prefix, k));
  const invName = at(K.invAReal);
  const nSsm = w.has(invName) ? w.source.info(invName).shape[0] : H;
  if (!(nSsm > 0 && H % nSsm === 0)) {
    throw new HippoError(`${w.source.describe(invName)}: tensor '${invName}' has shape ${shapeString(w.source.info(invName).shape)}; ` +
      `its first dimension (independent SSMs) must divide the ${H} SSM heads (${why})`);
  }
  if (w.differentiable) return trainableDiagSsm(w, at, H, N, nSsm, cfg, why);
  const logDt = await w.floats(at(K.logDt), [H], why);
  const inv = await w.floats(invName, [nSsm, N], why);
  const imag = await w.floats(at(K.AImag), [nSsm, N], why);
  const Bs = await w.floats(at(K.B), [nSsm, N, 2], why);
  const Cs = await w.floats(at(K.C), [1, H, N, 2], why);
  const A = new Float32Array(H * N * 2);
  const B = new Float32Array(H * N * 2);
  const C = Cs.slice();
  for (let h = 0; h < H; h++) {
    const t = h % nSsm;
    const dt = Math.exp(logDt[h]);
    for (let n = 0; n < N; n++) {
      const i = h * N + n, s = t * N + n;
      A[2 * i] = realPart(inv[s], cfg.realType);
      A[2 * i + 1] = cfg.forceReal ? 0 : imag[s];
      B[2 * i] = Bs[2 * s];
      B[2 * i + 1] = Bs[2 * s + 1];
      if (cfg.bandlimit !== null && (dt * Math.abs(imag[s])) / (2 * Math.PI) >= cfg.bandlimit * 0.5) {
        C[2 * i] = 0;
        C[2 * i + 1] = 0;
      }
    }
  }
  const up = (data: Float32Array, shape: number[]) => w.backend.upload(data, shape, "f32");
  return { logDt: up(logDt, [H]), A: up(A, [H, N, 2]), B: up(B, [H, N, 2]), C: up(C, [H, N, 2]), discretization: cfg.discretization };
}

/**
 * The same parameters derived with ops, so training's autograd sees A's dependence on inv_A_real and
 * A_imag. Training uses one SSM per head, the exp real part, and no bandlimit (Hippo's init defaults).
 */
async function trainableDiagSsm(
  w: WeightLoader, at: (k: string) => string, H: number, N: number, nSsm: number, cfg: H3SsmConfig, why: string,
): Promise<DiagSsmParams> {
  const unsupported = nSsm !== H ? `${nSsm} SSMs shared by ${H} heads` : cfg.bandlimit !== null ? "bandlimit"
    : cfg.realType !== "exp" && cfg.realType !== "none" ? `real_type '${cfg.realType}'` : null;
  if (unsupported) throw new HippoError(`${w.where}: training does not support ${unsupported} in the diagonal SSM (use one SSM per head, real_type exp, no bandlimit)`);
  const inv = await w.vector(at(K.invAReal), [H, N], why);
  const real = cfg.realType === "exp" ? neg(exp(inv)) : neg(inv);
  const imag = cfg.forceReal ? null : await w.vector(at(K.AImag), [H, N], why);
  // (re, im) pairs as [H, N, 2] via two rank-1 linear maps, so no new op (and its gradient) is needed.
  const pair = (t: Tensor, slot: number) =>
    reshape(linear(reshape(t, [H * N, 1]), w.backend.upload(Float32Array.of(slot === 0 ? 1 : 0, slot === 1 ? 1 : 0), [2, 1], "f32")), [H, N, 2]);
  return {
    logDt: await w.vector(at(K.logDt), [H], why),
    A: imag ? add(pair(real, 0), pair(imag, 1)) : pair(real, 0),
    B: await w.vector(at(K.B), [H, N, 2], why),
    C: await w.reshaped(at(K.C), [1, H, N, 2], [H, N, 2], why),
    discretization: cfg.discretization,
  };
}

/**
 * output_linear of an H3 mixer, its input columns reordered to the (h, d2) order the SSM op produces
 * when the checkpoint was trained with the torch path's (d2, h) flattening.
 */
async function loadOutput(w: WeightLoader, name: string, D: number, H: number, P: number, order: "d2 h" | "h d2", why: string) {
  if (P === 1 || order === "h d2") return w.matrix(name, [D, D], why);
  if (w.differentiable) {
    // The same reordering as a product with a permutation matrix, so autograd sees it: out = W·Πᵀ.
    const perm = new Float32Array(D * D);
    for (let h = 0; h < H; h++) for (let d2 = 0; d2 < P; d2++) perm[(h * P + d2) * D + d2 * H + h] = 1;
    return linear(await w.matrix(name, [D, D], why), w.backend.upload(perm, [D, D], "f32"));
  }
  const src = await w.floats(name, [D, D], why);
  const out = new Float32Array(D * D);
  for (let o = 0; o < D; o++) {
    for (let h = 0; h < H; h++) for (let d2 = 0; d2 < P; d2++) out[o * D + h * P + d2] = src[o * D + d2 * H + h];
  }
  return w.uploadMatrix(name, out, [D, D]);
}

/** An H3 mixer from SSMLMHeadModel / H3 state-dict keys under `prefix` ('' for a bare H3 layer). */
export async function loadH3Mixer(
  w: WeightLoader, prefix: string, dModel: number, cfg: H3SsmConfig, why: string, name: KeyResolver = identityKeys,
): Promise<H3Mixer> {
  const D = dModel, P = cfg.headDim, H = D / P, N = cfg.dState;
  const at = (k: string) => name(key(prefix, k));
  const mat = (k: string) => w.matrix(at(`${k}.weight`), [D, D], why);
  const vec = (k: string) => w.vector(at(`${k}.bias`), [D], why);
  const shiftB = await w.vector(at(K.shiftB), [D, N], why);
  const shiftC = await w.reshaped(at(K.shiftC), [1, D, N], [D, N], why);
  return new H3Mixer({
    q: await mat(K.q), qBias: await vec(K.q),
    k: await mat(K.k), kBias: await vec(K.k),
    v: await mat(K.v), vBias: await vec(K.v),
    shiftB, shiftC,
    shiftD: await w.vector(at(K.shiftD), [D], why),
    ssm: await loadDiagSsm(w, prefix, H, N / 2, cfg, why, name),
    D: await w.vector(at(K.D), [H], why),
    out: await loadOutput(w, at(`${K.out}.weight`), D, H, P, cfg.outputOrder, why),
    outBias: await vec(K.out),
  }, { dModel: D, headDim: P, chunkSize: cfg.chunkSize });
}

/** The S4D-only mixer: Hippo's layout, the H3 mixer's key names for the parts it has (kernel.kernel.*, D, output_linear). */
export async function loadS4DMixer(
  w: WeightLoader, prefix: string, dModel: number, cfg: H3SsmConfig, why: string, name: KeyResolver = identityKeys,
): Promise<S4DMixer> {
  const at = (k: string) => name(key(prefix, k));
  return new S4DMixer({
    ssm: await loadDiagSsm(w, prefix, dModel, cfg.dState / 2, cfg, why, name),
    D: await w.vector(at(K.D), [dModel], why),
    out: await w.matrix(at(`${K.out}.weight`), [dModel, dModel], why),
    outBias: await w.vector(at(`${K.out}.bias`), [dModel], why),
  }, { activation: "gelu", chunkSize: cfg.chunkSize });
}
