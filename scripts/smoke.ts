import { loadModel } from "../src/models/load.js";
import { openFileSource } from "../src/io/node-file-source.js";
import { readSafetensors } from "../src/io/safetensors.js";
import { toFloat32, toInt32Ids } from "../src/io/convert.js";
import { tensor } from "../src/ops/index.js";
import { generateAll } from "../src/generate/generate.js";
for (const dir of process.argv.slice(2)) {
  const { model } = await loadModel(dir);
  const src = await openFileSource(dir + "/io.safetensors");
  const io = await readSafetensors(src);
  const ids = io.tensors.get("input_ids")!;
  const idv = toInt32Ids(ids, "ids");
  const ref = toFloat32(io.tensors.get("logits")!, "logits");
  const t0 = performance.now();
  const out = model.forward(tensor(idv, ids.shape, { dtype: "i32" }));
  const got = await out.logits!.readFloat32();
  let num = 0, den = 0;
  for (let i = 0; i < ref.length; i++) { num += (got[i] - ref[i]) ** 2; den += ref[i] ** 2; }
  console.log(dir, "rel", Math.sqrt(num / den), (performance.now() - t0).toFixed(1), "ms");
  const prompt = Array.from(toInt32Ids(io.tensors.get("prompt_ids")!, "p"));
  const greedy = Array.from(toInt32Ids(io.tensors.get("greedy_ids")!, "g"));
  const res = await generateAll(model, [prompt], { maxNewTokens: greedy.length - prompt.length, sampling: { temperature: 0 }, eosTokenId: null });
  console.log(JSON.stringify(res[0].tokens) === JSON.stringify(greedy.slice(prompt.length)), res[0].tokens.join(","), "\n", greedy.slice(prompt.length).join(","));
}
