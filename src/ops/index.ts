/** The op entry points: every model computes only through these; each dispatches to the tensors' backend. */
export * from "./create.js";
export * from "./elementwise.js";
export * from "./nn.js";
export * from "./shape.js";
export * from "./ssm.js";
export * from "./attention.js";
export * from "./fftconv.js";
export { tidy, keep } from "../tensor/scope.js";
