import { fileURLToPath } from "node:url";

/** The tiny model that ships with the package (models/hippo-demo), used when --model is not given. */
export const DEFAULT_MODEL_DIR = fileURLToPath(new URL("../../../models/hippo-demo", import.meta.url));
