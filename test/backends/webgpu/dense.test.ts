// WebGPU dense and shape kernels against the CPU backend, on random inputs with awkward shapes; and the
// runtime's behaviour (buffer reuse across released tensors, shared reshapes, uploads between dispatches).
import assert from "node:assert/strict";
import { test } from "node:test";
import type { Backend, NormSpec, UnaryOp } from "../../../src/backends/backend.js";
import { addNorm, gatedNormLinear, linearActivation, splitLast, tidy } from "../../../src/ops/index.js";
import { compareOp, type Input, Inputs, kernelsOf } from "./harness.js";
import { cpu, gpu, skip } from "./setup.js";
import type { Tensor } from "../../../src/tensor/tensor.js";
import { isLargeTile, SKINNY_TILE, splitKFor, tileFor } from "../../../src/backends/webgpu/kernels/linear.js";

test("embedding: f32, f16 and bf16 tables, ids of any shape", { skip }, async () => {
  const r = new Inputs(1);
  const ids = r.i32([3, 7], 0, 50);
  for (const table of [r.f32([50, 33]), r.half([50, 33], "f16"), r.half([50, 33], "bf16"), r.f32([50, 1])]) {
    await compareOp(`embedding ${table.dtype} ${table.shape}`, (b) => b.embedding(table.on(b), ids.on(b)));
  }
});

test("linear: matvec (M ≤ 64 with subgroups, M ≤ 8 without; not for 32+ rows of 16K+ columns or 64 rows of 512+) and tiled paths, f32/f16/bf16 weights, bias, K not a multiple of 4", { skip }, async () => {
  const r = new Inputs(2);
  const hasSubgroups = gpu!.useSubgroups;
  const cases: [number, number, number][] = [
    [1, 13, 7], [1, 64, 100], [3, 64, 257], [8, 32, 33], [9, 17, 70], [37, 64, 129], [64, 48, 33], [65, 32, 20], [130, 100, 300], [300, 260, 270], [2, 768, 40],
    // Long rows whose length is no multiple of the matvec's unrolled step (4 loads per lane), f32 and half weights.
    [3, 1540, 9], [1, 2052, 5],
    // Wide products (batched decoding's LM head): a matvec at 8 rows, the tiled kernel from 32 (32×32 tiles below 64 rows, 64×64 from there).
    [8, 40, 16390], [32, 24, 16400], [64, 24, 16400],
    // 64 rows of 512+ columns (batched decoding's projections): tiled, K split in ragged slices.
    [64, 300, 520],
    // Few output tiles over a long K: split across workgroups (splitKFor), slices ragged at the end of K.
    [100, 1000, 50], [70, 777, 33],
  ];
  for (const [M, K, N] of [[100, 1000, 50], [70, 777, 33], [300, 260, 270], [64, 300, 520]]) {
    assert.ok(splitKFor(M, N, K, tileFor(M, N)).splits > 1, `${M}×${K}·${N} should split K`);
  }
  for (const [M, K, N] of cases) {
    const x = r.f32([M, K]);
    const bias = r.f32([N]);
    for (const dtype of ["f32", "f16", "bf16"] as const) {
      const w = dtype === "f32" ? r.f32([N, K]) : r.half([N, K], dtype);
      const withBias = (M + N) % 2 === 0;
      // The matvec has a subgroup variant and a workgroup-memory one; both are checked where the device has subgroups.
      for (const subgroups of hasSubgroups && M <= 64 ? [true, false] : [hasSubgroups]) {
        gpu!.useSubgroups = subgroups;
        await compareOp(`linear ${M}×${K}·${N} ${dtype}${withBias ? " +bias" : ""}${subgroups ? " (subgroups)" : ""}`,
          (b) => b.linear(x.on(b), w.on(b), withBias ? bias.on(b) : null), { tol: 1e-4 });
      }
      gpu!.useSubgroups = hasSubgroups;
    }
  }
  const x3 = r.f32([2, 3, 24]);
  const w3 = r.f32([10, 24]);
  await compareOp("linear over [2, 3, K]", (b) => b.linear(x3.on(b), w3.on(b), null));
  const empty = r.f32([4, 0]);
  const bias = r.f32([5]);
  await compareOp("linear with K = 0 gives the bias", (b) => b.linear(empty.on(b), r.f32([5, 0]).on(b), bias.on(b)));
});

test("tiled products over 16×16, 32×32 and 128×128 tiles, K split or not, ragged K, half weights, with an activation in the tile's store", { skip }, async () => {
  const r = new Inputs(15);
  const fuseLargeDefault = gpu!.fuseActIntoLargeTiles;
  gpu!.fuseActIntoLargeTiles = true;
  try {
    for (const [M, K, N, dtype] of [[65, 32, 20, "f32"], [130, 100, 300, "bf16"], [300, 260, 270, "f32"], [64, 300, 520, "f16"], [100, 1000, 50, "f32"], [70, 777, 33, "f32"], [64, 8, 600, "f32"]] as const) {
      const x = r.f32([M, K]);
      const w = dtype === "f32" ? r.f32([N, K]) : r.half([N, K], dtype);
      const bias = r.f32([N]);
      await compareOp(`linear ${M}×${K}·${N} ${dtype}`, (b) => b.linear(x.on(b), w.on(b), bias.on(b)), { tol: 1e-4 });
      for (const act of ["silu", "gelu_tanh"] as const) {
        const keys = await kernelsOf(() => compareOp(`linearActivation ${M}×${K}·${N} ${dtype} ${act}`, (b) => linearActivation(x.on(b), w.on(b), bias.on(b), act), { tol: 1e-4 }));
        assert.ok(keys.some((k) => k.startsWith("matmul-") || k.startsWith("splitk-sum")) && keys.some((k) => k.endsWith(`-${act}`)), keys.join(", "));
      }
    }
  } finally {
    gpu!.fuseActIntoLargeTiles = fuseLargeDefault;
  }
});

test("skinny tiles (64×128, 8×8 a thread) for batched decoding's 33–64 rows: products, K split or not, ragged, half weights, activations", { skip }, async () => {
  const r = new Inputs(16);
  const skinnyDefault = gpu!.skinnyTiles;
  gpu!.skinnyTiles = true;
  try {
    // [M, K, N, dtype]: 64 rows of 512+ columns (split, ragged slices; too short to split), 33–64 rows of the LM head's width.
    const cases = [[64, 300, 520, "f32"], [64, 777, 600, "bf16"], [64, 40, 1100, "f16"], [40, 24, 16400, "f32"], [33, 50, 16390, "f32"]] as const;
    assert.ok(splitKFor(64, 520, 300, SKINNY_TILE).splits > 1 && splitKFor(64, 1100, 40, SKINNY_TILE).splits === 1, "split and unsplit cases");
    for (const [M, K, N, dtype] of cases) {
      const x = r.f32([M, K], -2, 2);
      const w = dtype === "f32" ? r.f32([N, K]) : r.half([N, K], dtype);
      const bias = r.f32([N]);
      const keys = await kernelsOf(() => compareOp(`linear ${M}×${K}·${N} ${dtype} (skinny tiles)`, (b) => b.linear(x.on(b), w.on(b), bias.on(b)), { tol: 1e-4 }));
      assert.ok(keys.some((k) => k.startsWith(`matmul-${dtype}-8x8-8x16`)), keys.join(", "));
      for (const act of M === 64 ? (["silu", "gelu_tanh"] as const) : []) {
        const actKeys = await kernelsOf(() => compareOp(`linearActivation ${M}×${K}·${N} ${dtype} ${act} (skinny tiles)`, (b) => linearActivation(x.on(b), w.on(b), null, act), { tol: 1e-4 }));
        assert.ok(actKeys.some((k) => k.endsWith(`-${act}`)) && !actKeys.includes(`unary-${act}`), actKeys.join(", "));
      }
    }
  } finally {
    gpu!.skinnyTiles = skinnyDefault;
  }
});

test("linearActivation: the activation inside the product's kernel — subgroup matvec, tiled store, split-K sum — composed after the plain matvec", { skip }, async () => {
  const r = new Inputs(14);
  const g = gpu!;
  const hasSubgroups = g.useSubgroups;
  const fuseLargeDefault = g.fuseActIntoLargeTiles;
  try {
    const cases = [
      [1, 64, 33, "gelu_tanh"], [3, 130, 9, "silu"], [37, 40, 20, "relu2"], [64, 12, 7, "gelu"],
      // Tiled: 64 rows of 512+ columns, more than 64 rows; K split (splitKFor) in the last two.
      [64, 20, 600, "gelu_tanh"], [100, 24, 30, "gelu_tanh"], [64, 300, 520, "gelu"], [100, 1000, 50, "silu"],
      // 128×128 tiles (prefill): fused only with fuseActIntoLargeTiles.
      [300, 40, 270, "gelu_tanh"],
    ] as const;
    assert.ok(splitKFor(64, 520, 300, tileFor(64, 520)).splits > 1 && splitKFor(100, 50, 1000, tileFor(100, 50)).splits > 1, "split-K cases split");
    for (const [M, K, N, op] of cases) {
      const x = r.f32([M, K], -2, 2);
      const w = r.f32([N, K]);
      const bias = r.f32([N]);
      const largeTiles = isLargeTile(tileFor(M, N));
      for (const [subgroups, fuseLarge] of (hasSubgroups ? [true, false] : [false]).flatMap((sg) => (largeTiles ? [false, true] : [false]).map((f) => [sg, f] as const))) {
        g.useSubgroups = subgroups;
        g.fuseActIntoLargeTiles = fuseLarge;
        const kernels = await kernelsOf(() => compareOp(`linearActivation ${M}×${K}·${N} ${op}${subgroups ? " (subgroups)" : ""}${fuseLarge ? " (fused into large tiles)" : ""}`,
          (b) => linearActivation(x.on(b), w.on(b), M % 2 ? bias.on(b) : null, op), { tol: 1e-4 }));
        const fusedInto = kernels.filter((k) => /^(matvec|matmul|splitk-sum)/.test(k) && k.endsWith(`-${op}`));
        // The workgroup-memory matvec (no subgroups, 8 rows or fewer) leaves the activation to its own
        // kernel, and so do prefill's 128×128 tiles unless fuseActIntoLargeTiles.
        const fused = (subgroups || M > 8) && (!largeTiles || fuseLarge);
        assert.equal(fusedInto.length, fused ? 1 : 0, `${M} rows ${op}: kernels ${kernels.join(", ")}`);
        assert.equal(kernels.includes(`unary-${op}`), !fused, `${M} rows ${op}: a separate activation kernel only where not fused`);
      }
    }
  } finally {
    g.useSubgroups = hasSubgroups;
    g.fuseActIntoLargeTiles = fuseLargeDefault;
  }
});

test("norms: RMSNorm, LayerNorm (with and without bias), gated RMSNorm over groups", { skip }, async () => {
  const r = new Inputs(3);
  for (const D of [1, 7, 64, 300, 1000]) {
    const x = r.f32([3, 5, D], -3, 3);
    const w = r.f32([D]);
    const bias = r.f32([D]);
    await compareOp(`rmsNorm D=${D}`, (b) => b.rmsNorm(x.on(b), w.on(b), 1e-5));
    await compareOp(`layerNorm D=${D}`, (b) => b.layerNorm(x.on(b), w.on(b), bias.on(b), 1e-5));
    await compareOp(`layerNorm D=${D} no bias`, (b) => b.layerNorm(x.on(b), w.on(b), null, 1e-6));
    // The fused residual add + norm (webgpu) against add then norm (cpu, composed by ops/addNorm).
    const y = r.f32([3, 5, D], -3, 3);
    for (const [kind, withBias] of [["rms", false], ["layer", true], ["layer", false]] as const) {
      await compareOp(`addNorm ${kind} D=${D} bias=${withBias}`, (b) => {
        const out = addNorm(x.on(b), y.on(b), { kind, weight: w.on(b), bias: withBias ? bias.on(b) : null, eps: 1e-5 });
        return [out.sum, out.normed];
      });
    }
  }
  for (const [E, g] of [[128, 128], [128, 32], [96, 3], [600, 300]]) {
    const y = r.f32([2, 9, E], -2, 2);
    const z = r.f32([2, 9, E], -4, 4);
    const w = r.f32([E]);
    await compareOp(`gatedRmsNorm E=${E} group=${g}`, (b) => b.gatedRmsNorm(y.on(b), z.on(b), w.on(b), g, 1e-5));
  }
});

test("addNorm while decoding: RMSNorm deferred into the linear layer that reads it (one row: the matvec) and run whenever anything else needs it or the product cannot take it; LayerNorm runs at once", { skip }, async () => {
  const r = new Inputs(32);
  for (const [M, D, N, dtype] of [[1, 64, 24, "f32"], [3, 768, 40, "f16"], [9, 128, 17, "f32"], [64, 32, 5, "bf16"]] as const) {
    const h = r.f32([M, D], -2, 2), y = r.f32([M, D], -2, 2), y2 = r.f32([M, D], 1, 5);
    const g = r.f32([D]), g2 = r.f32([D]);
    const w = dtype === "f32" ? r.f32([N, D], -0.3, 0.3) : r.half([N, D], dtype, -0.3, 0.3);
    const w2 = r.f32([7, D], -0.3, 0.3);
    const bias = r.f32([N]);
    const nb = r.f32([D]);
    // RMSNorm for the first pair, LayerNorm (with and without bias; a mean far from 0) for the second.
    const spec = (b: Backend, weight: Input): NormSpec => weight === g
      ? { kind: "rms", weight: weight.on(b), bias: null, eps: 1e-5 }
      : { kind: "layer", weight: weight.on(b), bias: M % 2 === 1 ? nb.on(b) : null, eps: 1e-5 };
    // The common path: the normed input feeds one linear layer; the sum feeds the next add-norm, whose
    // normed input feeds another (the previous sum is then still unwritten when its inputs are disposed).
    await compareOp(`addNorm → linear → addNorm → linear M=${M} D=${D} ${dtype}`, (b) => {
      const [hb, yb] = [h.on(b), y.on(b)];
      const first = addNorm(hb, yb, spec(b, g));
      hb.dispose();
      yb.dispose();
      const out = b.linear(first.normed, w.on(b), bias.on(b));
      first.normed.dispose();
      const second = addNorm(first.sum, y2.on(b), spec(b, g2));
      const out2 = b.linear(second.normed, w2.on(b), null);
      return [out, out2, second.sum];
    }, { tol: 2e-5 });
    // Read in other orders: the normed values after the fused linear; the sum before any linear; a
    // reshaped normed input; two linear layers on one normed input.
    await compareOp(`addNorm read around the fused linear M=${M} D=${D}`, (b) => {
      const a = addNorm(h.on(b), y.on(b), spec(b, g));
      const out = b.linear(b.reshape(a.normed, [M, 1, D]), w.on(b), null);
      const out2 = b.linear(a.normed, w2.on(b), null);
      const c = addNorm(h.on(b), y2.on(b), spec(b, g2));
      const sumFirst = b.binary("mul", c.sum, c.sum);
      return [out, out2, a.normed, a.sum, sumFirst, b.linear(c.normed, w2.on(b), null)];
    }, { tol: 2e-5 });
    // Made inside a scope that ends before the linear layer runs (what the pending op reads must survive it).
    await compareOp(`addNorm in a tidy, linear after it M=${M} D=${D}`, (b) => {
      const a = tidy(() => addNorm(h.on(b), y.on(b), spec(b, g)));
      return [b.linear(a.normed, w.on(b), null), a.sum];
    }, { tol: 2e-5 });
  }
});

test("gatedNormLinear: the fused matvec decoding one row against gatedRmsNorm then linear; other shapes fall back", { skip }, async () => {
  const r = new Inputs(31);
  // [rows, K, N, group, weight dtype]: one row fused (f32/f16/bf16 weights, K up to Mamba-2's 1536), z as a
  // column slice of a wider tensor (Mamba-2's in_proj output); more rows, K % 4 != 0 and several norm
  // groups fall back.
  const cases: [number, number, number, number, "f32" | "f16" | "bf16"][] = [
    [1, 64, 24, 64, "f32"], [1, 1536, 40, 1536, "f32"], [1, 128, 17, 128, "f16"], [1, 256, 9, 256, "bf16"],
    [3, 128, 17, 128, "f16"], [70, 64, 8, 64, "f32"], [1, 66, 5, 66, "f32"], [2, 128, 6, 32, "f32"],
  ];
  for (const [M, K, N, group, dtype] of cases) {
    const y = r.f32([M, K], -2, 2);
    const zWide = r.f32([M, K + 12], -4, 4);
    const g = r.f32([K]);
    const w = dtype === "f32" ? r.f32([N, K], -0.3, 0.3) : r.half([N, K], dtype, -0.3, 0.3);
    const bias = r.f32([N]);
    for (const withBias of [false, true]) {
      await compareOp(`gatedNormLinear M=${M} K=${K} N=${N} group=${group} ${dtype} bias=${withBias}`, (b) => {
        const [z] = splitLast(zWide.on(b), [K, 12]);
        return gatedNormLinear(y.on(b), z, g.on(b), group, 1e-5, w.on(b), withBias ? bias.on(b) : null);
      }, { tol: 2e-5 });
    }
  }
});

test("batched decoding's norms inside the tiled product: residual add + RMSNorm and the gated RMSNorm, K split or not, 64×64 and 64×128 tiles, against norm then linear", { skip }, async () => {
  const r = new Inputs(33);
  // 1/rms scales the sum over K instead of each input: the rounding differs from norm-then-product's.
  const TILED_NORM_TOL = 5e-5;
  // [rows, K, N, weight dtype, split, skinny tiles]: 64 rows of 512+ columns, K split in ragged slices or too short to split.
  const cases = [
    [64, 768, 600, "f32", true, false], [64, 200, 520, "bf16", true, false], [64, 64, 530, "f16", false, false], [64, 40, 1100, "f32", false, false],
    [64, 768, 600, "f32", true, true], [64, 200, 520, "bf16", true, true], [64, 40, 1100, "f16", false, true],
  ] as const;
  const skinnyDefault = gpu!.skinnyTiles;
  try {
    for (const [M, K, N, dtype, split, skinny] of cases) {
      gpu!.skinnyTiles = skinny;
      assert.equal(splitKFor(M, N, K, tileFor(M, N, skinny)).splits > 1, split, `${M}×${K}·${N} split`);
      const h = r.f32([M, K], -2, 2), y = r.f32([M, K], -2, 2), y2 = r.f32([M, K], 1, 3);
      const g = r.f32([K]), g2 = r.f32([K]);
      const w = dtype === "f32" ? r.f32([N, K], -0.3, 0.3) : r.half([N, K], dtype, -0.3, 0.3);
      const bias = r.f32([N]);
      const rms = (b: Backend, weight: Input): NormSpec => ({ kind: "rms", weight: weight.on(b), bias: null, eps: 1e-5 });
      const keys = await kernelsOf(() => compareOp(`addNorm → linear (tiled) M=${M} K=${K} N=${N} ${dtype}`, (b) => {
        const first = addNorm(h.on(b), y.on(b), rms(b, g));
        const out = b.linear(first.normed, w.on(b), bias.on(b));
        first.normed.dispose();
        // The residual sum the product wrote feeds the next add-norm and product.
        const second = addNorm(first.sum, y2.on(b), rms(b, g2));
        return [out, b.linear(second.normed, w.on(b), null), second.sum];
      }, { tol: TILED_NORM_TOL }));
      assert.ok(!keys.includes("add-norm"), `no add-norm pass: ${keys.join(", ")}`);
      assert.ok(keys.some((k) => k.includes("-add-rms-norm") && k.includes("-8x8-8x16") === skinny), `the tiled prologue ran on the intended tiles: ${keys.join(", ")}`);
      // Read before and beside the product: the normed values themselves; the sum first.
      await compareOp(`addNorm read around the tiled product M=${M} K=${K} N=${N}`, (b) => {
        const a = addNorm(h.on(b), y.on(b), rms(b, g));
        const out = b.linear(a.normed, w.on(b), null);
        const c = addNorm(h.on(b), y2.on(b), rms(b, g2));
        const sumFirst = b.binary("mul", c.sum, c.sum);
        return [out, a.normed, a.sum, sumFirst, b.linear(c.normed, w.on(b), bias.on(b))];
      }, { tol: TILED_NORM_TOL });

      // The gated norm over one group, z a column slice of a wider tensor (Mamba-2's in_proj output).
      const zWide = r.f32([M, K + 12], -4, 4);
      const gated = await kernelsOf(() => compareOp(`gatedNormLinear (tiled) M=${M} K=${K} N=${N} ${dtype}`, (b) => {
        const [, z] = splitLast(zWide.on(b), [12, K]);
        return gatedNormLinear(y.on(b), z, g.on(b), K, 1e-5, w.on(b), bias.on(b));
      }, { tol: TILED_NORM_TOL }));
      assert.ok(!gated.includes("gated-rms-norm") && gated.some((k) => k.includes("-gated-norm") && k.includes("-8x8-8x16") === skinny), `the tiled prologue ran: ${gated.join(", ")}`);
    }
  } finally {
    gpu!.skinnyTiles = skinnyDefault;
  }
  // Several norm groups: the norm's own pass, then the product.
  const [M, K, N] = [64, 128, 520];
  const y = r.f32([M, K], -2, 2), z = r.f32([M, K], -4, 4), g = r.f32([K]), w = r.f32([N, K], -0.3, 0.3);
  const keys = await kernelsOf(() => compareOp("gatedNormLinear (tiled) over 4 groups", (b) => gatedNormLinear(y.on(b), z.on(b), g.on(b), 32, 1e-5, w.on(b), null), { tol: TILED_NORM_TOL }));
  assert.ok(keys.includes("gated-rms-norm"), keys.join(", "));
  // The LM head's width (tiled from 32 rows): the norm's own pass, then the product.
  const h = r.f32([40, 48], -2, 2), y2 = r.f32([40, 48], -2, 2), g2 = r.f32([48]), head = r.f32([16400, 48], -0.3, 0.3);
  const headKeys = await kernelsOf(() => compareOp("addNorm → LM head", (b) => {
    const a = addNorm(h.on(b), y2.on(b), { kind: "rms", weight: g2.on(b), bias: null, eps: 1e-5 });
    return [b.linear(a.normed, head.on(b), null), a.sum];
  }, { tol: TILED_NORM_TOL }));
  assert.ok(headKeys.includes("add-norm") && !headKeys.some((k) => k.includes("-add-rms-norm")), headKeys.join(", "));
});

test("elementwise: every unary op over a wide range, binary ops with broadcasting", { skip }, async () => {
  const r = new Inputs(4);
  const x = r.f32([3, 1001], -30, 30);
  const small = r.f32([4, 77], -3, 3);
  for (const op of ["silu", "softplus", "exp", "neg", "gelu", "relu", "relu2", "gelu_tanh"] as UnaryOp[]) {
    const input = op === "exp" ? small : x;
    await compareOp(`unary ${op}`, (b) => b.unary(op, input.on(b)), { tol: 2e-6 });
  }
  const a = r.f32([2, 3, 17]);
  for (const bShape of [[2, 3, 17], [3, 17], [17]]) {
    const bb = r.f32(bShape);
    for (const op of ["add", "mul", "sub"] as const) await compareOp(`binary ${op} ${bShape}`, (b) => b.binary(op, a.on(b), bb.on(b)));
  }
});

test("shape ops: sliceLast, selectPositions, concat0, slice0, reshape, toFloat32, resizeAxis1, writeAxis1", { skip }, async () => {
  const r = new Inputs(5);
  const x = r.f32([3, 5, 23]);
  await compareOp("sliceLast", (b) => [b.sliceLast(x.on(b), 0, 7), b.sliceLast(x.on(b), 7, 16), b.sliceLast(x.on(b), 22, 1)]);
  const pos = r.ints([4, 0, 2]);
  await compareOp("selectPositions", (b) => b.selectPositions(x.on(b), pos.on(b)));
  const y = r.f32([2, 5, 23]);
  const h = r.half([1, 5, 23], "bf16");
  await compareOp("concat0 (an f16/bf16 part is widened)", (b) => b.concat0([x.on(b), y.on(b), h.on(b)]));
  await compareOp("slice0", (b) => [b.slice0(x.on(b), 1, 2), b.slice0(x.on(b), 0, 3), b.slice0(x.on(b), 2, 0)]);
  await compareOp("reshape", (b) => b.reshape(x.on(b), [15, 23]));
  for (const dtype of ["f16", "bf16"] as const) {
    const half = r.half([7, 9], dtype);
    await compareOp(`toFloat32 ${dtype}`, (b) => b.toFloat32(half.on(b)));
  }
  const ints = r.i32([5, 3], -1000, 1000);
  await compareOp("toFloat32 i32", (b) => b.toFloat32(ints.on(b)));
  const kv = r.f32([3, 6, 2, 4]);
  await compareOp("resizeAxis1 pad and truncate", (b) => [b.resizeAxis1(kv.on(b), 9), b.resizeAxis1(kv.on(b), 2), b.resizeAxis1(kv.on(b), 0)]);
  const fresh = r.f32([3, 2, 2, 4]);
  const offsets = r.ints([6, 0, 3]);
  await compareOp("writeAxis1", (b) => b.writeAxis1(kv.on(b), fresh.on(b), offsets.on(b)));
  const empty = r.f32([3, 0, 2, 4]);
  await compareOp("writeAxis1 into an empty cache", (b) => b.writeAxis1(empty.on(b), fresh.on(b), r.ints([0, 0, 0]).on(b)));
});

test("writeAxis1 as a decoding KV cache: spare capacity, appends in place, a branch from an older cache copies", { skip }, async () => {
  const b = gpu!;
  const r = new Inputs(17);
  const inner = [2, 3];
  const reserve = b.kvReserveRows;
  b.kvReserveRows = 3;
  try {
    // The CPU reference and the GPU cache, advanced together; rows hold 5 and 3 real entries.
    let want = cpu.upload(r.f32([2, 5, ...inner]).data, [2, 5, ...inner], "f32");
    let positions = [5, 3];
    let got = b.upload(await want.readFloat32(), want.shape, "f32");
    const append = (cache: Tensor, ref: Tensor, at: number[], seed: number) => {
      const fresh = new Inputs(seed).f32([2, 1, ...inner]);
      const offsets = Int32Array.from(at);
      return {
        got: b.writeAxis1(cache, fresh.on(b), b.upload(offsets, [2], "i32")),
        want: cpu.writeAxis1(ref, fresh.on(cpu), cpu.upload(offsets, [2], "i32")),
      };
    };
    // Each row's first `positions` entries must match; the rest is spare capacity.
    const check = async (g: Tensor, w: Tensor, pos: number[], what: string) => {
      const gv = await g.readFloat32(), wv = await w.readFloat32();
      const n = inner[0] * inner[1];
      for (let row = 0; row < 2; row++) {
        const gRow = gv.subarray(row * g.shape[1] * n, (row * g.shape[1] + pos[row]) * n);
        const wRow = wv.subarray(row * w.shape[1] * n, (row * w.shape[1] + pos[row]) * n);
        assert.deepEqual(Array.from(gRow), Array.from(wRow), `${what}: row ${row}`);
      }
    };
    // A one-token append copies into a cache with 3 spare entries: 5 + 1 + 3.
    const first = append(got, want, positions, 1);
    assert.deepEqual(first.got.shape, [2, 9, ...inner]);
    positions = positions.map((p) => p + 1);
    await check(first.got, first.want, positions, "copied");
    const dispatches = b.rt.dispatchCount;
    const second = append(first.got, first.want, positions, 2);
    assert.deepEqual(second.got.shape, first.got.shape, "appended in place: same capacity");
    assert.equal(b.rt.dispatchCount - dispatches, 1, "one dispatch: the new entries alone");
    await check(second.got, second.want, positions.map((p) => p + 1), "in place");
    // A second step from `first` (a redone step, a branch): it must not overwrite what `second` holds.
    const branch = append(first.got, first.want, positions, 3);
    await check(branch.got, branch.want, positions.map((p) => p + 1), "branch");
    await check(second.got, second.want, positions.map((p) => p + 1), "in place, after the branch");
    // Appending on until the longer row runs out of room: then the cache is copied into a larger one.
    got = second.got;
    want = second.want;
    positions = positions.map((p) => p + 1);
    const shapes: number[] = [];
    for (let i = 0; i < 4; i++) {
      const next = append(got, want, positions, 10 + i);
      got = next.got;
      want = next.want;
      positions = positions.map((p) => p + 1);
      shapes.push(got.shape[1]);
    }
    assert.deepEqual(shapes, [9, 9, 15, 15], "in place up to 9 entries, then copied with room for half as many again (10 + 5)");
    await check(got, want, positions, "after growing");
  } finally {
    b.kvReserveRows = reserve;
  }
});

test("runtime: released buffers are reused safely, reshapes share storage, uploads keep queue order", { skip }, async () => {
  const b = gpu!;
  const r = new Inputs(6);
  const x = r.f32([64, 64]);
  // A chain of ops whose intermediates are released at once: later ops reuse their buffers while earlier
  // dispatches that read them are still unsubmitted.
  let cur = x.on(b);
  let host = Float32Array.from(x.data as Float32Array);
  for (let i = 0; i < 20; i++) {
    const next = b.binary("add", cur, cur);
    cur.dispose();
    const bump = b.upload(new Float32Array(64).fill(i), [64], "f32");
    const bumped = b.binary("sub", next, bump);
    next.dispose();
    bump.dispose();
    cur = bumped;
    host = host.map((v, j) => v + v - i + 0 * j);
  }
  const got = await cur.read();
  for (let j = 0; j < host.length; j++) assert.ok(Math.abs(got[j] - host[j]) <= 1e-3 * Math.max(1, Math.abs(host[j])), `element ${j}: ${got[j]} vs ${host[j]}`);
  // A reshape outlives its source: the buffer is shared and freed with the last user.
  const a = x.on(b);
  const view = b.reshape(a, [4096]);
  a.dispose();
  const filler = b.zeros([64, 64]);
  assert.deepEqual(Array.from(await view.read()), Array.from(x.data));
  view.dispose();
  filler.dispose();
  // Zero-size tensors.
  const z = b.zeros([0, 5]);
  assert.equal((await z.read()).length, 0);
  assert.equal((await b.zeros([3], "i32").read()).length, 3);
});

test("column slices are zero-copy views: read, reshaped, sliced again, and consumed by every kind of op", { skip }, async () => {
  const r = new Inputs(7);
  const x = r.f32([2, 3, 40]);
  const w = r.f32([9, 12]);
  const w4 = r.f32([5, 16]);
  const cw = r.f32([12, 4]);
  await compareOp("views", (b) => {
    const t = x.on(b);
    const a = b.sliceLast(t, 4, 12);
    const aligned = b.sliceLast(t, 8, 16);
    const nested = b.sliceLast(b.sliceLast(t, 10, 20), 3, 12);
    const conv = b.causalConv1d({ x: a, weight: cw.on(b), bias: null, state: null, activation: "silu" });
    return [
      a, nested, b.reshape(a, [6, 12]), b.linear(a, w.on(b), null), b.linear(aligned, w4.on(b), null),
      b.linear(b.reshape(nested, [6, 12]), w.on(b), null), b.unary("exp", a), b.concat0([a, nested]), b.slice0(a, 1, 1),
      b.toFloat32(a), conv.y, b.sliceLast(b.reshape(a, [6, 3, 4]), 1, 2), b.selectPositions(a, b.upload(Int32Array.from([2, 0]), [2], "i32")),
    ];
  });
});
