// Mamba-2's SSD for the heads h in [h0, h1): the chunked algorithm over a sequence and the one-step
// update. `state` [Bsz, H, P, N] holds the state before the first step and is overwritten with the
// final one. D: 0 for none, else [H] (dMode 1) or [H·P] (dMode 2).

import { expf, hsum, softplus } from "./math";
import { exp4 } from "./math";

@inline function effectiveDt(dt: usize, i: usize, h: i32, dtBias: usize, sp: i32, dtMin: f32, dtMax: f32): f32 {
  let d = load<f32>(dt + (i << 2));
  if (dtBias) d += load<f32>(dtBias + (<usize>h << 2));
  if (sp) d = softplus(d);
  return min(max(d, dtMin), dtMax);
}

@inline function skip(D: usize, dMode: i32, h: i32, P: i32, p: i32): f32 {
  return dMode == 1 ? load<f32>(D + (<usize>h << 2)) : load<f32>(D + (<usize>(h * P + p) << 2));
}

/** Σ_n a[n]·b[n] over N floats. */
@inline function dot(a: usize, b: usize, N: i32): f32 {
  const N4 = N & ~3;
  let acc = f32x4.splat(0);
  for (let n = 0; n < N4; n += 4) acc = f32x4.add(acc, f32x4.mul(v128.load(a + (<usize>n << 2)), v128.load(b + (<usize>n << 2))));
  let s = hsum(acc);
  for (let n = N4; n < N; n++) s += load<f32>(a + (<usize>n << 2)) * load<f32>(b + (<usize>n << 2));
  return s;
}

/** y[0..N) += s·x[0..N). */
@inline function axpy(y: usize, s: f32, x: usize, N: i32): void {
  const N4 = N & ~3;
  const sv = f32x4.splat(s);
  for (let n = 0; n < N4; n += 4) {
    const o = <usize>n << 2;
    v128.store(y + o, f32x4.add(v128.load(y + o), f32x4.mul(sv, v128.load(x + o))));
  }
  for (let n = N4; n < N; n++) {
    const o = <usize>n << 2;
    store<f32>(y + o, load<f32>(y + o) + s * load<f32>(x + o));
  }
}

/** One step; the entering state is read from stateIn and the new one written to state (may be the same). */
export function ssd_step(
  x: usize, dt: usize, A: usize, Bm: usize, Cm: usize, D: usize, dMode: i32, dtBias: usize, sp: i32, dtMin: f32, dtMax: f32,
  stateIn: usize, state: usize, y: usize, Bsz: i32, H: i32, P: i32, G: i32, N: i32, h0: i32, h1: i32,
): void {
  const hpg = H / G;
  const N4 = N & ~3;
  for (let b = 0; b < Bsz; b++) {
    for (let h = h0; h < h1; h++) {
      const g = h / hpg;
      const d = effectiveDt(dt, <usize>(b * H + h), h, dtBias, sp, dtMin, dtMax);
      const decay = expf(d * load<f32>(A + (<usize>h << 2)));
      const bo = Bm + ((<usize>(b * G + g) * N) << 2);
      const co = Cm + ((<usize>(b * G + g) * N) << 2);
      const dv = f32x4.splat(decay);
      for (let p = 0; p < P; p++) {
        const xi = <usize>(b * H + h) * P + p;
        const xv = load<f32>(x + (xi << 2));
        const so = state + ((xi * N) << 2);
        const si = stateIn + ((xi * N) << 2);
        const bx = f32x4.splat(d * xv);
        let acc = f32x4.splat(0);
        for (let n = 0; n < N4; n += 4) {
          const o = <usize>n << 2;
          const v = f32x4.add(f32x4.mul(v128.load(si + o), dv), f32x4.mul(bx, v128.load(bo + o)));
          v128.store(so + o, v);
          acc = f32x4.add(acc, f32x4.mul(v, v128.load(co + o)));
        }
        let s = hsum(acc);
        for (let n = N4; n < N; n++) {
          const o = <usize>n << 2;
          const v = load<f32>(si + o) * decay + d * xv * load<f32>(bo + o);
          store<f32>(so + o, v);
          s += v * load<f32>(co + o);
        }
        if (D) s += skip(D, dMode, h, P, p) * xv;
        store<f32>(y + (xi << 2), s);
      }
    }
  }
}

/** Scratch bytes one thread needs for ssd_chunked with chunk length Q, head size P and state size N. */
export function ssdChunkedScratchBytes(Q: i32, P: i32, N: i32): i32 {
  const Q4 = (Q + 3) & ~3;
  return (2 * Q4 * Q4 + 3 * Q4 + 3 * Q4 * N + N * P + 64) << 2;
}

/**
 * out[m, n] (+)= Σ_k a[m·ars + k·acs] · b[k·ldb + n] for m < M, n < Nc, k < K (strides in floats; b's
 * rows contiguous along n). 4×8 register tiles (a broadcast, b two vectors); edge rows and columns go
 * one value at a time. causal: row m sums k ≤ m only (the tile rows run to k < m0 + 4, so `a` must hold
 * zeros above its diagonal there).
 */
function mm(out: usize, ldo: i32, a: usize, ars: i32, acs: i32, b: usize, ldb: i32, M: i32, Nc: i32, K: i32, causal: bool, accumulate: bool): void {
  const aRow = <usize>ars << 2, aCol = <usize>acs << 2, bRow = <usize>ldb << 2, oRow = <usize>ldo << 2;
  const N8 = Nc & ~7;
  let m = 0;
  for (; m + 4 <= M; m += 4) {
    const kEnd = causal ? min(K, m + 4) : K;
    const a0 = a + <usize>m * aRow, a1 = a0 + aRow, a2 = a1 + aRow, a3 = a2 + aRow;
    const o0 = out + <usize>m * oRow, o1 = o0 + oRow, o2 = o1 + oRow, o3 = o2 + oRow;
    for (let n = 0; n < N8; n += 8) {
      const no = <usize>n << 2;
      let c00 = f32x4.splat(0), c01 = f32x4.splat(0), c10 = f32x4.splat(0), c11 = f32x4.splat(0);
      let c20 = f32x4.splat(0), c21 = f32x4.splat(0), c30 = f32x4.splat(0), c31 = f32x4.splat(0);
      if (accumulate) {
        c00 = v128.load(o0 + no); c01 = v128.load(o0 + no, 16); c10 = v128.load(o1 + no); c11 = v128.load(o1 + no, 16);
        c20 = v128.load(o2 + no); c21 = v128.load(o2 + no, 16); c30 = v128.load(o3 + no); c31 = v128.load(o3 + no, 16);
      }
      let bp = b + no;
      let ak: usize = 0;
      for (let k = 0; k < kEnd; k++) {
        const w0 = v128.load(bp), w1 = v128.load(bp, 16);
        bp += bRow;
        let x = v128.load32_splat(a0 + ak);
        c00 = f32x4.add(c00, f32x4.mul(x, w0)); c01 = f32x4.add(c01, f32x4.mul(x, w1));
        x = v128.load32_splat(a1 + ak);
        c10 = f32x4.add(c10, f32x4.mul(x, w0)); c11 = f32x4.add(c11, f32x4.mul(x, w1));
        x = v128.load32_splat(a2 + ak);
        c20 = f32x4.add(c20, f32x4.mul(x, w0)); c21 = f32x4.add(c21, f32x4.mul(x, w1));
        x = v128.load32_splat(a3 + ak);
        c30 = f32x4.add(c30, f32x4.mul(x, w0)); c31 = f32x4.add(c31, f32x4.mul(x, w1));
        ak += aCol;
      }
      v128.store(o0 + no, c00); v128.store(o0 + no, c01, 16); v128.store(o1 + no, c10); v128.store(o1 + no, c11, 16);
      v128.store(o2 + no, c20); v128.store(o2 + no, c21, 16); v128.store(o3 + no, c30); v128.store(o3 + no, c31, 16);
    }
    for (let r = m; r < m + 4; r++) mmOne(out, oRow, a, aRow, aCol, b, bRow, r, N8, Nc, causal ? min(K, r + 1) : K, accumulate);
  }
  for (; m < M; m++) mmOne(out, oRow, a, aRow, aCol, b, bRow, m, 0, Nc, causal ? min(K, m + 1) : K, accumulate);
}

/** One row of mm, columns [n0, n1), one value at a time. */
@inline function mmOne(out: usize, oRow: usize, a: usize, aRow: usize, aCol: usize, b: usize, bRow: usize, m: i32, n0: i32, n1: i32, kEnd: i32, accumulate: bool): void {
  const ar = a + <usize>m * aRow, orow = out + <usize>m * oRow;
  for (let n = n0; n < n1; n++) {
    let s: f32 = accumulate ? load<f32>(orow + (<usize>n << 2)) : 0;
    for (let k = 0; k < kEnd; k++) s += load<f32>(ar + <usize>k * aCol) * load<f32>(b + <usize>k * bRow + (<usize>n << 2));
    store<f32>(orow + (<usize>n << 2), s);
  }
}

/**
 * The chunked algorithm (as ssd_minimal), per chunk of Q steps and head:
 *   y_t = exp(S_t)·(C_t·stateᵀ) + Σ_{s≤t} (C_t·B_s)·exp(S_t − S_s)·dt_s·x_s + D·x_t
 *   state ← exp(S_q)·state + Σ_s exp(S_q − S_s)·dt_s·x_s ⊗ B_s
 * with S the running sum of dt·A inside the chunk. Each of the four products is a register-tiled matrix
 * product (mm): C·Bᵀ once per group and chunk; per head the causal mixing matrix times x, the scaled C
 * times the transposed entering state, and x ⊗ (weighted B) into the state.
 */
export function ssd_chunked(
  x: usize, dt: usize, A: usize, Bm: usize, Cm: usize, D: usize, dMode: i32, dtBias: usize, sp: i32, dtMin: f32, dtMax: f32,
  state: usize, y: usize, Bsz: i32, L: i32, H: i32, P: i32, G: i32, N: i32, chunk: i32, h0: i32, h1: i32, scratch: usize,
): void {
  const hpg = H / G;
  const Q = max(1, min(chunk, L));
  const Q4 = (Q + 3) & ~3;
  const CB = scratch;                         // [Q4, Q4] C·Bᵀ of the group
  const MR = CB + ((<usize>Q4 * Q4) << 2);    // [Q4, Q4] causal mixing matrix of the head
  const S = MR + ((<usize>Q4 * Q4) << 2);     // [Q4] running dt·A
  const DT = S + (<usize>Q4 << 2);            // [Q4] effective dt of this head
  const W = DT + (<usize>Q4 << 2);            // [Q4] exp(S_q − S_s)·dt_s
  const BT = W + (<usize>Q4 << 2);            // [N, Q4] Bᵀ of the group's chunk
  const CS = BT + ((<usize>N * Q4) << 2);     // [Q4, N] exp(S_t)·C_t
  const BW = CS + ((<usize>Q4 * N) << 2);     // [Q4, N] W_s·B_s
  const ST = BW + ((<usize>Q4 * N) << 2);     // [N, P] the entering state, transposed
  const rowBC = G * N;                        // floats between time steps in B and C
  const xStride = H * P;                      // floats between time steps in x and y
  for (let b = 0; b < Bsz; b++) {
    for (let t0 = 0; t0 < L; t0 += Q) {
      const q = min(Q, L - t0);
      let cbGroup = -1;
      for (let h = h0; h < h1; h++) {
        const g = h / hpg;
        const bBase = Bm + (((<usize>(b * L + t0) * G + g) * N) << 2);
        const cBase = Cm + (((<usize>(b * L + t0) * G + g) * N) << 2);
        if (g != cbGroup) {
          for (let s = 0; s < q; s++) {
            for (let n = 0; n < N; n++) store<f32>(BT + ((<usize>n * Q4 + s) << 2), load<f32>(bBase + ((<usize>s * rowBC + n) << 2)));
          }
          mm(CB, Q4, cBase, rowBC, 1, BT, Q4, q, q, N, false, false);
          cbGroup = g;
        }
        const a = load<f32>(A + (<usize>h << 2));
        let run: f64 = 0;
        for (let t = 0; t < q; t++) {
          const d = effectiveDt(dt, <usize>(b * L + t0 + t) * H + h, h, dtBias, sp, dtMin, dtMax);
          store<f32>(DT + (<usize>t << 2), d);
          run += <f64>d * <f64>a;
          store<f32>(S + (<usize>t << 2), <f32>run);
        }
        // Mixing matrix rows: CB[t, s]·exp(S_t − S_s)·dt_s for s ≤ t, zeros after t up to the 4-row tile's end.
        for (let t = 0; t < q; t++) {
          const St = load<f32>(S + (<usize>t << 2));
          const stv = f32x4.splat(St);
          const cbr = CB + ((<usize>t * Q4) << 2), mr = MR + ((<usize>t * Q4) << 2);
          let s = 0;
          for (; s + 4 <= t + 1; s += 4) {
            const o = <usize>s << 2;
            v128.store(mr + o, f32x4.mul(f32x4.mul(v128.load(cbr + o), exp4(f32x4.sub(stv, v128.load(S + o)))), v128.load(DT + o)));
          }
          for (; s <= t; s++) {
            const o = <usize>s << 2;
            store<f32>(mr + o, load<f32>(cbr + o) * expf(St - load<f32>(S + o)) * load<f32>(DT + o));
          }
          for (; s < min(q, (t | 3) + 1); s++) store<f32>(mr + (<usize>s << 2), 0);
        }
        const sh = state + ((<usize>(b * H + h) * P * N) << 2);
        const xBase = x + ((<usize>((b * L + t0) * H + h) * P) << 2);
        const yBase = y + ((<usize>((b * L + t0) * H + h) * P) << 2);
        // exp(S_t)·C_t and the entering state transposed, for the output's state part.
        for (let t = 0; t < q; t++) {
          const e = f32x4.splat(expf(load<f32>(S + (<usize>t << 2))));
          const src = cBase + ((<usize>t * rowBC) << 2), dst = CS + ((<usize>t * N) << 2);
          let n = 0;
          for (; n + 4 <= N; n += 4) v128.store(dst + (<usize>n << 2), f32x4.mul(v128.load(src + (<usize>n << 2)), e));
          for (; n < N; n++) store<f32>(dst + (<usize>n << 2), load<f32>(src + (<usize>n << 2)) * f32x4.extract_lane(e, 0));
        }
        for (let p = 0; p < P; p++) {
          for (let n = 0; n < N; n++) store<f32>(ST + ((<usize>n * P + p) << 2), load<f32>(sh + ((<usize>p * N + n) << 2)));
        }
        // y = CS·ST + MR·x (+ D·x).
        mm(yBase, xStride, CS, N, 1, ST, P, q, P, N, false, false);
        mm(yBase, xStride, MR, Q4, 1, xBase, xStride, q, P, q, true, true);
        if (D) {
          for (let t = 0; t < q; t++) {
            const xt = xBase + ((<usize>t * xStride) << 2), yt = yBase + ((<usize>t * xStride) << 2);
            for (let p = 0; p < P; p++) store<f32>(yt + (<usize>p << 2), load<f32>(yt + (<usize>p << 2)) + skip(D, dMode, h, P, p) * load<f32>(xt + (<usize>p << 2)));
          }
        }
        // Pass the state on: state·exp(S_q) + Σ_s x_s ⊗ (exp(S_q − S_s)·dt_s·B_s).
        const total = load<f32>(S + (<usize>(q - 1) << 2));
        for (let s = 0; s < q; s++) {
          const ws = f32x4.splat(expf(total - load<f32>(S + (<usize>s << 2))) * load<f32>(DT + (<usize>s << 2)));
          const src = bBase + ((<usize>s * rowBC) << 2), dst = BW + ((<usize>s * N) << 2);
          let n = 0;
          for (; n + 4 <= N; n += 4) v128.store(dst + (<usize>n << 2), f32x4.mul(v128.load(src + (<usize>n << 2)), ws));
          for (; n < N; n++) store<f32>(dst + (<usize>n << 2), load<f32>(src + (<usize>n << 2)) * f32x4.extract_lane(ws, 0));
        }
        const carry = expf(total);
        const cv = f32x4.splat(carry);
        const PN = P * N;
        const PN4 = PN & ~3;
        for (let i = 0; i < PN4; i += 4) v128.store(sh + (<usize>i << 2), f32x4.mul(v128.load(sh + (<usize>i << 2)), cv));
        for (let i = PN4; i < PN; i++) store<f32>(sh + (<usize>i << 2), load<f32>(sh + (<usize>i << 2)) * carry);
        mm(sh, N, xBase, 1, xStride, BW, N, P, N, q, false, true);
      }
    }
  }
}
