import { fromFloat32 } from "../io/convert.js";
import type { RawTensor } from "../io/raw-tensor.js";
import { Rng } from "../generate/rng.js";

/**
 * Fresh weights, initialised the way mamba_ssm and transformers do: linear layers uniform(±1/√fan_in),
 * embeddings N(0, 0.02²), norms 1; SSM parameters as their papers set them. Deterministic for a seed.
 * Matrices take `dtype`; everything else stays F32.
 */
export class WeightInit {
  readonly tensors = new Map<string, RawTensor>();
  private readonly rng: Rng;

  constructor(seed: number, readonly dtype: "F32" | "F16" | "BF16" = "F32") {
    this.rng = new Rng(seed);
  }

  put(name: string, shape: number[], fill: (i: number) => number, matrix = false): void {
    const n = shape.reduce((a, b) => a * b, 1);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = fill(i);
    this.tensors.set(name, fromFloat32(data, shape, matrix ? this.dtype : "F32"));
  }

  uniform(bound: number): () => number {
    return () => (this.rng.nextFloat() * 2 - 1) * bound;
  }

  normal(std: number): () => number {
    return () => std * Math.sqrt(-2 * Math.log(1 - this.rng.nextFloat())) * Math.cos(2 * Math.PI * this.rng.nextFloat());
  }

  linear(name: string, out: number, inp: number, bias = false): void {
    this.put(`${name}.weight`, [out, inp], this.uniform(1 / Math.sqrt(inp)), true);
    if (bias) this.put(`${name}.bias`, [out], () => 0);
  }

  ones(name: string, width: number): void {
    this.put(name, [width], () => 1);
  }

  /** dt bias = softplus⁻¹(dt) with dt log-uniform in [0.001, 0.1] (Mamba's time-step init). */
  dtBias(name: string, width: number): void {
    this.put(name, [width], () => {
      const dt = Math.exp(this.rng.nextFloat() * (Math.log(0.1) - Math.log(0.001)) + Math.log(0.001));
      return dt + Math.log(-Math.expm1(-dt));
    });
  }

  conv(name: string, channels: number, kernel: number, bias: boolean): void {
    this.put(`${name}.weight`, [channels, 1, kernel], this.uniform(1 / Math.sqrt(kernel)));
    if (bias) this.put(`${name}.bias`, [channels], this.uniform(1 / Math.sqrt(kernel)));
  }

  mambaMixer(m: string, D: number, s: { dInner: number; dState: number; dtRank: number; dConv: number; bias: boolean; convBias: boolean }): void {
    const { dInner: E, dState: N, dtRank: R } = s;
    this.linear(`${m}.in_proj`, 2 * E, D, s.bias);
    this.conv(`${m}.conv1d`, E, s.dConv, s.convBias);
    this.linear(`${m}.x_proj`, R + 2 * N, E);
    this.linear(`${m}.dt_proj`, E, R);
    this.dtBias(`${m}.dt_proj.bias`, E);
    this.put(`${m}.A_log`, [E, N], (i) => Math.log((i % N) + 1));
    this.ones(`${m}.D`, E);
    this.linear(`${m}.out_proj`, D, E, s.bias);
  }

  mamba2Mixer(m: string, D: number, s: { dInner: number; nHeads: number; nGroups: number; dState: number; dConv: number; bias: boolean; convBias: boolean }): void {
    const { dInner: E, nHeads: H, nGroups: G, dState: N } = s;
    this.linear(`${m}.in_proj`, 2 * E + 2 * G * N + H, D, s.bias);
    this.conv(`${m}.conv1d`, E + 2 * G * N, s.dConv, s.convBias);
    this.dtBias(`${m}.dt_bias`, H);
    this.put(`${m}.A_log`, [H], () => Math.log(1 + 15 * this.rng.nextFloat())); // A uniform in [1, 16]
    this.ones(`${m}.D`, H);
    this.ones(`${m}.norm.weight`, E);
    this.linear(`${m}.out_proj`, D, E, s.bias);
  }

  attention(m: string, D: number, s: { numHeads: number; numKvHeads: number; headDim: number; bias: boolean }): void {
    this.linear(`${m}.q_proj`, s.numHeads * s.headDim, D, s.bias);
    this.linear(`${m}.k_proj`, s.numKvHeads * s.headDim, D, s.bias);
    this.linear(`${m}.v_proj`, s.numKvHeads * s.headDim, D, s.bias);
    this.linear(`${m}.o_proj`, D, s.numHeads * s.headDim, s.bias);
  }

  mlp(m: string, D: number, s: { intermediateSize: number; gated: boolean; bias: boolean }): void {
    this.linear(`${m}.up_proj`, s.intermediateSize, D, s.bias);
    if (s.gated) this.linear(`${m}.gate_proj`, s.intermediateSize, D, s.bias);
    this.linear(`${m}.down_proj`, D, s.intermediateSize, s.bias);
  }
}
