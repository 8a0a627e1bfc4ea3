import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import { toFloat32, toInt32Ids } from "../src/io/convert.js";
import { openFileSource } from "../src/io/node-file-source.js";
import { readSafetensors } from "../src/io/safetensors.js";

/** The shared reference fixtures (made by the reference PyTorch code); CI has them beside the clone. */
export const CONFORMANCE = resolve(process.env.HIPPO_CONFORMANCE ?? "../shared/conformance");
/** Reference fixtures this project made with HF transformers (see test/fixtures/README.md). */
export const LOCAL_FIXTURES = resolve("test/fixtures");

export function conformanceDir(name: string): string {
  const dir = join(CONFORMANCE, name);
  if (!existsSync(dir)) throw new Error(`conformance fixture ${dir} not found (set HIPPO_CONFORMANCE to the folder holding it)`);
  return dir;
}

/** Every language-model fixture of the Mamba families and hybrids: shared ones and ours. */
export function modelFixtureDirs(): string[] {
  return [
    conformanceDir("mamba-tiny"),
    conformanceDir("mamba-tiny-ssm"),
    conformanceDir("mamba2-tiny"),
    conformanceDir("hybrid-tiny"),
    ...["mamba-tiny-bf16", "mamba-tiny-f16-sharded", "mamba-tiny-ssm-bf16", "mamba-odd", "llama-tiny", "llama-odd", "mamba2-ssm-tiny", "mamba2attn-ssm-tiny"].map((n) => join(LOCAL_FIXTURES, n)),
  ];
}

export interface ReferenceIo {
  inputIds: Int32Array;
  inputShape: number[];
  logits: Float32Array;
  promptIds: number[];
  greedyIds: number[];
}

export async function readReferenceIo(dir: string): Promise<ReferenceIo> {
  const src = await openFileSource(join(dir, "io.safetensors"));
  try {
    const { tensors } = await readSafetensors(src);
    const get = (n: string) => {
      const t = tensors.get(n);
      if (!t) throw new Error(`${dir}/io.safetensors has no ${n}`);
      return t;
    };
    return {
      inputIds: toInt32Ids(get("input_ids"), "input_ids"),
      inputShape: get("input_ids").shape,
      logits: toFloat32(get("logits"), "logits"),
      promptIds: Array.from(toInt32Ids(get("prompt_ids"), "prompt_ids")),
      greedyIds: Array.from(toInt32Ids(get("greedy_ids"), "greedy_ids")),
    };
  } finally {
    await src.close();
  }
}

/** ‖a − b‖ / ‖b‖ in float64. */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) throw new Error(`length ${a.length} vs ${b.length}`);
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i] - b[i]) ** 2;
    den += b[i] ** 2;
  }
  return Math.sqrt(num / den);
}
