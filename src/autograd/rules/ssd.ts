import type { SsdBuffers, SsdDims } from "../../backends/cpu/kernels/ssd.js";
import { softplus } from "../../backends/cpu/kernels/elementwise.js";

/**
 * Backward rule of Mamba-2's SSD (ssdChunked). It does not mirror the chunked algorithm: it runs the
 * exact reverse pass of the recurrence the chunks compute, per (batch row, head h, group g = h / (H/G)):
 *   h_t = e_t·h_{t−1} + dt_t·x_t ⊗ B_t      (e_t = exp(dt_t·A[h]), h_t ∈ R^{P×N})
 *   y_t = h_t·C_t + D·x_t
 * With G_t = ∂L/∂h_t (from y_t, from h_{t+1} through e_{t+1}, and from the final state):
 *   ∂x_t = dt_t·G_t·B_t + D·∂y_t     ∂B_t += dt_t·G_tᵀ·x_t     ∂C_t += h_tᵀ·∂y_t
 *   ∂dt_t = A·e_t·⟨G_t, h_{t−1}⟩ + x_tᵀ·G_t·B_t                ∂A += dt_t·e_t·⟨G_t, h_{t−1}⟩
 *   G_{t−1} = e_t·G_t + C_{t−1} ⊗ ∂y_{t−1}                      ∂state₀ = e_0·G_0
 * then ∂dt goes back through the clamp (zero where it clamps), the softplus and the bias.
 *
 * The states h_t are recomputed, not stored: one forward pass keeps a checkpoint every S ≈ √L steps, and
 * each segment is recomputed from its checkpoint just before it is reversed (memory O(√L·P·N) per head,
 * cost about two forward recurrences plus the reverse pass, all O(B·L·H·P·N)).
 */

export interface SsdGrads {
  gx: Float32Array | null;
  gdt: Float32Array | null;
  gA: Float32Array | null;
  gB: Float32Array | null;
  gC: Float32Array | null;
  gD: Float32Array | null;
  gdtBias: Float32Array | null;
  gState: Float32Array | null;
}

export interface SsdWant {
  x: boolean; dt: boolean; A: boolean; B: boolean; C: boolean; D: boolean; dtBias: boolean; state: boolean;
}

/**
 * p, d: the forward's host inputs and dims; gy [Bsz, L, H, P] and gStateOut [Bsz, H, P, N] the output
 * gradients (either may be null). Returns the gradients asked for in `want`.
 */
export function ssdBackward(p: SsdBuffers, d: SsdDims, gy: Float32Array | null, gStateOut: Float32Array | null, want: SsdWant): SsdGrads {
  const { Bsz, L, H, P, G, N } = d;
  const PN = P * N;
  const headsPerGroup = H / G;
  const rows = Bsz * L * H;
  const { dtEff, dtDeriv } = ssdEffectiveDt(p, rows, H);

  const needDt = want.dt || want.dtBias;
  const gx = want.x ? new Float32Array(p.x.length) : null;
  const gdtEff = needDt ? new Float32Array(rows) : null;
  const gA = new Float64Array(H);
  const gB = want.B ? new Float64Array(p.B.length) : null;
  const gC = want.C ? new Float64Array(p.C.length) : null;
  const gD = p.D && want.D ? new Float64Array(p.D.length) : null;
  const gState = want.state && p.state ? new Float32Array(p.state.length) : null;
  const perChannelD = p.D !== null && p.D.length !== H;

  // Checkpoints: ckpt[k] = h before segment k (h_{kS−1}); seg[i] = h at step kS + i.
  const S = Math.max(1, Math.ceil(Math.sqrt(L)));
  const segments = Math.ceil(L / S);
  const ckpt = new Float64Array(Math.max(1, segments) * PN);
  const seg = new Float64Array(S * PN);
  const Gs = new Float64Array(PN); // ∂L/∂h_t
  const gBacc = new Float64Array(N);
  const gCacc = new Float64Array(N);
  const gyRow = new Float64Array(P);

  for (let b = 0; b < Bsz; b++) {
    for (let h = 0; h < H; h++) {
      const g = Math.floor(h / headsPerGroup);
      const a = p.A[h];
      const so = (b * H + h) * PN;
      // Forward pass keeping checkpoints only.
      const hcur = seg.subarray(0, PN);
      if (p.state) for (let i = 0; i < PN; i++) hcur[i] = p.state[so + i];
      else hcur.fill(0);
      for (let k = 0; k < segments; k++) {
        ckpt.set(hcur, k * PN);
        if (k === segments - 1) break;
        for (let t = k * S; t < (k + 1) * S; t++) {
          const r = b * L + t;
          const dt = dtEff[r * H + h];
          const e = Math.exp(dt * a);
          const xo = (r * H + h) * P, bo = (r * G + g) * N;
          for (let pp = 0; pp < P; pp++) {
            const xw = dt * p.x[xo + pp];
            const o = pp * N;
            for (let n = 0; n < N; n++) hcur[o + n] = e * hcur[o + n] + xw * p.B[bo + n];
          }
        }
      }
      // Reverse pass, segment by segment.
      if (gStateOut) for (let i = 0; i < PN; i++) Gs[i] = gStateOut[so + i];
      else Gs.fill(0);
      let dA = 0;
      for (let k = segments - 1; k >= 0; k--) {
        const t0 = k * S, t1 = Math.min(L, t0 + S);
        // Recompute h_{t0..t1−1} into seg.
        for (let t = t0; t < t1; t++) {
          const r = b * L + t;
          const dt = dtEff[r * H + h];
          const e = Math.exp(dt * a);
          const xo = (r * H + h) * P, bo = (r * G + g) * N;
          const dst = (t - t0) * PN;
          const src = t === t0 ? ckpt : seg;
          const srcO = t === t0 ? k * PN : dst - PN;
          for (let pp = 0; pp < P; pp++) {
            const xw = dt * p.x[xo + pp];
            const o = pp * N;
            for (let n = 0; n < N; n++) seg[dst + o + n] = e * src[srcO + o + n] + xw * p.B[bo + n];
          }
        }
        for (let t = t1 - 1; t >= t0; t--) {
          const r = b * L + t;
          const dt = dtEff[r * H + h];
          const e = Math.exp(dt * a);
          const xo = (r * H + h) * P, bo = (r * G + g) * N;
          const cur = (t - t0) * PN;
          const prev = t === t0 ? ckpt : seg;
          const prevO = t === t0 ? k * PN : cur - PN;
          let hasGy = false;
          if (gy) {
            for (let pp = 0; pp < P; pp++) gyRow[pp] = gy[xo + pp];
            hasGy = true;
            // Skip term.
            if (p.D) {
              for (let pp = 0; pp < P; pp++) {
                const dv = perChannelD ? p.D[h * P + pp] : p.D[h];
                if (gx) gx[xo + pp] += dv * gyRow[pp];
                if (gD) gD[perChannelD ? h * P + pp : h] += gyRow[pp] * p.x[xo + pp];
              }
            }
          }
          gBacc.fill(0);
          gCacc.fill(0);
          let dot = 0, gdt = 0;
          for (let pp = 0; pp < P; pp++) {
            const o = pp * N;
            const gyp = hasGy ? gyRow[pp] : 0;
            const xp = p.x[xo + pp];
            let gbp = 0;
            for (let n = 0; n < N; n++) {
              const gv = Gs[o + n] + gyp * p.C[bo + n];
              gCacc[n] += gyp * seg[cur + o + n];
              dot += gv * prev[prevO + o + n];
              gbp += gv * p.B[bo + n];
              gBacc[n] += gv * xp;
              Gs[o + n] = gv * e;
            }
            if (gx) gx[xo + pp] += dt * gbp;
            gdt += xp * gbp;
          }
          if (gB) for (let n = 0; n < N; n++) gB[bo + n] += dt * gBacc[n];
          if (gC && hasGy) for (let n = 0; n < N; n++) gC[bo + n] += gCacc[n];
          const de = e * dot;
          dA += dt * de;
          if (gdtEff) gdtEff[r * H + h] = a * de + gdt;
        }
      }
      gA[h] += dA;
      if (gState) for (let i = 0; i < PN; i++) gState[so + i] = Gs[i];
    }
  }

  const { gdt, gdtBias } = gdtEff ? ssdRawDtGrads(gdtEff, dtDeriv, H, want, p.dtBias !== null) : { gdt: null, gdtBias: null };
  return {
    gx, gdt, gdtBias, gState,
    gA: want.A ? Float32Array.from(gA) : null,
    gB: gB ? Float32Array.from(gB) : null,
    gC: gC ? Float32Array.from(gC) : null,
    gD: gD ? Float32Array.from(gD) : null,
  };
}

/**
 * Effective dt exactly as the forward computes it (rounded to f32 like the forward's buffer), and the
 * derivative of the effective dt with respect to the raw dt (0 where the clamp bites).
 */
export function ssdEffectiveDt(p: SsdBuffers, rows: number, H: number): { dtEff: Float32Array; dtDeriv: Float32Array } {
  const dtEff = new Float32Array(rows);
  const dtDeriv = new Float32Array(rows);
  for (let i = 0; i < rows; i++) {
    const raw = p.dt[i] + (p.dtBias ? p.dtBias[i % H] : 0);
    let v = raw, deriv = 1;
    if (p.dtSoftplus) {
      v = softplus(raw);
      deriv = raw > 20 ? 1 : 1 / (1 + Math.exp(-raw));
    }
    if (v < p.dtMin || v > p.dtMax) deriv = 0;
    dtEff[i] = Math.min(Math.max(v, p.dtMin), p.dtMax);
    dtDeriv[i] = deriv;
  }
  return { dtEff, dtDeriv };
}

/** ∂raw dt and ∂dt bias from ∂effective dt (through the clamp, softplus and bias). */
export function ssdRawDtGrads(
  gdtEff: Float32Array, dtDeriv: Float32Array, H: number, want: SsdWant, hasBias: boolean,
): { gdt: Float32Array | null; gdtBias: Float32Array | null } {
  const gdt = new Float32Array(gdtEff.length);
  const bias = new Float64Array(H);
  for (let i = 0; i < gdtEff.length; i++) {
    const v = gdtEff[i] * dtDeriv[i];
    gdt[i] = v;
    bias[i % H] += v;
  }
  return { gdt: want.dt ? gdt : null, gdtBias: want.dtBias && hasBias ? Float32Array.from(bias) : null };
}
