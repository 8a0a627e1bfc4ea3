import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../src/generate/rng.js";
import { ssdChunked, ssdStep, tensor } from "../../src/ops/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";
import { relativeL2 } from "../fixtures.js";

function rand(rng: Rng, n: number, scale = 1, offset = 0): Float32Array {
  return Float32Array.from({ length: n }, () => offset + scale * (rng.nextFloat() * 2 - 1));
}

/** Random SSD problem: B rows, L steps, H heads of P dims, G groups, N state dims. */
function problem(seed: number, B: number, L: number, H: number, P: number, G: number, N: number) {
  const rng = new Rng(seed);
  return {
    x: tensor(rand(rng, B * L * H * P), [B, L, H, P]),
    dt: tensor(rand(rng, B * L * H, 1.5, -1), [B, L, H]),
    A: tensor(rand(rng, H, 2, -2.5), [H]),
    B: tensor(rand(rng, B * L * G * N), [B, L, G, N]),
    C: tensor(rand(rng, B * L * G * N), [B, L, G, N]),
    D: tensor(rand(rng, H), [H]),
    dtBias: tensor(rand(rng, H, 0.5), [H]),
    state: tensor(rand(rng, B * H * P * N), [B, H, P, N]),
  };
}

const slice = async (t: Tensor, from: number, to: number, inner: number) => (await t.readFloat32()).slice(from * inner, to * inner);

/** The recurrence, step by step through ssdStep, for every row. */
async function recurrent(p: ReturnType<typeof problem>, L: number, dtMin = 0, dtMax = Infinity) {
  const [B, , H, P] = p.x.shape;
  const [, , G, N] = p.B.shape;
  const ys = new Float32Array(B * L * H * P);
  const rowsOf = async (t: Tensor, b: number, s: number, inner: number) => (await t.readFloat32()).slice((b * L + s) * inner, (b * L + s + 1) * inner);
  const states: Float32Array[] = [];
  for (let b = 0; b < B; b++) {
    let state = tensor((await p.state.readFloat32()).slice(b * H * P * N, (b + 1) * H * P * N), [1, H, P, N]);
    for (let s = 0; s < L; s++) {
      const r = ssdStep({
        x: tensor(await rowsOf(p.x, b, s, H * P), [1, 1, H, P]), dt: tensor(await rowsOf(p.dt, b, s, H), [1, 1, H]), A: p.A,
        B: tensor(await rowsOf(p.B, b, s, G * N), [1, 1, G, N]), C: tensor(await rowsOf(p.C, b, s, G * N), [1, 1, G, N]),
        D: p.D, dtBias: p.dtBias, dtSoftplus: true, dtMin, dtMax, state, chunkSize: 1,
      });
      ys.set(await r.y.readFloat32(), (b * L + s) * H * P);
      state = r.state;
    }
    states.push(await state.readFloat32());
  }
  return { y: ys, state: Float32Array.from(states.flatMap((s) => Array.from(s))) };
}

test("SSD chunked prefill equals the recurrence for random lengths 1..300 and several chunk sizes", async () => {
  const rng = new Rng(77);
  const lengths = [1, 2, 7, 16, 17, 63, 64, 65, 129, 300, ...Array.from({ length: 4 }, () => 1 + Math.floor(rng.nextFloat() * 300))];
  for (const [i, L] of lengths.entries()) {
    const p = problem(100 + i, 2, L, 4, 3, 2, 5);
    const ref = await recurrent(p, L);
    for (const chunkSize of [1, 3, 16, 64, 256]) {
      const out = ssdChunked({ ...p, dtSoftplus: true, dtMin: 0, dtMax: Infinity, chunkSize });
      const ey = relativeL2(await out.y.readFloat32(), ref.y);
      const es = relativeL2(await out.state.readFloat32(), ref.state);
      assert.ok(ey < 1e-5 && es < 1e-5, `L=${L} chunk=${chunkSize}: y ${ey}, state ${es}`);
    }
  }
});

test("SSD: dt clamping, D per channel, no initial state, and state passing across calls", async () => {
  const L = 40;
  const p = problem(5, 1, L, 2, 4, 1, 3);
  const clamped = ssdChunked({ ...p, dtSoftplus: true, dtMin: 0.2, dtMax: 0.9, chunkSize: 8 });
  const ref = await recurrent(p, L, 0.2, 0.9);
  assert.ok(relativeL2(await clamped.y.readFloat32(), ref.y) < 1e-5);
  const Dfull = tensor(Float32Array.from({ length: 8 }, (_, i) => i / 8), [8]);
  const whole = ssdChunked({ ...p, D: Dfull, state: null, dtSoftplus: true, dtMin: 0, dtMax: Infinity, chunkSize: 16 });
  const cut = 13;
  const part = async (t: Tensor, from: number, to: number, inner: number, shape: number[]) => tensor(await slice(t, from, to, inner), shape);
  const first = ssdChunked({ x: await part(p.x, 0, cut, 8, [1, cut, 2, 4]), dt: await part(p.dt, 0, cut, 2, [1, cut, 2]), A: p.A,
    B: await part(p.B, 0, cut, 3, [1, cut, 1, 3]), C: await part(p.C, 0, cut, 3, [1, cut, 1, 3]), D: Dfull, dtBias: p.dtBias,
    dtSoftplus: true, dtMin: 0, dtMax: Infinity, state: null, chunkSize: 16 });
  const second = ssdChunked({ x: await part(p.x, cut, L, 8, [1, L - cut, 2, 4]), dt: await part(p.dt, cut, L, 2, [1, L - cut, 2]), A: p.A,
    B: await part(p.B, cut, L, 3, [1, L - cut, 1, 3]), C: await part(p.C, cut, L, 3, [1, L - cut, 1, 3]), D: Dfull, dtBias: p.dtBias,
    dtSoftplus: true, dtMin: 0, dtMax: Infinity, state: first.state, chunkSize: 16 });
  const joined = new Float32Array([...(await first.y.readFloat32()), ...(await second.y.readFloat32())]);
  assert.ok(relativeL2(joined, await whole.y.readFloat32()) < 1e-5);
  assert.ok(relativeL2(await second.state.readFloat32(), await whole.state.readFloat32()) < 1e-5);
});
