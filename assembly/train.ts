// Kernels of training's backward pass (src/autograd/fast-kernels.ts calls them; rules/ hold the
// TypeScript references they are tested against). Single-threaded: training runs one process per core.

import { erfc4 } from "./elementwise";
import { exp4, expf, hsum, silu, softplus4 } from "./math";

// ---- C = A·B with a strided A -----------------------------------------------------------------------

/**
 * C[i, j] = Σ_p A[i·sai + p·sap] · B[p, j] for i < I, j < J, p < P (B and C row-major). A's strides
 * let one kernel serve both products of a linear layer's backward without transposing: ∂x = g·w
 * (A = g [M, N]: sai = N, sap = 1) and ∂w = gᵀ·x (A = gᵀ: sai = 1, sap = N). Tiles of 4 rows × 8
 * columns keep 8 vector accumulators in registers while p runs.
 */
export function matmul_strided(a: usize, sai: i32, sap: i32, b: usize, c: usize, I: i32, J: i32, P: i32): void {
  const J8 = J & ~7;
  const rowB = <usize>J << 2;
  let i = 0;
  for (; i + 4 <= I; i += 4) {
    const a0 = a + ((<usize>i * sai) << 2);
    const a1 = a0 + (<usize>sai << 2), a2 = a1 + (<usize>sai << 2), a3 = a2 + (<usize>sai << 2);
    const ap = <usize>sap << 2;
    for (let j = 0; j < J8; j += 8) {
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      let bp = b + (<usize>j << 2);
      let o: usize = 0;
      for (let p = 0; p < P; p++) {
        const b0 = v128.load(bp), b1 = v128.load(bp, 16);
        const x0 = f32x4.splat(load<f32>(a0 + o)), x1 = f32x4.splat(load<f32>(a1 + o));
        const x2 = f32x4.splat(load<f32>(a2 + o)), x3 = f32x4.splat(load<f32>(a3 + o));
        c00 = f32x4.add(c00, f32x4.mul(x0, b0)); c01 = f32x4.add(c01, f32x4.mul(x0, b1));
        c10 = f32x4.add(c10, f32x4.mul(x1, b0)); c11 = f32x4.add(c11, f32x4.mul(x1, b1));
        c20 = f32x4.add(c20, f32x4.mul(x2, b0)); c21 = f32x4.add(c21, f32x4.mul(x2, b1));
        c30 = f32x4.add(c30, f32x4.mul(x3, b0)); c31 = f32x4.add(c31, f32x4.mul(x3, b1));
        bp += rowB;
        o += ap;
      }
      const cp = c + ((<usize>i * J + j) << 2);
      v128.store(cp, c00); v128.store(cp, c01, 16);
      v128.store(cp + rowB, c10); v128.store(cp + rowB, c11, 16);
      v128.store(cp + 2 * rowB, c20); v128.store(cp + 2 * rowB, c21, 16);
      v128.store(cp + 3 * rowB, c30); v128.store(cp + 3 * rowB, c31, 16);
    }
    for (let j = J8; j < J; j++) {
      for (let r = 0; r < 4; r++) store<f32>(c + ((<usize>(i + r) * J + j) << 2), dotColumn(a + ((<usize>(i + r) * sai) << 2), sap, b, J, j, P));
    }
  }
  for (; i < I; i++) {
    const ai = a + ((<usize>i * sai) << 2);
    for (let j = 0; j < J8; j += 8) {
      let c0 = f32x4.splat(0), c1 = f32x4.splat(0);
      let bp = b + (<usize>j << 2);
      for (let p = 0; p < P; p++) {
        const x = f32x4.splat(load<f32>(ai + ((<usize>p * sap) << 2)));
        c0 = f32x4.add(c0, f32x4.mul(x, v128.load(bp)));
        c1 = f32x4.add(c1, f32x4.mul(x, v128.load(bp, 16)));
        bp += rowB;
      }
      const cp = c + ((<usize>i * J + j) << 2);
      v128.store(cp, c0);
      v128.store(cp, c1, 16);
    }
    for (let j = J8; j < J; j++) store<f32>(c + ((<usize>i * J + j) << 2), dotColumn(ai, sap, b, J, j, P));
  }
}

function dotColumn(ai: usize, sap: i32, b: usize, J: i32, j: i32, P: i32): f32 {
  let s: f32 = 0;
  for (let p = 0; p < P; p++) s += load<f32>(ai + ((<usize>p * sap) << 2)) * load<f32>(b + ((<usize>p * J + j) << 2));
  return s;
}

// ---- selective scan backward --------------------------------------------------------------------------

/** Scratch bytes selective_scan_backward needs (states, decays, steps, adjoints, per-row partial sums). */
export function selectiveScanBackwardScratchBytes(L: i32, E: i32, N: i32): i32 {
  const EN = E * N;
  return ((L + 1) * EN + L * EN + L * E + EN + 2 * N + EN + 2 * E + 16) << 2;
}

/**
 * Reverse mode of selective_scan (rules/mamba.ts selectiveScanBackward is the reference and documents
 * the recurrences): per sequence the forward is recomputed keeping every state and decay, then one
 * reverse sweep carries the state adjoint λ. Here λ and the per-sequence sums are f32 (the reference
 * keeps f64); ∂A, ∂D and ∂Δbias are summed per sequence in f32 and across sequences in f64 (gA64,
 * gD64, gBias64). N must be a multiple of 4. Outputs are overwritten; g or gState may be 0 (absent).
 */
export function selective_scan_backward(
  u: usize, delta: usize, A: usize, Bm: usize, Cm: usize, D: usize, z: usize, deltaBias: usize, deltaSoftplus: i32,
  state: usize, g: usize, gState: usize, Bsz: i32, L: i32, E: i32, N: i32,
  gu: usize, gdelta: usize, gB: usize, gC: usize, gz: usize, gstate: usize, gA64: usize, gD64: usize, gBias64: usize,
  scratch: usize,
): void {
  const EN = E * N;
  const ENb = <usize>EN << 2;
  const hs = scratch;
  const decay = hs + (<usize>(L + 1) * ENb);
  const dts = decay + (<usize>L * ENb);
  const lam = dts + ((<usize>L * E) << 2);
  const gBrow = lam + ENb;
  const gCrow = gBrow + (<usize>N << 2);
  const gArow = gCrow + (<usize>N << 2);
  const gDrow = gArow + ENb;
  const gBiasRow = gDrow + (<usize>E << 2);
  for (let b = 0; b < Bsz; b++) {
    // ---- forward recompute ----
    if (state) memory.copy(hs, state + <usize>b * ENb, ENb);
    else memory.fill(hs, 0, ENb);
    for (let t = 0; t < L; t++) {
      const row = <usize>(b * L + t) * E;
      const bn = Bm + ((<usize>(b * L + t) * N) << 2);
      const dto = dts + ((<usize>t * E) << 2);
      for (let e = 0; e < E; e++) {
        let d = load<f32>(delta + ((row + e) << 2));
        if (deltaBias) d += load<f32>(deltaBias + (<usize>e << 2));
        if (deltaSoftplus) d = f32x4.extract_lane(softplus4(f32x4.splat(d)), 0);
        store<f32>(dto + (<usize>e << 2), d);
      }
      const prev = hs + <usize>t * ENb;
      const cur = prev + ENb;
      const dec = decay + <usize>t * ENb;
      for (let e = 0; e < E; e++) {
        const d = load<f32>(dto + (<usize>e << 2));
        const dv = f32x4.splat(d);
        const duv = f32x4.splat(d * load<f32>(u + ((row + e) << 2)));
        const he = (<usize>e * N) << 2;
        for (let n = 0; n < N; n += 4) {
          const k = he + (<usize>n << 2);
          const a = exp4(f32x4.mul(dv, v128.load(A + k)));
          v128.store(dec + k, a);
          v128.store(cur + k, f32x4.add(f32x4.mul(a, v128.load(prev + k)), f32x4.mul(duv, v128.load(bn + (<usize>n << 2)))));
        }
      }
    }
    // ---- reverse sweep ----
    if (gState) memory.copy(lam, gState + <usize>b * ENb, ENb);
    else memory.fill(lam, 0, ENb);
    memory.fill(gArow, 0, ENb);
    memory.fill(gDrow, 0, <usize>E << 2);
    memory.fill(gBiasRow, 0, <usize>E << 2);
    for (let t = L - 1; t >= 0; t--) {
      const row = <usize>(b * L + t) * E;
      const bo = (<usize>(b * L + t) * N) << 2;
      const dto = dts + ((<usize>t * E) << 2);
      const prev = hs + <usize>t * ENb;
      const cur = prev + ENb;
      const dec = decay + <usize>t * ENb;
      memory.fill(gBrow, 0, <usize>N << 3);
      for (let e = 0; e < E; e++) {
        const eo = (row + e) << 2;
        const d = load<f32>(dto + (<usize>e << 2));
        const ue = load<f32>(u + eo);
        const ge: f32 = g ? load<f32>(g + eo) : 0;
        const ze: f32 = z ? load<f32>(z + eo) : 0;
        const gy = z ? ge * silu(ze) : ge;
        const he = (<usize>e * N) << 2;
        const gyv = f32x4.splat(gy), dv = f32x4.splat(d), uev = f32x4.splat(ue);
        let yy = f32x4.splat(0), gdtv = f32x4.splat(0), guev = f32x4.splat(0);
        for (let n = 0; n < N; n += 4) {
          const k = he + (<usize>n << 2);
          const nb = <usize>n << 2;
          const ht = v128.load(cur + k), hp = v128.load(prev + k), a = v128.load(dec + k);
          const cn = v128.load(Cm + bo + nb), bv = v128.load(Bm + bo + nb);
          yy = f32x4.add(yy, f32x4.mul(cn, ht));
          v128.store(gCrow + nb, f32x4.add(v128.load(gCrow + nb), f32x4.mul(gyv, ht)));
          const l = f32x4.add(v128.load(lam + k), f32x4.mul(cn, gyv));
          const ld = f32x4.mul(l, dv);
          const ahp = f32x4.mul(a, hp);
          gdtv = f32x4.add(gdtv, f32x4.mul(l, f32x4.add(f32x4.mul(v128.load(A + k), ahp), f32x4.mul(bv, uev))));
          v128.store(gArow + k, f32x4.add(v128.load(gArow + k), f32x4.mul(ld, ahp)));
          v128.store(gBrow + nb, f32x4.add(v128.load(gBrow + nb), f32x4.mul(ld, uev)));
          guev = f32x4.add(guev, f32x4.mul(ld, bv));
          v128.store(lam + k, f32x4.mul(l, a));
        }
        let y = hsum(yy), gue = hsum(guev), gdt = hsum(gdtv);
        if (D) {
          const De = load<f32>(D + (<usize>e << 2));
          y += De * ue;
          gue += De * gy;
          store<f32>(gDrow + (<usize>e << 2), load<f32>(gDrow + (<usize>e << 2)) + gy * ue);
        }
        store<f32>(gu + eo, gue);
        if (z) {
          const s: f32 = 1 / (1 + expf(-ze));
          store<f32>(gz + eo, ge * y * (s * (1 + ze * (1 - s))));
        }
        if (deltaSoftplus) {
          let raw = load<f32>(delta + eo);
          if (deltaBias) raw += load<f32>(deltaBias + (<usize>e << 2));
          if (raw <= 20) gdt /= 1 + expf(-raw);
        }
        store<f32>(gdelta + eo, gdt);
        if (gBias64) store<f32>(gBiasRow + (<usize>e << 2), load<f32>(gBiasRow + (<usize>e << 2)) + gdt);
      }
      memory.copy(gB + bo, gBrow, <usize>N << 2);
      memory.copy(gC + bo, gCrow, <usize>N << 2);
    }
    if (gstate) memory.copy(gstate + <usize>b * ENb, lam, ENb);
    addF64(gA64, gArow, EN);
    if (gD64) addF64(gD64, gDrow, E);
    if (gBias64) addF64(gBias64, gBiasRow, E);
  }
}

/** acc64[i] += part32[i]. */
function addF64(acc64: usize, part32: usize, n: i32): void {
  for (let i = 0; i < n; i++) {
    const o = <usize>i;
    store<f64>(acc64 + (o << 3), load<f64>(acc64 + (o << 3)) + <f64>load<f32>(part32 + (o << 2)));
  }
}

// ---- SSD (Mamba-2) backward ---------------------------------------------------------------------------

/** Scratch bytes ssd_backward needs: every state of one (sequence, head), the adjoint, per-step sums. */
export function ssdBackwardScratchBytes(L: i32, P: i32, N: i32): i32 {
  return ((L + 1) * P * N + P * N + 2 * N + P + 16) << 2;
}

/**
 * Reverse mode of the SSD recurrence (rules/ssd.ts ssdBackward is the reference and documents it),
 * per (sequence, head): all L + 1 states are recomputed and kept (the reference keeps √L checkpoints in
 * f64), then the adjoint G runs backwards in f32. dtEff [Bsz·L·H] is the effective step (after bias,
 * softplus, clamp); gdtEff receives ∂L/∂dtEff (the caller applies the clamp/softplus chain). gx, gB, gC
 * and gState are overwritten or accumulated as below; gA64 [H] and gD64 are f64 accumulators. dMode:
 * 0 no D, 1 D per head, 2 D per channel. N must be a multiple of 4. Any output may be 0 (not wanted),
 * except gx and gdtEff which must be given.
 */
export function ssd_backward(
  x: usize, dtEff: usize, A: usize, Bm: usize, Cm: usize, D: usize, dMode: i32, state: usize, gy: usize, gStateOut: usize,
  Bsz: i32, L: i32, H: i32, P: i32, G: i32, N: i32,
  gx: usize, gdtEff: usize, gA64: usize, gB: usize, gC: usize, gD64: usize, gState: usize, scratch: usize,
): void {
  const PN = P * N;
  const PNb = <usize>PN << 2;
  const Nb = <usize>N << 2;
  const hpg = H / G;
  const hs = scratch;
  const Gs = hs + <usize>(L + 1) * PNb;
  const gBacc = Gs + PNb;
  const gCacc = gBacc + Nb;
  const gyRow = gCacc + Nb;
  for (let b = 0; b < Bsz; b++) {
    for (let h = 0; h < H; h++) {
      const g = h / hpg;
      const a = load<f32>(A + (<usize>h << 2));
      const so = <usize>(b * H + h) * PNb;
      if (state) memory.copy(hs, state + so, PNb);
      else memory.fill(hs, 0, PNb);
      for (let t = 0; t < L; t++) {
        const r = b * L + t;
        const dt = load<f32>(dtEff + (<usize>(r * H + h) << 2));
        const ev = f32x4.splat(expf(dt * a));
        const xo = x + ((<usize>(r * H + h) * P) << 2);
        const bo = Bm + ((<usize>(r * G + g) * N) << 2);
        const prev = hs + <usize>t * PNb, cur = prev + PNb;
        for (let pp = 0; pp < P; pp++) {
          const xw = f32x4.splat(dt * load<f32>(xo + (<usize>pp << 2)));
          const o = <usize>pp * Nb;
          for (let n = 0; n < N; n += 4) {
            const k = o + (<usize>n << 2);
            v128.store(cur + k, f32x4.add(f32x4.mul(ev, v128.load(prev + k)), f32x4.mul(xw, v128.load(bo + (<usize>n << 2)))));
          }
        }
      }
      if (gStateOut) memory.copy(Gs, gStateOut + so, PNb);
      else memory.fill(Gs, 0, PNb);
      let dA: f32 = 0;
      for (let t = L - 1; t >= 0; t--) {
        const r = b * L + t;
        const dt = load<f32>(dtEff + (<usize>(r * H + h) << 2));
        const e = expf(dt * a);
        const ev = f32x4.splat(e);
        const xi = <usize>(r * H + h) * P;
        const bo = (<usize>(r * G + g) * N) << 2;
        const prev = hs + <usize>t * PNb, cur = prev + PNb;
        for (let pp = 0; pp < P; pp++) {
          const gyp: f32 = gy ? load<f32>(gy + ((xi + pp) << 2)) : 0;
          store<f32>(gyRow + (<usize>pp << 2), gyp);
          let gxp: f32 = 0;
          if (dMode) {
            const dv = load<f32>(D + (<usize>(dMode == 1 ? h : h * P + pp) << 2));
            gxp = dv * gyp;
            if (gD64) {
              const dk = gD64 + (<usize>(dMode == 1 ? h : h * P + pp) << 3);
              store<f64>(dk, load<f64>(dk) + <f64>(gyp * load<f32>(x + ((xi + pp) << 2))));
            }
          }
          store<f32>(gx + ((xi + pp) << 2), gxp);
        }
        memory.fill(gBacc, 0, Nb << 1);
        let dotv = f32x4.splat(0);
        let gdt: f32 = 0;
        for (let pp = 0; pp < P; pp++) {
          const o = <usize>pp * Nb;
          const gyv = f32x4.splat(load<f32>(gyRow + (<usize>pp << 2)));
          const xp = load<f32>(x + ((xi + pp) << 2));
          const xv = f32x4.splat(xp);
          let gbv = f32x4.splat(0);
          for (let n = 0; n < N; n += 4) {
            const k = o + (<usize>n << 2);
            const nb = <usize>n << 2;
            const bv = v128.load(Bm + bo + nb);
            const gv = f32x4.add(v128.load(Gs + k), f32x4.mul(gyv, v128.load(Cm + bo + nb)));
            v128.store(gCacc + nb, f32x4.add(v128.load(gCacc + nb), f32x4.mul(gyv, v128.load(cur + k))));
            dotv = f32x4.add(dotv, f32x4.mul(gv, v128.load(prev + k)));
            gbv = f32x4.add(gbv, f32x4.mul(gv, bv));
            v128.store(gBacc + nb, f32x4.add(v128.load(gBacc + nb), f32x4.mul(gv, xv)));
            v128.store(Gs + k, f32x4.mul(gv, ev));
          }
          const gbp = hsum(gbv);
          const gxo = gx + ((xi + pp) << 2);
          store<f32>(gxo, load<f32>(gxo) + dt * gbp);
          gdt += xp * gbp;
        }
        if (gB) {
          const dtv = f32x4.splat(dt);
          for (let n = 0; n < N; n += 4) {
            const k = gB + bo + (<usize>n << 2);
            v128.store(k, f32x4.add(v128.load(k), f32x4.mul(dtv, v128.load(gBacc + (<usize>n << 2)))));
          }
        }
        if (gC && gy) {
          for (let n = 0; n < N; n += 4) {
            const k = gC + bo + (<usize>n << 2);
            v128.store(k, f32x4.add(v128.load(k), v128.load(gCacc + (<usize>n << 2))));
          }
        }
        const de = e * hsum(dotv);
        dA += dt * de;
        store<f32>(gdtEff + (<usize>(r * H + h) << 2), a * de + gdt);
      }
      store<f64>(gA64 + (<usize>h << 3), load<f64>(gA64 + (<usize>h << 3)) + <f64>dA);
      if (gState) memory.copy(gState + so, Gs, PNb);
    }
  }
}

// ---- causal attention backward -------------------------------------------------------------------------

/** Scratch bytes attention_backward needs: one query's scores over T keys per head, and per-head sums. */
export function attentionBackwardScratchBytes(T: i32, Hq: i32, D: i32): i32 {
  return (Hq * T + 3 * Hq + Hq * D + 16) << 2;
}

/**
 * Backward of causal attention (rules/attention.ts causalAttentionBackward is the reference and gives
 * the formulas), with the softmax recomputed per query in f32 (the reference: f64). qStart is i32 [Bsz].
 * gq is overwritten; gk and gv accumulate (the caller zeroes them); any of the three may be 0. D and Dv
 * must be multiples of 4.
 */
export function attention_backward(
  q: usize, k: usize, v: usize, out: usize, qStart: usize, Bsz: i32, L: i32, T: i32, Hq: i32, Hkv: i32, D: i32, Dv: i32,
  scale: f32, g: usize, gq: usize, gk: usize, gv: usize, scratch: usize,
): void {
  const group = Hq / Hkv;
  const scores = scratch;
  const mx = scores + ((<usize>Hq * T) << 2);
  const sm = mx + (<usize>Hq << 2);
  const dt = sm + (<usize>Hq << 2);
  const gqAcc = dt + (<usize>Hq << 2);
  for (let b = 0; b < Bsz; b++) {
    const start = load<i32>(qStart + (<usize>b << 2));
    for (let i = 0; i < L; i++) {
      const visible = min(T, start + i + 1);
      if (visible <= 0) continue;
      const qo = <usize>(b * L + i) * Hq * D;
      const oo = <usize>(b * L + i) * Hq * Dv;
      for (let h = 0; h < Hq; h++) store<f32>(mx + (<usize>h << 2), -Infinity);
      for (let j = 0; j < visible; j++) {
        const kRow = <usize>(b * T + j) * Hkv * D;
        for (let h = 0; h < Hq; h++) {
          const ko = k + ((kRow + <usize>(h / group) * D) << 2);
          const qh = q + ((qo + <usize>h * D) << 2);
          let acc = f32x4.splat(0);
          for (let e = 0; e < D; e += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qh + (<usize>e << 2)), v128.load(ko + (<usize>e << 2))));
          const s = hsum(acc) * scale;
          store<f32>(scores + ((<usize>h * T + j) << 2), s);
          if (s > load<f32>(mx + (<usize>h << 2))) store<f32>(mx + (<usize>h << 2), s);
        }
      }
      for (let h = 0; h < Hq; h++) {
        const m = load<f32>(mx + (<usize>h << 2));
        const row = scores + ((<usize>h * T) << 2);
        let s: f32 = 0;
        for (let j = 0; j < visible; j++) {
          const w = expf(load<f32>(row + (<usize>j << 2)) - m);
          store<f32>(row + (<usize>j << 2), w);
          s += w;
        }
        store<f32>(sm + (<usize>h << 2), 1 / s);
        const go = g + ((oo + <usize>h * Dv) << 2), ob = out + ((oo + <usize>h * Dv) << 2);
        let acc = f32x4.splat(0);
        for (let e = 0; e < Dv; e += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(go + (<usize>e << 2)), v128.load(ob + (<usize>e << 2))));
        store<f32>(dt + (<usize>h << 2), hsum(acc));
      }
      memory.fill(gqAcc, 0, (<usize>Hq * D) << 2);
      for (let j = 0; j < visible; j++) {
        const kRow = <usize>(b * T + j) * Hkv * D;
        const vRow = <usize>(b * T + j) * Hkv * Dv;
        for (let h = 0; h < Hq; h++) {
          const kvh = <usize>(h / group);
          const ko = (kRow + kvh * D) << 2;
          const vo = (vRow + kvh * Dv) << 2;
          const go = g + ((oo + <usize>h * Dv) << 2);
          const p = load<f32>(scores + ((<usize>h * T + j) << 2)) * load<f32>(sm + (<usize>h << 2));
          const pv = f32x4.splat(p);
          let acc = f32x4.splat(0);
          for (let e = 0; e < Dv; e += 4) {
            const eo = <usize>e << 2;
            const gg = v128.load(go + eo);
            acc = f32x4.add(acc, f32x4.mul(gg, v128.load(v + vo + eo)));
            if (gv) v128.store(gv + vo + eo, f32x4.add(v128.load(gv + vo + eo), f32x4.mul(pv, gg)));
          }
          const ds = p * (hsum(acc) - load<f32>(dt + (<usize>h << 2))) * scale;
          if (ds == 0) continue;
          const dsv = f32x4.splat(ds);
          if (gq) {
            const a = gqAcc + ((<usize>h * D) << 2);
            for (let e = 0; e < D; e += 4) v128.store(a + (<usize>e << 2), f32x4.add(v128.load(a + (<usize>e << 2)), f32x4.mul(dsv, v128.load(k + ko + (<usize>e << 2)))));
          }
          if (gk) {
            const qh = q + ((qo + <usize>h * D) << 2);
            for (let e = 0; e < D; e += 4) {
              const eo = <usize>e << 2;
              v128.store(gk + ko + eo, f32x4.add(v128.load(gk + ko + eo), f32x4.mul(dsv, v128.load(qh + eo))));
            }
          }
        }
      }
      if (gq) memory.copy(gq + (qo << 2), gqAcc, (<usize>Hq * D) << 2);
    }
  }
}

// ---- depthwise causal conv backward ----------------------------------------------------------------------

/**
 * Backward of causal_conv1d (rules/mamba.ts causalConv1dBackward is the reference) for the output
 * gradient g, four channels per lane group (C a multiple of 4). wT is the weight transposed to [K, C].
 * gx [B, L, C] and gs [B, S, C] (S = K − 1; 0 without an initial state) accumulate and must be zeroed;
 * ∂w (as [K, C]) and ∂bias are summed per sequence in f32 into `part` (scratch of (K + 1)·C floats) and
 * across sequences in f64 into gwT64 [K, C] and gb64 [C]. The final-state gradient is the caller's.
 */
export function causal_conv1d_backward(
  x: usize, wT: usize, bias: usize, state: usize, siluAct: i32, g: usize, Bsz: i32, L: i32, C: i32, K: i32,
  gx: usize, gs: usize, gwT64: usize, gb64: usize, part: usize,
): void {
  const S = K - 1;
  const Cb = <usize>C << 2;
  const gbPart = part + <usize>K * Cb;
  for (let b = 0; b < Bsz; b++) {
    memory.fill(part, 0, <usize>(K + 1) * Cb);
    const xb = x + <usize>(b * L) * Cb, gxb = gx + <usize>(b * L) * Cb;
    const sb = state + <usize>(b * S) * Cb, gsb = gs + <usize>(b * S) * Cb;
    for (let t = 0; t < L; t++) {
      for (let c = 0; c < C; c += 4) {
        const co = <usize>c << 2;
        let gp = v128.load(g + <usize>(b * L + t) * Cb + co);
        if (siluAct) {
          let acc = bias ? v128.load(bias + co) : f32x4.splat(0);
          for (let j = 0; j < K; j++) {
            const ti = t - S + j;
            const w = v128.load(wT + <usize>j * Cb + co);
            if (ti >= 0) acc = f32x4.add(acc, f32x4.mul(w, v128.load(xb + <usize>ti * Cb + co)));
            else if (state) acc = f32x4.add(acc, f32x4.mul(w, v128.load(sb + <usize>(S + ti) * Cb + co)));
          }
          const one = f32x4.splat(1);
          const s = f32x4.div(one, f32x4.add(one, exp4(f32x4.neg(acc))));
          gp = f32x4.mul(gp, f32x4.mul(s, f32x4.add(one, f32x4.mul(acc, f32x4.sub(one, s)))));
        }
        v128.store(gbPart + co, f32x4.add(v128.load(gbPart + co), gp));
        for (let j = 0; j < K; j++) {
          const ti = t - S + j;
          const w = v128.load(wT + <usize>j * Cb + co);
          const pw = part + <usize>j * Cb + co;
          if (ti >= 0) {
            const xo = <usize>ti * Cb + co;
            v128.store(pw, f32x4.add(v128.load(pw), f32x4.mul(gp, v128.load(xb + xo))));
            v128.store(gxb + xo, f32x4.add(v128.load(gxb + xo), f32x4.mul(gp, w)));
          } else if (state) {
            const so = <usize>(S + ti) * Cb + co;
            v128.store(pw, f32x4.add(v128.load(pw), f32x4.mul(gp, v128.load(sb + so))));
            v128.store(gsb + so, f32x4.add(v128.load(gsb + so), f32x4.mul(gp, w)));
          }
        }
      }
    }
    addF64(gwT64, part, K * C);
    addF64(gb64, gbPart, C);
  }
}

/**
 * Causal attention forward (the CPU kernel causalAttentionKernel is the reference; same arguments),
 * softmax in f32 with the maximum subtracted. D and Dv must be multiples of 4; scratch holds
 * attentionBackwardScratchBytes(T, Hq, Dv) bytes.
 */
export function attention_forward(
  q: usize, k: usize, v: usize, qStart: usize, Bsz: i32, L: i32, T: i32, Hq: i32, Hkv: i32, D: i32, Dv: i32, scale: f32,
  out: usize, scratch: usize,
): void {
  const group = Hq / Hkv;
  const scores = scratch;
  for (let b = 0; b < Bsz; b++) {
    const start = load<i32>(qStart + (<usize>b << 2));
    for (let i = 0; i < L; i++) {
      const visible = min(T, start + i + 1);
      const qo = <usize>(b * L + i) * Hq * D;
      const oo = out + ((<usize>(b * L + i) * Hq * Dv) << 2);
      for (let h = 0; h < Hq; h++) {
        const ob = oo + ((<usize>h * Dv) << 2);
        memory.fill(ob, 0, <usize>Dv << 2);
        if (visible <= 0) continue;
        const qh = q + ((qo + <usize>h * D) << 2);
        const kvh = <usize>(h / group);
        let m: f32 = -Infinity;
        for (let j = 0; j < visible; j++) {
          const ko = k + ((<usize>(b * T + j) * Hkv * D + kvh * D) << 2);
          let acc = f32x4.splat(0);
          for (let e = 0; e < D; e += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(qh + (<usize>e << 2)), v128.load(ko + (<usize>e << 2))));
          const s = hsum(acc) * scale;
          store<f32>(scores + (<usize>j << 2), s);
          if (s > m) m = s;
        }
        let sum: f32 = 0;
        for (let j = 0; j < visible; j++) {
          const w = expf(load<f32>(scores + (<usize>j << 2)) - m);
          sum += w;
          const wv = f32x4.splat(w);
          const vo = v + ((<usize>(b * T + j) * Hkv * Dv + kvh * Dv) << 2);
          for (let e = 0; e < Dv; e += 4) {
            const eo = <usize>e << 2;
            v128.store(ob + eo, f32x4.add(v128.load(ob + eo), f32x4.mul(wv, v128.load(vo + eo))));
          }
        }
        const inv = f32x4.splat(1 / sum);
        for (let e = 0; e < Dv; e += 4) v128.store(ob + (<usize>e << 2), f32x4.mul(inv, v128.load(ob + (<usize>e << 2))));
      }
    }
  }
}

// ---- GELU (exact, erf form) -----------------------------------------------------------------------------

/** y = x·Φ(x) = 0.5·x·erfc(−x/√2) for n values (n a multiple of 4; the caller pads). */
export function gelu_forward(x: usize, y: usize, n: i32): void {
  const half = f32x4.splat(0.5), c = f32x4.splat(-0.7071067811865476);
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(y + o, f32x4.mul(f32x4.mul(half, v), erfc4(f32x4.mul(c, v))));
  }
}

/** gx = g·(Φ(x) + x·φ(x)) for n values (n a multiple of 4). */
export function gelu_backward(x: usize, g: usize, gx: usize, n: i32): void {
  const half = f32x4.splat(0.5), c = f32x4.splat(-0.7071067811865476), inv = f32x4.splat(0.3989422804014327);
  for (let i = 0; i < n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    const cdf = f32x4.mul(half, erfc4(f32x4.mul(c, v)));
    const pdf = f32x4.mul(inv, exp4(f32x4.mul(f32x4.mul(half, v), f32x4.neg(v))));
    v128.store(gx + o, f32x4.mul(v128.load(g + o), f32x4.add(cdf, f32x4.mul(v, pdf))));
  }
}
