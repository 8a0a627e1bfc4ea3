// Node entry of a kernel helper thread (worker_threads): instantiate the kernels on the shared memory
// and run the fork-join loop until told to exit.
import { workerData } from "node:worker_threads";
import { helperLoop, type HelperData } from "./pool-protocol.js";
import { instantiate } from "./runtime.js";

const data = workerData as HelperData;
const instance = instantiate(data.module, data.memory);
helperLoop(new Int32Array(data.ctl), new Float64Array(data.args), instance.exports, data.index);
