// Causal grouped-query attention for the query heads h in [h0, h1) (one thread's share):
// q [Bsz, L, Hq, D], k [Bsz, T, Hkv, D], v [Bsz, T, Hkv, Dv], out [Bsz, L, Hq, Dv]. Query i of row b sits
// at position qStart[b] + i (i32) and sees keys 0..that position. Scores go to the thread's scratch (T
// floats), softmax in f32 with the maximum subtracted (the TypeScript twin sums in f64).

import { exp4, hsum } from "./math";

/** (Σa, Σb, Σc, Σd) of four vectors. */
@inline function sum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 4, 1, 5), v128.shuffle<f32>(a, b, 2, 6, 3, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 4, 1, 5), v128.shuffle<f32>(c, d, 2, 6, 3, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 1, 4, 5), v128.shuffle<f32>(ab, cd, 2, 3, 6, 7));
}

@inline function dotTail(a: usize, b: usize, from: i32, D: i32): f32 {
  let s: f32 = 0;
  for (let e = from; e < D; e++) s += load<f32>(a + (<usize>e << 2)) * load<f32>(b + (<usize>e << 2));
  return s;
}

/** Scratch bytes one thread needs for T keys. */
export function attentionScratchBytes(T: i32): i32 {
  return (T + 8) << 2;
}

export function causal_attention(
  q: usize, k: usize, v: usize, qStart: usize, Bsz: i32, L: i32, T: i32, Hq: i32, Hkv: i32, D: i32, Dv: i32, scale: f32,
  out: usize, h0: i32, h1: i32, scratch: usize,
): void {
  const group = Hq / Hkv;
  const D4 = D & ~3, Dv4 = Dv & ~3, Dv16 = Dv & ~15;
  const kStride = (<usize>Hkv * D) << 2, vStride = (<usize>Hkv * Dv) << 2;
  const sc = f32x4.splat(scale);
  for (let b = 0; b < Bsz; b++) {
    const start = load<i32>(qStart + (<usize>b << 2));
    for (let i = 0; i < L; i++) {
      const visible = min(T, max(0, start + i + 1));
      for (let h = h0; h < h1; h++) {
        const qh = q + ((<usize>((b * L + i) * Hq + h) * D) << 2);
        const kb = k + ((<usize>(b * T) * Hkv + h / group) * D << 2);
        const vb = v + ((<usize>(b * T) * Hkv + h / group) * Dv << 2);
        const oh = out + ((<usize>((b * L + i) * Hq + h) * Dv) << 2);
        if (visible == 0) {
          memory.fill(oh, 0, <usize>Dv << 2);
          continue;
        }
        // Scores, four keys at a time.
        let j = 0;
        let mx = f32x4.splat(-Infinity);
        for (; j + 4 <= visible; j += 4) {
          const k0 = kb + <usize>j * kStride, k1 = k0 + kStride, k2 = k1 + kStride, k3 = k2 + kStride;
          let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
          for (let e = 0; e < D4; e += 4) {
            const o = <usize>e << 2;
            const qv = v128.load(qh + o);
            a0 = f32x4.add(a0, f32x4.mul(qv, v128.load(k0 + o)));
            a1 = f32x4.add(a1, f32x4.mul(qv, v128.load(k1 + o)));
            a2 = f32x4.add(a2, f32x4.mul(qv, v128.load(k2 + o)));
            a3 = f32x4.add(a3, f32x4.mul(qv, v128.load(k3 + o)));
          }
          let s = sum4(a0, a1, a2, a3);
          if (D4 < D) {
            s = f32x4.add(s, f32x4.replace_lane(f32x4.replace_lane(f32x4.replace_lane(f32x4.splat(dotTail(qh, k0, D4, D)),
              1, dotTail(qh, k1, D4, D)), 2, dotTail(qh, k2, D4, D)), 3, dotTail(qh, k3, D4, D)));
          }
          s = f32x4.mul(s, sc);
          mx = f32x4.max(mx, s);
          v128.store(scratch + (<usize>j << 2), s);
        }
        let m = max(max(f32x4.extract_lane(mx, 0), f32x4.extract_lane(mx, 1)), max(f32x4.extract_lane(mx, 2), f32x4.extract_lane(mx, 3)));
        for (; j < visible; j++) {
          const kj = kb + <usize>j * kStride;
          let a = f32x4.splat(0);
          for (let e = 0; e < D4; e += 4) a = f32x4.add(a, f32x4.mul(v128.load(qh + (<usize>e << 2)), v128.load(kj + (<usize>e << 2))));
          const s = (hsum(a) + dotTail(qh, kj, D4, D)) * scale;
          store<f32>(scratch + (<usize>j << 2), s);
          m = max(m, s);
        }
        // Weights exp(s − max) in place, and their sum.
        const mv = f32x4.splat(m);
        let sv = f32x4.splat(0);
        j = 0;
        for (; j + 4 <= visible; j += 4) {
          const w = exp4(f32x4.sub(v128.load(scratch + (<usize>j << 2)), mv));
          v128.store(scratch + (<usize>j << 2), w);
          sv = f32x4.add(sv, w);
        }
        let sum = hsum(sv);
        for (; j < visible; j++) {
          const w = f32x4.extract_lane(exp4(f32x4.splat(load<f32>(scratch + (<usize>j << 2)) - m)), 0);
          store<f32>(scratch + (<usize>j << 2), w);
          sum += w;
        }
        const inv = f32x4.splat(1 / sum);
        // out = Σ_j w_j · v_j / Σ w, sixteen output values at a time in registers.
        let e = 0;
        for (; e < Dv16; e += 16) {
          let c0 = f32x4.splat(0), c1 = f32x4.splat(0), c2 = f32x4.splat(0), c3 = f32x4.splat(0);
          let vp = vb + (<usize>e << 2);
          for (let jj = 0; jj < visible; jj++) {
            const w = v128.load32_splat(scratch + (<usize>jj << 2));
            c0 = f32x4.add(c0, f32x4.mul(w, v128.load(vp)));
            c1 = f32x4.add(c1, f32x4.mul(w, v128.load(vp, 16)));
            c2 = f32x4.add(c2, f32x4.mul(w, v128.load(vp, 32)));
            c3 = f32x4.add(c3, f32x4.mul(w, v128.load(vp, 48)));
            vp += vStride;
          }
          const o = oh + (<usize>e << 2);
          v128.store(o, f32x4.mul(c0, inv));
          v128.store(o, f32x4.mul(c1, inv), 16);
          v128.store(o, f32x4.mul(c2, inv), 32);
          v128.store(o, f32x4.mul(c3, inv), 48);
        }
        for (; e < Dv4; e += 4) {
          let c0 = f32x4.splat(0);
          let vp = vb + (<usize>e << 2);
          for (let jj = 0; jj < visible; jj++) {
            c0 = f32x4.add(c0, f32x4.mul(v128.load32_splat(scratch + (<usize>jj << 2)), v128.load(vp)));
            vp += vStride;
          }
          v128.store(oh + (<usize>e << 2), f32x4.mul(c0, inv));
        }
        for (; e < Dv; e++) {
          let c: f32 = 0;
          let vp = vb + (<usize>e << 2);
          for (let jj = 0; jj < visible; jj++) {
            c += load<f32>(scratch + (<usize>jj << 2)) * load<f32>(vp);
            vp += vStride;
          }
          store<f32>(oh + (<usize>e << 2), c / sum);
        }
      }
    }
  }
}
