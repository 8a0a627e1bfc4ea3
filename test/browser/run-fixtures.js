// Shared by the test pages: loads each named conformance fixture from its files' bytes (fetch), runs a full
// forward pass on `backend` and a greedy continuation (parallel prefill, then recurrent steps, each token
// chosen from the logits), and returns the logits' relative L2 error and the ids for the test to check.
import { loadModelFromFiles, readSafetensors, bufferSource } from "/dist/src/browser.js"; // "hippo/browser"
import { toFloat32, toInt32Ids } from "/dist/src/io/convert.js";

const bytes = async (url) => {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
};
const argmax = (v) => v.reduce((best, x, i) => (x > v[best] ? i : best), 0);

/** Appends one entry per fixture to `results` (so a failure still reports the fixtures done before it). */
export async function runFixtures(backend, names, results) {
  for (const name of names) {
    const files = { "config.json": await bytes(`/fixture/${name}/config.json`), "model.safetensors": await bytes(`/fixture/${name}/model.safetensors`) };
    const { model } = await loadModelFromFiles(files, backend);
    const io = (await readSafetensors(bufferSource("io.safetensors", await bytes(`/fixture/${name}/io.safetensors`)))).tensors;
    const ids = io.get("input_ids");
    const out = model.forward(backend.upload(toInt32Ids(ids, "input_ids"), ids.shape, "i32"), null, { logits: "all" });
    const got = await out.logits.readFloat32(), want = toFloat32(io.get("logits"), "logits");
    let num = 0, den = 0;
    for (let i = 0; i < want.length; i++) { num += (got[i] - want[i]) ** 2; den += want[i] ** 2; }
    const prompt = Array.from(toInt32Ids(io.get("prompt_ids"), "prompt_ids"));
    const expected = Array.from(toInt32Ids(io.get("greedy_ids"), "greedy_ids")).slice(prompt.length);
    const r = model.forward(backend.upload(Int32Array.from(prompt), [1, prompt.length], "i32"), null, { logits: "last" });
    let state = r.state, next = argmax(await r.logits.readFloat32());
    const greedy = [next];
    while (greedy.length < expected.length) {
      const s = model.step(backend.upload(Int32Array.of(next), [1, 1], "i32"), state);
      state = s.state;
      next = argmax(await s.logits.readFloat32());
      greedy.push(next);
    }
    results.push({ name, logitsShape: out.logits.shape, relL2: Math.sqrt(num / den), greedy, expected });
  }
}

export const fixtureNames = () => new URLSearchParams(location.search).get("fixtures").split(",");

/** Posts the page's outcome to the test's server. */
export const post = (body) => fetch("/result", { method: "POST", body: JSON.stringify(body) });
