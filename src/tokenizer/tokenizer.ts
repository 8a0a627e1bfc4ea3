import { Tokenizer } from "@huggingface/tokenizers";
import { HippoError, check } from "../errors.js";
import { gpt2TokenizerJson } from "./gpt2-files.js";

/** What generation needs from a tokenizer. */
export interface TextTokenizer {
  encode(text: string): number[];
  decode(ids: number[]): string;
  readonly eosTokenId?: number;
  readonly bosTokenId?: number;
}

type Json = Record<string, unknown>;

const EOS_GUESSES = ["<|endoftext|>", "</s>", "<|end_of_text|>", "<eos>"];
const BOS_GUESSES = ["<s>", "<|begin_of_text|>", "<bos>"];

/** A HF tokenizer.json (+ tokenizer_config.json settings) behind the TextTokenizer interface. */
export class HfTextTokenizer implements TextTokenizer {
  readonly eosTokenId?: number;
  readonly bosTokenId?: number;
  /** Largest id + 1, added tokens included. */
  readonly vocabSize: number;
  readonly addBos: boolean;
  readonly addEos: boolean;
  private readonly cleanUp: boolean;

  constructor(readonly tokenizer: Tokenizer, config: Json) {
    this.vocabSize = tokenizer.model?.vocab.length ?? 0;
    this.eosTokenId = this.resolve(config.eos_token, EOS_GUESSES);
    this.bosTokenId = this.resolve(config.bos_token, BOS_GUESSES);
    this.addBos = config.add_bos_token === true;
    this.addEos = config.add_eos_token === true;
    check(!this.addBos || this.bosTokenId !== undefined, "tokenizer config sets add_bos_token but its bos_token is not in the vocabulary");
    check(!this.addEos || this.eosTokenId !== undefined, "tokenizer config sets add_eos_token but its eos_token is not in the vocabulary");
    this.cleanUp = config.clean_up_tokenization_spaces === true;
  }

  /** Special tokens are added only where tokenizer_config asks for them (add_bos_token / add_eos_token). */
  encode(text: string): number[] {
    const ids = this.tokenizer.encode(text, { add_special_tokens: false }).ids;
    if (this.addBos) ids.unshift(this.bosTokenId!);
    if (this.addEos) ids.push(this.eosTokenId!);
    return ids;
  }

  /** Special tokens are kept; ids with no token (e.g. padded model vocab) decode to nothing. */
  decode(ids: number[]): string {
    const known = ids.filter((id) => this.tokenizer.id_to_token(id) !== undefined);
    if (known.length === 0) return "";
    return this.tokenizer.decode(known, { skip_special_tokens: false, clean_up_tokenization_spaces: this.cleanUp });
  }

  private resolve(configured: unknown, guesses: string[]): number | undefined {
    if (typeof configured === "string") return this.tokenizer.token_to_id(configured);
    for (const g of guesses) {
      const id = this.tokenizer.token_to_id(g);
      if (id !== undefined) return id;
    }
    return undefined;
  }
}

/**
 * Builds a tokenizer from parsed tokenizer.json and optional tokenizer_config.json contents
 * (special_tokens_map.json entries may be merged into `config`). No file system access.
 */
export function tokenizerFromJson(json: object, config: object = {}): HfTextTokenizer {
  check(isObject(json), "tokenizer.json must be a JSON object");
  check(isObject(json.model), 'tokenizer.json has no "model" object');
  check(isObject(config), "tokenizer config must be a JSON object");
  const spec = {
    normalizer: null,
    pre_tokenizer: null,
    post_processor: null,
    decoder: null,
    ...json,
    added_tokens: Array.isArray(json.added_tokens) ? json.added_tokens : [],
  };
  const cfg = normalizeConfig(config);
  let tok: Tokenizer;
  try {
    tok = new Tokenizer(spec, cfg);
  } catch (e) {
    throw new HippoError(`unsupported or malformed tokenizer.json: ${(e as Error).message}`);
  }
  return new HfTextTokenizer(tok, cfg);
}

/**
 * Node only. Loads a tokenizer.json file, or a directory holding tokenizer.json plus optional
 * tokenizer_config.json and special_tokens_map.json (also read beside a file named tokenizer.json),
 * or a directory with GPT-2's vocab.json + merges.txt.
 */
export async function loadTokenizer(pathOrDir: string): Promise<HfTextTokenizer> {
  const fs = await import("node:fs/promises");
  const path = await import("node:path");
  const hint = "pass --tokenizer <tokenizer.json or a directory containing it>";
  const st = await fs.stat(pathOrDir).catch(() => null);
  check(st !== null, `tokenizer not found: ${pathOrDir}; ${hint}`);
  const file = st.isDirectory() ? path.join(pathOrDir, "tokenizer.json") : pathOrDir;
  const dir = st.isDirectory() ? pathOrDir : path.basename(file) === "tokenizer.json" ? path.dirname(file) : null;

  const exists = (p: string) => fs.access(p).then(() => true, () => false);
  const readJson = async (p: string, optional: boolean): Promise<Json | null> => {
    let text: string;
    try {
      text = await fs.readFile(p, "utf8");
    } catch (e) {
      if (optional && (e as NodeJS.ErrnoException).code === "ENOENT") return null;
      throw new HippoError(`cannot read tokenizer file ${p}: ${(e as Error).message}; ${hint}`);
    }
    let v: unknown;
    try {
      v = JSON.parse(text);
    } catch (e) {
      throw new HippoError(`invalid JSON in ${p}: ${(e as Error).message}`);
    }
    check(isObject(v), `invalid tokenizer file ${p}: expected a JSON object`);
    return v;
  };

  // GPT-2 style directories (the H3 checkpoints' tokenizer) ship vocab.json + merges.txt instead.
  if (dir !== null && st.isDirectory() && !(await exists(file)) && (await exists(path.join(dir, "vocab.json")))) {
    const vocabPath = path.join(dir, "vocab.json");
    const mergesPath = path.join(dir, "merges.txt");
    check(await exists(mergesPath), `${dir}: vocab.json without merges.txt; ${hint}`);
    const json = gpt2TokenizerJson(await fs.readFile(vocabPath, "utf8"), await fs.readFile(mergesPath, "utf8"), vocabPath);
    const tc = await readJson(path.join(dir, "tokenizer_config.json"), true);
    try {
      return tokenizerFromJson(json, tc ?? {});
    } catch (e) {
      if (e instanceof HippoError) throw new HippoError(`${vocabPath}: ${e.message}`);
      throw e;
    }
  }
  const json = (await readJson(file, false))!;
  let config: Json = {};
  if (dir !== null) {
    const special = await readJson(path.join(dir, "special_tokens_map.json"), true);
    const tc = await readJson(path.join(dir, "tokenizer_config.json"), true);
    config = { ...(special ?? {}), ...(tc ?? {}) };
  }
  try {
    return tokenizerFromJson(json, config);
  } catch (e) {
    if (e instanceof HippoError) throw new HippoError(`${file}: ${e.message}`);
    throw e;
  }
}

/** Special-token entries may be strings or AddedToken objects ({content: ...}); flatten to strings. */
function normalizeConfig(config: Json): Json {
  const out: Json = { ...config };
  const str = (v: unknown) => (typeof v === "string" ? v : isObject(v) && typeof v.content === "string" ? v.content : undefined);
  for (const key of ["bos_token", "eos_token", "unk_token", "pad_token", "sep_token", "cls_token", "mask_token"]) {
    if (key in out) {
      const s = str(out[key]);
      if (s === undefined) delete out[key];
      else out[key] = s;
    }
  }
  if (Array.isArray(out.additional_special_tokens)) {
    out.additional_special_tokens = out.additional_special_tokens.map(str).filter((s) => s !== undefined);
  }
  return out;
}

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Streaming detokenizer for one row. Decodes a short window of recent ids and emits only the new,
 * stable suffix; holds text back while it ends in U+FFFD (an incomplete multi-token UTF-8 character).
 */
export class IncrementalDecoder {
  private ids: number[];
  private prefixOffset = 0;
  private readOffset: number;

  /** `context`: optional preceding ids (e.g. the prompt's tail), so a first token's leading space survives. */
  constructor(private readonly tok: TextTokenizer, context: readonly number[] = []) {
    this.ids = context.slice(-8);
    this.readOffset = this.ids.length;
  }

  /** Adds one id; returns the newly completed text (possibly ""). */
  push(id: number): string {
    this.ids.push(id);
    return this.emit(false);
  }

  /** Returns whatever is still held back (e.g. a trailing incomplete character). */
  flush(): string {
    return this.emit(true);
  }

  private emit(force: boolean): string {
    const prefix = this.tok.decode(this.ids.slice(this.prefixOffset, this.readOffset));
    const full = this.tok.decode(this.ids.slice(this.prefixOffset));
    if (full.length <= prefix.length || (!force && full.endsWith("\uFFFD"))) return "";
    // Keep the window short: the next decode starts at what was the read offset.
    this.prefixOffset = this.readOffset;
    this.readOffset = this.ids.length;
    if (this.prefixOffset > 64) {
      this.ids = this.ids.slice(this.prefixOffset);
      this.readOffset -= this.prefixOffset;
      this.prefixOffset = 0;
    }
    return full.slice(prefix.length);
  }
}
