import { Q8_BLOCK, type Q8Matrix } from "../../../tensor/q8.js";

/** Q8_BLOCK as a module-local constant: V8 folds it into the loops (an imported binding it reloads). */
const BLOCK = 32;
if (BLOCK !== Q8_BLOCK) throw new Error("linear-q8: block size mismatch");

/**
 * out[m, n] = bias[n] + Σ_k x[m, k] · w[n, k] with w a q8 matrix [N, K]; x [M, K], out [M, N] f32.
 *
 * Weight layout (src/tensor/q8.ts, docs/quantization.md; a SIMD twin must read the same): `w.values` is an
 * Int8Array [N·K], row-major, rows not padded (row n starts at byte n·K); `w.scales` is a Float32Array
 * [N·nb], row-major, nb = ceil(K / 32); w[n, k] = scales[n·nb + ⌊k/32⌋] · values[n·K + k]. Blocks run along
 * K inside each row: block b covers k in [32b, min(32b + 32, K)), so the last block of a row is short when
 * 32 ∤ K.
 *
 * Dequantize-on-the-fly, blocked like linearKernel: ROW_BLOCK rows of x stay hot in cache while every group
 * of 4 weight rows passes over them.
 *   - Decode (M < 4) and small row blocks (< DEQUANTIZE_MIN_ROWS rows): int8 values read in place. A 4×4
 *     register tile (4 rows of x × 4 weight rows) sums x·q over one block, then adds d·(that sum) into 16
 *     f64 accumulators; 1×4 tiles (the matrix-vector product of decode) likewise.
 *   - Prefill-sized row blocks: each group of 4 weight rows is widened once into a [4, K] f32 scratch and
 *     linearKernel's f32 4×4 tile runs over it; the widening is amortised over up to ROW_BLOCK rows of x.
 * Leftover weight rows use single dot products. Every product x·q is exact in f64 and the sums are f64, as
 * linearKernel's, so the result equals linear(x, dequantize(w)) up to summation order (tests: 1e-5).
 */
export function linearQ8Kernel(
  x: Float32Array, M: number, K: number, w: Q8Matrix, N: number, bias: Float32Array | null, out: Float32Array,
): void {
  if (M < 4) {
    // Decode: matrix-vector products (kept apart from the tiled loop, which V8 compiles less tightly for them).
    for (let m = 0; m < M; m++) matvec(x, m * K, K, w, N, out, m * N);
  } else {
    tiled(x, M, K, w, N, out);
  }
  if (bias) {
    for (let m = 0; m < M; m++) {
      const row = m * N;
      for (let n = 0; n < N; n++) out[row + n] += bias[n];
    }
  }
}

function matvec(x: Float32Array, xOff: number, K: number, w: Q8Matrix, N: number, out: Float32Array, o: number): void {
  let n = 0;
  for (; n + 4 <= N; n += 4) tile1x4(x, xOff, K, w, n, out, o + n);
  for (; n < N; n++) out[o + n] = dotQ8(x, xOff, K, w, n);
}

function tiled(x: Float32Array, M: number, K: number, w: Q8Matrix, N: number, out: Float32Array): void {
  const acc = new Float64Array(16);
  const scratch = new Float32Array(4 * K);
  for (let m0 = 0; m0 < M; m0 += ROW_BLOCK) {
    const m1 = Math.min(M, m0 + ROW_BLOCK);
    for (let n = 0; n < N; n += 4) {
      const nCount = Math.min(4, N - n);
      let m = m0;
      if (nCount === 4 && m1 - m0 >= DEQUANTIZE_MIN_ROWS) {
        // Many rows of x share these 4 weight rows: widen them once into f32 and run f32 tiles.
        dequantizeRows(w, n, scratch);
        for (; m + 4 <= m1; m += 4) tile4x4F32(x, m * K, K, scratch, out, m * N + n, N);
        for (; m < m1; m++) tile1x4(x, m * K, K, w, n, out, m * N + n);
      } else if (nCount === 4) {
        for (; m + 4 <= m1; m += 4) tile4x4(x, m * K, K, w, n, acc, out, m * N + n, N);
        for (; m < m1; m++) tile1x4(x, m * K, K, w, n, out, m * N + n);
      } else {
        for (; m < m1; m++) {
          for (let j = 0; j < nCount; j++) out[m * N + n + j] = dotQ8(x, m * K, K, w, n + j);
        }
      }
    }
  }
}

/** Rows of x kept hot in cache while every block of weight rows passes over them (as in linearKernel). */
const ROW_BLOCK = 32;

/**
 * From this many rows of x in a row block, 4 weight rows are widened once into an f32 scratch and the f32
 * tiles run over it (the widening is then a few % of the work, and f32 tiles run faster than int8 ones in
 * V8); below it, the int8 tiles read the weights in place.
 */
const DEQUANTIZE_MIN_ROWS = 16;

/** Weight rows [n, n + 4) widened to f32 into `dst` ([4, K]). */
function dequantizeRows(w: Q8Matrix, n: number, dst: Float32Array): void {
  const K = w.cols, nb = w.blocks, v = w.values, s = w.scales;
  let o = 0;
  for (let r = n; r < n + 4; r++) {
    const base = r * K;
    for (let b = 0; b < nb; b++) {
      const d = s[r * nb + b];
      const k0 = base + b * BLOCK;
      const k1 = k0 + BLOCK < base + K ? k0 + BLOCK : base + K;
      for (let i = k0; i < k1; i++) dst[o++] = d * v[i];
    }
  }
}

/** 4 rows of x against 4 widened weight rows (`w` [4, K] f32), as linearKernel's tile. */
function tile4x4F32(x: Float32Array, xOff: number, K: number, w: Float32Array, out: Float32Array, o: number, N: number): void {
  const x1 = xOff + K, x2 = x1 + K, x3 = x2 + K;
  const w1 = K, w2 = w1 + K, w3 = w2 + K;
  let a00 = 0, a01 = 0, a02 = 0, a03 = 0;
  let a10 = 0, a11 = 0, a12 = 0, a13 = 0;
  let a20 = 0, a21 = 0, a22 = 0, a23 = 0;
  let a30 = 0, a31 = 0, a32 = 0, a33 = 0;
  for (let k = 0; k < K; k++) {
    const v0 = w[k], v1 = w[w1 + k], v2 = w[w2 + k], v3 = w[w3 + k];
    const u0 = x[xOff + k];
    a00 += u0 * v0; a01 += u0 * v1; a02 += u0 * v2; a03 += u0 * v3;
    const u1 = x[x1 + k];
    a10 += u1 * v0; a11 += u1 * v1; a12 += u1 * v2; a13 += u1 * v3;
    const u2 = x[x2 + k];
    a20 += u2 * v0; a21 += u2 * v1; a22 += u2 * v2; a23 += u2 * v3;
    const u3 = x[x3 + k];
    a30 += u3 * v0; a31 += u3 * v1; a32 += u3 * v2; a33 += u3 * v3;
  }
  out[o] = a00; out[o + 1] = a01; out[o + 2] = a02; out[o + 3] = a03;
  o += N;
  out[o] = a10; out[o + 1] = a11; out[o + 2] = a12; out[o + 3] = a13;
  o += N;
  out[o] = a20; out[o + 1] = a21; out[o + 2] = a22; out[o + 3] = a23;
  o += N;
  out[o] = a30; out[o + 1] = a31; out[o + 2] = a32; out[o + 3] = a33;
}

/** One output: Σ_b d[n, b] · Σ_{k in block b} x[k]·q[n, k]. */
function dotQ8(x: Float32Array, xOff: number, K: number, w: Q8Matrix, n: number): number {
  const nb = w.blocks, v = w.values, s = w.scales;
  const wOff = n * K;
  let acc = 0;
  for (let b = 0; b < nb; b++) {
    const k0 = b * BLOCK;
    const k1 = k0 + BLOCK < K ? k0 + BLOCK : K;
    let p = 0;
    for (let k = k0; k < k1; k++) p += x[xOff + k] * v[wOff + k];
    acc += s[n * nb + b] * p;
  }
  return acc;
}

/** One row of x against weight rows n..n+3, block by block, int8 values read in place. */
function tile1x4(x: Float32Array, xOff: number, K: number, w: Q8Matrix, n: number, out: Float32Array, o: number): void {
  const nb = w.blocks, v = w.values, s = w.scales;
  const w0 = n * K, w1 = w0 + K, w2 = w1 + K, w3 = w2 + K;
  const s0 = n * nb;
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  for (let b = 0; b < nb; b++) {
    const k0 = b * BLOCK;
    const k1 = k0 + BLOCK < K ? k0 + BLOCK : K;
    let p0 = 0, p1 = 0, p2 = 0, p3 = 0;
    for (let k = k0; k < k1; k++) {
      const xv = x[xOff + k];
      p0 += xv * v[w0 + k]; p1 += xv * v[w1 + k]; p2 += xv * v[w2 + k]; p3 += xv * v[w3 + k];
    }
    a0 += s[s0 + b] * p0; a1 += s[s0 + nb + b] * p1; a2 += s[s0 + 2 * nb + b] * p2; a3 += s[s0 + 3 * nb + b] * p3;
  }
  out[o] = a0; out[o + 1] = a1; out[o + 2] = a2; out[o + 3] = a3;
}

/**
 * Rows m..m+3 of x (from xOff) against weight rows n..n+3: per block, 16 sums of x·q in registers, scaled
 * by the 4 rows' block scales into `acc` (16 f64, row-major 4×4); out[o + i·N + j] at the end.
 */
function tile4x4(
  x: Float32Array, xOff: number, K: number, w: Q8Matrix, n: number, acc: Float64Array, out: Float32Array, o: number, N: number,
): void {
  const nb = w.blocks, v = w.values, s = w.scales;
  const x1 = xOff + K, x2 = x1 + K, x3 = x2 + K;
  const w0 = n * K, w1 = w0 + K, w2 = w1 + K, w3 = w2 + K;
  const s0 = n * nb, s1 = s0 + nb, s2 = s1 + nb, s3 = s2 + nb;
  acc.fill(0);
  for (let b = 0; b < nb; b++) {
    const k0 = b * BLOCK;
    const k1 = k0 + BLOCK < K ? k0 + BLOCK : K;
    let a00 = 0, a01 = 0, a02 = 0, a03 = 0;
    let a10 = 0, a11 = 0, a12 = 0, a13 = 0;
    let a20 = 0, a21 = 0, a22 = 0, a23 = 0;
    let a30 = 0, a31 = 0, a32 = 0, a33 = 0;
    for (let k = k0; k < k1; k++) {
      const v0 = v[w0 + k], v1 = v[w1 + k], v2 = v[w2 + k], v3 = v[w3 + k];
      const u0 = x[xOff + k];
      a00 += u0 * v0; a01 += u0 * v1; a02 += u0 * v2; a03 += u0 * v3;
      const u1 = x[x1 + k];
      a10 += u1 * v0; a11 += u1 * v1; a12 += u1 * v2; a13 += u1 * v3;
      const u2 = x[x2 + k];
      a20 += u2 * v0; a21 += u2 * v1; a22 += u2 * v2; a23 += u2 * v3;
      const u3 = x[x3 + k];
      a30 += u3 * v0; a31 += u3 * v1; a32 += u3 * v2; a33 += u3 * v3;
    }
    const d0 = s[s0 + b], d1 = s[s1 + b], d2 = s[s2 + b], d3 = s[s3 + b];
    acc[0] += d0 * a00; acc[1] += d1 * a01; acc[2] += d2 * a02; acc[3] += d3 * a03;
    acc[4] += d0 * a10; acc[5] += d1 * a11; acc[6] += d2 * a12; acc[7] += d3 * a13;
    acc[8] += d0 * a20; acc[9] += d1 * a21; acc[10] += d2 * a22; acc[11] += d3 * a23;
    acc[12] += d0 * a30; acc[13] += d1 * a31; acc[14] += d2 * a32; acc[15] += d3 * a33;
  }
  for (let i = 0; i < 4; i++) {
    const row = o + i * N;
    out[row] = acc[4 * i]; out[row + 1] = acc[4 * i + 1]; out[row + 2] = acc[4 * i + 2]; out[row + 3] = acc[4 * i + 3];
  }
}
