import { softplus } from "./elementwise.js";

export interface SsdBuffers {
  x: Float32Array; dt: Float32Array; A: Float32Array; B: Float32Array; C: Float32Array;
  D: Float32Array | null; dtBias: Float32Array | null; dtSoftplus: boolean; dtMin: number; dtMax: number;
  state: Float32Array | null;
}

export interface SsdDims { Bsz: number; L: number; H: number; P: number; G: number; N: number }

/** dt after bias, softplus and clamping, for all [Bsz, L, H]. */
function effectiveDt(p: SsdBuffers, count: number, H: number): Float32Array {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    let d = p.dt[i] + (p.dtBias ? p.dtBias[i % H] : 0);
    if (p.dtSoftplus) d = softplus(d);
    out[i] = Math.min(Math.max(d, p.dtMin), p.dtMax);
  }
  return out;
}

/**
 * Mamba-2's SSD by the chunked algorithm (as ssd_minimal): per chunk of Q steps, per head,
 *   intra-chunk  Y_diag = (C·Bᵀ ⊙ decay(S_t − S_s) ⊙ dt_s) · X          (matrix products, causal)
 *   from before  Y_off  = exp(S_t) · (C · stateᵀ)
 *   state        state  = exp(S_Q) · state + Σ_s exp(S_Q − S_s) dt_s · x_s ⊗ B_s
 * with S the running sum of dt·A inside the chunk. Writes y [Bsz, L, H, P] and the final state [Bsz, H, P, N].
 */
export function ssdChunkedKernel(p: SsdBuffers, d: SsdDims, chunk: number, y: Float32Array, stateOut: Float32Array): void {
  const { Bsz, L, H, P, G, N } = d;
  const headsPerGroup = H / G;
  const dt = effectiveDt(p, Bsz * L * H, H);
  const Q = Math.max(1, Math.min(chunk, L));
  const CB = new Float64Array(Q * Q);
  const S = new Float64Array(Q);
  const M = new Float64Array(Q * Q);
  const CS = new Float64Array(P); // C_t · state rows
  const dState = new Float64Array(P * N);
  for (let b = 0; b < Bsz; b++) {
    const st = stateOut.subarray(b * H * P * N, (b + 1) * H * P * N);
    if (p.state) st.set(p.state.subarray(b * H * P * N, (b + 1) * H * P * N));
    else st.fill(0);
    for (let t0 = 0; t0 < L; t0 += Q) {
      const q = Math.min(Q, L - t0);
      for (let g = 0; g < G; g++) {
        // C·Bᵀ for this chunk and group, shared by the group's heads.
        for (let t = 0; t < q; t++) {
          const ct = ((b * L + t0 + t) * G + g) * N;
          for (let s = 0; s <= t; s++) {
            const bs = ((b * L + t0 + s) * G + g) * N;
            let acc = 0;
            for (let n = 0; n < N; n++) acc += p.C[ct + n] * p.B[bs + n];
            CB[t * Q + s] = acc;
          }
        }
        for (let hg = 0; hg < headsPerGroup; hg++) {
          const h = g * headsPerGroup + hg;
          const a = p.A[h];
          let run = 0;
          for (let t = 0; t < q; t++) {
            run += dt[(b * L + t0 + t) * H + h] * a;
            S[t] = run;
          }
          // Causal decay-weighted mixing matrix of the chunk.
          for (let t = 0; t < q; t++) {
            for (let s = 0; s <= t; s++) M[t * Q + s] = CB[t * Q + s] * Math.exp(S[t] - S[s]) * dt[(b * L + t0 + s) * H + h];
          }
          const sh = st.subarray(h * P * N, (h + 1) * P * N);
          for (let t = 0; t < q; t++) {
            const row = b * L + t0 + t;
            const ct = (row * G + g) * N;
            // Y_off: the state entering the chunk, decayed to step t, read out by C_t.
            const decay = Math.exp(S[t]);
            for (let pp = 0; pp < P; pp++) {
              let acc = 0;
              const o = pp * N;
              for (let n = 0; n < N; n++) acc += sh[o + n] * p.C[ct + n];
              CS[pp] = acc * decay;
            }
            // Y_diag: rows x_s of the chunk weighted by M[t, s], accumulated as contiguous head vectors.
            for (let s = 0; s <= t; s++) {
              const w = M[t * Q + s];
              const xs = ((b * L + t0 + s) * H + h) * P;
              for (let pp = 0; pp < P; pp++) CS[pp] += w * p.x[xs + pp];
            }
            const yo = (row * H + h) * P;
            for (let pp = 0; pp < P; pp++) {
              const xv = p.x[yo + pp];
              y[yo + pp] = p.D ? CS[pp] + (p.D.length === H ? p.D[h] : p.D[h * P + pp]) * xv : CS[pp];
            }
          }
          // Pass the state to the next chunk.
          const total = S[q - 1];
          dState.fill(0);
          for (let s = 0; s < q; s++) {
            const row = b * L + t0 + s;
            const w = Math.exp(total - S[s]) * dt[row * H + h];
            const xs = (row * H + h) * P;
            const bs = (row * G + g) * N;
            for (let pp = 0; pp < P; pp++) {
              const xw = p.x[xs + pp] * w;
              const o = pp * N;
              for (let n = 0; n < N; n++) dState[o + n] += xw * p.B[bs + n];
            }
          }
          const carry = Math.exp(total);
          for (let i = 0; i < P * N; i++) sh[i] = sh[i] * carry + dState[i];
        }
      }
    }
  }
}

/** One recurrent step: state = exp(dt·A)·state + dt·x ⊗ B; y = state·C + D·x. */
export function ssdStepKernel(p: SsdBuffers, d: SsdDims, y: Float32Array, stateOut: Float32Array): void {
  const { Bsz, H, P, G, N } = d;
  const headsPerGroup = H / G;
  const dt = effectiveDt(p, Bsz * H, H);
  for (let b = 0; b < Bsz; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / headsPerGroup);
      const dth = dt[b * H + h];
      const decay = Math.exp(dth * p.A[h]);
      const bo = (b * G + g) * N;
      for (let pp = 0; pp < P; pp++) {
        const xi = (b * H + h) * P + pp;
        const xv = p.x[xi];
        const so = ((b * H + h) * P + pp) * N;
        let acc = 0;
        for (let n = 0; n < N; n++) {
          const v = (p.state ? p.state[so + n] : 0) * decay + dth * xv * p.B[bo + n];
          stateOut[so + n] = v;
          acc += v * p.C[bo + n];
        }
        if (p.D) acc += (p.D.length === H ? p.D[h] : p.D[h * P + pp]) * xv;
        y[xi] = acc;
      }
    }
  }
}
