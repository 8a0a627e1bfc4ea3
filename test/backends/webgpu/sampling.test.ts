// GPU token sampling against sampleToken on the host: greedy (ties, NaN), and temperature / top-k / top-p /
// min-p draws with the same uniform number, on random logits.
import assert from "node:assert/strict";
import { test } from "node:test";
import { Rng } from "../../../src/generate/rng.js";
import { sampleToken, type SamplingOptions } from "../../../src/generate/sampling.js";
import { Prng } from "../../ops/helpers.js";
import { gpu, skip } from "./setup.js";

const BASE: SamplingOptions = { temperature: 1, topK: 0, topP: 1, minP: 0, repetitionPenalty: 1 };

async function gpuSample(logits: Float32Array, rows: number, opts: SamplingOptions, uniforms: number[]): Promise<number[]> {
  const t = gpu!.upload(logits, [rows, logits.length / rows], "f32");
  const ids = gpu!.sampleTokens(t, opts, Float32Array.from(uniforms));
  const out = Array.from(await ids.read());
  t.dispose();
  ids.dispose();
  return out;
}

test("greedy: argmax per row, lowest id on ties, NaN never wins", { skip }, async () => {
  const V = 1000;
  const rng = new Prng(31);
  const rows = 5;
  const logits = new Float32Array(rows * V).map(() => rng.uniform(-5, 5));
  logits[1 * V + 17] = 9; logits[1 * V + 400] = 9;
  logits[2 * V + 3] = NaN; logits[2 * V + 999] = 20;
  for (let i = 0; i < V; i++) logits[3 * V + i] = -Infinity;
  const want = Array.from({ length: rows }, (_, r) => sampleToken(logits.subarray(r * V, (r + 1) * V), [], { ...BASE, temperature: 0 }, new Rng(0)));
  assert.deepEqual(await gpuSample(logits, rows, { ...BASE, temperature: 0 }, new Array(rows).fill(0)), want);
  assert.equal(want[1], 17);
});

test("temperature, top-k, top-p, min-p: the same token as the host for the same uniform number", { skip }, async () => {
  const rng = new Prng(32);
  const settings: Partial<SamplingOptions>[] = [
    { temperature: 1 }, { temperature: 0.7, topK: 40 }, { temperature: 1.3, topP: 0.9 }, { temperature: 0.8, topK: 40, topP: 0.95, minP: 0.05 },
    { temperature: 1, topK: 1 }, { temperature: 2, minP: 0.2 }, { temperature: 0.5, topP: 0.5 },
  ];
  for (const V of [50, 1000, 5003]) {
    const rows = 8;
    for (const s of settings) {
      const opts = { ...BASE, ...s };
      const logits = new Float32Array(rows * V).map(() => rng.uniform(-4, 4) * 2);
      const draws = new Rng(V + rows);
      const uniforms: number[] = [];
      const want = Array.from({ length: rows }, (_, r) => {
        const before = draws.getState();
        const u = draws.nextFloat();
        draws.setState(before);
        uniforms.push(u);
        return sampleToken(logits.subarray(r * V, (r + 1) * V), [], opts, draws);
      });
      const got = await gpuSample(logits, rows, opts, uniforms);
      assert.deepEqual(got, want, `V=${V} ${JSON.stringify(s)}`);
    }
  }
});
