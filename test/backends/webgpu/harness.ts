// Runs the same op on the CPU backend (the reference) and on WebGPU with the same host inputs, and compares
// every output tensor: shape, dtype and values.
import assert from "node:assert/strict";
import type { Backend } from "../../../src/backends/backend.js";
import type { DType, HostArray } from "../../../src/tensor/dtype.js";
import type { Tensor } from "../../../src/tensor/tensor.js";
import { assertClose, Prng, prod, toHalf, type CloseOptions } from "../../ops/helpers.js";
import { cpu, gpu } from "./setup.js";

export type Outputs = Tensor | Tensor[] | Record<string, Tensor>;

function named(out: Outputs): [string, Tensor][] {
  if (Array.isArray(out)) return out.map((t, i) => [`[${i}]`, t]);
  if ("storage" in out && "backend" in out) return [["", out as Tensor]];
  return Object.entries(out as Record<string, Tensor>);
}

/** Host data plus shape and dtype, uploadable to any backend. */
export class Input {
  constructor(readonly data: HostArray, readonly shape: number[], readonly dtype: DType) {}

  on(b: Backend): Tensor {
    return b.upload(this.data, this.shape, this.dtype);
  }
}

export class Inputs {
  readonly rng: Prng;

  constructor(seed: number) {
    this.rng = new Prng(seed);
  }

  f32(shape: number[], lo = -1, hi = 1): Input {
    return new Input(this.rng.f32(prod(shape), lo, hi), shape, "f32");
  }

  half(shape: number[], dtype: "f16" | "bf16", lo = -1, hi = 1): Input {
    return new Input(toHalf(this.rng.f32(prod(shape), lo, hi), dtype).bits, shape, dtype);
  }

  i32(shape: number[], lo: number, hi: number): Input {
    return new Input(this.rng.ints(prod(shape), lo, hi), shape, "i32");
  }

  ints(values: number[]): Input {
    return new Input(Int32Array.from(values), [values.length], "i32");
  }
}

/** Builds the op on both backends and compares all outputs. */
export async function compareOp(what: string, build: (b: Backend) => Outputs, opts: CloseOptions = {}): Promise<void> {
  const want = named(build(cpu));
  const got = named(build(gpu!));
  assert.equal(got.length, want.length, `${what}: output count`);
  for (let i = 0; i < want.length; i++) {
    const [name, w] = want[i];
    const g = got[i][1];
    assert.deepEqual([...g.shape], [...w.shape], `${what}${name}: shape`);
    assert.equal(g.dtype, w.dtype, `${what}${name}: dtype`);
    const gv = await g.read();
    const wv = await w.read();
    if (wv instanceof Int32Array) assert.deepEqual(Array.from(gv), Array.from(wv), `${what}${name}: values`);
    else assertClose(gv, wv, `${what}${name}`, opts);
    g.dispose();
  }
}

/** The kernel keys `run` dispatches on the GPU (through the runtime's benchmark hook). */
export async function kernelsOf(run: () => Promise<void>): Promise<string[]> {
  const keys: string[] = [];
  gpu!.rt.repeatDispatch = (key) => { keys.push(key); return 1; };
  try {
    await run();
  } finally {
    gpu!.rt.repeatDispatch = null;
  }
  return keys;
}
