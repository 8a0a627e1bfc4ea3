import { access, readFile } from "node:fs/promises";
import { join, resolve, relative, isAbsolute, sep } from "node:path";
import { HippoError } from "../errors.js";
import { fsError, openFileSource, type FileSource } from "./node-file-source.js";
import { oneLine, readSafetensorsHeader, readSafetensorsTensor, type SafetensorsHeader } from "./safetensors.js";
import type { TensorSource } from "./tensor-source.js";
import type { RawTensor } from "./raw-tensor.js";

interface Shard {
  src: FileSource;
  header: SafetensorsHeader;
}

async function exists(path: string): Promise<boolean> {
  return access(path).then(() => true, () => false);
}

async function openShard(path: string): Promise<Shard> {
  const src = await openFileSource(path);
  try {
    return { src, header: await readSafetensorsHeader(src) };
  } catch (e) {
    await src.close();
    throw e;
  }
}

/**
 * Opens `dir/model.safetensors`, or else the shards listed in `dir/model.safetensors.index.json`.
 * Only headers are read up front; tensors are read on demand.
 */
export async function openSafetensorsCheckpoint(dir: string): Promise<TensorSource> {
  const single = join(dir, "model.safetensors");
  if (await exists(single)) {
    const shard = await openShard(single);
    return makeSource(dir, new Map([...shard.header.tensors.keys()].map((n) => [n, shard])), [shard]);
  }
  const indexPath = join(dir, "model.safetensors.index.json");
  if (!(await exists(indexPath))) {
    throw new HippoError(`${dir}: no model.safetensors or model.safetensors.index.json found`);
  }
  const weightMap = await readIndex(indexPath);

  const byFile = new Map<string, string[]>();
  for (const [name, file] of weightMap) {
    const list = byFile.get(file);
    if (list) list.push(name);
    else byFile.set(file, [name]);
  }
  const shards: Shard[] = [];
  const owner = new Map<string, Shard>();
  try {
    for (const [file, names] of byFile) {
      const path = join(dir, file);
      if (!(await exists(path))) {
        throw new HippoError(`${indexPath}: shard ${file} (holding e.g. ${names[0]}) does not exist at ${path}`);
      }
      const shard = await openShard(path);
      shards.push(shard);
      for (const n of names) {
        if (!shard.header.tensors.has(n)) {
          throw new HippoError(`${indexPath}: tensor ${n} is mapped to shard ${file}, but ${path} does not contain it`);
        }
        owner.set(n, shard);
      }
    }
  } catch (e) {
    await Promise.all(shards.map((s) => s.src.close()));
    throw e;
  }
  return makeSource(dir, owner, shards);
}

async function readIndex(indexPath: string): Promise<Map<string, string>> {
  let text: string;
  try {
    text = await readFile(indexPath, "utf8");
  } catch (e) {
    throw fsError(indexPath, e);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new HippoError(`${indexPath}: not valid JSON (${oneLine(e)})`);
  }
  const wm = (json as { weight_map?: unknown } | null)?.weight_map;
  if (typeof wm !== "object" || wm === null || Array.isArray(wm)) {
    throw new HippoError(`${indexPath}: expected an object with a "weight_map" object (tensor name -> shard file)`);
  }
  const out = new Map<string, string>();
  for (const [name, file] of Object.entries(wm)) {
    if (typeof file !== "string" || file === "") {
      throw new HippoError(`${indexPath}: weight_map entry ${name}: expected a shard file name, got ${JSON.stringify(file)}`);
    }
    // Shards must live in the checkpoint directory (no absolute paths or "..").
    const rel = relative(".", file);
    if (isAbsolute(file) || rel === ".." || rel.startsWith(`..${sep}`)) {
      throw new HippoError(`${indexPath}: weight_map entry ${name}: shard path ${file} points outside the checkpoint directory`);
    }
    out.set(name, file);
  }
  return out;
}

function makeSource(dir: string, owner: Map<string, Shard>, shards: Shard[]): TensorSource {
  const get = (name: string): Shard => {
    const s = owner.get(name);
    if (!s) throw new HippoError(`${resolve(dir)}: checkpoint has no tensor named ${name} (${owner.size} tensors)`);
    return s;
  };
  return {
    names: () => [...owner.keys()],
    has: (name) => owner.has(name),
    info(name) {
      const e = get(name).header.tensors.get(name)!;
      return { dtype: e.dtype, shape: e.shape.slice() };
    },
    async read(name): Promise<RawTensor> {
      const s = get(name);
      return readSafetensorsTensor(s.src, s.header, name);
    },
    describe: (name) => get(name).src.name,
    async close() {
      await Promise.all(shards.map((s) => s.src.close()));
    },
  };
}
