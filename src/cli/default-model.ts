import { fileURLToPath } from "node:url";

/**
 * The model that ships with the package, used when --model is not given: models/hippo-kjv, a byte-level
 * Mamba (d_model 128, 4 layers, 0.5M parameters) trained by `hippo train` on the King James Bible
 * (data/kjv.txt.gz; scripts/train-kjv.sh has the command).
 */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL("../../../models/hippo-kjv", import.meta.url));
