import { silu, softplus } from "../../backends/cpu/kernels/elementwise.js";

/**
 * Backward rules of the Mamba ops (gated RMSNorm, depthwise causal conv, selective scan). Each takes the
 * forward's host inputs and the output gradients; gradients of inputs not asked for come back null.
 */

/** d silu(x) / dx. */
function siluDerivative(x: number): number {
  const s = 1 / (1 + Math.exp(-x));
  return s * (1 + x * (1 - s));
}

// ---- gated RMSNorm ------------------------------------------------------------------------------------

/**
 * out = v / rms(v over its group) · w with v = y·silu(z); w [W] spans the whole last axis (W a multiple
 * of the group size). → (∂y, ∂z, ∂w).
 */
export function gatedRmsNormBackward(
  y: Float32Array, z: Float32Array, w: Float32Array, groupSize: number, eps: number, g: Float32Array,
  want: { y: boolean; z: boolean; w: boolean },
): { gy: Float32Array | null; gz: Float32Array | null; gw: Float32Array | null } {
  const G = groupSize;
  const W = w.length;
  const gy = want.y ? new Float32Array(y.length) : null;
  const gz = want.z ? new Float32Array(y.length) : null;
  const gw64 = want.w ? new Float64Array(W) : null;
  const v = new Float64Array(G);
  const sz = new Float64Array(G);
  for (let o = 0; o < y.length; o += G) {
    const wo = o % W;
    let ss = 0;
    for (let i = 0; i < G; i++) {
      const zi = z[o + i];
      const s = zi / (1 + Math.exp(-zi));
      sz[i] = s;
      const vi = y[o + i] * s;
      v[i] = vi;
      ss += vi * vi;
    }
    const r = 1 / Math.sqrt(ss / G + eps);
    let dot = 0;
    for (let i = 0; i < G; i++) {
      const gi = g[o + i];
      dot += gi * w[wo + i] * v[i];
      if (gw64) gw64[wo + i] += gi * v[i] * r;
    }
    const c = (r * r * r * dot) / G;
    if (!gy && !gz) continue;
    for (let i = 0; i < G; i++) {
      const gv = r * g[o + i] * w[wo + i] - c * v[i];
      if (gy) gy[o + i] = gv * sz[i];
      if (gz) gz[o + i] = gv * y[o + i] * siluDerivative(z[o + i]);
    }
  }
  return { gy, gz, gw: gw64 ? Float32Array.from(gw64) : null };
}

// ---- depthwise causal conv ------------------------------------------------------------------------------

/**
 * Backward of causalConv1dKernel. Output t of channel c = act(bias[c] + Σ_j w[c, j]·in[t − S + j]) with
 * S = K − 1 and in[t < 0] taken from the initial state; the state output is the last S inputs of
 * (state ++ x), so its gradient (gState, may be null) lands back on those inputs.
 */
export function causalConv1dBackward(
  x: Float32Array, Bsz: number, L: number, C: number,
  w: Float32Array, K: number, bias: Float32Array | null, state: Float32Array | null, activation: "silu" | null,
  g: Float32Array | null, gState: Float32Array | null,
  want: { x: boolean; w: boolean; bias: boolean; state: boolean },
): { gx: Float32Array | null; gw: Float32Array | null; gbias: Float32Array | null; gstate: Float32Array | null } {
  const S = K - 1;
  // The input gradient is computed over the extended sequence (state ++ x) whenever x or state wants one.
  const wantIn = want.x || (want.state && !!state);
  const gx = wantIn ? new Float32Array(Bsz * L * C) : null;
  const gs = wantIn && state ? new Float32Array(Bsz * S * C) : null;
  const gw64 = want.w ? new Float64Array(C * K) : null;
  const gb64 = want.bias ? new Float64Array(C) : null;
  if (g) {
    for (let b = 0; b < Bsz; b++) {
      const xb = b * L * C;
      const sb = b * S * C;
      for (let t = 0; t < L; t++) {
        const o = xb + t * C;
        for (let c = 0; c < C; c++) {
          const wc = c * K;
          let gp = g[o + c];
          if (activation === "silu") {
            // Recompute the pre-activation exactly as the forward did.
            let acc = bias ? bias[c] : 0;
            for (let j = 0; j < K; j++) {
              const ti = t - S + j;
              acc += w[wc + j] * (ti >= 0 ? x[xb + ti * C + c] : state ? state[sb + (S + ti) * C + c] : 0);
            }
            gp *= siluDerivative(acc);
          }
          if (gp === 0) continue;
          if (gb64) gb64[c] += gp;
          for (let j = 0; j < K; j++) {
            const ti = t - S + j;
            if (ti >= 0) {
              if (gw64) gw64[wc + j] += gp * x[xb + ti * C + c];
              if (gx) gx[xb + ti * C + c] += gp * w[wc + j];
            } else if (state) {
              const si = sb + (S + ti) * C + c;
              if (gw64) gw64[wc + j] += gp * state[si];
              if (gs) gs[si] += gp * w[wc + j];
            }
          }
        }
      }
    }
  }
  if (gState && gx) addConvStateGrad(gState, gx, gs, Bsz, L, C, S);
  return {
    gx: want.x ? gx : null,
    gw: gw64 ? Float32Array.from(gw64) : null,
    gbias: gb64 ? Float32Array.from(gb64) : null,
    gstate: want.state ? gs : null,
  };
}

/** The final state's gradient back onto the inputs it was copied from (gx, or gs, the initial state's). */
export function addConvStateGrad(gState: Float32Array, gx: Float32Array, gs: Float32Array | null, Bsz: number, L: number, C: number, S: number): void {
  // stateOut[s] = input at time L − S + s: x when that is ≥ 0, else the initial state at S + (L − S + s).
  for (let b = 0; b < Bsz; b++) {
    for (let s = 0; s < S; s++) {
      const t = L - S + s;
      for (let c = 0; c < C; c++) {
        const gv = gState[(b * S + s) * C + c];
        if (t >= 0) gx[(b * L + t) * C + c] += gv;
        else if (gs) gs[(b * S + S + t) * C + c] += gv;
      }
    }
  }
}

// ---- selective scan -------------------------------------------------------------------------------------

export interface ScanHost {
  u: Float32Array; delta: Float32Array; A: Float32Array; B: Float32Array; C: Float32Array;
  D: Float32Array | null; z: Float32Array | null; deltaBias: Float32Array | null; deltaSoftplus: boolean;
  state: Float32Array | null;
}

export interface ScanGrads {
  gu: Float32Array; gdelta: Float32Array; gA: Float32Array; gB: Float32Array; gC: Float32Array;
  gD: Float32Array | null; gz: Float32Array | null; gdeltaBias: Float32Array | null; gstate: Float32Array | null;
}

/**
 * Exact reverse-mode of selectiveScanKernel. Per batch row the forward is recomputed (bit-identical to
 * the kernel: same f32 state and step buffers, same expressions), keeping every state h_t and decay
 * exp(Δ_t·A) of that row ([L, E, N] each, reused across rows); then one reverse sweep carries the state
 * adjoint λ (float64):
 *   λ_t = C_t·ȳ_t + exp(Δ_{t+1}A)·λ_{t+1}   (λ_{L−1} also gets the final-state gradient)
 *   ∂A += λ_t·Δ_t·a_t·h_{t−1},  ∂Δ_t += Σ_n λ_t·(A·a_t·h_{t−1} + B_t·u_t),  ∂B_t += Σ_e λ_t·Δ_t·u_t,
 *   ∂u_t += Σ_n λ_t·Δ_t·B_t + D·ȳ_t,  ∂C_t += Σ_e ȳ_t·h_t,  ∂h_{−1} = a_0·λ_0
 * where ȳ = g·silu(z) is the gradient of the ungated output. O(B·L·E·N) time, O(L·E·N) scratch.
 * g (gradient of y) or gState (of the final state) may be null, not both.
 */
export function selectiveScanBackward(
  p: ScanHost, Bsz: number, L: number, E: number, N: number, g: Float32Array | null, gState: Float32Array | null,
): ScanGrads {
  const EN = E * N;
  const gu = new Float32Array(Bsz * L * E);
  const gdelta = new Float32Array(Bsz * L * E);
  const gB = new Float32Array(Bsz * L * N);
  const gC = new Float32Array(Bsz * L * N);
  const gz = p.z ? new Float32Array(Bsz * L * E) : null;
  const gstate = p.state ? new Float32Array(Bsz * EN) : null;
  const gA64 = new Float64Array(EN);
  const gD64 = p.D ? new Float64Array(E) : null;
  const gbias64 = p.deltaBias ? new Float64Array(E) : null;

  // Per-row scratch: states h_{-1..L-1} (f32, as the kernel keeps them), decays, steps.
  const hs = new Float32Array((L + 1) * EN);
  const decay = new Float32Array(L * EN);
  const dts = new Float32Array(L * E);
  const lam = new Float64Array(EN);
  const gBrow = new Float64Array(N);
  const gCrow = new Float64Array(N);
  const { u, delta, A, B, C, D, z, deltaBias, deltaSoftplus } = p;

  for (let b = 0; b < Bsz; b++) {
    // ---- forward recompute (mirrors selectiveScanKernel) ----
    if (p.state) hs.set(p.state.subarray(b * EN, (b + 1) * EN));
    else hs.fill(0, 0, EN);
    for (let t = 0; t < L; t++) {
      const row = (b * L + t) * E;
      const bn = (b * L + t) * N;
      const dto = t * E;
      for (let e = 0; e < E; e++) {
        const d = delta[row + e] + (deltaBias ? deltaBias[e] : 0);
        dts[dto + e] = deltaSoftplus ? softplus(d) : d;
      }
      const prev = t * EN;
      const cur = prev + EN;
      for (let e = 0; e < E; e++) {
        const d = dts[dto + e];
        const du = d * u[row + e];
        const he = e * N;
        for (let n = 0; n < N; n++) {
          const a = Math.exp(d * A[he + n]);
          decay[prev + he + n] = a;
          hs[cur + he + n] = a * hs[prev + he + n] + du * B[bn + n];
        }
      }
    }

    // ---- reverse sweep ----
    if (gState) for (let i = 0; i < EN; i++) lam[i] = gState[b * EN + i];
    else lam.fill(0);
    for (let t = L - 1; t >= 0; t--) {
      const row = (b * L + t) * E;
      const bn = (b * L + t) * N;
      const dto = t * E;
      const prev = t * EN;
      const cur = prev + EN;
      gBrow.fill(0);
      gCrow.fill(0);
      for (let e = 0; e < E; e++) {
        const d = dts[dto + e];
        const ue = u[row + e];
        const he = e * N;
        const ge = g ? g[row + e] : 0;
        const gate = z ? silu(z[row + e]) : 1;
        const gy = ge * gate;
        let yy = 0, gdt = 0, gue = 0;
        for (let n = 0; n < N; n++) {
          const k = he + n;
          const ht = hs[cur + k];
          const hp = hs[prev + k];
          const a = decay[prev + k];
          const cn = C[bn + n];
          const bv = B[bn + n];
          yy += cn * ht;
          gCrow[n] += gy * ht;
          const l = lam[k] + cn * gy;
          const ld = l * d;
          const ahp = a * hp;
          gdt += l * (A[k] * ahp + bv * ue);
          gA64[k] += ld * ahp;
          gBrow[n] += ld * ue;
          gue += ld * bv;
          lam[k] = l * a;
        }
        if (D) {
          yy += D[e] * ue;
          gue += D[e] * gy;
          gD64![e] += gy * ue;
        }
        gu[row + e] = gue;
        if (gz) gz[row + e] = ge * yy * siluDerivative(z![row + e]);
        if (deltaSoftplus) {
          const raw = delta[row + e] + (deltaBias ? deltaBias[e] : 0);
          if (raw <= 20) gdt /= 1 + Math.exp(-raw);
        }
        gdelta[row + e] = gdt;
        if (gbias64) gbias64[e] += gdt;
      }
      for (let n = 0; n < N; n++) {
        gB[bn + n] = gBrow[n];
        gC[bn + n] = gCrow[n];
      }
    }
    if (gstate) for (let i = 0; i < EN; i++) gstate[b * EN + i] = lam[i];
  }
  return {
    gu, gdelta, gA: Float32Array.from(gA64), gB, gC,
    gD: gD64 ? Float32Array.from(gD64) : null, gz,
    gdeltaBias: gbias64 ? Float32Array.from(gbias64) : null, gstate,
  };
}
