// causalConv1d, selectiveScan and selectiveStateUpdate against plain sequential float64 references
// (mamba_ssm's causal_conv1d_ref / selective_scan_ref), state carrying across chunks, and argument checks.
import { test } from "node:test";
import assert from "node:assert/strict";
import type { Tensor } from "../../src/tensor/tensor.js";
import { causalConv1d, selectiveScan, selectiveStateUpdate, tensor, zeros } from "../../src/ops/index.js";
import { assertClose, assertHippoError, Prng, readChecked, siluRef, softplusRef } from "./helpers.js";

/** Rows [t0, t1) of axis 1 of a host [B, L, C] array. */
function sliceTime(x: ArrayLike<number>, B: number, L: number, C: number, t0: number, t1: number): Float32Array {
  const out = new Float32Array(B * (t1 - t0) * C);
  for (let b = 0; b < B; b++) {
    for (let t = t0; t < t1; t++) for (let c = 0; c < C; c++) out[(b * (t1 - t0) + t - t0) * C + c] = x[(b * L + t) * C + c];
  }
  return out;
}

/** Concatenates host [B, Li, C] arrays along axis 1. */
function catTime(parts: { data: ArrayLike<number>; L: number }[], B: number, C: number): Float32Array {
  const L = parts.reduce((n, p) => n + p.L, 0);
  const out = new Float32Array(B * L * C);
  for (let b = 0; b < B; b++) {
    let t0 = 0;
    for (const p of parts) {
      for (let t = 0; t < p.L; t++) for (let c = 0; c < C; c++) out[(b * L + t0 + t) * C + c] = p.data[(b * p.L + t) * C + c];
      t0 += p.L;
    }
  }
  return out;
}

/** Splits 0..L into consecutive chunks of the given lengths (the last one takes the rest). */
function chunkBounds(L: number, lengths: number[]): [number, number][] {
  const out: [number, number][] = [];
  let t = 0;
  for (const n of lengths) {
    if (t >= L) break;
    out.push([t, Math.min(L, t + n)]);
    t += n;
  }
  if (t < L) out.push([t, L]);
  return out;
}

// =========================================================================================================
// causalConv1d

interface ConvCase {
  B: number; L: number; C: number; K: number;
  x: Float32Array; w: Float32Array; bias: Float32Array | null; state: Float32Array | null; activation: "silu" | null;
}

/**
 * Explicit padded convolution: padded = state (or K-1 zeros) ++ x along time;
 * y[b, t, c] = bias[c] + Σ_j w[c, j] · padded[b, t + j, c]; new state = last K-1 rows of padded.
 */
function convRef(p: ConvCase): { y: Float64Array; state: Float64Array } {
  const { B, L, C, K } = p;
  const S = K - 1;
  const y = new Float64Array(B * L * C);
  const state = new Float64Array(B * S * C);
  for (let b = 0; b < B; b++) {
    const padded: number[][] = []; // [S + L][C]
    for (let s = 0; s < S; s++) padded.push(Array.from({ length: C }, (_, c) => (p.state ? p.state[(b * S + s) * C + c] : 0)));
    for (let t = 0; t < L; t++) padded.push(Array.from({ length: C }, (_, c) => p.x[(b * L + t) * C + c]));
    for (let t = 0; t < L; t++) {
      for (let c = 0; c < C; c++) {
        let acc = p.bias ? p.bias[c] : 0;
        for (let j = 0; j < K; j++) acc += p.w[c * K + j] * padded[t + j][c];
        y[(b * L + t) * C + c] = p.activation === "silu" ? siluRef(acc) : acc;
      }
    }
    for (let s = 0; s < S; s++) for (let c = 0; c < C; c++) state[(b * S + s) * C + c] = padded[L + s][c];
  }
  return { y, state };
}

function runConv(p: ConvCase, x = p.x, L = p.L, state: Tensor | null = p.state && tensor(p.state, [p.B, p.K - 1, p.C])) {
  return causalConv1d({
    x: tensor(x, [p.B, L, p.C]), weight: tensor(p.w, [p.C, p.K]), bias: p.bias && tensor(p.bias, [p.C]), state, activation: p.activation,
  });
}

function convCase(rng: Prng, B: number, L: number, C: number, K: number, withBias: boolean, withState: boolean, activation: "silu" | null): ConvCase {
  return {
    B, L, C, K, activation,
    x: rng.f32(B * L * C, -2, 2), w: rng.f32(C * K), bias: withBias ? rng.f32(C) : null,
    state: withState ? rng.f32(B * (K - 1) * C, -2, 2) : null,
  };
}

test("causalConv1d: matches the padded convolution (bias, silu, given state) over odd shapes", async () => {
  const rng = new Prng(41);
  let n = 0;
  for (const B of [1, 3]) {
    for (const L of [1, 2, 3, 17]) {
      for (const C of [1, 5]) {
        for (const K of [1, 2, 4]) {
          for (const withBias of [false, true]) {
            for (const withState of [false, true]) {
              for (const activation of [null, "silu"] as const) {
                const p = convCase(rng, B, L, C, K, withBias, withState, activation);
                const what = `conv B=${B} L=${L} C=${C} K=${K} bias=${withBias} state=${withState} act=${activation}`;
                const { y, state } = runConv(p);
                const ref = convRef(p);
                assertClose(await readChecked(y, [B, L, C], what), ref.y, `${what} y`);
                // The returned state is a copy of inputs: exact.
                assertClose(await readChecked(state, [B, K - 1, C], what), ref.state, `${what} state`, { tol: 0 });
                n++;
              }
            }
          }
        }
      }
    }
  }
  assert.equal(n, 2 * 4 * 2 * 3 * 2 * 2 * 2);
});

test("causalConv1d: returned state is the last K-1 inputs (reaching into the old state when L < K-1)", async () => {
  // B=1, C=1, K=4: state [a, b, c], x [d] → new state [b, c, d].
  const r1 = causalConv1d({
    x: tensor([4], [1, 1, 1]), weight: tensor([1, 10, 100, 1000], [1, 4]), bias: null, state: tensor([1, 2, 3], [1, 3, 1]), activation: null,
  });
  assert.deepEqual([...(await r1.state.read())], [2, 3, 4]);
  // y = 1·1 + 10·2 + 100·3 + 1000·4 (the newest input meets the last tap).
  assert.deepEqual([...(await r1.y.read())], [4321]);
  // No state: zeros before the sequence.
  const r2 = causalConv1d({ x: tensor([5, 6], [1, 2, 1]), weight: tensor([1, 10, 100, 1000], [1, 4]), bias: tensor([0.5], [1]), state: null, activation: null });
  assert.deepEqual([...(await r2.y.read())], [5000.5, 6500.5]);
  assert.deepEqual([...(await r2.state.read())], [0, 5, 6]);
  // A zero state equals no state.
  const r3 = causalConv1d({ x: tensor([5, 6], [1, 2, 1]), weight: tensor([1, 10, 100, 1000], [1, 4]), bias: tensor([0.5], [1]), state: zeros([1, 3, 1]), activation: null });
  assert.deepEqual([...(await r3.y.read())], [...(await r2.y.read())]);
});

test("causalConv1d: feeding a sequence in pieces with the state carried equals feeding it at once", async () => {
  const rng = new Prng(42);
  for (const K of [1, 2, 4]) {
    for (const [B, C] of [[1, 1], [3, 5]]) {
      for (const pieces of [[1], [2, 15], [8, 9], [1, 1, 1, 1, 13], [3, 14]]) {
        for (const activation of [null, "silu"] as const) {
          const L = 17;
          const p = convCase(rng, B, L, C, K, true, rng.next() < 0.5, activation);
          const full = runConv(p);
          let state: Tensor | null = p.state && tensor(p.state, [B, K - 1, C]);
          const ys: { data: Float32Array; L: number }[] = [];
          for (const [t0, t1] of chunkBounds(L, pieces)) {
            const r = runConv(p, sliceTime(p.x, B, L, C, t0, t1), t1 - t0, state);
            ys.push({ data: (await r.y.read()) as Float32Array, L: t1 - t0 });
            state = r.state;
          }
          const what = `conv pieces K=${K} B=${B} C=${C} [${pieces}] act=${activation}`;
          assertClose(catTime(ys, B, C), await full.y.read(), `${what} y`, { tol: 0 });
          assertClose(await state!.read(), await full.state.read(), `${what} state`, { tol: 0 });
          assertClose(await full.y.read(), convRef(p).y, `${what} vs ref`);
        }
      }
    }
  }
});

test("causalConv1d: shape errors are HippoErrors naming the argument", () => {
  const x = tensor(new Float32Array(2 * 3 * 5), [2, 3, 5]);
  const w = tensor(new Float32Array(5 * 4), [5, 4]);
  assertHippoError(() => causalConv1d({ x: tensor(new Float32Array(15), [3, 5]), weight: w, bias: null, state: null, activation: null }), "x", "[3, 5]");
  assertHippoError(() => causalConv1d({ x, weight: tensor(new Float32Array(16), [4, 4]), bias: null, state: null, activation: null }), "weight", "[4, 4]");
  assertHippoError(() => causalConv1d({ x, weight: tensor(new Float32Array(5), [5]), bias: null, state: null, activation: null }), "weight", "[5]");
  assertHippoError(() => causalConv1d({ x, weight: tensor(new Float32Array(0), [5, 0]), bias: null, state: null, activation: null }), "weight", "[5, 0]");
  assertHippoError(() => causalConv1d({ x, weight: w, bias: tensor(new Float32Array(4), [4]), state: null, activation: null }), "bias", "[4]", "[5]");
  assertHippoError(() => causalConv1d({ x, weight: w, bias: null, state: zeros([2, 4, 5]), activation: null }), "state", "[2, 4, 5]", "[2, 3, 5]");
  assertHippoError(() => causalConv1d({ x, weight: w, bias: null, state: zeros([1, 3, 5]), activation: null }), "state", "[1, 3, 5]");
});

// =========================================================================================================
// selective scan

interface ScanCase {
  Bsz: number; L: number; E: number; N: number;
  u: Float32Array; delta: Float32Array; A: Float32Array; B: Float32Array; C: Float32Array;
  D: Float32Array | null; z: Float32Array | null; deltaBias: Float32Array | null; deltaSoftplus: boolean; state: Float32Array | null;
}

/**
 * mamba_ssm selective_scan_ref, one time step after another in float64 (layouts: u/delta/z [B, L, E],
 * B/C [B, L, N], A [E, N], state [B, E, N]).
 */
function scanRef(p: ScanCase): { y: Float64Array; state: Float64Array } {
  const { Bsz, L, E, N } = p;
  const y = new Float64Array(Bsz * L * E);
  const h = new Float64Array(Bsz * E * N);
  if (p.state) h.set(p.state);
  for (let b = 0; b < Bsz; b++) {
    for (let t = 0; t < L; t++) {
      for (let e = 0; e < E; e++) {
        const i = (b * L + t) * E + e;
        let dt = p.delta[i] + (p.deltaBias ? p.deltaBias[e] : 0);
        if (p.deltaSoftplus) dt = softplusRef(dt);
        let out = 0;
        for (let n = 0; n < N; n++) {
          const s = (b * E + e) * N + n;
          const deltaA = Math.exp(dt * p.A[e * N + n]);
          const deltaBu = dt * p.B[(b * L + t) * N + n] * p.u[i];
          h[s] = deltaA * h[s] + deltaBu;
          out += h[s] * p.C[(b * L + t) * N + n];
        }
        if (p.D) out += p.D[e] * p.u[i];
        if (p.z) out *= siluRef(p.z[i]);
        y[i] = out;
      }
    }
  }
  return { y, state: h };
}

interface ScanOptions { D?: boolean; z?: boolean; deltaBias?: boolean; deltaSoftplus?: boolean; state?: boolean }

function scanCase(rng: Prng, Bsz: number, L: number, E: number, N: number, o: ScanOptions): ScanCase {
  const softplus = o.deltaSoftplus ?? true;
  const A = new Float32Array(E * N);
  for (let i = 0; i < A.length; i++) A[i] = -Math.exp(rng.uniform(-1.5, 1.5)); // A = -exp(A_log)
  return {
    Bsz, L, E, N, A,
    u: rng.f32(Bsz * L * E, -2, 2),
    // Raw time steps: around softplus⁻¹(0.01..0.5) when softplus is on, already positive otherwise.
    delta: softplus ? rng.f32(Bsz * L * E, -4, 1) : rng.f32(Bsz * L * E, 0.001, 0.5),
    B: rng.f32(Bsz * L * N, -1.5, 1.5),
    C: rng.f32(Bsz * L * N, -1.5, 1.5),
    D: o.D ? rng.f32(E, -1, 1) : null,
    z: o.z ? rng.f32(Bsz * L * E, -3, 3) : null,
    deltaBias: o.deltaBias ? rng.f32(E, softplus ? -1 : 0, softplus ? 1 : 0.1) : null,
    deltaSoftplus: softplus,
    state: o.state ? rng.f32(Bsz * E * N, -2, 2) : null,
  };
}

/** Tensors of the time window [t0, t1) of a case (all of it by default); `state` overrides the initial state. */
function scanTensors(p: ScanCase, t0 = 0, t1 = p.L, state?: Tensor | null) {
  const { Bsz, L, E, N } = p;
  const l = t1 - t0;
  return {
    u: tensor(sliceTime(p.u, Bsz, L, E, t0, t1), [Bsz, l, E]),
    delta: tensor(sliceTime(p.delta, Bsz, L, E, t0, t1), [Bsz, l, E]),
    A: tensor(p.A, [E, N]),
    B: tensor(sliceTime(p.B, Bsz, L, N, t0, t1), [Bsz, l, N]),
    C: tensor(sliceTime(p.C, Bsz, L, N, t0, t1), [Bsz, l, N]),
    D: p.D && tensor(p.D, [E]),
    z: p.z && tensor(sliceTime(p.z, Bsz, L, E, t0, t1), [Bsz, l, E]),
    deltaBias: p.deltaBias && tensor(p.deltaBias, [E]),
    deltaSoftplus: p.deltaSoftplus,
    state: state !== undefined ? state : p.state && tensor(p.state, [Bsz, E, N]),
  };
}

const OPTION_SETS: ScanOptions[] = [
  {},
  { D: true },
  { z: true },
  { deltaBias: true },
  { state: true },
  { deltaSoftplus: false },
  { deltaSoftplus: false, deltaBias: true, D: true },
  { D: true, z: true, deltaBias: true, state: true },
  { D: true, z: true, deltaBias: true, state: true, deltaSoftplus: false },
];

const optName = (o: ScanOptions) => JSON.stringify(o);

test("selectiveScan: matches the sequential reference over odd shapes and every optional input", async () => {
  const rng = new Prng(51);
  for (const [Bsz, L, E, N] of [[1, 1, 1, 1], [1, 17, 5, 3], [3, 1, 7, 4], [3, 17, 5, 16], [2, 13, 13, 1], [1, 33, 3, 7]]) {
    for (const o of OPTION_SETS) {
      const p = scanCase(rng, Bsz, L, E, N, o);
      const what = `scan B=${Bsz} L=${L} E=${E} N=${N} ${optName(o)}`;
      const r = selectiveScan(scanTensors(p));
      const ref = scanRef(p);
      assertClose(await readChecked(r.y, [Bsz, L, E], what), ref.y, `${what} y`);
      assertClose(await readChecked(r.state, [Bsz, E, N], what), ref.state, `${what} state`);
    }
  }
});

test("selectiveScan: large raw delta takes softplus's linear branch (x > 20)", async () => {
  const rng = new Prng(52);
  const p = scanCase(rng, 2, 5, 3, 4, { D: true, state: true, deltaBias: true });
  for (let i = 0; i < p.delta.length; i += 2) p.delta[i] = rng.uniform(19.5, 30);
  for (let i = 0; i < p.A.length; i++) p.A[i] = -rng.uniform(0.001, 0.05); // keep exp(ΔA) away from 0
  const r = selectiveScan(scanTensors(p));
  const ref = scanRef(p);
  assertClose(await r.y.read(), ref.y, "y");
  assertClose(await r.state.read(), ref.state, "state");
});

test("selectiveScan: a known one-channel recurrence", async () => {
  // E = N = 1, A = -1, delta = ln 2 (no softplus): deltaA = 1/2; h = h/2 + ln2 · B · u; y = C h + D u.
  const ln2 = Math.LN2;
  const r = selectiveScan({
    u: tensor([1, 2, 3], [1, 3, 1]), delta: tensor([ln2, ln2, ln2], [1, 3, 1]), A: tensor([-1], [1, 1]),
    B: tensor([1, 1, 1], [1, 3, 1]), C: tensor([2, 2, 2], [1, 3, 1]), D: tensor([10], [1]), z: null, deltaBias: null,
    deltaSoftplus: false, state: tensor([4], [1, 1, 1]),
  });
  const f = Math.fround(ln2); // the delta the kernel sees; exp(-f) ≈ 1/2
  const a = Math.exp(-f);
  const h1 = a * 4 + f * 1, h2 = a * h1 + f * 2, h3 = a * h2 + f * 3;
  assertClose(await r.y.read(), [2 * h1 + 10, 2 * h2 + 20, 2 * h3 + 30], "y");
  assertClose(await r.state.read(), [h3], "state");
});

test("selectiveScan: chunks with the state carried equal one call", async () => {
  const rng = new Prng(53);
  for (const [Bsz, L, E, N] of [[1, 17, 5, 3], [3, 17, 7, 16], [2, 33, 3, 1]]) {
    for (const o of [OPTION_SETS[7], OPTION_SETS[8], {}]) {
      for (const pieces of [[1], [5, 1, 11], [16], [3, 3, 3, 3, 3, 3]]) {
        const p = scanCase(rng, Bsz, L, E, N, o);
        const full = selectiveScan(scanTensors(p));
        let state: Tensor | null = p.state && tensor(p.state, [Bsz, E, N]);
        const ys: { data: Float32Array; L: number }[] = [];
        for (const [t0, t1] of chunkBounds(L, pieces)) {
          const r = selectiveScan(scanTensors(p, t0, t1, state));
          ys.push({ data: (await r.y.read()) as Float32Array, L: t1 - t0 });
          state = r.state;
        }
        const what = `scan chunks B=${Bsz} L=${L} E=${E} N=${N} [${pieces}] ${optName(o)}`;
        assertClose(catTime(ys, Bsz, E), await full.y.read(), `${what} y`);
        assertClose(await state!.read(), await full.state.read(), `${what} state`);
      }
    }
  }
});

test("selectiveStateUpdate: equals selectiveScan at L=1 and the reference", async () => {
  const rng = new Prng(54);
  for (const [Bsz, E, N] of [[1, 1, 1], [1, 5, 3], [3, 7, 16], [3, 13, 1], [2, 67, 5]]) {
    for (const o of OPTION_SETS) {
      const p = scanCase(rng, Bsz, 1, E, N, o);
      const what = `update B=${Bsz} E=${E} N=${N} ${optName(o)}`;
      const up = selectiveStateUpdate(scanTensors(p));
      const sc = selectiveScan(scanTensors(p));
      const ref = scanRef(p);
      const yu = await readChecked(up.y, [Bsz, 1, E], what);
      const su = await readChecked(up.state, [Bsz, E, N], what);
      assertClose(yu, ref.y, `${what} y vs ref`);
      assertClose(su, ref.state, `${what} state vs ref`);
      assertClose(yu, await sc.y.read(), `${what} y vs scan`);
      assertClose(su, await sc.state.read(), `${what} state vs scan`);
    }
  }
});

test("selectiveStateUpdate: L steps with the state carried equal one selectiveScan over L", async () => {
  const rng = new Prng(55);
  for (const [Bsz, L, E, N] of [[1, 17, 5, 3], [3, 17, 7, 16], [3, 1, 3, 4], [1, 33, 13, 1]]) {
    for (const o of [OPTION_SETS[0], OPTION_SETS[7], OPTION_SETS[8], { z: true, state: true }]) {
      const p = scanCase(rng, Bsz, L, E, N, o);
      const full = selectiveScan(scanTensors(p));
      let state: Tensor | null = p.state && tensor(p.state, [Bsz, E, N]);
      const ys: { data: Float32Array; L: number }[] = [];
      for (let t = 0; t < L; t++) {
        const r = selectiveStateUpdate(scanTensors(p, t, t + 1, state));
        ys.push({ data: (await r.y.read()) as Float32Array, L: 1 });
        state = r.state;
      }
      const what = `update×${L} B=${Bsz} E=${E} N=${N} ${optName(o)}`;
      const y = catTime(ys, Bsz, E);
      assertClose(y, await full.y.read(), `${what} y vs scan`);
      assertClose(await state!.read(), await full.state.read(), `${what} state vs scan`);
      const ref = scanRef(p);
      assertClose(y, ref.y, `${what} y vs ref`);
      assertClose(await state!.read(), ref.state, `${what} state vs ref`);
    }
  }
});

test("selectiveScan / selectiveStateUpdate: wrong shapes are HippoErrors naming the argument", () => {
  const Bsz = 2, L = 3, E = 5, N = 4;
  const good = (l = L) => ({
    u: zeros([Bsz, l, E]), delta: zeros([Bsz, l, E]), A: zeros([E, N]), B: zeros([Bsz, l, N]), C: zeros([Bsz, l, N]),
    D: zeros([E]) as Tensor | null, z: zeros([Bsz, l, E]) as Tensor | null, deltaBias: zeros([E]) as Tensor | null,
    deltaSoftplus: true, state: zeros([Bsz, E, N]) as Tensor | null,
  });
  // The valid arguments pass.
  selectiveScan(good());
  selectiveStateUpdate(good(1));
  for (const [op, l] of [["selectiveScan", L], ["selectiveStateUpdate", 1]] as const) {
    const run = op === "selectiveScan" ? selectiveScan : selectiveStateUpdate;
    const cases: [string, Partial<ReturnType<typeof good>>, string[]][] = [
      ["u rank", { u: zeros([Bsz * l, E]) }, ["u", `[${Bsz * l}, ${E}]`]],
      ["A rows", { A: zeros([E + 1, N]) }, ["A has shape", `[${E + 1}, ${N}]`]],
      ["A rank", { A: zeros([E]) }, ["A has shape", `[${E}]`]],
      ["delta", { delta: zeros([Bsz, l, E + 1]) }, ["delta has shape", `[${Bsz}, ${l}, ${E + 1}]`, `[${Bsz}, ${l}, ${E}]`]],
      ["B", { B: zeros([Bsz, l, N + 1]) }, ["B has shape", `[${Bsz}, ${l}, ${N + 1}]`, `[${Bsz}, ${l}, ${N}]`]],
      ["B transposed", { B: zeros([Bsz, N, l]) }, ["B has shape"]],
      ["C", { C: zeros([Bsz, l, N - 1]) }, ["C has shape", `[${Bsz}, ${l}, ${N - 1}]`, `[${Bsz}, ${l}, ${N}]`]],
      ["D", { D: zeros([E, 1]) }, ["D has shape", `[${E}, 1]`, `[${E}]`]],
      ["z", { z: zeros([Bsz, l, E - 1]) }, ["z has shape", `[${Bsz}, ${l}, ${E - 1}]`]],
      ["deltaBias", { deltaBias: zeros([N]) }, ["deltaBias has shape", `[${N}]`, `[${E}]`]],
      ["state", { state: zeros([Bsz, N, E]) }, ["state has shape", `[${Bsz}, ${N}, ${E}]`, `[${Bsz}, ${E}, ${N}]`]],
      ["state batch", { state: zeros([1, E, N]) }, ["state has shape", `[1, ${E}, ${N}]`]],
    ];
    for (const [name, patch, fragments] of cases) {
      assert.doesNotThrow(() => run(good(l)), `${op} valid`);
      assertHippoError(() => run({ ...good(l), ...patch }), op, ...fragments);
      void name;
    }
  }
  assertHippoError(() => selectiveStateUpdate(good(2)), "selectiveStateUpdate", "length 1", "2");
});
