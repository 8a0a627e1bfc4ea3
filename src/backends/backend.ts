import type { DType, HostData } from "../tensor/dtype.js";
import type { Tensor } from "../tensor/tensor.js";

export type UnaryOp = "silu" | "softplus" | "exp" | "neg" | "gelu" | "relu" | "relu2" | "gelu_tanh";
export type BinaryOp = "add" | "mul" | "sub";

/** Parameters of the selective scan (Mamba's S6), mamba_ssm's selective_scan_fn semantics. */
export interface SelectiveScanArgs {
  /** [B, L, E] input to the SSM (after the causal conv). */
  u: Tensor;
  /** [B, L, E] raw time steps (before bias and softplus); [B, L, R] when deltaProj is given. */
  delta: Tensor;
  /**
   * [E, R] or absent: delta is low-rank and projected first (delta·deltaProjᵀ, Mamba's dt_proj), which a
   * backend with `fusesDeltaProjection` does inside its recurrent step; ops/ composes it for the others.
   */
  deltaProj?: Tensor | null;
  /** [E, N] continuous-time state matrix (negative: A = -exp(A_log)). */
  A: Tensor;
  /** [B, L, N] input-dependent input and output projections. */
  B: Tensor;
  C: Tensor;
  /** [E] skip connection, or null. */
  D: Tensor | null;
  /** [B, L, E] gate: y *= silu(z), or null. */
  z: Tensor | null;
  /** [E] added to delta before softplus, or null. */
  deltaBias: Tensor | null;
  deltaSoftplus: boolean;
  /** [B, E, N] state before the first step, or null for zeros. */
  state: Tensor | null;
}

/** A norm over the last axis: RMSNorm (weight only) or LayerNorm (weight, optional bias). */
export interface NormSpec {
  kind: "rms" | "layer";
  weight: Tensor;
  bias: Tensor | null;
  eps: number;
}

export interface CausalConv1dArgs {
  /** [B, L, C] input, channels last. */
  x: Tensor;
  /** [C, K] depthwise filter; output t sees inputs t-K+1..t. */
  weight: Tensor;
  bias: Tensor | null;
  /** [B, K-1, C] the K-1 inputs before x, or null for zeros. */
  state: Tensor | null;
  activation: "silu" | null;
}

/** Mamba-2's SSD (state-space duality) over a sequence, or one step of it. */
export interface SsdArgs {
  /** [B, L, H, P] inputs per head. */
  x: Tensor;
  /** [B, L, H] raw time steps (before bias, softplus and clamping). */
  dt: Tensor;
  /** [H] negative decay rates (A = -exp(A_log)). */
  A: Tensor;
  /** [B, L, G, N] grouped input and output projections; head h uses group h / (H / G). */
  B: Tensor;
  C: Tensor;
  /** [H] or [H * P] skip, or null. */
  D: Tensor | null;
  /** [H] added to dt before softplus, or null. */
  dtBias: Tensor | null;
  dtSoftplus: boolean;
  /** dt is clamped to [dtMin, dtMax] after softplus. */
  dtMin: number;
  dtMax: number;
  /** [B, H, P, N] state before the first step, or null for zeros. */
  state: Tensor | null;
  /** Chunk length of the chunked algorithm (ignored by the one-step update). */
  chunkSize: number;
}

export interface AttentionArgs {
  /** [B, L, Hq, D] queries. */
  q: Tensor;
  /** [B, T, Hkv, D] keys and [B, T, Hkv, Dv] values; Hq is a multiple of Hkv (grouped-query attention). */
  k: Tensor;
  v: Tensor;
  /** i32 [B]: absolute position of each row's first query; query i sees keys 0..queryStart+i (causal). */
  queryStart: Tensor;
  scale: number;
}

export interface RopeArgs {
  /** [B, L, H, D]. */
  x: Tensor;
  /** i32 [B]: absolute position of each row's first token. */
  start: Tensor;
  /** Leading dims rotated (even, at most D); the rest pass through. */
  rotaryDim: number;
  base: number;
  /** Positions are divided by this (linear RoPE scaling); 1 = none. */
  positionScale: number;
  /** GPT-J style pairs (2i, 2i+1) instead of halves (GPT-NeoX / Llama rotate_half). */
  interleaved: boolean;
}

/**
 * Inputs of an H3-style gated long convolution. u, v, q are [B, L, H·P] with channel h·P + d. Head h
 * convolves the P² sequences x[d1, d2] = u[h, d1]·v[h, d2] (just u without v) with its kernel, adds
 * D[h]·x, and output channel h·P + d2 is Σ_d1 q[h, d1]·z[d1, d2] (just z without q). Without v and q,
 * P = 1 and this is a plain per-channel long convolution with a skip.
 */
export interface GatedConvInput {
  u: Tensor;
  v: Tensor | null;
  q: Tensor | null;
  /** P: channels per head. */
  headDim: number;
  /** [H] skip weights, or null. */
  D: Tensor | null;
}

export interface FftConvArgs extends GatedConvInput {
  /** [H, K] causal kernels: output t sees x[t − j]·kernel[j]; taps past the sequence length are ignored. */
  kernel: Tensor;
}

/** A diagonal (S4D) SSM per head, in continuous time; backends discretise it (in f64 on the CPU). */
export interface DiagSsmParams {
  /** [H] log step sizes. */
  logDt: Tensor;
  /** [H, N, 2] diagonal state matrix as (real, imaginary), N complex modes (conjugates implied). */
  A: Tensor;
  /** [H, N, 2] input and output projections. */
  B: Tensor;
  C: Tensor;
  discretization: "bilinear" | "zoh";
}

export interface DiagSsmConvArgs extends GatedConvInput {
  ssm: DiagSsmParams;
  /** [B, H, P, P, N, 2] complex state of every convolved channel before the first step, or null for zeros. */
  state: Tensor | null;
  /** Longer sequences are convolved in chunks of this many steps, the SSM state passed between them. */
  chunkSize: number;
}

/** H3's shift SSM: s_t = shift(s_{t−1}) + B·u_t, y_t = C·s_t + D·u_t per channel (an N-tap FIR filter). */
export interface ShiftSsmArgs {
  /** [B, L, C] input. */
  u: Tensor;
  /** [C, N] FIR taps from shiftSsmTaps(B, C), or null: the backend derives (and may cache) them. */
  taps: Tensor | null;
  /** [C, N] input and output vectors. */
  B: Tensor;
  C: Tensor;
  /** [C] skip, or null. */
  D: Tensor | null;
  /** [B, C, N] state before the first step, or null for zeros. */
  state: Tensor | null;
}

/**
 * The op table: everything a model needs from a backend. Backends know nothing of models; adding a
 * backend means implementing this interface. Ops take and return Tensors of this backend and never
 * block; only `read` is async.
 */
export interface Backend {
  readonly name: string;

  /** q8 takes a Q8Matrix of the same [N, K]; a backend without q8 kernels refuses it with a HippoError. */
  upload(data: HostData, shape: readonly number[], dtype: DType): Tensor;
  zeros(shape: readonly number[], dtype?: DType): Tensor;
  read(t: Tensor): Promise<Float32Array | Int32Array>;
  release(t: Tensor): void;

  /** [V, D] table rows picked by i32 ids of any shape → [...ids.shape, D] f32. */
  embedding(table: Tensor, ids: Tensor): Tensor;
  /** x [..., K] times weight [N, K] transposed, plus bias [N] → [..., N]. Weight may be f32/f16/bf16/q8. */
  linear(x: Tensor, weight: Tensor, bias: Tensor | null): Tensor;
  rmsNorm(x: Tensor, weight: Tensor, eps: number): Tensor;
  layerNorm(x: Tensor, weight: Tensor, bias: Tensor | null, eps: number): Tensor;
  unary(op: UnaryOp, x: Tensor): Tensor;
  /** Elementwise with broadcasting of b over the leading dims of a (b's shape a suffix of a's). */
  binary(op: BinaryOp, a: Tensor, b: Tensor): Tensor;
  /** Columns [start, start+length) of the last axis. */
  sliceLast(x: Tensor, start: number, length: number): Tensor;
  /** Rows of axis 1 at one index per batch row: x [B, L, ...], positions i32 [B] → [B, ...]. */
  selectPositions(x: Tensor, positions: Tensor): Tensor;
  /** Concatenates along axis 0. */
  concat0(parts: readonly Tensor[]): Tensor;
  /** Rows [start, start+length) of axis 0. */
  slice0(x: Tensor, start: number, length: number): Tensor;
  /** Same values in a new shape of equal size (row-major). May share storage with x. */
  reshape(x: Tensor, shape: readonly number[]): Tensor;
  /** Widens f16/bf16 (or copies f32) to f32. */
  toFloat32(x: Tensor): Tensor;

  /** Zero-pads or truncates axis 1 to `length` (KV caches of rows stacked into one batch). */
  resizeAxis1(x: Tensor, length: number): Tensor;
  /**
   * Writes fresh [B, L, ...] into cache [B, T, ...] at per-row offsets (i32 [B]) (KV-cache append). The
   * result has at least max(offset) + L entries on axis 1; a backend may give it more (spare capacity it
   * appends into later: WebGPU), whose values past a row's offset + L are unspecified (zeros or stale) —
   * readers bound each row by its position. The cache keeps its values up to each row's offset.
   */
  writeAxis1(cache: Tensor, fresh: Tensor, offsets: Tensor): Tensor;
  /**
   * Optional fusion of a residual add and the next pre-norm: sum = a + b and norm(sum) in one pass (decoding
   * pays per dispatch). Backends without it, or returning null (declined for these inputs), get the two ops
   * composed by ops/addNorm.
   */
  addNorm?(a: Tensor, b: Tensor, norm: NormSpec): { sum: Tensor; normed: Tensor } | null;
  /** Optional fusion of an activation after a product, op(linear(x, weight, bias)) in one pass; null where declined. */
  linearActivation?(x: Tensor, weight: Tensor, bias: Tensor | null, op: UnaryOp): Tensor | null;
  /** y·silu(z), RMS-normalised over groups of `groupSize` channels, times weight (gated RMSNorm). */
  gatedRmsNorm(y: Tensor, z: Tensor, weight: Tensor, groupSize: number, eps: number): Tensor;
  /**
   * Optional fusion of Mamba-2's gated RMSNorm with the linear layer after it: linear(gatedRmsNorm(y, z,
   * normWeight, groupSize, eps), weight, bias) with the norm computed inside the product (one dispatch per
   * layer and token fewer). Backends without it get the two ops composed by ops/gatedNormLinear.
   */
  gatedNormLinear?(y: Tensor, z: Tensor, normWeight: Tensor, groupSize: number, eps: number, weight: Tensor, bias: Tensor | null): Tensor;

  causalConv1d(args: CausalConv1dArgs): { y: Tensor; state: Tensor };
  /** Whole-sequence selective scan (prefill / training). */
  selectiveScan(args: SelectiveScanArgs): { y: Tensor; state: Tensor };
  /** selectiveStateUpdate takes `deltaProj` itself (one dispatch fewer per Mamba layer and token). */
  readonly fusesDeltaProjection?: boolean;
  /** One decoding step: the same recurrence for L = 1, state in, state out. */
  selectiveStateUpdate(args: SelectiveScanArgs): { y: Tensor; state: Tensor };
  /** Mamba-2 SSD over a sequence by the chunked algorithm: matrix products within chunks, state passed between them. */
  ssdChunked(args: SsdArgs): { y: Tensor; state: Tensor };
  /** One recurrent Mamba-2 step (L = 1). */
  ssdStep(args: SsdArgs): { y: Tensor; state: Tensor };
  /** Causal scaled dot-product attention with grouped-query heads → [B, L, Hq, Dv]. */
  causalAttention(args: AttentionArgs): Tensor;
  /** Rotary position embedding. */
  rope(args: RopeArgs): Tensor;

  /** Long causal convolution with explicit kernels by one FFT block (gated, with skip) → [B, L, H·P]. */
  fftConv(args: FftConvArgs): Tensor;
  /** The diagonal SSMs' convolution kernels [H, length] (Vandermonde sums). */
  diagSsmKernel(ssm: DiagSsmParams, length: number): Tensor;
  /** Diagonal SSM over a sequence as an FFT convolution, chunked with state passing; returns the final state. */
  diagSsmConv(args: DiagSsmConvArgs): { y: Tensor; state: Tensor };
  /** One recurrent step of the same SSM (L = 1). */
  diagSsmStep(args: DiagSsmConvArgs): { y: Tensor; state: Tensor };
  /** The shift SSM's FIR taps [C, N] from B and C [C, N]. */
  shiftSsmTaps(B: Tensor, C: Tensor): Tensor;
  /** Shift SSM over a sequence (any L; L = 1 is one recurrent step), state in, state out. */
  shiftSsm(args: ShiftSsmArgs): { y: Tensor; state: Tensor };
}
