import { check } from "../errors.js";

/** Finds stop strings in one row's decoded text. Stateless, so one matcher can serve every row. */
export class StopMatcher {
  readonly stops: readonly string[];

  constructor(stops: string[]) {
    for (const s of stops) check(typeof s === "string" && s.length > 0, "stop strings must not be empty");
    this.stops = [...stops];
  }

  /** Feed the full decoded text so far; returns the index where the earliest stop string begins, or -1. */
  find(text: string): number {
    let best = -1;
    for (const s of this.stops) {
      const i = text.indexOf(s);
      if (i >= 0 && (best < 0 || i < best)) best = i;
    }
    return best;
  }

  /** How many trailing chars are a proper prefix of some stop string (streaming should withhold them). */
  holdBack(text: string): number {
    let hold = 0;
    for (const s of this.stops) {
      for (let len = Math.min(s.length - 1, text.length); len > hold; len--) {
        if (text.endsWith(s.slice(0, len))) {
          hold = len;
          break;
        }
      }
    }
    return hold;
  }
}
