// GPT-2's tokenizer from vocab.json + merges.txt (the H3 checkpoints' tokenizer), with a tiny vocabulary:
// byte-level symbols, a few merges, <|endoftext|> as a special token; loaded from a model directory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { copyFileSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { HippoError } from "../../src/errors.js";
import { loadModel } from "../../src/models/load.js";
import { bytesToUnicode } from "../../src/tokenizer/byte-level.js";
import { gpt2TokenizerJson } from "../../src/tokenizer/gpt2-files.js";
import { loadTokenizer, tokenizerFromJson } from "../../src/tokenizer/tokenizer.js";
import { conformanceDir } from "../fixtures.js";

const MERGES = ["h e", "l l", "he ll", "hell o", "Ġ w", "o r", "Ġw or", "Ġwor l", "Ġworl d"];

function tinyVocab(): Record<string, number> {
  const vocab: Record<string, number> = {};
  bytesToUnicode().forEach((ch, b) => (vocab[ch] = b));
  for (const m of MERGES) vocab[m.replace(" ", "")] = Object.keys(vocab).length;
  vocab["<|endoftext|>"] = Object.keys(vocab).length;
  return vocab;
}

function gpt2Dir(): string {
  const dir = mkdtempSync(join(tmpdir(), "hippo-gpt2-"));
  writeFileSync(join(dir, "vocab.json"), JSON.stringify(tinyVocab()));
  writeFileSync(join(dir, "merges.txt"), `#version: 0.2\n${MERGES.join("\n")}\n`);
  return dir;
}

test("vocab.json + merges.txt: byte-level BPE with merges, <|endoftext|> special, exact round trip", async () => {
  const vocab = tinyVocab();
  const tok = await loadTokenizer(gpt2Dir());
  assert.deepEqual(tok.encode("hello world"), [vocab.hello, vocab["Ġworld"]]);
  assert.deepEqual(tok.encode("hello world<|endoftext|>"), [vocab.hello, vocab["Ġworld"], vocab["<|endoftext|>"]]);
  assert.equal(tok.eosTokenId, vocab["<|endoftext|>"]);
  for (const s of ["hello world", " hello, wörld!\n", "tabs\tand  spaces"]) assert.equal(tok.decode(tok.encode(s)), s);
});

test("a model directory with vocab.json + merges.txt gets its tokenizer", async () => {
  const dir = gpt2Dir();
  for (const f of ["config.json", "model.safetensors"]) copyFileSync(join(conformanceDir("h3-lm-tiny"), f), join(dir, f));
  const { tokenizer } = await loadModel(dir);
  assert.ok(tokenizer);
  assert.equal(tokenizer.decode(tokenizer.encode("hello world")), "hello world");
});

test("malformed GPT-2 tokenizer files are clear errors", async () => {
  assert.throws(() => gpt2TokenizerJson("{not json", ""), (e: Error) => e instanceof HippoError && /vocab\.json: not valid JSON/.test(e.message));
  assert.throws(() => gpt2TokenizerJson('{"a": -1}', ""), /token "a" has a bad id -1/);
  assert.throws(() => gpt2TokenizerJson('{"a": 0}', "a b c\n"), /merges\.txt: line 1 is not a pair/);
  const dir = mkdtempSync(join(tmpdir(), "hippo-gpt2-"));
  writeFileSync(join(dir, "vocab.json"), "{}");
  await assert.rejects(loadTokenizer(dir), /vocab\.json without merges\.txt/);
  assert.ok(tokenizerFromJson(gpt2TokenizerJson(JSON.stringify(tinyVocab()), MERGES.join("\n"))));
});
