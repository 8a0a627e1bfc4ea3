import { HippoError } from "../errors.js";

/**
 * Parses a config.json. transformers 5.x writes float('inf') as {"__float__": "Infinity"}: such objects
 * become numbers here so config readers see plain values.
 */
export function parseConfigJson(text: string, file: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = JSON.parse(text, (_key, v) => {
      if (v && typeof v === "object" && !Array.isArray(v) && Object.keys(v).length === 1 && typeof v.__float__ === "string") {
        const n = Number(v.__float__);
        if (Number.isNaN(n) && v.__float__ !== "NaN") throw new HippoError(`${file}: bad __float__ value '${v.__float__}'`);
        return n;
      }
      return v;
    });
  } catch (e) {
    if (e instanceof HippoError) throw e;
    throw new HippoError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  if (!value || typeof value !== "object" || Array.isArray(value)) throw new HippoError(`${file}: expected a JSON object`);
  return value as Record<string, unknown>;
}

/** Typed field access with errors that name the file and key. */
export class ConfigReader {
  constructor(readonly raw: Record<string, unknown>, readonly file: string) {}

  has(key: string): boolean {
    return this.raw[key] !== undefined && this.raw[key] !== null;
  }

  int(key: string, fallback?: number): number {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
      throw new HippoError(`${this.file}: '${key}' must be a non-negative integer, got ${JSON.stringify(v)}`);
    }
    return v;
  }

  positiveInt(key: string, fallback?: number): number {
    const v = this.int(key, fallback);
    if (v === 0) throw new HippoError(`${this.file}: '${key}' must be positive, got 0`);
    return v;
  }

  number(key: string, fallback?: number): number {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== "number" || Number.isNaN(v)) throw new HippoError(`${this.file}: '${key}' must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  bool(key: string, fallback?: boolean): boolean {
    const v = this.raw[key] ?? fallback;
    if (typeof v !== "boolean") throw new HippoError(`${this.file}: '${key}' must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  optionalInt(key: string): number | undefined {
    const v = this.raw[key];
    if (v === undefined || v === null) return undefined;
    if (Array.isArray(v)) return typeof v[0] === "number" ? v[0] : undefined;
    return this.int(key);
  }

  section(key: string): ConfigReader {
    const v = this.raw[key] ?? {};
    if (typeof v !== "object" || Array.isArray(v)) throw new HippoError(`${this.file}: '${key}' must be an object`);
    return new ConfigReader(v as Record<string, unknown>, `${this.file} (${key})`);
  }
}
