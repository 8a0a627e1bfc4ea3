import { test } from "node:test";
import assert from "node:assert/strict";
import { HippoError } from "../../src/errors.js";
import {
  bf16ToF32, f16ToF32, f32ToBf16Bits, f32ToF16Bits, fromFloat32, fromInt, rawToUint16, toFloat32, toInt32Ids,
} from "../../src/io/convert.js";
import type { RawTensor } from "../../src/io/raw-tensor.js";

const fromBits = (b: number) => new Float32Array(new Uint32Array([b]).buffer)[0];
const raw = (dtype: RawTensor["dtype"], shape: number[], arr: ArrayBufferView): RawTensor =>
  ({ dtype, shape, bytes: new Uint8Array(arr.buffer, arr.byteOffset, arr.byteLength) });

test("f16 known bit patterns", () => {
  const cases: [number, number][] = [
    [1, 0x3c00], [-2.5, 0xc100], [65504, 0x7bff], [0, 0x0000], [-0, 0x8000], [0.5, 0x3800],
    [2 ** -24, 0x0001], [1023 * 2 ** -24, 0x03ff], [2 ** -14, 0x0400], [Infinity, 0x7c00], [-Infinity, 0xfc00],
  ];
  for (const [x, h] of cases) {
    assert.equal(f32ToF16Bits(x), h, `encode ${x}`);
    assert.ok(Object.is(f16ToF32(h), x), `decode 0x${h.toString(16)}`);
  }
  assert.equal(f32ToF16Bits(1 / 3), 0x3555);
  assert.equal(f16ToF32(0x3555), 0.333251953125);
  assert.equal(f32ToF16Bits(65519), 0x7bff); // below the midpoint to 65536
  assert.equal(f32ToF16Bits(65520), 0x7c00); // tie rounds to even -> inf
  assert.equal(f32ToF16Bits(1e6), 0x7c00);
  assert.equal(f32ToF16Bits(-1e6), 0xfc00);
  assert.equal(f32ToF16Bits(2 ** -25), 0x0000); // tie -> even (0)
  assert.equal(f32ToF16Bits(3 * 2 ** -25), 0x0002); // tie -> even (2)
  assert.equal(f32ToF16Bits(1.5 * 2 ** -25), 0x0001);
  assert.equal(f32ToF16Bits(1e-10), 0x0000);
  assert.equal(f32ToF16Bits(-1e-10), 0x8000);
  const nan = f32ToF16Bits(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  assert.ok(Number.isNaN(f16ToF32(0xfc01)));
  // A NaN whose payload sits only in the low f32 bits must stay NaN.
  assert.ok(Number.isNaN(f16ToF32(f32ToF16Bits(fromBits(0x7f800001)))));
});

test("f16: every finite value round-trips, every midpoint rounds to even", () => {
  for (let h = 0; h < 0x10000; h++) {
    if ((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0) continue;
    assert.equal(f32ToF16Bits(f16ToF32(h)), h);
  }
  for (let h = 0; h < 0x7bff; h++) {
    const mid = (f16ToF32(h) + f16ToF32(h + 1)) / 2; // exact in f32
    assert.equal(Math.fround(mid), mid);
    assert.equal(f32ToF16Bits(mid), h & 1 ? h + 1 : h, `midpoint after 0x${h.toString(16)}`);
    assert.equal(f32ToF16Bits(-mid), 0x8000 | (h & 1 ? h + 1 : h));
    const below = fromBits(new Uint32Array(new Float32Array([mid]).buffer)[0] - 1);
    const above = fromBits(new Uint32Array(new Float32Array([mid]).buffer)[0] + 1);
    assert.equal(f32ToF16Bits(below), h);
    assert.equal(f32ToF16Bits(above), h + 1);
  }
});

test("bf16 known bit patterns and rounding", () => {
  const cases: [number, number][] = [[1, 0x3f80], [-2.5, 0xc020], [0, 0], [-0, 0x8000], [Infinity, 0x7f80], [-Infinity, 0xff80]];
  for (const [x, b] of cases) {
    assert.equal(f32ToBf16Bits(x), b);
    assert.ok(Object.is(bf16ToF32(b), x));
  }
  assert.equal(f32ToBf16Bits(1 / 3), 0x3eab);
  assert.equal(f32ToBf16Bits(65504), 0x4780);
  assert.equal(f32ToBf16Bits(fromBits(0x7f7fffff)), 0x7f80); // f32 max rounds to inf
  assert.equal(f32ToBf16Bits(fromBits(0x00000001)), 0x0000); // subnormals
  assert.equal(f32ToBf16Bits(fromBits(0x00008000)), 0x0000);
  assert.equal(f32ToBf16Bits(fromBits(0x00018000)), 0x0002);
  assert.equal(f32ToBf16Bits(fromBits(0x00010001)), 0x0001);
  assert.equal(bf16ToF32(0x0001), 2 ** -133);
  assert.equal(f32ToBf16Bits(NaN) & 0x7fc0, 0x7fc0);
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16Bits(fromBits(0x7f800001)))));
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16Bits(fromBits(0xff800001)))));
  for (let b = 0; b < 0x10000; b++) {
    if ((b & 0x7f80) === 0x7f80) continue;
    assert.equal(f32ToBf16Bits(bf16ToF32(b)), b);
    if ((b & 0x7fff) === 0x7f7f) continue;
    const mid = fromBits(((b << 16) | 0x8000) >>> 0);
    const up = b + 1;
    assert.equal(f32ToBf16Bits(mid), b & 1 ? up : b);
  }
});

test("toFloat32 from every dtype", () => {
  const want = [1, -2, 3, 0];
  assert.deepEqual([...toFloat32(raw("F32", [4], new Float32Array(want)), "t")], want);
  assert.deepEqual([...toFloat32(raw("F64", [2, 2], new Float64Array([1, -2, 3, 0.1])), "t")], [1, -2, 3, Math.fround(0.1)]);
  assert.deepEqual([...toFloat32(raw("F16", [4], new Uint16Array(want.map(f32ToF16Bits))), "t")], want);
  assert.deepEqual([...toFloat32(raw("BF16", [4], new Uint16Array(want.map(f32ToBf16Bits))), "t")], want);
  assert.deepEqual([...toFloat32(raw("I64", [4], BigInt64Array.from(want.map(BigInt))), "t")], want);
  assert.deepEqual([...toFloat32(raw("I32", [4], new Int32Array(want)), "t")], want);
  assert.deepEqual([...toFloat32(raw("I16", [4], new Int16Array(want)), "t")], want);
  assert.deepEqual([...toFloat32(raw("I8", [4], new Int8Array(want)), "t")], want);
  assert.deepEqual([...toFloat32(raw("U8", [4], new Uint8Array([1, 2, 255, 0])), "t")], [1, 2, 255, 0]);
  assert.deepEqual([...toFloat32(raw("BOOL", [2], new Uint8Array([1, 0])), "t")], [1, 0]);
  assert.equal(toFloat32(raw("F32", [0, 3], new Float32Array(0)), "t").length, 0);
  assert.deepEqual([...toFloat32(raw("F32", [], new Float32Array([7])), "t")], [7]);
});

test("toFloat32 handles unaligned bytes and copies", () => {
  const buf = new Uint8Array(4 * 3 + 1);
  buf.set(new Uint8Array(new Float32Array([1.5, -2, 3]).buffer), 1);
  const r: RawTensor = { dtype: "F32", shape: [3], bytes: buf.subarray(1) };
  const out = toFloat32(r, "t");
  assert.deepEqual([...out], [1.5, -2, 3]);
  out[0] = 9;
  assert.deepEqual([...toFloat32(r, "t")], [1.5, -2, 3]);
  const h = new Uint8Array(5);
  h.set(new Uint8Array(new Uint16Array([0x3c00, 0xc100]).buffer), 1);
  assert.deepEqual([...toFloat32({ dtype: "F16", shape: [2], bytes: h.subarray(1) }, "t")], [1, -2.5]);
  assert.deepEqual([...rawToUint16({ dtype: "F16", shape: [2], bytes: h.subarray(1) })], [0x3c00, 0xc100]);
});

test("toFloat32 of bytes inside a Node Buffer (whose slice() is a view of the whole buffer) copies only them", () => {
  const file = Buffer.alloc(4 * 5);
  new Float32Array(file.buffer, file.byteOffset, 5).set([7, 1.5, -2, 3, 8]);
  const out = toFloat32({ dtype: "F32", shape: [3], bytes: file.subarray(4, 16) }, "t");
  assert.deepEqual([...out], [1.5, -2, 3]);
  assert.equal(out.buffer.byteLength, 12);
});

test("toFloat32 rejects a byte count that does not match the shape", () => {
  assert.throws(() => toFloat32(raw("F32", [2, 3], new Float32Array(5)), "w.bin: x"),
    (e: unknown) => e instanceof HippoError && /w\.bin: x: shape \[2, 3\] F32 needs 24 bytes, got 20/.test(e.message));
});

test("toInt32Ids", () => {
  assert.deepEqual([...toInt32Ids(raw("I64", [3], new BigInt64Array([0n, 511n, -1n])), "ids")], [0, 511, -1]);
  assert.deepEqual([...toInt32Ids(raw("I32", [2], new Int32Array([5, 6])), "ids")], [5, 6]);
  assert.deepEqual([...toInt32Ids(raw("I16", [1], new Int16Array([-7])), "ids")], [-7]);
  assert.deepEqual([...toInt32Ids(raw("I8", [1], new Int8Array([-7])), "ids")], [-7]);
  assert.deepEqual([...toInt32Ids(raw("U8", [1], new Uint8Array([200])), "ids")], [200]);
  assert.deepEqual([...toInt32Ids(raw("I64", [2], new BigInt64Array([2147483647n, -2147483648n])), "ids")], [2147483647, -2147483648]);
  assert.throws(() => toInt32Ids(raw("I64", [2], new BigInt64Array([1n, 2147483648n])), "io.safetensors: input_ids"),
    (e: unknown) => e instanceof HippoError && /io\.safetensors: input_ids: value 2147483648 at flat index 1 is outside the int32 range/.test(e.message));
  assert.throws(() => toInt32Ids(raw("F32", [1], new Float32Array(1)), "ids"),
    (e: unknown) => e instanceof HippoError && /ids: expected an integer dtype .* got F32/.test(e.message));
});

test("rawToUint16 only for F16/BF16", () => {
  assert.deepEqual([...rawToUint16(raw("BF16", [1], new Uint16Array([0x3f80])))], [0x3f80]);
  assert.throws(() => rawToUint16(raw("F32", [1], new Float32Array(1))), HippoError);
});

test("fromFloat32 and fromInt", () => {
  const data = new Float32Array([1, -2.5, 1 / 3, 65504]);
  const f32 = fromFloat32(data, [2, 2], "F32");
  assert.deepEqual(f32.shape, [2, 2]);
  assert.deepEqual([...toFloat32(f32, "t")], [...data]);
  assert.deepEqual([...rawToUint16(fromFloat32(data, [4], "F16"))], [0x3c00, 0xc100, 0x3555, 0x7bff]);
  assert.deepEqual([...rawToUint16(fromFloat32(data, [4], "BF16"))], [0x3f80, 0xc020, 0x3eab, 0x4780]);
  assert.throws(() => fromFloat32(data, [3], "F32"), HippoError);
  const i64 = fromInt([1, -2, 2 ** 40], [3], "I64");
  assert.equal(i64.bytes.byteLength, 24);
  assert.deepEqual([...new BigInt64Array(i64.bytes.slice().buffer)], [1n, -2n, 2n ** 40n]);
  assert.deepEqual([...toInt32Ids(fromInt([3, 4], [1, 2], "I32"), "t")], [3, 4]);
  assert.throws(() => fromInt([2 ** 31], [1], "I32"), HippoError);
  assert.throws(() => fromInt([1.5], [1], "I64"), HippoError);
  assert.deepEqual(fromInt([], [0], "I64").bytes.byteLength, 0);
});
