import { DTYPE_BYTES } from "../tensor/dtype.js";
import { Tensor } from "../tensor/tensor.js";
import type {
  AttentionArgs, CausalConv1dArgs, DiagSsmConvArgs, DiagSsmParams, FftConvArgs, RopeArgs, SelectiveScanArgs, ShiftSsmArgs, SsdArgs, UnaryOp,
} from "./backend.js";

/**
 * Nominal work of one op-table call, counted from shapes: floating-point operations (a multiply-add is
 * two, exp/log/sqrt one each) and the bytes the op must move at least — every input tensor read once at
 * its storage dtype and every output written once. These are the numbers a roofline compares with the
 * device's measured ceilings: the time floor of a call is max(flops / peak FLOP/s, bytes / peak bytes/s).
 *
 * FLOPs follow the algorithm Hippo's kernels run (the SSD chunked algorithm, FFT convolution by real FFTs
 * of the next power of two ≥ 2T − 1, attention without materialised score matrices), so that time and
 * work describe the same computation. Bytes are ideal traffic: an op that a kernel implements with extra
 * passes over memory still has the floor of one read and one write.
 */
export interface OpCost {
  flops: number;
  bytes: number;
}

const ZERO: OpCost = { flops: 0, bytes: 0 };

export function tensorBytes(t: Tensor): number {
  return t.size * DTYPE_BYTES[t.dtype];
}

/** Every Tensor inside a value (arguments objects, arrays, results such as {y, state}), each once. */
export function tensorsIn(value: unknown, into: Set<Tensor> = new Set(), depth = 0): Set<Tensor> {
  if (value instanceof Tensor) into.add(value);
  else if (depth < 3 && value !== null && typeof value === "object" && !ArrayBuffer.isView(value)) {
    for (const item of Array.isArray(value) ? value : Object.values(value)) tensorsIn(item, into, depth + 1);
  }
  return into;
}

function bytesOf(tensors: Iterable<Tensor>): number {
  let n = 0;
  for (const t of tensors) n += tensorBytes(t);
  return n;
}

/** Input bytes (each distinct tensor once) plus output bytes. */
function io(args: unknown[], result: unknown): number {
  return bytesOf(tensorsIn(args)) + bytesOf(tensorsIn(result));
}

/** FLOPs per element of the unary ops (a transcendental counts one). */
const UNARY_FLOPS: Record<UnaryOp, number> = { silu: 4, softplus: 3, exp: 1, neg: 1, gelu: 8, relu: 1, relu2: 2, gelu_tanh: 9 };

/** Real-input FFT of n points: half a complex FFT, 2.5·n·log2(n). */
function realFft(n: number): number {
  return 2.5 * n * Math.log2(n);
}

/** The FFT size the CPU kernels use for T outputs (no circular wrap-around): next power of two ≥ 2T − 1. */
export function fftSize(T: number): number {
  let n = 4;
  while (n < 2 * T - 1) n *= 2;
  return n;
}

/** Convolving one channel of T steps through the spectrum: forward + inverse real FFT and the complex product. */
function spectralConv(T: number): number {
  const n = fftSize(T);
  return 2 * realFft(n) + 3 * n;
}

function selectiveScanFlops(a: SelectiveScanArgs): number {
  const [B, L, E] = a.u.shape;
  const N = a.A.shape[1];
  // Per state entry: exp(Δ·A) (2), Δ·B·u (2), h = dA·h + dBu (2), y += C·h (2); per channel softplus, D, gate.
  return B * L * E * (8 * N + (a.deltaSoftplus ? 4 : 1) + (a.D ? 2 : 0) + (a.z ? 5 : 0));
}

function ssdFlops(a: SsdArgs, chunked: boolean): number {
  const [Bsz, L, H, P] = a.x.shape;
  const [, , G, N] = a.B.shape;
  const perStep = Bsz * L * H * (4 + (a.D ? 2 * P : 0)); // dt bias/softplus/clamp, skip
  if (!chunked) return perStep + Bsz * L * H * P * N * 6; // decay·state + dt·x⊗B + C·state
  const Q = Math.max(1, Math.min(a.chunkSize, L));
  let total = perStep;
  for (let t0 = 0; t0 < L; t0 += Q) {
    const q = Math.min(Q, L - t0);
    const tri = (q * (q + 1)) / 2;
    // C·Bᵀ per group; per head: cumulative decay, the masked decay matrix (exp + 3), Y_diag, Y_off, state update.
    total += Bsz * (G * tri * 2 * N + H * (2 * q + 4 * tri + tri * 2 * P + q * (2 * P * N + P) + 2 * q * P * N + P * N));
  }
  return total;
}

function attentionFlops(a: AttentionArgs): number {
  const [B, L, Hq, D] = a.q.shape;
  const [, T, , Dv] = a.v.shape;
  // Query i sees min(T, start + i + 1) keys; with the cache holding the prompt, start = T − L.
  const start = Math.max(0, T - L);
  const visible = L * start + (L * (L + 1)) / 2;
  return B * Hq * visible * (2 * D + 2 * Dv + 5);
}

function gatedConvFlops(a: FftConvArgs | DiagSsmConvArgs, T: number): { perChannel: number; channels: number; heads: number } {
  const [B, L, C] = a.u.shape;
  const P = a.headDim;
  const H = C / P;
  // Per convolved channel (h, d1, d2): the product x = u·v, the skip, the q-weighted accumulation.
  return { perChannel: Math.ceil(L / T) * spectralConv(T) + 5 * L, channels: B * H * P * P, heads: H };
}

function diagModes(ssm: DiagSsmParams): number {
  return ssm.A.shape[1];
}

/** Cost of one call of a Backend method, from its arguments and result. Unknown ops count their I/O only. */
export function opCost(op: string, args: unknown[], result: unknown): OpCost {
  const bytes = () => io(args, result);
  const outSize = () => [...tensorsIn(result)].reduce((n, t) => n + t.size, 0);
  switch (op) {
    case "reshape": case "release": return ZERO; // a view; freeing
    case "upload": case "zeros": return { flops: 0, bytes: bytesOf(tensorsIn(result)) };
    case "read": return { flops: 0, bytes: bytesOf(tensorsIn(args)) };
    case "embedding": {
      const [table, ids] = args as [Tensor, Tensor];
      const rows = ids.size * table.shape[1] * DTYPE_BYTES[table.dtype];
      return { flops: 0, bytes: tensorBytes(ids) + rows + bytesOf(tensorsIn(result)) };
    }
    case "linear": {
      const [x, w, bias] = args as [Tensor, Tensor, Tensor | null];
      const [N, K] = w.shape;
      const M = x.size / K;
      return { flops: 2 * M * N * K + (bias ? M * N : 0), bytes: bytes() };
    }
    case "rmsNorm": return { flops: 4 * (args[0] as Tensor).size, bytes: bytes() };
    case "layerNorm": return { flops: 7 * (args[0] as Tensor).size, bytes: bytes() };
    case "gatedRmsNorm": return { flops: 9 * (args[0] as Tensor).size, bytes: bytes() };
    case "unary": return { flops: UNARY_FLOPS[args[0] as UnaryOp] * (args[1] as Tensor).size, bytes: bytes() };
    case "binary": return { flops: (args[1] as Tensor).size, bytes: bytes() };
    case "sliceLast": case "selectPositions": case "concat0": case "slice0": case "toFloat32": case "resizeAxis1": case "writeAxis1":
      // Pure data movement: what is copied is read once and written once.
      return { flops: 0, bytes: 2 * bytesOf(tensorsIn(result)) };
    case "causalConv1d": {
      const a = args[0] as CausalConv1dArgs;
      return { flops: 2 * a.x.size * a.weight.shape[1] + (a.activation ? 4 * a.x.size : 0), bytes: bytes() };
    }
    case "selectiveScan": case "selectiveStateUpdate":
      return { flops: selectiveScanFlops(args[0] as SelectiveScanArgs), bytes: bytes() };
    case "ssdChunked": return { flops: ssdFlops(args[0] as SsdArgs, true), bytes: bytes() };
    case "ssdStep": return { flops: ssdFlops(args[0] as SsdArgs, false), bytes: bytes() };
    case "causalAttention": return { flops: attentionFlops(args[0] as AttentionArgs), bytes: bytes() };
    case "rope": {
      const a = args[0] as RopeArgs;
      const [B, L, H] = a.x.shape;
      return { flops: 3 * B * L * H * a.rotaryDim, bytes: bytes() };
    }
    case "fftConv": {
      const a = args[0] as FftConvArgs;
      const L = a.u.shape[1];
      const c = gatedConvFlops(a, L);
      return { flops: c.channels * c.perChannel + c.heads * realFft(fftSize(L)), bytes: bytes() };
    }
    case "diagSsmKernel": {
      const ssm = args[0] as DiagSsmParams;
      return { flops: 8 * ssm.A.shape[0] * diagModes(ssm) * (args[1] as number), bytes: bytes() };
    }
    case "diagSsmConv": {
      const a = args[0] as DiagSsmConvArgs;
      const L = a.u.shape[1];
      const T = Math.max(1, Math.min(L, a.chunkSize));
      const N = diagModes(a.ssm);
      const c = gatedConvFlops(a, T);
      // Per channel also: the state advanced over every step (8N), the carried state's response in later chunks.
      const carried = a.state ? L : Math.max(0, L - T);
      const perChannel = c.perChannel + 8 * N * (L + carried);
      // Per head: the kernel's taps (Vandermonde sum) and their spectrum.
      return { flops: c.channels * perChannel + c.heads * (8 * N * T + realFft(fftSize(T))), bytes: bytes() };
    }
    case "diagSsmStep": {
      const a = args[0] as DiagSsmConvArgs;
      const [B, L, C] = a.u.shape;
      const P = a.headDim;
      return { flops: B * L * (C / P) * P * P * (12 * diagModes(a.ssm) + 5), bytes: bytes() };
    }
    case "shiftSsmTaps": {
      const [Bm] = args as [Tensor];
      const [C, N] = Bm.shape;
      return { flops: C * N * N, bytes: bytes() };
    }
    case "shiftSsm": {
      const a = args[0] as ShiftSsmArgs;
      const N = a.B.shape[1];
      return { flops: a.u.size * (2 * N + 2), bytes: bytes() };
    }
    default:
      return { flops: 0, bytes: outSize() > 0 ? bytes() : 0 };
  }
}
