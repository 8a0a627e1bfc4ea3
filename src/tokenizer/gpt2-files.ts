import { HippoError } from "../errors.js";

/**
 * GPT-2's tokenizer as the original files ship it (vocab.json + merges.txt, as the H3 checkpoints and
 * transformers' GPT2Tokenizer use), turned into the tokenizer.json a fast tokenizer would have: a
 * byte-level BPE (no prefix space, no normalizer) with <|endoftext|> as a special added token.
 */
export function gpt2TokenizerJson(vocabText: string, mergesText: string, where = "vocab.json"): Record<string, unknown> {
  let vocab: unknown;
  try {
    vocab = JSON.parse(vocabText);
  } catch (e) {
    throw new HippoError(`${where}: not valid JSON (${(e as Error).message})`);
  }
  if (!vocab || typeof vocab !== "object" || Array.isArray(vocab)) throw new HippoError(`${where}: expected an object of token → id`);
  for (const [token, id] of Object.entries(vocab)) {
    if (!Number.isInteger(id) || (id as number) < 0) throw new HippoError(`${where}: token ${JSON.stringify(token)} has a bad id ${JSON.stringify(id)}`);
  }
  // merges.txt: an optional '#version' line, then one "left right" pair per line.
  const merges = mergesText.split(/\r?\n/).filter((line) => line.length > 0 && !line.startsWith("#version"));
  merges.forEach((line, i) => {
    if (line.split(" ").length !== 2) throw new HippoError(`merges.txt: line ${i + 1} is not a pair of tokens: ${JSON.stringify(line)}`);
  });
  const table = vocab as Record<string, number>;
  const eos = "<|endoftext|>";
  const added = table[eos] !== undefined
    ? [{ id: table[eos], content: eos, single_word: false, lstrip: false, rstrip: false, normalized: true, special: true }]
    : [];
  const byteLevel = { type: "ByteLevel", add_prefix_space: false, trim_offsets: true, use_regex: true };
  return {
    version: "1.0",
    added_tokens: added,
    normalizer: null,
    pre_tokenizer: byteLevel,
    post_processor: byteLevel,
    decoder: byteLevel,
    model: {
      type: "BPE", dropout: null, unk_token: null, continuing_subword_prefix: "", end_of_word_suffix: "",
      fuse_unk: false, byte_fallback: false, vocab: table, merges,
    },
  };
}
