import { check, shapeString } from "../errors.js";
import type { Tensor } from "../tensor/tensor.js";
import { backendOf } from "./validate.js";

/** Columns [start, start+length) of the last axis. */
export function sliceLast(x: Tensor, start: number, length: number): Tensor {
  const b = backendOf("sliceLast", x);
  const W = x.shape[x.rank - 1];
  check(start >= 0 && length >= 0 && start + length <= W, `sliceLast: [${start}, ${start + length}) outside last axis of ${shapeString(x.shape)}`);
  return b.sliceLast(x, start, length);
}

/** Splits the last axis into consecutive pieces of the given widths (they must add up to it). */
export function splitLast(x: Tensor, widths: readonly number[]): Tensor[] {
  const W = x.shape[x.rank - 1];
  const total = widths.reduce((a, b) => a + b, 0);
  check(total === W, `splitLast: widths [${widths.join(", ")}] add up to ${total}, but the last axis of ${shapeString(x.shape)} is ${W}`);
  let start = 0;
  return widths.map((w) => {
    const piece = sliceLast(x, start, w);
    start += w;
    return piece;
  });
}

/** x [B, L, ...] at one position per row (i32 [B]) → [B, ...]. */
export function selectPositions(x: Tensor, positions: Tensor): Tensor {
  const b = backendOf("selectPositions", x, positions);
  check(x.rank >= 2 && positions.rank === 1 && positions.shape[0] === x.shape[0],
    `selectPositions: x ${shapeString(x.shape)} and positions ${shapeString(positions.shape)} disagree`);
  check(positions.dtype === "i32", "selectPositions: positions must be i32");
  return b.selectPositions(x, positions);
}

export function concat0(parts: readonly Tensor[]): Tensor {
  check(parts.length > 0, "concat0: nothing to concatenate");
  const b = backendOf("concat0", ...parts);
  const inner = parts[0].shape.slice(1);
  for (const p of parts) {
    check(p.rank === parts[0].rank && p.shape.slice(1).every((d, i) => d === inner[i]),
      `concat0: shapes ${shapeString(parts[0].shape)} and ${shapeString(p.shape)} differ beyond axis 0`);
  }
  return b.concat0(parts);
}

export function slice0(x: Tensor, start: number, length: number): Tensor {
  const b = backendOf("slice0", x);
  check(start >= 0 && length >= 0 && start + length <= x.shape[0], `slice0: [${start}, ${start + length}) outside axis 0 of ${shapeString(x.shape)}`);
  return b.slice0(x, start, length);
}

export function toFloat32(x: Tensor): Tensor {
  return backendOf("toFloat32", x).toFloat32(x);
}

/** The same values in another shape of the same size; one dimension may be -1 (inferred). */
export function reshape(x: Tensor, shape: readonly number[]): Tensor {
  const b = backendOf("reshape", x);
  const known = shape.filter((d) => d !== -1).reduce((a, d) => a * d, 1);
  const free = shape.filter((d) => d === -1).length;
  check(free <= 1, `reshape: at most one -1 in ${shapeString(shape)}`);
  const resolved = shape.map((d) => (d === -1 ? x.size / known : d));
  check(resolved.every((d) => Number.isInteger(d) && d >= 0) && resolved.reduce((a, d) => a * d, 1) === x.size,
    `reshape: cannot view ${shapeString(x.shape)} as ${shapeString(shape)}`);
  return b.reshape(x, resolved);
}

/** Zero-pads or truncates axis 1 (a KV cache's time axis) to `length`. */
export function resizeAxis1(x: Tensor, length: number): Tensor {
  const b = backendOf("resizeAxis1", x);
  check(x.rank >= 2 && Number.isInteger(length) && length >= 0, `resizeAxis1: bad length ${length} for ${shapeString(x.shape)}`);
  return b.resizeAxis1(x, length);
}

/**
 * Writes fresh [B, L, ...] into cache [B, T, ...] at per-row offsets (i32 [B]) → [B, T', ...] with
 * T' ≥ max(offset) + L: entries past a row's offset + L are unspecified (see Backend.writeAxis1).
 */
export function writeAxis1(cache: Tensor, fresh: Tensor, offsets: Tensor): Tensor {
  const b = backendOf("writeAxis1", cache, fresh, offsets);
  check(cache.rank >= 2 && fresh.rank === cache.rank && fresh.shape[0] === cache.shape[0] &&
    fresh.shape.slice(2).every((d, i) => d === cache.shape[i + 2]),
    `writeAxis1: fresh ${shapeString(fresh.shape)} does not fit cache ${shapeString(cache.shape)}`);
  check(offsets.dtype === "i32" && offsets.rank === 1 && offsets.shape[0] === cache.shape[0], "writeAxis1: offsets must be i32 [batch]");
  return b.writeAxis1(cache, fresh, offsets);
}
