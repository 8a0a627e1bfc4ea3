// tidy/keep lifetimes: what is disposed, what survives, nesting, errors, and use after dispose.
import { test } from "node:test";
import assert from "node:assert/strict";
import { add, keep, linear, neg, selectiveScan, silu, tensor, tidy, zeros } from "../../src/ops/index.js";
import type { Tensor } from "../../src/tensor/tensor.js";

const t3 = () => tensor([1, 2, 3], [3]);

test("tidy disposes every tensor made inside except the returned one", async () => {
  const made: Tensor[] = [];
  const result = tidy(() => {
    const a = t3();
    const b = silu(a);
    const c = add(a, b);
    made.push(a, b, c);
    return neg(c);
  });
  for (const t of made) assert.ok(t.isDisposed, `#${t.id} disposed`);
  assert.ok(!result.isDisposed);
  const v = await result.read();
  assert.equal(v.length, 3);
});

test("tidy keeps tensors found anywhere in the returned value (arrays, objects, Maps, nested)", () => {
  const inside: Tensor[] = [];
  const result = tidy(() => {
    const mk = () => {
      const t = t3();
      inside.push(t);
      return t;
    };
    const dropped = mk();
    const r = { a: mk(), list: [mk(), { deep: mk() }], map: new Map([["k", mk()]]), n: 3, s: "x", nothing: null };
    void dropped;
    return r;
  });
  assert.ok(inside[0].isDisposed, "the unreturned tensor is disposed");
  for (const t of inside.slice(1)) assert.ok(!t.isDisposed, `#${t.id} survives`);
  assert.equal(result.n, 3);
  // A cyclic result does not hang.
  const cyc = tidy(() => {
    const o: { self?: unknown; t: Tensor } = { t: t3() };
    o.self = o;
    return o;
  });
  assert.ok(!cyc.t.isDisposed);
});

test("op results (causalConv/scan objects) returned from tidy survive; intermediates do not", () => {
  let u!: Tensor;
  const r = tidy(() => {
    u = zeros([1, 2, 3]);
    return selectiveScan({
      u, delta: zeros([1, 2, 3]), A: zeros([3, 4]), B: zeros([1, 2, 4]), C: zeros([1, 2, 4]),
      D: null, z: null, deltaBias: null, deltaSoftplus: true, state: null,
    });
  });
  assert.ok(u.isDisposed);
  assert.ok(!r.y.isDisposed && !r.state.isDisposed);
});

test("keep lets a tensor outlive the innermost scope", () => {
  let kept!: Tensor, other!: Tensor;
  const returned = tidy(() => {
    kept = keep(t3());
    other = t3();
    return 5;
  });
  assert.equal(returned, 5);
  assert.ok(!kept.isDisposed);
  assert.ok(other.isDisposed);
  // keep outside any scope is a harmless no-op.
  const free = t3();
  assert.equal(keep(free), free);
  assert.ok(!free.isDisposed);
});

test("nested scopes: inner survivors join the outer scope and die with it unless returned or kept", () => {
  let innerReturned!: Tensor, innerKept!: Tensor, innerDropped!: Tensor, outerMade!: Tensor;
  const outerResult = tidy(() => {
    outerMade = t3();
    const r = tidy(() => {
      innerKept = keep(t3());
      innerDropped = t3();
      innerReturned = t3();
      return innerReturned;
    });
    assert.ok(innerDropped.isDisposed, "dropped at the end of the inner scope");
    assert.ok(!innerReturned.isDisposed && !innerKept.isDisposed && !outerMade.isDisposed, "alive inside the outer scope");
    assert.equal(r, innerReturned);
    return { only: innerKept };
  });
  assert.equal(outerResult.only, innerKept);
  assert.ok(!innerKept.isDisposed, "returned from the outer scope");
  assert.ok(innerReturned.isDisposed, "returned from inner only: disposed with the outer scope");
  assert.ok(outerMade.isDisposed);
});

test("keep only escapes the innermost scope: the kept tensor is disposed with the enclosing one", () => {
  let kept!: Tensor;
  tidy(() => {
    tidy(() => {
      kept = keep(t3());
    });
    assert.ok(!kept.isDisposed, "alive after the inner scope");
  });
  assert.ok(kept.isDisposed, "disposed with the outer scope (neither returned nor kept there)");
  // Kept at both levels, it survives both.
  let twice!: Tensor;
  tidy(() => {
    tidy(() => {
      twice = keep(t3());
    });
    keep(twice);
  });
  assert.ok(!twice.isDisposed);
});

test("three levels: a tensor returned through every level survives", () => {
  let deepest!: Tensor;
  const r = tidy(() => tidy(() => tidy(() => (deepest = t3()))));
  assert.equal(r, deepest);
  assert.ok(!deepest.isDisposed);
});

test("tensors from outside the scope are untouched, even if used or returned inside", () => {
  const outside = t3();
  const r = tidy(() => {
    silu(outside);
    return outside;
  });
  assert.equal(r, outside);
  assert.ok(!outside.isDisposed);
  tidy(() => {
    neg(outside);
  });
  assert.ok(!outside.isDisposed);
});

test("a throw inside tidy disposes the scope's tensors and rethrows; the scope stack stays balanced", () => {
  let made!: Tensor;
  assert.throws(() => tidy(() => {
    made = t3();
    throw new Error("boom");
  }), /boom/);
  assert.ok(made.isDisposed);
  // The failed scope was popped: a later tensor outside any scope is not collected by it.
  const later = t3();
  tidy(() => 0);
  assert.ok(!later.isDisposed);
  // And a scope after the failure works normally.
  let a!: Tensor;
  const b = tidy(() => {
    a = t3();
    return t3();
  });
  assert.ok(a.isDisposed && !b.isDisposed);
});

test("using a disposed tensor throws (ops and read); dispose is idempotent", async () => {
  const t = t3();
  const w = tensor(new Float32Array(6), [2, 3]);
  t.dispose();
  t.dispose();
  assert.ok(t.isDisposed);
  assert.throws(() => silu(t), /dispose/);
  assert.throws(() => add(t, t3()), /dispose/);
  assert.throws(() => add(t3(), t), /dispose/);
  assert.throws(() => linear(t, w), /dispose/);
  await assert.rejects(t.read(), /dispose/);
  const x = tidy(() => t3());
  const inner = tidy(() => {
    const y = t3();
    void y;
    return 0;
  });
  void inner;
  assert.ok(!x.isDisposed);
  let escaped!: Tensor;
  tidy(() => {
    escaped = t3();
  });
  assert.throws(() => neg(escaped), /dispose/);
  await assert.rejects(escaped.read(), /dispose/);
});
