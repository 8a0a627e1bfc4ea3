import { HippoError } from "../errors.js";

/** The -h/--help flag every command takes. */
export const HELP_FLAG = { help: { type: "boolean", short: "h" } } as const;

/** Runs node:util parseArgs, turning its errors (unknown flags, missing values, stray arguments) into HippoErrors. */
export function parseFlags<T>(command: string, argv: string[], parse: (args: string[]) => T): T {
  try {
    return parse(joinNegativeValues(argv));
  } catch (e) {
    const msg = (e as Error).message.split("\n")[0].replace(/\. To specify a positional argument.*$/, "");
    throw new HippoError(`${command}: ${msg} (see 'hippo ${command} --help')`);
  }
}

export function requireString(command: string, value: unknown, flag: string): string {
  if (typeof value !== "string" || value === "") throw new HippoError(`${command}: --${flag} is required (see 'hippo ${command} --help')`);
  return value;
}

export function intFlag(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const s = String(value).trim();
  if (!/^[+-]?\d+$/.test(s)) throw new HippoError(`--${flag} must be an integer, got '${value}'`);
  return Number(s);
}

export function numberFlag(value: unknown, flag: string, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(String(value).trim());
  if (String(value).trim() === "" || !Number.isFinite(n)) throw new HippoError(`--${flag} must be a number, got '${value}'`);
  return n;
}

/** "1,2, 3" → [1, 2, 3]. */
export function idListFlag(value: string, flag: string): number[] {
  const parts = value.split(",").map((s) => s.trim());
  if (parts.length === 1 && parts[0] === "") throw new HippoError(`--${flag} is empty: give comma-separated token ids, e.g. 1,2,3`);
  return parts.map((p) => {
    if (!/^\d+$/.test(p)) throw new HippoError(`--${flag}: '${p}' is not a token id (expected comma-separated non-negative integers)`);
    return Number(p);
  });
}

/** "--seed -3" → "--seed=-3": parseArgs would otherwise read "-3" as a flag. */
function joinNegativeValues(argv: string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const next = argv[i + 1];
    if (argv[i].startsWith("--") && !argv[i].includes("=") && next !== undefined && /^-\d/.test(next)) {
      out.push(`${argv[i]}=${next}`);
      i++;
    } else out.push(argv[i]);
  }
  return out;
}
