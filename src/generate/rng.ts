import { check } from "../errors.js";

/**
 * Seeded PRNG: xoshiro128** whose 128-bit state is filled by splitmix64 from the seed.
 * Only 32-bit integer arithmetic (plus BigInt at seeding), so every platform gives the same stream.
 */
export class Rng {
  private s = new Uint32Array(4);

  /** `seed`: any safe integer (negative seeds are taken as 64-bit two's complement). */
  constructor(seed: number) {
    check(Number.isSafeInteger(seed), `seed must be a safe integer, got ${seed}`);
    const M = (1n << 64n) - 1n;
    let x = BigInt.asUintN(64, BigInt(seed));
    for (let i = 0; i < 2; i++) {
      // splitmix64
      x = (x + 0x9e3779b97f4a7c15n) & M;
      let z = x;
      z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M;
      z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M;
      z ^= z >> 31n;
      this.s[2 * i] = Number(z & 0xffffffffn);
      this.s[2 * i + 1] = Number(z >> 32n);
    }
    if ((this.s[0] | this.s[1] | this.s[2] | this.s[3]) === 0) this.s[0] = 1;
  }

  /** Next uniform 32-bit unsigned integer. */
  nextUint32(): number {
    const s = this.s;
    const result = Math.imul(rotl(Math.imul(s[1], 5), 7), 9) >>> 0;
    const t = s[1] << 9;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 11);
    return result;
  }

  /** Uniform float in [0, 1) with 32 bits of randomness. */
  nextFloat(): number {
    return this.nextUint32() / 4294967296;
  }

  /** A copy of the four 32-bit state words. */
  getState(): number[] {
    return Array.from(this.s);
  }

  setState(state: ArrayLike<number>): void {
    check(state.length === 4, `Rng state must have 4 words, got ${state.length}`);
    for (let i = 0; i < 4; i++) {
      const w = state[i];
      check(Number.isInteger(w) && w >= 0 && w <= 0xffffffff, `Rng state word ${i} is not a uint32: ${w}`);
    }
    check(Array.from(state).some((w) => w !== 0), "Rng state must not be all zero");
    this.s.set(Array.from(state));
  }
}

function rotl(x: number, k: number): number {
  return (x << k) | (x >>> (32 - k));
}
