import { HippoError, shapeString } from "../../errors.js";
import type { ByteSource } from "../byte-source.js";
import { FILE_DTYPE_BYTES, numelOf, type FileDType, type RawTensor } from "../raw-tensor.js";
import type { TensorSource } from "../tensor-source.js";
import { unpickle } from "./unpickle.js";
import { entryDataOffset, readEntry, readZipDirectory, type ZipEntry } from "./zip.js";

/** A dtype as the pickle names it: a storage class, a torch.dtype, or UntypedStorage (bytes). */
class DTypeMarker {
  constructor(readonly dtype: FileDType) {}
}

class Storage {
  constructor(readonly key: string, readonly dtype: FileDType, readonly entry: ZipEntry) {}
}

class TensorRef {
  constructor(
    readonly storage: Storage,
    /** In elements of the storage dtype. */
    readonly offset: number,
    readonly shape: number[],
    readonly stride: number[],
  ) {}
}

const STORAGE_CLASSES: Record<string, FileDType> = {
  FloatStorage: "F32", HalfStorage: "F16", BFloat16Storage: "BF16", DoubleStorage: "F64",
  LongStorage: "I64", IntStorage: "I32", ShortStorage: "I16", CharStorage: "I8",
  ByteStorage: "U8", BoolStorage: "BOOL",
};

const TORCH_DTYPES: Record<string, FileDType> = {
  float32: "F32", float: "F32", float16: "F16", half: "F16", bfloat16: "BF16", float64: "F64",
  double: "F64", int64: "I64", long: "I64", int32: "I32", int: "I32", int16: "I16", short: "I16",
  int8: "I8", uint8: "U8", bool: "BOOL",
};

/** Opens a torch.save checkpoint (pytorch_model.bin, *.pt) from disk; close() closes the file. */
export async function openTorchCheckpoint(path: string): Promise<TensorSource> {
  // Imported lazily so that browsers can use readTorchCheckpoint without node:fs.
  const { openFileSource } = await import("../node-file-source.js");
  const file = await openFileSource(path);
  try {
    const ckpt = await readTorchCheckpoint(file);
    return Object.assign(ckpt, { close: () => file.close() });
  } catch (e) {
    await file.close();
    throw e;
  }
}

/** Parses a torch.save zip checkpoint; tensors are read from `src` only when asked for. */
export async function readTorchCheckpoint(src: ByteSource): Promise<TensorSource> {
  const entries = await readZipDirectory(src);
  const byName = new Map(entries.map((e) => [e.name, e]));
  const pkl = entries.find((e) => /^([^/]+\/)?data\.pkl$/.test(e.name));
  if (!pkl) throw new HippoError(`${src.name}: zip archive has no data.pkl; not a torch.save checkpoint`);
  const prefix = pkl.name.slice(0, -"data.pkl".length);

  const order = byName.get(prefix + "byteorder");
  if (order) {
    const bo = new TextDecoder().decode(await readEntry(src, order)).trim();
    if (bo !== "little") throw new HippoError(`${src.name}: checkpoint byte order is '${bo}'; only little-endian is supported`);
  }

  const storages = new Map<string, Storage>();
  const persistentLoad = (pid: unknown): Storage => {
    // ('storage', storage_type, key, location, numel)
    if (!Array.isArray(pid) || pid.length < 3 || pid[0] !== "storage") {
      throw new HippoError(`${src.name}: unsupported persistent id in data.pkl`);
    }
    const [, type, key] = pid;
    if (!(type instanceof DTypeMarker)) throw new HippoError(`${src.name}: persistent id has no storage type`);
    if (typeof key !== "string") throw new HippoError(`${src.name}: persistent id has a non-string key`);
    const name = `${prefix}data/${key}`;
    const entry = byName.get(name);
    if (!entry) throw new HippoError(`${src.name}: data.pkl refers to storage '${name}', which the archive lacks`);
    let s = storages.get(key);
    if (!s) storages.set(key, (s = new Storage(key, type.dtype, entry)));
    return s;
  };

  const root = unpickle(await readEntry(src, pkl), {
    name: src.name,
    globals: torchGlobals(src.name),
    persistentLoad,
    allowedWhat: "only tensor rebuilding is allowed",
  });

  const tensors = collectTensors(src.name, root);
  for (const [name, t] of tensors) checkSlice(src.name, name, t);

  const dataStarts = new Map<ZipEntry, Promise<number>>();
  const get = (name: string): TensorRef => {
    const t = tensors.get(name);
    if (!t) throw new HippoError(`${src.name}: no tensor named '${name}'`);
    return t;
  };
  return {
    names: () => [...tensors.keys()],
    has: (name) => tensors.has(name),
    info(name) {
      const t = get(name);
      return { dtype: t.storage.dtype, shape: [...t.shape] };
    },
    describe(name) {
      const t = tensors.get(name);
      return t ? `${src.name} (${t.storage.entry.name})` : src.name;
    },
    async read(name) {
      const t = get(name);
      const { entry } = t.storage;
      let start = dataStarts.get(entry);
      if (!start) dataStarts.set(entry, (start = entryDataOffset(src, entry)));
      return readTensor(src, t, await start);
    },
    close: async () => {},
  };
}

function torchGlobals(file: string): Map<string, unknown> {
  const g = new Map<string, unknown>();
  g.set("collections.OrderedDict", () => new Map());
  g.set("torch._utils._rebuild_tensor_v2", (...a: unknown[]) => rebuildTensor(file, a));
  g.set("torch._utils._rebuild_parameter", (data: unknown) => data);
  g.set("torch._utils._rebuild_parameter_with_state", (data: unknown) => data);
  for (const [k, dt] of Object.entries(STORAGE_CLASSES)) g.set(`torch.${k}`, new DTypeMarker(dt));
  for (const [k, dt] of Object.entries(TORCH_DTYPES)) g.set(`torch.${k}`, new DTypeMarker(dt));
  g.set("torch.storage.UntypedStorage", new DTypeMarker("U8"));
  g.set("torch.UntypedStorage", new DTypeMarker("U8"));
  return g;
}

function rebuildTensor(file: string, args: unknown[]): TensorRef {
  // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
  const [storage, offset, size, stride] = args;
  const bad = (what: string) => new HippoError(`${file}: _rebuild_tensor_v2 with ${what}`);
  if (!(storage instanceof Storage)) throw bad("no storage");
  if (!isIndex(offset)) throw bad(`storage offset ${String(offset)}`);
  if (!isIndexList(size)) throw bad("a bad size");
  if (!isIndexList(stride) || stride.length !== size.length) throw bad("a bad stride");
  return new TensorRef(storage, offset, [...size], [...stride]);
}

const isIndex = (v: unknown): v is number => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
const isIndexList = (v: unknown): v is number[] => Array.isArray(v) && v.every(isIndex);

/** name → tensor from a state dict, or from its 'state_dict' / 'model' member. */
function collectTensors(file: string, root: unknown): Map<string, TensorRef> {
  const pick = (d: unknown): Map<string, TensorRef> => {
    const out = new Map<string, TensorRef>();
    if (d instanceof Map) for (const [k, v] of d) if (typeof k === "string" && v instanceof TensorRef) out.set(k, v);
    return out;
  };
  let found = pick(root);
  if (found.size === 0 && root instanceof Map) {
    for (const key of ["state_dict", "model"]) {
      found = pick(root.get(key));
      if (found.size) break;
    }
  }
  if (found.size === 0) throw new HippoError(`${file}: checkpoint holds no tensors (expected a state dict)`);
  return found;
}

/** Elements spanned in the storage: [offset, end). */
function spanOf(t: TensorRef): number {
  if (numelOf(t.shape) === 0) return 0;
  let last = 0;
  for (let i = 0; i < t.shape.length; i++) last += (t.shape[i] - 1) * t.stride[i];
  return last + 1;
}

function checkSlice(file: string, name: string, t: TensorRef): void {
  const es = FILE_DTYPE_BYTES[t.storage.dtype];
  const end = (t.offset + spanOf(t)) * es;
  if (!Number.isSafeInteger(numelOf(t.shape) * es)) throw new HippoError(`${file}: tensor '${name}' has an absurd shape ${shapeString(t.shape)}`);
  if (!Number.isSafeInteger(end) || end > t.storage.entry.size) {
    throw new HippoError(
      `${file}: tensor '${name}' ${t.storage.dtype} ${shapeString(t.shape)} needs bytes [${t.offset * es}, ${end}) ` +
        `of '${t.storage.entry.name}', which holds only ${t.storage.entry.size} bytes`,
    );
  }
}

function isContiguous(t: TensorRef): boolean {
  let expect = 1;
  for (let i = t.shape.length - 1; i >= 0; i--) {
    if (t.shape[i] !== 1 && t.stride[i] !== expect) return false;
    expect *= t.shape[i];
  }
  return true;
}

async function readTensor(src: ByteSource, t: TensorRef, dataStart: number): Promise<RawTensor> {
  const { dtype, entry } = t.storage;
  const es = FILE_DTYPE_BYTES[dtype];
  const span = spanOf(t) * es;
  const from = t.offset * es;
  const raw =
    entry.method === 0
      ? await src.read(dataStart + from, span)
      : (await readEntry(src, entry)).subarray(from, from + span);
  const shape = [...t.shape];
  if (isContiguous(t)) {
    // Typed-array views need element alignment; copy when the source's view lacks it.
    const bytes = raw.byteOffset % es === 0 ? raw : raw.slice();
    return { dtype, shape, bytes };
  }
  return { dtype, shape, bytes: gather(raw, t.shape, t.stride, es) };
}

/** Copies a strided view (element strides, relative to `raw`) into a contiguous row-major buffer. */
export function gather(raw: Uint8Array, shape: readonly number[], stride: readonly number[], es: number): Uint8Array {
  const n = numelOf(shape);
  const out = new Uint8Array(n * es);
  if (n === 0) return out;
  const nd = shape.length;
  if (nd === 0) {
    out.set(raw.subarray(0, es));
    return out;
  }
  // Innermost dim copied as one run when it is unit-stride.
  const inner = shape[nd - 1];
  const run = stride[nd - 1] === 1 ? inner * es : 0;
  const idx = new Array<number>(nd - 1).fill(0);
  let src = 0;
  let dst = 0;
  for (;;) {
    if (run) {
      out.set(raw.subarray(src * es, src * es + run), dst);
      dst += run;
    } else {
      for (let j = 0, s = src * es; j < inner; j++, s += stride[nd - 1] * es) {
        for (let b = 0; b < es; b++) out[dst++] = raw[s + b];
      }
    }
    let d = nd - 2;
    for (; d >= 0; d--) {
      src += stride[d];
      if (++idx[d] < shape[d]) break;
      src -= stride[d] * shape[d];
      idx[d] = 0;
    }
    if (d < 0) return out;
  }
}
