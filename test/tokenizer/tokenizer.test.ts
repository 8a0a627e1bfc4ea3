import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, writeFileSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Tokenizer } from "@huggingface/tokenizers";
import { HippoError } from "../../src/errors.js";
import { IncrementalDecoder, loadTokenizer, tokenizerFromJson, type TextTokenizer } from "../../src/tokenizer/tokenizer.js";
import { byteLevelTokenizerJson, bytesToUnicode } from "../../src/tokenizer/byte-level.js";

const SAMPLES = ["Hello, world! 123 ~`{}", "naïve café 😀", "line one\nline two\n\n  indented\ttab\r\n", " leading and trailing  ", "日本語テキスト", ""];
const utf8 = (s: string) => Array.from(new TextEncoder().encode(s));

test("bytes_to_unicode is GPT-2's mapping", () => {
  const m = bytesToUnicode();
  assert.equal(new Set(m).size, 256);
  assert.equal(m[0x41], "A");
  assert.equal(m[0x20], "\u0120"); // 'Ġ'
  assert.equal(m[0x0a], "\u010a"); // 'Ċ'
  assert.equal(m[0x00], "\u0100");
  assert.equal(m[0xad], "\u0143");
});

test("byte-level tokenizer.json round-trips through @huggingface/tokenizers", () => {
  const tok = new Tokenizer(byteLevelTokenizerJson(), {});
  for (const s of SAMPLES.filter((s) => s !== "")) {
    const ids = tok.encode(s, { add_special_tokens: false }).ids;
    assert.deepEqual(ids, utf8(s), s);
    assert.equal(tok.decode(ids, { skip_special_tokens: false, clean_up_tokenization_spaces: false }), s);
  }
  assert.equal(tok.token_to_id("<|endoftext|>"), 256);
  assert.equal(tok.id_to_token(65), "A");
});

test("tokenizerFromJson: byte tokenizer encode/decode, eos, no added specials", () => {
  const tok = tokenizerFromJson(byteLevelTokenizerJson());
  for (const s of SAMPLES) {
    assert.deepEqual(tok.encode(s), utf8(s), s);
    assert.equal(tok.decode(tok.encode(s)), s);
  }
  assert.equal(tok.eosTokenId, 256);
  assert.equal(tok.bosTokenId, undefined);
  assert.equal(tok.vocabSize, 257);
  assert.deepEqual(tok.encode("Hi<|endoftext|>"), [72, 105, 256]);
  assert.equal(tok.decode([72, 105, 256]), "Hi<|endoftext|>");
  assert.equal(tok.decode([]), "");
  assert.equal(tok.decode([72, 99999, 105]), "Hi"); // ids beyond the vocabulary decode to nothing
  // no clean-up of tokenization spaces by default
  assert.equal(tok.decode(tok.encode("a , b . c n't")), "a , b . c n't");
});

test("tokenizer_config controls bos/eos insertion; AddedToken-style entries accepted", () => {
  const json = byteLevelTokenizerJson();
  const a = tokenizerFromJson(json, { add_bos_token: true, bos_token: "<|endoftext|>", eos_token: "<|endoftext|>" });
  assert.deepEqual(a.encode("A"), [256, 65]);
  const b = tokenizerFromJson(json, {
    add_bos_token: false, add_eos_token: true, eos_token: { __type: "AddedToken", content: "<|endoftext|>", special: true },
  });
  assert.deepEqual(b.encode("A"), [65, 256]);
  assert.equal(b.eosTokenId, 256);
  assert.throws(() => tokenizerFromJson(json, { add_bos_token: true, bos_token: "<s>" }), HippoError);
  assert.throws(() => tokenizerFromJson({ nope: 1 }), HippoError);
  assert.throws(() => tokenizerFromJson({ model: { type: "Mystery" } }), HippoError);
});

test("loadTokenizer: file, directory with configs, and errors", async (t) => {
  const dir = mkdtempSync(join(tmpdir(), "hippo-tok-"));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, "tokenizer.json"), JSON.stringify(byteLevelTokenizerJson()));
  writeFileSync(join(dir, "special_tokens_map.json"), JSON.stringify({ bos_token: "<|endoftext|>", eos_token: "<|endoftext|>" }));
  writeFileSync(join(dir, "tokenizer_config.json"), JSON.stringify({ add_bos_token: true }));
  const fromDir = await loadTokenizer(dir);
  assert.deepEqual(fromDir.encode("ok"), [256, 111, 107]);
  assert.equal(fromDir.bosTokenId, 256);
  const fromFile = await loadTokenizer(join(dir, "tokenizer.json"));
  assert.deepEqual(fromFile.encode("ok"), [256, 111, 107]); // configs beside tokenizer.json are read too

  const lone = join(dir, "bytes.json");
  writeFileSync(lone, JSON.stringify(byteLevelTokenizerJson()));
  assert.deepEqual((await loadTokenizer(lone)).encode("ok"), [111, 107]);

  const missing = join(dir, "nope", "tokenizer.json");
  await assert.rejects(loadTokenizer(missing), (e: Error) => e instanceof HippoError && e.message.includes(missing) && e.message.includes("--tokenizer"));
  const empty = join(dir, "empty");
  mkdirSync(empty);
  await assert.rejects(loadTokenizer(empty), (e: Error) => e instanceof HippoError && e.message.includes(join(empty, "tokenizer.json")) && e.message.includes("--tokenizer"));

  const badDir = join(dir, "bad");
  mkdirSync(badDir);
  writeFileSync(join(badDir, "tokenizer.json"), "{ not json");
  await assert.rejects(loadTokenizer(badDir), (e: Error) => e instanceof HippoError && e.message.includes(join(badDir, "tokenizer.json")));
  writeFileSync(join(badDir, "tokenizer.json"), JSON.stringify(byteLevelTokenizerJson()));
  writeFileSync(join(badDir, "tokenizer_config.json"), "[1,");
  await assert.rejects(loadTokenizer(badDir), (e: Error) => e instanceof HippoError && e.message.includes("tokenizer_config.json"));
});

test("IncrementalDecoder streams multi-byte characters without U+FFFD", () => {
  const tok = tokenizerFromJson(byteLevelTokenizerJson());
  for (const s of SAMPLES) {
    const dec = new IncrementalDecoder(tok);
    let out = "";
    for (const id of tok.encode(s)) {
      const piece = dec.push(id);
      assert.ok(!piece.includes("\uFFFD"), JSON.stringify(piece));
      out += piece;
      assert.ok(s.startsWith(out));
    }
    out += dec.flush();
    assert.equal(out, s);
  }
  // the 4 bytes of 😀 emit nothing until the last one
  const dec = new IncrementalDecoder(tok);
  const pieces = tok.encode("a😀").map((id) => dec.push(id));
  assert.deepEqual(pieces, ["a", "", "", "", "😀"]);
  // an unfinished character comes out on flush
  const d2 = new IncrementalDecoder(tok);
  assert.equal(d2.push(0xf0) + d2.push(0x9f), "");
  assert.equal(d2.flush(), "\uFFFD");
  assert.equal(d2.flush(), "");
});

test("IncrementalDecoder context keeps a first token's leading space (SentencePiece-style decode)", () => {
  const words = ["▁Hello", "▁world", "!"];
  const sp: TextTokenizer = {
    encode: () => [],
    decode: (ids) => ids.map((i) => words[i]).join("").replaceAll("▁", " ").replace(/^ /, ""),
  };
  const plain = new IncrementalDecoder(sp);
  assert.equal(plain.push(1) + plain.push(2), "world!");
  const ctx = new IncrementalDecoder(sp, [0]);
  assert.equal(ctx.push(1) + ctx.push(2) + ctx.flush(), " world!");
});

test("IncrementalDecoder over a long stream equals a whole decode", () => {
  const tok = tokenizerFromJson(byteLevelTokenizerJson());
  const text = "ünïcødé 😀 текст 日本 ".repeat(60);
  const dec = new IncrementalDecoder(tok);
  let out = "";
  for (const id of tok.encode(text)) out += dec.push(id);
  assert.equal(out + dec.flush(), text);
});
