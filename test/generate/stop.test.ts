import { test } from "node:test";
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import { StopMatcher } from "../../src/generate/stop.js";

test("find returns the earliest stop start or -1", () => {
  const m = new StopMatcher(["\n\nUser:", "###", "END"]);
  assert.equal(m.find("hello"), -1);
  assert.equal(m.find("hello###"), 5);
  assert.equal(m.find("aEND b### c"), 1);
  assert.equal(m.find("x\n\nUser: hi ###"), 1);
  assert.equal(new StopMatcher([]).find("anything"), -1);
});

test("holdBack counts trailing chars that may still grow into a stop", () => {
  const m = new StopMatcher(["\n\nUser:", "###"]);
  assert.equal(m.holdBack("hello"), 0);
  assert.equal(m.holdBack("hello\n"), 1);
  assert.equal(m.holdBack("hello\n\nUs"), 4);
  assert.equal(m.holdBack("hello\n\nUser"), 6);
  assert.equal(m.holdBack("a##"), 2);
  assert.equal(m.holdBack("a#"), 1);
  assert.equal(m.holdBack(""), 0);
  // overlapping prefixes: longest wins
  const n = new StopMatcher(["aab"]);
  assert.equal(n.holdBack("xaa"), 2);
  assert.equal(n.holdBack("xa"), 1);
  assert.equal(n.holdBack("xaax"), 0);
  assert.equal(n.holdBack("aaa"), 2);
});

test("empty stop strings are rejected", () => {
  assert.throws(() => new StopMatcher(["ok", ""]), HippoError);
});
