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

export function ssd_step(
  x: usize, dt: usize, A: usize, Bm: usize, Cm: usize, D: usize, dMode: i32, dtBias: usize, sp: i32, dtMin: f32, dtMax: f32,
  state: usize, y: usize, Bsz: i32, H: i32, P: i32, G: i32, N: i32, h0: i32, h1: i32,
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
        const bx = f32x4.splat(d * xv);
        let acc = f32x4.splat(0);
        for (let n = 0; n < N4; n += 4) {
          const o = <usize>n << 2;
          const v = f32x4.add(f32x4.mul(v128.load(so + o), dv), f32x4.mul(bx, v128.load(bo + o)));
          v128.store(so + o, v);
          acc = f32x4.add(acc, f32x4.mul(v, v128.load(co + o)));
        }
        let s = hsum(acc);
        for (let n = N4; n < N; n++) {
          const o = <usize>n << 2;
          const v = load<f32>(so + o) * decay + d * xv * load<f32>(bo + o);
          store<f32>(so + o, v);
          s += v * load<f32>(co + o);
        }
        if (D) s += skip(D, dMode, h, P, p) * xv;
        store<f32>(y + (xi << 2), s);
      }
    }
  }
}

/** Scratch bytes one thread needs for ssd_chunked with chunk length Q and head size P. */
export function ssdChunkedScratchBytes(Q: i32, P: i32): i32 {
  return (Q * Q + 4 * Q + P + 16) << 2;
}

/**
 * The chunked algorithm (as ssd_minimal), per chunk of Q steps and head:
 *   y_t = exp(S_t)·(C_t·stateᵀ) + Σ_{s≤t} (C_t·B_s)·exp(S_t − S_s)·dt_s·x_s + D·x_t
 *   state ← exp(S_q)·state + Σ_s exp(S_q − S_s)·dt_s·x_s ⊗ B_s
 * with S the running sum of dt·A inside the chunk. C·Bᵀ is computed once per group and chunk.
 */
export function ssd_chunked(
  x: usize, dt: usize, A: usize, Bm: usize, Cm: usize, D: usize, dMode: i32, dtBias: usize, sp: i32, dtMin: f32, dtMax: f32,
  state: usize, y: usize, Bsz: i32, L: i32, H: i32, P: i32, G: i32, N: i32, chunk: i32, h0: i32, h1: i32, scratch: usize,
): void {
  const hpg = H / G;
  const Q = max(1, min(chunk, L));
  const CB = scratch;                       // [Q, Q]
  const S = CB + ((<usize>Q * Q) << 2);     // [Q] running dt·A
  const DT = S + (<usize>Q << 2);           // [Q] effective dt of this head
  const MR = DT + (<usize>Q << 2);          // [Q] one row of the mixing matrix
  const W = MR + (<usize>Q << 2);           // [Q] exp(S_q − S_s)·dt_s
  const CS = W + (<usize>Q << 2);           // [P] output accumulator
  const rowBC = <usize>G * N;               // floats between time steps in B and C
  for (let b = 0; b < Bsz; b++) {
    for (let t0 = 0; t0 < L; t0 += Q) {
      const q = min(Q, L - t0);
      let cbGroup = -1;
      for (let h = h0; h < h1; h++) {
        const g = h / hpg;
        const bBase = Bm + (((<usize>(b * L + t0) * G + g) * N) << 2);
        const cBase = Cm + (((<usize>(b * L + t0) * G + g) * N) << 2);
        if (g != cbGroup) {
          for (let t = 0; t < q; t++) {
            for (let s = 0; s <= t; s++) {
              store<f32>(CB + ((<usize>(t * Q + s)) << 2), dot(cBase + ((<usize>t * rowBC) << 2), bBase + ((<usize>s * rowBC) << 2), N));
            }
          }
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
        const sh = state + ((<usize>(b * H + h) * P * N) << 2);
        const xStride = <usize>H * P;                 // floats between time steps in x and y
        const xBase = x + ((<usize>((b * L + t0) * H + h) * P) << 2);
        const yBase = y + ((<usize>((b * L + t0) * H + h) * P) << 2);
        for (let t = 0; t < q; t++) {
          const St = load<f32>(S + (<usize>t << 2));
          // Row t of the causal mixing matrix: CB[t, s]·exp(S_t − S_s)·dt_s.
          const stv = f32x4.splat(St);
          let s = 0;
          for (; s + 4 <= t + 1; s += 4) {
            const o = <usize>s << 2;
            const m = f32x4.mul(f32x4.mul(v128.load(CB + ((<usize>t * Q) << 2) + o), exp4(f32x4.sub(stv, v128.load(S + o)))), v128.load(DT + o));
            v128.store(MR + o, m);
          }
          for (; s <= t; s++) {
            const o = <usize>s << 2;
            store<f32>(MR + o, load<f32>(CB + ((<usize>t * Q) << 2) + o) * expf(St - load<f32>(S + o)) * load<f32>(DT + o));
          }
          // From the state entering the chunk.
          const decay = expf(St);
          const ct = cBase + ((<usize>t * rowBC) << 2);
          for (let p = 0; p < P; p++) store<f32>(CS + (<usize>p << 2), dot(sh + ((<usize>p * N) << 2), ct, N) * decay);
          // Within the chunk.
          for (s = 0; s <= t; s++) axpy(CS, load<f32>(MR + (<usize>s << 2)), xBase + ((<usize>s * xStride) << 2), P);
          const xt = xBase + ((<usize>t * xStride) << 2);
          const yt = yBase + ((<usize>t * xStride) << 2);
          for (let p = 0; p < P; p++) {
            let v = load<f32>(CS + (<usize>p << 2));
            if (D) v += skip(D, dMode, h, P, p) * load<f32>(xt + (<usize>p << 2));
            store<f32>(yt + (<usize>p << 2), v);
          }
        }
        // Pass the state on: state·exp(S_q) + Σ_s exp(S_q − S_s)·dt_s·x_s ⊗ B_s.
        const total = load<f32>(S + (<usize>(q - 1) << 2));
        for (let s = 0; s < q; s++) {
          store<f32>(W + (<usize>s << 2), expf(total - load<f32>(S + (<usize>s << 2))) * load<f32>(DT + (<usize>s << 2)));
        }
        const carry = expf(total);
        const cv = f32x4.splat(carry);
        const PN = P * N;
        const PN4 = PN & ~3;
        for (let i = 0; i < PN4; i += 4) v128.store(sh + (<usize>i << 2), f32x4.mul(v128.load(sh + (<usize>i << 2)), cv));
        for (let i = PN4; i < PN; i++) store<f32>(sh + (<usize>i << 2), load<f32>(sh + (<usize>i << 2)) * carry);
        for (let s = 0; s < q; s++) {
          const ws = load<f32>(W + (<usize>s << 2));
          const xs = xBase + ((<usize>s * xStride) << 2);
          const bs = bBase + ((<usize>s * rowBC) << 2);
          for (let p = 0; p < P; p++) axpy(sh + ((<usize>p * N) << 2), load<f32>(xs + (<usize>p << 2)) * ws, bs, N);
        }
      }
    }
  }
}
