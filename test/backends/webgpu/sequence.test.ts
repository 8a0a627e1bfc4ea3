// WebGPU sequence kernels against the CPU backend: causal conv1d, the selective scan (one chunk and chunked)
// and its step, SSD (chunked algorithm and step), causal GQA attention with per-row query starts, RoPE.
import assert from "node:assert/strict";
import { test } from "node:test";
import { selectiveScan, selectiveStateUpdate, splitLast } from "../../../src/ops/index.js";
import type { Backend } from "../../../src/backends/backend.js";
import { compareOp, Inputs, kernelsOf } from "./harness.js";
import { gpu, skip } from "./setup.js";

test("causalConv1d: with and without state, bias and silu; kernel widths 1, 3, 4", { skip }, async () => {
  const r = new Inputs(11);
  for (const [B, L, C, K] of [[2, 9, 13, 4], [1, 1, 40, 4], [3, 37, 5, 3], [2, 5, 6, 1], [1, 2, 7, 4]]) {
    const x = r.f32([B, L, C], -2, 2);
    const w = r.f32([C, K]);
    const bias = r.f32([C]);
    const state = r.f32([B, K - 1, C]);
    for (const withState of [false, true]) {
      await compareOp(`conv B${B} L${L} C${C} K${K} state=${withState}`, (b) => {
        const out = b.causalConv1d({ x: x.on(b), weight: w.on(b), bias: withState ? bias.on(b) : null, state: withState ? state.on(b) : null, activation: withState ? "silu" : null });
        return [out.y, out.state];
      });
    }
  }
});

test("causalConv1d while decoding: x a column slice (Mamba's in_proj output), the output read by a linear layer or first by anything else", { skip }, async () => {
  const r = new Inputs(13);
  // [rows, C, K]: x a column slice of a wider tensor (as Mamba's in_proj output), C also not a multiple of 4.
  for (const [B, C, K] of [[1, 64, 4], [3, 40, 3], [9, 32, 4], [2, 16, 1], [1, 30, 4], [70, 8, 4]]) {
    const xWide = r.f32([B, 1, C + 8], -2, 2);
    const w = r.f32([C, K]);
    const bias = r.f32([C]);
    const state = r.f32([B, K - 1, C]);
    const proj = r.f32([11, C], -0.5, 0.5);
    for (const full of [false, true]) {
      const conv = (b: Backend) => {
        const [x] = splitLast(xWide.on(b), [C, 8]);
        return b.causalConv1d({ x, weight: w.on(b), bias: full ? bias.on(b) : null, state: full ? state.on(b) : null, activation: full ? "silu" : null });
      };
      await compareOp(`conv step → linear B${B} C${C} K${K} full=${full}`, (b) => {
        const out = conv(b);
        const y = b.linear(out.y, proj.on(b), null);
        return [y, out.y, out.state];
      });
      await compareOp(`conv step read first B${B} C${C} K${K} full=${full}`, (b) => {
        const out = conv(b);
        const sq = b.binary("mul", out.state, out.state);
        return [sq, b.linear(out.y, proj.on(b), null), out.y];
      });
    }
  }
});

test("selectiveScan: one chunk and many, with and without state/D/z/Δ bias; selectiveStateUpdate", { skip }, async () => {
  const r = new Inputs(12);
  for (const [B, L, E, N] of [[1, 1, 8, 16], [2, 37, 24, 16], [1, 150, 17, 5], [2, 300, 9, 16], [1, 64, 8, 4], [1, 65, 8, 4]]) {
    const u = r.f32([B, L, E], -2, 2);
    const delta = r.f32([B, L, E], -3, 1);
    const rawDelta = r.f32([B, L, E], 0.01, 1);
    const A = r.f32([E, N], -2, -0.1);
    const Bm = r.f32([B, L, N]);
    const Cm = r.f32([B, L, N]);
    const D = r.f32([E]);
    const z = r.f32([B, L, E], -3, 3);
    const bias = r.f32([E], -1, 1);
    const state = r.f32([B, E, N]);
    for (const full of [false, true]) {
      await compareOp(`scan B${B} L${L} E${E} N${N} full=${full}`, (b) => {
        const out = b.selectiveScan({
          u: u.on(b), delta: (full ? delta : rawDelta).on(b), A: A.on(b), B: Bm.on(b), C: Cm.on(b), D: full ? D.on(b) : null, z: full ? z.on(b) : null,
          deltaBias: full ? bias.on(b) : null, deltaSoftplus: full, state: full ? state.on(b) : null,
        });
        return [out.y, out.state];
      }, { tol: 1e-4 });
    }
    if (L === 1) {
      await compareOp(`selectiveStateUpdate B${B} E${E} N${N}`, (b) => {
        const out = b.selectiveStateUpdate({
          u: u.on(b), delta: delta.on(b), A: A.on(b), B: Bm.on(b), C: Cm.on(b), D: D.on(b), z: z.on(b), deltaBias: bias.on(b), deltaSoftplus: true, state: state.on(b),
        });
        return [out.y, out.state];
      });
    }
  }
  const r2 = new Inputs(13);
  const [B, E, N] = [3, 20, 16];
  const args = [r2.f32([B, 1, E]), r2.f32([B, 1, E], -3, 1), r2.f32([E, N], -2, -0.1), r2.f32([B, 1, N]), r2.f32([B, 1, N]), r2.f32([E]), r2.f32([B, 1, E]), r2.f32([E]), r2.f32([B, E, N])];
  await compareOp("selectiveStateUpdate batch 3", (b) => {
    const [u, delta, A, Bm, Cm, D, z, bias, state] = args.map((a) => a.on(b));
    const out = b.selectiveStateUpdate({ u, delta, A, B: Bm, C: Cm, D, z, deltaBias: bias, deltaSoftplus: true, state });
    return [out.y, out.state];
  });
  // dt_proj fused into the step (webgpu: delta, B, C as column ranges of one x_proj output) against the
  // projection composed by the ops (cpu); also a dense low-rank delta (webgpu falls back to composing), and
  // a sequence (the scan projects first); also more state entries and delta terms than 16 threads take at
  // once, and a first step with no carried state.
  for (const [B, E, N, R, withState] of [[3, 20, 16, 5, true], [2, 37, 40, 50, true], [4, 33, 8, 48, false]] as const) {
    const [lowBC, W, u3, A3, D3, z3, bias3, state3] = [
      r2.f32([B, 1, R + 2 * N]), r2.f32([E, R]), r2.f32([B, 1, E]), r2.f32([E, N], -2, -0.1), r2.f32([E]), r2.f32([B, 1, E]), r2.f32([E]), r2.f32([B, E, N]),
    ];
    const lowDense = r2.f32([B, 1, R]);
    const seq = r2.f32([B, 7, R + 2 * N]);
    const useq = r2.f32([B, 7, E]);
    for (const [what, dense, seqMode] of [["views", false, false], ["dense delta", true, false], ["sequence", false, true]] as const) {
      await compareOp(`selectiveStateUpdate with deltaProj (${what}, E ${E} N ${N} R ${R}${withState ? "" : ", no state"})`, (b) => {
        const [low, Bm, Cm] = splitLast((seqMode ? seq : lowBC).on(b), [R, N, N]);
        const args = {
          u: (seqMode ? useq : u3).on(b), delta: dense ? lowDense.on(b) : low, deltaProj: W.on(b), A: A3.on(b), B: Bm, C: Cm,
          D: D3.on(b), z: seqMode ? null : z3.on(b), deltaBias: bias3.on(b), deltaSoftplus: true, state: withState ? state3.on(b) : null,
        };
        const out = seqMode ? selectiveScan(args) : selectiveStateUpdate(args);
        return [out.y, out.state];
      }, { tol: 1e-4 });
    }
  }
});

test("ssdChunked and ssdStep: groups, D per head or per channel, state, lengths across chunk boundaries", { skip }, async () => {
  const r = new Inputs(14);
  const hasSubgroups = gpu!.useSubgroups;
  const stepRowsDefault = gpu!.ssdStepRows;
  for (const [B, L, H, P, G, N] of [[1, 37, 4, 8, 2, 16], [2, 150, 2, 5, 1, 7], [1, 64, 3, 4, 3, 8], [1, 130, 4, 16, 1, 32], [2, 1, 4, 8, 2, 16], [1, 150, 2, 64, 1, 128], [1, 70, 1, 80, 1, 8], [1, 1, 3, 64, 1, 128], [3, 1, 2, 5, 1, 40], [2, 1, 2, 8, 1, 264]]) {
    const x = r.f32([B, L, H, P], -2, 2);
    const dt = r.f32([B, L, H], -3, 1);
    const A = r.f32([H], -2, -0.1);
    const Bm = r.f32([B, L, G, N]);
    const Cm = r.f32([B, L, G, N]);
    const Dh = r.f32([H]);
    const Dp = r.f32([H * P]);
    const bias = r.f32([H]);
    const state = r.f32([B, H, P, N]);
    for (const variant of [0, 1, 2]) {
      const run = (b: import("../../../src/backends/backend.js").Backend, step: boolean) => {
        const args = {
          x: x.on(b), dt: dt.on(b), A: A.on(b), B: Bm.on(b), C: Cm.on(b),
          D: variant === 0 ? null : variant === 1 ? Dh.on(b) : Dp.on(b), dtBias: variant === 0 ? null : bias.on(b),
          dtSoftplus: variant !== 0, dtMin: variant === 2 ? 0.05 : 0, dtMax: variant === 2 ? 2 : Infinity,
          state: variant === 0 ? null : state.on(b), chunkSize: 16,
        };
        const out = step ? b.ssdStep(args) : b.ssdChunked(args);
        return [out.y, out.state];
      };
      await compareOp(`ssdChunked B${B} L${L} H${H} P${P} G${G} N${N} variant ${variant}`, (b) => run(b, false), { tol: 2e-4 });
      // The step with and without the subgroup kernel (which takes 4 state entries a lane when N % 4 = 0),
      // the subgroup kernel over 1, 2 or 4 rows a subgroup (one where that does not divide P).
      for (const subgroups of L === 1 ? (hasSubgroups ? [true, false] : [false]) : []) {
        gpu!.useSubgroups = subgroups;
        for (const rows of subgroups ? [1, 2, 4] : [1]) {
          gpu!.ssdStepRows = rows;
          const keys = await kernelsOf(() => compareOp(`ssdStep B${B} H${H} P${P} G${G} N${N} variant ${variant}${subgroups ? ` (subgroups, ${rows} rows)` : ""}`, (b) => run(b, true), { tol: 1e-4 }));
          const expected = !subgroups || N % 4 !== 0 ? "ssd-step" : rows > 1 && P % rows === 0 ? `ssd-step-sg-r${rows}` : "ssd-step-sg";
          assert.ok(keys.includes(expected), `ssdStep P${P} N${N} ${rows} rows: kernels ${keys.join(", ")}`);
        }
      }
      gpu!.useSubgroups = hasSubgroups;
      gpu!.ssdStepRows = stepRowsDefault;
    }
  }
});

test("causalAttention: GQA, per-row query starts (KV cache), single-query decoding, D ≠ Dv", { skip }, async () => {
  const r = new Inputs(15);
  for (const [B, L, T, Hq, Hkv, D, Dv, starts] of [
    [2, 9, 9, 4, 2, 16, 16, [0, 0]], [2, 1, 12, 4, 1, 8, 8, [11, 5]], [1, 70, 70, 2, 2, 32, 16, [0]], [3, 3, 10, 6, 3, 16, 16, [7, 2, 0]],
    [1, 130, 130, 1, 1, 64, 64, [0]],
    // The tiled prefill kernel (L ≥ 64, Dv ≤ 64): cached keys before the queries, head sizes off 16, D > 64, GQA.
    [2, 100, 150, 4, 2, 24, 40, [50, 0]], [1, 64, 64, 3, 1, 80, 64, [0]], [1, 65, 65, 2, 1, 16, 3, [0]],
    // Decoding shapes (the split-keys kernel): long caches, GQA, rows at different positions (one sees
    // fewer keys than the workgroup has threads), Dv beyond one 32-column merge block and not a multiple of it.
    [2, 1, 300, 4, 2, 16, 40, [299, 20]], [1, 3, 700, 2, 1, 64, 64, [697]], [3, 2, 129, 3, 3, 8, 72, [127, 0, 64]],
  ] as [number, number, number, number, number, number, number, number[]][]) {
    const q = r.f32([B, L, Hq, D], -2, 2);
    const k = r.f32([B, T, Hkv, D], -2, 2);
    const v = r.f32([B, T, Hkv, Dv]);
    const qs = r.ints(starts);
    await compareOp(`attention B${B} L${L} T${T} Hq${Hq} Hkv${Hkv} D${D} Dv${Dv}`,
      (b) => b.causalAttention({ q: q.on(b), k: k.on(b), v: v.on(b), queryStart: qs.on(b), scale: 1 / Math.sqrt(D) }), { tol: 1e-4 });
  }
});

test("rope: halves and interleaved pairs, partial rotary, linear scaling, large positions", { skip }, async () => {
  const r = new Inputs(16);
  const x = r.f32([2, 5, 3, 16]);
  for (const [rotaryDim, interleaved, positionScale, starts] of [
    [16, false, 1, [0, 3]], [8, true, 1, [0, 0]], [12, false, 4, [17, 1]], [16, false, 1, [8000, 32760]], [16, true, 2.5, [100000, 7]],
  ] as [number, boolean, number, number[]][]) {
    const start = r.ints(starts);
    await compareOp(`rope dim ${rotaryDim} interleaved=${interleaved} scale ${positionScale} starts ${starts}`,
      (b) => b.rope({ x: x.on(b), start: start.on(b), rotaryDim, base: 10000, positionScale, interleaved }), { tol: 1e-5 });
  }
});
