export { AdamW, type AdamWOptions, type OptimizerState } from "./adamw.js";
export { defaultParamGroups, paramRole, type GroupingOptions, type ParamRole } from "./groups.js";
export { assertFiniteGrads, clipGradNorm, findNonFinite, GradAccumulator, gradNorm, type NonFinite } from "./grads.js";
export { checkParam, type Grads, type Param, type ParamGroup } from "./params.js";
export { warmupCosine, type WarmupCosineOptions } from "./schedule.js";
