import { test } from "node:test";
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import { Rng } from "../../src/generate/rng.js";

test("xoshiro128** reference outputs from state [1,2,3,4]", () => {
  const r = new Rng(0);
  r.setState([1, 2, 3, 4]);
  assert.deepEqual([0, 1, 2, 3].map(() => r.nextUint32()), [11520, 0, 5927040, 70819200]);
});

test("seeding is splitmix64 (seed 0 reference words)", () => {
  // splitmix64(0) outputs 0xe220a8397b1dcdaf, 0x6e789e6aa1b965f4 -> little-endian 32-bit words
  assert.deepEqual(new Rng(0).getState(), [0x7b1dcdaf, 0xe220a839, 0xa1b965f4, 0x6e789e6a]);
});

test("same seed, same sequence; different seeds differ", () => {
  const a = new Rng(1234), b = new Rng(1234), c = new Rng(1235);
  const sa = Array.from({ length: 100 }, () => a.nextFloat());
  const sb = Array.from({ length: 100 }, () => b.nextFloat());
  const sc = Array.from({ length: 100 }, () => c.nextFloat());
  assert.deepEqual(sa, sb);
  assert.notDeepEqual(sa, sc);
  assert.notDeepEqual(new Rng(-1).getState(), new Rng(2 ** 32 - 1).getState());
  assert.notDeepEqual(new Rng(2 ** 32).getState(), new Rng(0).getState());
});

test("getState/setState resume the stream", () => {
  const a = new Rng(7);
  for (let i = 0; i < 10; i++) a.nextFloat();
  const st = a.getState();
  const next = [a.nextFloat(), a.nextFloat(), a.nextFloat()];
  const b = new Rng(99);
  b.setState(st);
  assert.deepEqual([b.nextFloat(), b.nextFloat(), b.nextFloat()], next);
  st[0] ^= 1; // getState returns a copy
  assert.notDeepEqual(a.getState(), st);
});

test("nextFloat is in [0,1) and roughly uniform", () => {
  const r = new Rng(42);
  const N = 100000, bins = new Array(10).fill(0);
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const u = r.nextFloat();
    assert.ok(u >= 0 && u < 1);
    sum += u;
    bins[Math.floor(u * 10)]++;
  }
  assert.ok(Math.abs(sum / N - 0.5) < 0.005);
  for (const b of bins) assert.ok(Math.abs(b / N - 0.1) < 0.005);
});

test("invalid seeds and states are HippoErrors", () => {
  for (const s of [NaN, 1.5, Infinity, 2 ** 53]) assert.throws(() => new Rng(s), HippoError);
  const r = new Rng(1);
  assert.throws(() => r.setState([0, 0, 0, 0]), HippoError);
  assert.throws(() => r.setState([1, 2, 3]), HippoError);
  assert.throws(() => r.setState([1, 2, 3, 2 ** 32]), HippoError);
});
