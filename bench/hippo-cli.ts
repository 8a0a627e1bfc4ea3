// The `hippo` CLI as one entry point, for bundling onto the GPU machine (which has no node_modules):
//   bash ../shared/device/pack.sh bench/hippo-cli.ts
//   source .devkit/setup.sh && node .devkit/hippo-cli.mjs bench --backend webgpu --out $OUT/bench
import { main } from "../src/cli/main.js";

main(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
