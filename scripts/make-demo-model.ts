/**
 * Writes the demo model that ships in models/hippo-demo: a tiny Mamba (d_model 64, 2 layers) with
 * random weights and a byte-level tokenizer, so `hippo generate` runs on a fresh clone. Its text is
 * noise until a trained model replaces it.
 *   node dist/scripts/make-demo-model.js [out dir]
 */
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeFileAtomic, writeSafetensorsFile } from "../src/io/node-files.js";
import { initMambaWeights, mambaConfig, mambaHfConfigJson } from "../src/models/mamba/init.js";
import { BYTE_EOS_ID, byteLevelTokenizerJson } from "../src/tokenizer/byte-level.js";

const out = process.argv[2] ?? "models/hippo-demo";
mkdirSync(out, { recursive: true });
const config = { ...mambaConfig({ dModel: 64, nLayer: 2, vocabSize: BYTE_EOS_ID + 1 }), eosTokenId: BYTE_EOS_ID };
await writeFileAtomic(join(out, "config.json"), JSON.stringify(mambaHfConfigJson(config), null, 2) + "\n");
await writeSafetensorsFile(join(out, "model.safetensors"), initMambaWeights(config, 2026), { format: "pt" });
await writeFileAtomic(join(out, "tokenizer.json"), JSON.stringify(byteLevelTokenizerJson()) + "\n");
console.log(`wrote ${out}`);
