import { check, shapeString } from "../../errors.js";

/** A trainable parameter: `name` is its checkpoint key (e.g. `backbone.layers.0.mixer.A_log`). */
export interface Param {
  name: string;
  shape: number[];
  value: Float32Array;
}

/** Gradients by parameter name, each the same length as the parameter's value. */
export type Grads = Map<string, Float32Array>;

/** A set of parameters sharing a learning rate and a weight decay (torch's param_groups). */
export interface ParamGroup {
  /** A label for logs ("decay", "no_decay", "ssm", …). */
  name: string;
  params: Param[];
  /** Base learning rate; a schedule multiplies it (torch LambdaLR semantics). */
  lr: number;
  weightDecay: number;
}

/** Checks that `value` holds exactly the elements `shape` says. */
export function checkParam(p: Param): void {
  const n = p.shape.reduce((a, b) => a * b, 1);
  check(p.shape.every((d) => Number.isInteger(d) && d >= 0), `parameter '${p.name}' has a bad shape ${shapeString(p.shape)}`);
  check(p.value.length === n,
    `parameter '${p.name}' has shape ${shapeString(p.shape)} (${n} elements) but its value has ${p.value.length}`);
}
