// The SSM ops of H3 / S4D against plain float64 recurrences written here: the diagonal SSM's kernel
// (Vandermonde sums, bilinear and ZOH), its FFT convolution with state passing (chunked vs one big FFT vs
// the recurrence, with and without a carried state, with H3's gating), its one-token step, and the shift
// SSM (parallel mode from a carried state vs the recurrence).
import { test } from "node:test";
import type { Tensor } from "../../src/tensor/tensor.js";
import type { DiagSsmParams } from "../../src/backends/backend.js";
import { diagSsmConv, diagSsmKernel, diagSsmStep, shiftSsm, shiftSsmTaps, tensor } from "../../src/ops/index.js";
import { assertClose, assertHippoError, Prng, readChecked } from "./helpers.js";

// ---------------------------------------------------------------------------------------------------------
// Complex float64 helpers and the reference SSM.

type Cx = [number, number];
const cmul = (a: Cx, b: Cx): Cx => [a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]];
const cdiv = (a: Cx, b: Cx): Cx => {
  const m = b[0] * b[0] + b[1] * b[1];
  return [(a[0] * b[0] + a[1] * b[1]) / m, (a[1] * b[0] - a[0] * b[1]) / m];
};
const cexp = (a: Cx): Cx => [Math.exp(a[0]) * Math.cos(a[1]), Math.exp(a[0]) * Math.sin(a[1])];

interface SsmHost {
  H: number; N: number; logDt: Float32Array; A: Float32Array; B: Float32Array; C: Float32Array; disc: "bilinear" | "zoh";
}

/** S4D-like random parameters: A = −exp(·) + i·π·n, dt log-uniform in [1e-3, 1e-1], B and C random. */
function randomSsm(rng: Prng, H: number, N: number, disc: "bilinear" | "zoh"): SsmHost {
  const A = new Float32Array(H * N * 2);
  for (let h = 0; h < H; h++) {
    for (let n = 0; n < N; n++) {
      A[(h * N + n) * 2] = -0.5 * Math.exp(rng.uniform(-1, 1));
      A[(h * N + n) * 2 + 1] = Math.PI * n + rng.uniform(-0.5, 0.5);
    }
  }
  return {
    H, N, disc, A,
    logDt: Float32Array.from({ length: H }, () => rng.uniform(Math.log(1e-3), Math.log(1e-1))),
    B: rng.f32(H * N * 2), C: rng.f32(H * N * 2),
  };
}

function params(s: SsmHost): DiagSsmParams {
  return {
    logDt: tensor(s.logDt, [s.H]), A: tensor(s.A, [s.H, s.N, 2]), B: tensor(s.B, [s.H, s.N, 2]), C: tensor(s.C, [s.H, s.N, 2]),
    discretization: s.disc,
  };
}

/** dA, dB per (h, n), written from the S4D formulas. */
function discrete(s: SsmHost, h: number, n: number): { dA: Cx; dB: Cx; C: Cx } {
  const i = h * s.N + n;
  const dt = Math.exp(s.logDt[h]);
  const A: Cx = [s.A[2 * i], s.A[2 * i + 1]];
  const B: Cx = [s.B[2 * i], s.B[2 * i + 1]];
  const dtA: Cx = [dt * A[0], dt * A[1]];
  if (s.disc === "bilinear") {
    const den: Cx = [1 - dtA[0] / 2, -dtA[1] / 2];
    return { dA: cdiv([1 + dtA[0] / 2, dtA[1] / 2], den), dB: cdiv([dt * B[0], dt * B[1]], den), C: [s.C[2 * i], s.C[2 * i + 1]] };
  }
  const e = cexp(dtA);
  return { dA: e, dB: cmul(B, cdiv([e[0] - 1, e[1]], A)), C: [s.C[2 * i], s.C[2 * i + 1]] };
}

interface GatedCase {
  B: number; L: number; H: number; P: number;
  u: Float32Array; v: Float32Array | null; q: Float32Array | null; D: Float32Array | null; state: Float32Array | null;
}

/** The recurrence of every (h, d1, d2) channel, token by token, gated like H3. */
function recurrenceRef(s: SsmHost, c: GatedCase): { y: Float64Array; state: Float64Array } {
  const { B, L, H, P } = c;
  const N = s.N;
  const C = H * P;
  const y = new Float64Array(B * L * C);
  const state = new Float64Array(B * H * P * P * N * 2);
  if (c.state) state.set(c.state);
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < H; h++) {
      for (let d1 = 0; d1 < P; d1++) {
        for (let d2 = 0; d2 < P; d2++) {
          const so = ((((b * H + h) * P + d1) * P + d2) * N) * 2;
          for (let t = 0; t < L; t++) {
            const row = (b * L + t) * C;
            const x = c.u[row + h * P + d1] * (c.v ? c.v[row + h * P + d2] : 1);
            let z = (c.D ? c.D[h] : 0) * x;
            for (let n = 0; n < N; n++) {
              const { dA, dB, C: Cn } = discrete(s, h, n);
              const st = cmul(dA, [state[so + 2 * n], state[so + 2 * n + 1]]);
              st[0] += dB[0] * x;
              st[1] += dB[1] * x;
              state[so + 2 * n] = st[0];
              state[so + 2 * n + 1] = st[1];
              z += 2 * cmul(Cn, st)[0];
            }
            y[row + h * P + d2] += c.q ? c.q[row + h * P + d1] * z : z;
          }
        }
      }
    }
  }
  return { y, state };
}

function randomCase(rng: Prng, s: SsmHost, B: number, L: number, P: number, gated: boolean, withState: boolean): GatedCase {
  const C = s.H * P;
  return {
    B, L, H: s.H, P,
    u: rng.f32(B * L * C), v: gated ? rng.f32(B * L * C) : null, q: gated ? rng.f32(B * L * C) : null,
    D: rng.f32(s.H), state: withState ? rng.f32(B * s.H * P * P * s.N * 2) : null,
  };
}

function args(s: SsmHost, c: GatedCase, chunkSize: number) {
  const C = c.H * c.P;
  const t = (a: Float32Array | null, shape: number[]) => (a ? tensor(a, shape) : null);
  return {
    u: tensor(c.u, [c.B, c.L, C]), v: t(c.v, [c.B, c.L, C]), q: t(c.q, [c.B, c.L, C]), headDim: c.P, D: t(c.D, [c.H]),
    ssm: params(s), state: t(c.state, [c.B, c.H, c.P, c.P, s.N, 2]), chunkSize,
  };
}

async function read(out: { y: Tensor; state: Tensor }, c: GatedCase, N: number) {
  return {
    y: await readChecked(out.y, [c.B, c.L, c.H * c.P], "y"),
    state: await readChecked(out.state, [c.B, c.H, c.P, c.P, N, 2], "state"),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Diagonal SSM

test("diagSsmKernel is the Vandermonde sum 2·Re Σ C·dB·dA^l, bilinear and ZOH", async () => {
  const rng = new Prng(10);
  for (const disc of ["bilinear", "zoh"] as const) {
    const s = randomSsm(rng, 3, 5, disc);
    const L = 40;
    const want = new Float64Array(s.H * L);
    for (let h = 0; h < s.H; h++) {
      for (let n = 0; n < s.N; n++) {
        const { dA, dB, C } = discrete(s, h, n);
        let p = cmul(C, dB);
        for (let l = 0; l < L; l++) {
          want[h * L + l] += 2 * p[0];
          p = cmul(p, dA);
        }
      }
    }
    assertClose(await readChecked(diagSsmKernel(params(s), L), [s.H, L], "kernel"), want, disc, { tol: 1e-5 });
  }
});

test("diagSsmConv equals the recurrence: outputs and final state, with and without a carried state", async () => {
  const rng = new Prng(11);
  for (const disc of ["bilinear", "zoh"] as const) {
    for (const [L, withState] of [[1, false], [2, true], [37, false], [37, true], [300, true]] as const) {
      const s = randomSsm(rng, 4, 6, disc);
      const c = randomCase(rng, s, 2, L, 1, false, withState);
      const got = await read(diagSsmConv(args(s, c, 4096)), c, s.N);
      const want = recurrenceRef(s, c);
      const what = `${disc} L=${L}${withState ? " from a state" : ""}`;
      assertClose(got.y, want.y, `${what}: y`, { tol: 1e-4 });
      assertClose(got.state, want.state, `${what}: state`, { tol: 1e-4 });
    }
  }
});

test("diagSsmConv with H3's gating (k·v outer products, q-gated sum) equals the recurrence", async () => {
  const rng = new Prng(12);
  for (const [L, H, P] of [[37, 3, 1], [37, 2, 2], [20, 2, 4]]) {
    const s = randomSsm(rng, H, 4, "bilinear");
    const c = randomCase(rng, s, 2, L, P, true, true);
    const got = await read(diagSsmConv(args(s, c, 4096)), c, s.N);
    const want = recurrenceRef(s, c);
    assertClose(got.y, want.y, `L=${L} P=${P}: y`, { tol: 1e-4 });
    assertClose(got.state, want.state, `L=${L} P=${P}: state`, { tol: 1e-4 });
  }
});

test("state passing: chunked convolution equals one big FFT (and the recurrence) at any chunk size", async () => {
  const rng = new Prng(13);
  const s = randomSsm(rng, 3, 8, "bilinear");
  const c = randomCase(rng, s, 2, 5000, 1, true, true);
  const whole = await read(diagSsmConv(args(s, c, 5000)), c, s.N);
  for (const chunk of [1, 7, 64, 1000, 4999]) {
    const got = await read(diagSsmConv(args(s, c, chunk)), c, s.N);
    assertClose(got.y, whole.y, `chunk ${chunk}: y`, { tol: 1e-4 });
    assertClose(got.state, whole.state, `chunk ${chunk}: state`, { tol: 1e-4 });
  }
  const short = randomCase(rng, s, 1, 700, 2, true, true);
  const want = recurrenceRef(s, short);
  const got = await read(diagSsmConv(args(s, short, 96)), short, s.N);
  assertClose(got.y, want.y, "chunk 96 vs recurrence: y", { tol: 1e-4 });
  assertClose(got.state, want.state, "chunk 96 vs recurrence: state", { tol: 1e-4 });
});

test("diagSsmStep continues a prefill: conv over a prefix, then steps, equals conv over the whole", async () => {
  const rng = new Prng(14);
  const s = randomSsm(rng, 3, 5, "zoh");
  const P = 2;
  const c = randomCase(rng, s, 2, 12, P, true, false);
  const whole = await read(diagSsmConv(args(s, c, 64)), c, s.N);
  const C = s.H * P;
  const rows = (a: Float32Array, t0: number, t1: number) => {
    const out = new Float32Array(c.B * (t1 - t0) * C);
    for (let b = 0; b < c.B; b++) out.set(a.subarray((b * c.L + t0) * C, (b * c.L + t1) * C), b * (t1 - t0) * C);
    return out;
  };
  const prefix = { ...c, L: 5, u: rows(c.u, 0, 5), v: rows(c.v!, 0, 5), q: rows(c.q!, 0, 5) };
  let out = diagSsmConv(args(s, prefix, 64));
  const ys: Float32Array[] = [await out.y.readFloat32()];
  for (let t = 5; t < c.L; t++) {
    const one = { ...c, L: 1, u: rows(c.u, t, t + 1), v: rows(c.v!, t, t + 1), q: rows(c.q!, t, t + 1), state: await out.state.readFloat32() };
    out = diagSsmStep(args(s, one, 64));
    ys.push(await out.y.readFloat32());
  }
  const y = new Float32Array(c.B * c.L * C);
  for (let b = 0; b < c.B; b++) {
    let t0 = 0;
    for (const part of ys) {
      const Lp = part.length / (c.B * C);
      y.set(part.subarray(b * Lp * C, (b + 1) * Lp * C), (b * c.L + t0) * C);
      t0 += Lp;
    }
  }
  assertClose(y, whole.y, "prefill + steps vs whole", { tol: 1e-5 });
  assertClose(await out.state.readFloat32(), whole.state, "final state", { tol: 1e-5 });
});

test("diagSsmConv / diagSsmStep reject bad shapes", () => {
  const rng = new Prng(15);
  const s = randomSsm(rng, 2, 3, "bilinear");
  const c = randomCase(rng, s, 1, 4, 1, false, false);
  const a = args(s, c, 16);
  assertHippoError(() => diagSsmConv({ ...a, state: tensor(new Float32Array(12), [1, 2, 3, 2]) }), "diagSsmConv: state has shape [1, 2, 3, 2], expected [1, 2, 1, 1, 3, 2]");
  assertHippoError(() => diagSsmConv({ ...a, chunkSize: 0 }), "chunk size must be a positive integer");
  assertHippoError(() => diagSsmStep(a), "one step takes length 1, got 4");
  assertHippoError(() => diagSsmConv({ ...a, ssm: { ...a.ssm, A: tensor(new Float32Array(18), [3, 3, 2]) } }), "A has shape [3, 3, 2], expected [2, modes, 2]");
});

// ---------------------------------------------------------------------------------------------------------
// Shift SSM

/** s ← shift(s) + B·x, y = C·s + D·x, channel by channel. */
function shiftRef(u: Float32Array, B: Float32Array, C: Float32Array, D: Float32Array, state: Float32Array | null, Bsz: number, L: number, Ch: number, N: number) {
  const y = new Float64Array(Bsz * L * Ch);
  const st = new Float64Array(Bsz * Ch * N);
  if (state) st.set(state);
  for (let b = 0; b < Bsz; b++) {
    for (let c = 0; c < Ch; c++) {
      const s = st.subarray((b * Ch + c) * N, (b * Ch + c + 1) * N);
      for (let t = 0; t < L; t++) {
        const x = u[(b * L + t) * Ch + c];
        s.copyWithin(1, 0, N - 1);
        s[0] = 0;
        let out = D[c] * x;
        for (let n = 0; n < N; n++) {
          s[n] += B[c * N + n] * x;
          out += C[c * N + n] * s[n];
        }
        y[(b * L + t) * Ch + c] = out;
      }
    }
  }
  return { y, state: st };
}

test("shiftSsmTaps is the cross-correlation k[j] = Σ_i B[i]·C[i+j]", async () => {
  const rng = new Prng(16);
  const B = rng.f32(3 * 6), C = rng.f32(3 * 6);
  const want = new Float64Array(18);
  for (let c = 0; c < 3; c++) for (let j = 0; j < 6; j++) for (let i = 0; i + j < 6; i++) want[c * 6 + j] += B[c * 6 + i] * C[c * 6 + i + j];
  assertClose(await readChecked(shiftSsmTaps(tensor(B, [3, 6]), tensor(C, [3, 6])), [3, 6], "taps"), want, "taps", { tol: 1e-6 });
});

test("shiftSsm (parallel, any length, from a carried state) equals the recurrence", async () => {
  const rng = new Prng(17);
  const Ch = 5, N = 6, Bsz = 2;
  const B = rng.f32(Ch * N), C = rng.f32(Ch * N), D = rng.f32(Ch);
  const taps = shiftSsmTaps(tensor(B, [Ch, N]), tensor(C, [Ch, N]));
  for (const L of [1, 2, 5, 6, 7, 40]) {
    for (const withState of [false, true]) {
      const u = rng.f32(Bsz * L * Ch);
      const state = withState ? rng.f32(Bsz * Ch * N) : null;
      const out = shiftSsm({
        u: tensor(u, [Bsz, L, Ch]), taps: withState ? taps : null, B: tensor(B, [Ch, N]), C: tensor(C, [Ch, N]), D: tensor(D, [Ch]),
        state: state ? tensor(state, [Bsz, Ch, N]) : null,
      });
      const want = shiftRef(u, B, C, D, state, Bsz, L, Ch, N);
      const what = `L=${L}${withState ? " from a state" : ""}`;
      assertClose(await readChecked(out.y, [Bsz, L, Ch], "y"), want.y, `${what}: y`, { tol: 1e-5 });
      assertClose(await readChecked(out.state, [Bsz, Ch, N], "state"), want.state, `${what}: state`, { tol: 1e-5 });
    }
  }
});

test("shiftSsm rejects bad shapes", () => {
  const u = tensor(new Float32Array(2 * 3 * 4), [2, 3, 4]);
  const m = tensor(new Float32Array(4 * 5), [4, 5]);
  assertHippoError(() => shiftSsm({ u, taps: tensor(new Float32Array(15), [3, 5]), B: m, C: m, D: null, state: null }), "taps has shape [3, 5], expected [4, 5]");
  assertHippoError(() => shiftSsm({ u, taps: null, B: tensor(new Float32Array(15), [3, 5]), C: m, D: null, state: null }), "B has shape [3, 5], expected [4, d_state]");
  assertHippoError(() => shiftSsm({ u, taps: m, B: m, C: m, D: null, state: tensor(new Float32Array(20), [1, 4, 5]) }), "state has shape [1, 4, 5], expected [2, 4, 5]");
});
