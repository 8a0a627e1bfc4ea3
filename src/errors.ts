/**
 * An error caused by the user's input (files, flags, shapes), not by a bug in Hippo.
 * The CLI prints its message as one line, without a stack trace, and exits non-zero.
 */
export class HippoError extends Error {
  override name = "HippoError";
}

/** Throws a HippoError when `condition` is false. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) throw new HippoError(typeof message === "function" ? message() : message);
}

export function shapeString(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}
