import { check, shapeString } from "../errors.js";
import type { AttentionArgs, RopeArgs } from "../backends/backend.js";
import type { Tensor } from "../tensor/tensor.js";
import { backendOf } from "./validate.js";

/** Causal scaled dot-product attention with grouped-query heads; queries may start past position 0 (KV cache). */
export function causalAttention(args: AttentionArgs): Tensor {
  const { q, k, v, queryStart } = args;
  const b = backendOf("causalAttention", q, k, v, queryStart);
  check(q.rank === 4 && k.rank === 4 && v.rank === 4, `causalAttention: q, k, v must be [batch, length, heads, dim]`);
  const [B, , Hq, D] = q.shape;
  const [Bk, T, Hkv, Dk] = k.shape;
  check(Bk === B && Dk === D, `causalAttention: keys ${shapeString(k.shape)} do not match queries ${shapeString(q.shape)}`);
  check(v.shape[0] === B && v.shape[1] === T && v.shape[2] === Hkv, `causalAttention: values ${shapeString(v.shape)} do not match keys ${shapeString(k.shape)}`);
  check(Hq % Hkv === 0, `causalAttention: ${Hq} query heads are not a multiple of ${Hkv} key/value heads`);
  check(queryStart.dtype === "i32" && queryStart.rank === 1 && queryStart.shape[0] === B, "causalAttention: queryStart must be i32 [batch]");
  return b.causalAttention(args);
}

/** Rotary position embedding over [B, L, H, D] (the first rotaryDim dims). */
export function rope(args: RopeArgs): Tensor {
  const b = backendOf("rope", args.x, args.start);
  check(args.x.rank === 4, `rope: x must be [batch, length, heads, dim], got ${shapeString(args.x.shape)}`);
  const D = args.x.shape[3];
  check(args.rotaryDim > 0 && args.rotaryDim % 2 === 0 && args.rotaryDim <= D, `rope: rotary dim ${args.rotaryDim} must be even and at most the head dim ${D}`);
  check(args.start.dtype === "i32" && args.start.shape[0] === args.x.shape[0], "rope: start must be i32 [batch]");
  return b.rope(args);
}
