import { silu, softplus } from "./elementwise.js";

export interface ScanBuffers {
  u: Float32Array; delta: Float32Array; A: Float32Array; B: Float32Array; C: Float32Array;
  D: Float32Array | null; z: Float32Array | null; deltaBias: Float32Array | null; deltaSoftplus: boolean;
  /** [Bsz, E, N] initial state, or null for zeros. */
  state: Float32Array | null;
}

/**
 * Selective scan over a whole sequence (Mamba S6): for each time step, all E×N state entries advance
 * together: h = exp(Δ·A)·h + Δ·B·u, y = C·h + D·u, y *= silu(z). One call covers the sequence; the
 * state stays in a flat [E, N] buffer in cache and every input row is read once, contiguously.
 * Writes y [Bsz, L, E] and the final state [Bsz, E, N].
 */
export function selectiveScanKernel(
  p: ScanBuffers, Bsz: number, L: number, E: number, N: number, y: Float32Array, stateOut: Float32Array,
): void {
  const dt = new Float32Array(E);
  for (let b = 0; b < Bsz; b++) {
    const h = stateOut.subarray(b * E * N, (b + 1) * E * N);
    if (p.state) h.set(p.state.subarray(b * E * N, (b + 1) * E * N));
    else h.fill(0);
    for (let t = 0; t < L; t++) {
      const row = (b * L + t) * E;
      const bn = (b * L + t) * N;
      for (let e = 0; e < E; e++) {
        let d = p.delta[row + e] + (p.deltaBias ? p.deltaBias[e] : 0);
        dt[e] = p.deltaSoftplus ? softplus(d) : d;
      }
      for (let e = 0; e < E; e++) {
        const d = dt[e];
        const ue = p.u[row + e];
        const du = d * ue;
        const he = e * N;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const hn = Math.exp(d * p.A[he + n]) * h[he + n] + du * p.B[bn + n];
          h[he + n] = hn;
          acc += hn * p.C[bn + n];
        }
        if (p.D) acc += p.D[e] * ue;
        if (p.z) acc *= silu(p.z[row + e]);
        y[row + e] = acc;
      }
    }
  }
}

/**
 * One recurrent step (L = 1), mamba_ssm's selective_state_update: the decode path. Kept separate from
 * the sequence kernel so the two modes are checked against each other.
 */
export function selectiveStateUpdateKernel(
  p: ScanBuffers, Bsz: number, E: number, N: number, y: Float32Array, stateOut: Float32Array,
): void {
  for (let b = 0; b < Bsz; b++) {
    for (let e = 0; e < E; e++) {
      const i = b * E + e;
      const raw = p.delta[i] + (p.deltaBias ? p.deltaBias[e] : 0);
      const d = p.deltaSoftplus ? softplus(raw) : raw;
      const ue = p.u[i];
      const s = (b * E + e) * N;
      let acc = 0;
      for (let n = 0; n < N; n++) {
        const prev = p.state ? p.state[s + n] : 0;
        const hn = prev * Math.exp(d * p.A[e * N + n]) + d * p.B[b * N + n] * ue;
        stateOut[s + n] = hn;
        acc += hn * p.C[b * N + n];
      }
      if (p.D) acc += p.D[e] * ue;
      y[i] = p.z ? acc * silu(p.z[i]) : acc;
    }
  }
}
