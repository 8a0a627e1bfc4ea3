import { HippoError } from "../errors.js";
import type { ConfigReader } from "./config-json.js";
import type { CausalLM } from "./causal-lm.js";
import type { WeightLoader } from "./weights.js";
import { parseHfMambaConfig } from "./mamba/config.js";
import { buildMambaSsm, mambaSsmLayer } from "./mamba-ssm/model.js";
import { buildMambaLM } from "./mamba/model.js";
import { buildHfMamba2 } from "./mamba2/model.js";
import { buildNemotronH, nemotronBlockKinds } from "./nemotron-h/model.js";
import { buildLlama } from "./llama/model.js";
import { buildHybrid } from "./hybrid/model.js";
import { parseHybridConfig } from "./hybrid/config.js";
import { isH3Config, parseH3Config } from "./h3/config.js";
import { buildH3LM } from "./h3/model.js";

/** A checkpoint layout Hippo can load: how to recognise its config, parse it and build the model. */
export interface ModelFamily {
  name: string;
  matches(config: ConfigReader): boolean;
  /** Validates the config alone, so its errors come before any weights file is opened. */
  check?(config: ConfigReader): void;
  load(config: ConfigReader, weights: WeightLoader): Promise<CausalLM>;
}

export const MODEL_FAMILIES: ModelFamily[] = [
  {
    name: "mamba (Hugging Face MambaForCausalLM)",
    matches: (c) => c.raw.model_type === "mamba",
    load: (c, w) => buildMambaLM(parseHfMambaConfig(c), w),
  },
  {
    name: "mamba2 (Hugging Face Mamba2ForCausalLM)",
    matches: (c) => c.raw.model_type === "mamba2",
    load: buildHfMamba2,
  },
  {
    name: "nemotron_h (NemotronHForCausalLM)",
    matches: (c) => c.raw.model_type === "nemotron_h",
    check: (c) => void nemotronBlockKinds(c),
    load: buildNemotronH,
  },
  {
    name: "hippo_hybrid (Hippo's layer-pattern hybrids)",
    matches: (c) => c.raw.model_type === "hippo_hybrid",
    check: (c) => void parseHybridConfig(c),
    load: buildHybrid,
  },
  {
    name: "llama (LlamaForCausalLM)",
    matches: (c) => c.raw.model_type === "llama",
    load: buildLlama,
  },
  {
    // Before mamba_ssm: H3 configs share its d_model / n_layer / ssm_cfg fields and have no model_type.
    name: "h3 (HazyResearch/H3 SSMLMHeadModel)",
    matches: isH3Config,
    load: (c, w) => buildH3LM(parseH3Config(c), w),
  },
  {
    name: "mamba_ssm MambaLMHeadModel (Mamba1, Mamba2, attention, MLP)",
    matches: (c) => mambaSsmLayer(c) === "Mamba1" || mambaSsmLayer(c) === "Mamba2",
    load: buildMambaSsm,
  },
];

export function findFamily(config: ConfigReader): ModelFamily {
  const family = MODEL_FAMILIES.find((f) => f.matches(config));
  if (family) return family;
  const supported = "supported: model_type mamba, mamba2, nemotron_h, llama, hippo_hybrid, h3, an H3 config (d_model, n_layer, d_inner, ssm_cfg.mode), or a mamba_ssm config (d_model, n_layer, ssm_cfg) with Mamba1/Mamba2 layers";
  const layer = mambaSsmLayer(config);
  if (layer) throw new HippoError(`${config.file}: mamba_ssm layer '${layer}' is not supported (${supported})`);
  if (config.has("model_type")) {
    throw new HippoError(`${config.file}: unknown model_type '${String(config.raw.model_type)}' (${supported})`);
  }
  throw new HippoError(`${config.file}: no model_type and no mamba_ssm fields (d_model, n_layer); cannot tell the architecture (${supported})`);
}
