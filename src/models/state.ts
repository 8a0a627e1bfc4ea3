import { check, HippoError, shapeString } from "../errors.js";
import type { Backend } from "../backends/backend.js";
import { encodeSafetensors, readSafetensors } from "../io/safetensors.js";
import { bufferSource } from "../io/byte-source.js";
import { fromFloat32, toFloat32 } from "../io/convert.js";
import { concat0, resizeAxis1, slice0 } from "../ops/index.js";
import type { Tensor } from "../tensor/tensor.js";
import type { RawTensor } from "../io/raw-tensor.js";

/** One layer's recurrent state: named tensors whose axis 0 is the batch (conv window, SSM state, KV cache). */
export type LayerState = Record<string, Tensor>;

const FORMAT = "hippo-inference-state-v1";

/**
 * Everything a model carries between tokens, as a value: per-layer tensors plus how many tokens each
 * batch row has consumed. It can be cloned, split into rows, stacked, and serialized to bytes — for an
 * SSM it is small and independent of context length, so caching it after a long prompt is cheap.
 */
export class InferenceState {
  constructor(
    readonly layers: LayerState[],
    /** Tokens consumed so far, per batch row. */
    readonly positions: number[],
    /** Identifies the model the state belongs to; restoring into another model is refused. */
    readonly modelKey: string,
    /**
     * Per layer, the names of its KV caches: tensors whose axis 1 is time. A cache may be longer than the
     * furthest position (a backend's spare capacity); entries past a row's position are not part of the state.
     */
    readonly caches: readonly (readonly string[])[],
  ) {
    check(caches.length === layers.length, `InferenceState: ${layers.length} layers but cache names for ${caches.length}`);
  }

  get batch(): number {
    return this.positions.length;
  }

  /** State bytes per sequence (all layers). */
  get bytesPerSequence(): number {
    let total = 0;
    for (const layer of this.layers) for (const t of Object.values(layer)) total += (t.size / t.shape[0]) * 4;
    return total;
  }

  private map(fn: (t: Tensor) => Tensor, positions: number[]): InferenceState {
    const layers = this.layers.map((l) => Object.fromEntries(Object.entries(l).map(([k, t]) => [k, fn(t)])));
    return new InferenceState(layers, positions, this.modelKey, this.caches);
  }

  clone(): InferenceState {
    return this.map((t) => slice0(t, 0, t.shape[0]), [...this.positions]);
  }

  /** Rows [start, start+count) of the batch. */
  rows(start: number, count: number): InferenceState {
    check(start >= 0 && count > 0 && start + count <= this.batch, `state has ${this.batch} rows; cannot take [${start}, ${start + count})`);
    return this.map((t) => slice0(t, start, count), this.positions.slice(start, start + count));
  }

  /**
   * Stacks states of the same model along the batch axis. KV caches of different lengths are zero-padded
   * on their time axis; each row's `positions` entry says how much of it is real.
   */
  static stack(states: readonly InferenceState[]): InferenceState {
    check(states.length > 0, "InferenceState.stack: no states");
    const first = states[0];
    for (const s of states) check(s.modelKey === first.modelKey, "InferenceState.stack: states come from different models");
    const stackKey = (i: number, k: string): Tensor => {
      const parts = states.map((s) => s.layers[i][k]);
      if (!first.caches[i].includes(k)) return concat0(parts);
      const longest = Math.max(...parts.map((t) => t.shape[1]));
      return concat0(parts.map((t) => (t.shape[1] !== longest ? resizeAxis1(t, longest) : t)));
    };
    const layers = first.layers.map((l, i) => Object.fromEntries(Object.keys(l).map((k) => [k, stackKey(i, k)])));
    return new InferenceState(layers, states.flatMap((s) => s.positions), first.modelKey, first.caches);
  }

  dispose(): void {
    for (const l of this.layers) for (const t of Object.values(l)) t.dispose();
  }

  /**
   * Safetensors bytes: tensors `layers.<i>.<name>`, metadata with the format, model key and positions.
   * KV caches are cut to the furthest position: spare entries past it are never read.
   */
  async serialize(): Promise<Uint8Array> {
    const tensors: Record<string, RawTensor> = {};
    const furthest = Math.max(0, ...this.positions);
    for (let i = 0; i < this.layers.length; i++) {
      for (const [name, t] of Object.entries(this.layers[i])) {
        const trim = this.caches[i].includes(name) && t.shape[1] > furthest;
        const kept = trim ? resizeAxis1(t, furthest) : t;
        tensors[`layers.${i}.${name}`] = fromFloat32(await kept.readFloat32(), [...kept.shape], "F32");
        if (trim) kept.dispose();
      }
    }
    return encodeSafetensors(tensors, {
      format: FORMAT,
      model: this.modelKey,
      positions: JSON.stringify(this.positions),
      layers: String(this.layers.length),
    });
  }

  /**
   * Restores serialized bytes onto a backend. `template` is a state of the target model (e.g. from
   * model.initialState(1)): names, layer count, shapes and model key must match it.
   */
  static async deserialize(bytes: Uint8Array, backend: Backend, template: InferenceState, where = "state"): Promise<InferenceState> {
    const { metadata, tensors } = await readSafetensors(bufferSource(where, bytes));
    if (metadata.format !== FORMAT) throw new HippoError(`${where}: not a Hippo inference state (format '${metadata.format ?? "none"}')`);
    if (metadata.model !== template.modelKey) {
      throw new HippoError(`${where}: state belongs to model '${metadata.model}', not '${template.modelKey}'`);
    }
    const positions = JSON.parse(metadata.positions ?? "[]") as number[];
    const furthest = Math.max(0, ...positions);
    const layers = template.layers.map((l, i) =>
      Object.fromEntries(Object.entries(l).map(([name, t]) => {
        const key = `layers.${i}.${name}`;
        const raw = tensors.get(key);
        if (!raw) throw new HippoError(`${where}: missing tensor '${key}'`);
        const expected = [positions.length, ...t.shape.slice(1)];
        const isCache = template.caches[i].includes(name);
        // A cache holds at least the furthest row's tokens; any spare entries after them are ignored.
        if (isCache && raw.shape.length === t.rank && raw.shape[1] >= furthest) expected[1] = raw.shape[1];
        if (raw.shape.length !== expected.length || raw.shape.some((d, j) => d !== expected[j])) {
          const want = isCache ? `[${positions.length}, ≥${furthest}, ${t.shape.slice(2).join(", ")}]` : shapeString(expected);
          throw new HippoError(`${where}: tensor '${key}' has shape ${shapeString(raw.shape)}, expected ${want}`);
        }
        return [name, backend.upload(toFloat32(raw, `${where}: ${key}`), raw.shape, "f32")];
      })));
    return new InferenceState(layers, positions, template.modelKey, template.caches);
  }
}
