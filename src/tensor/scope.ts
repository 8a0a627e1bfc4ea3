import type { Tensor } from "./tensor.js";

/**
 * Explicit tensor lifetimes: every tensor made inside `tidy(fn)` is disposed when fn returns, except the
 * tensors fn returns (found anywhere inside the returned value) and those passed to `keep`.
 * GPU memory is not reclaimed by the garbage collector in time, so forward passes run inside a scope.
 */
const scopes: Set<Tensor>[] = [];

export function trackInScope(t: Tensor): void {
  scopes[scopes.length - 1]?.add(t);
}

/** Removes a tensor from the innermost scope so it outlives it (it joins the enclosing scope, if any). */
export function keep<T extends Tensor>(t: T): T {
  const inner = scopes[scopes.length - 1];
  if (inner?.delete(t)) scopes[scopes.length - 2]?.add(t);
  return t;
}

/**
 * Takes a tensor just made out of every scope: no tidy disposes it, the garbage collector reclaims it.
 * For a tensor whose storage is handed over to another tensor that manages the lifetime (autograd's
 * wrappers of its inner backend's outputs).
 */
export function untrack<T extends Tensor>(t: T): T {
  scopes[scopes.length - 1]?.delete(t);
  return t;
}

export function tidy<T>(fn: () => T): T {
  const scope = new Set<Tensor>();
  scopes.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (err) {
    scopes.pop();
    for (const t of scope) t.dispose();
    throw err;
  }
  scopes.pop();
  const survivors = new Set<Tensor>();
  collectTensors(result, survivors, new Set());
  const outer = scopes[scopes.length - 1];
  for (const t of scope) {
    if (survivors.has(t)) outer?.add(t);
    else t.dispose();
  }
  return result;
}

function collectTensors(value: unknown, into: Set<Tensor>, seen: Set<unknown>): void {
  if (value === null || typeof value !== "object" || seen.has(value)) return;
  seen.add(value);
  if (isTensor(value)) {
    into.add(value);
    return;
  }
  if (ArrayBuffer.isView(value)) return;
  const items = Array.isArray(value) ? value : value instanceof Map ? [...value.values()] : Object.values(value);
  for (const item of items) collectTensors(item, into, seen);
}

function isTensor(value: object): value is Tensor {
  return "storage" in value && "backend" in value && "shape" in value && typeof (value as Tensor).dispose === "function";
}
