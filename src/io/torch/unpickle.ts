import { HippoError } from "../../errors.js";

/**
 * A minimal pickle VM that never executes anything: globals resolve only through a caller
 * allow-list, and "calling" one (REDUCE/NEWOBJ) runs the caller's own JS function.
 *
 * Values: None → null, bool, int → number (bigint beyond 2^53), float → number, str → string,
 * bytes → Uint8Array, list → array, tuple → frozen array, dict → Map, set → Set.
 */
export interface UnpickleOptions {
  /** Named in every error message (the checkpoint path). */
  name: string;
  /** "module.name" → a function (callable from the pickle) or any marker value. */
  globals: ReadonlyMap<string, unknown>;
  /** Receives BINPERSID ids; without it persistent ids are an error. */
  persistentLoad?: (pid: unknown) => unknown;
  /** Ends the refusal message, e.g. "only tensor rebuilding is allowed". */
  allowedWhat?: string;
}

const MARK = Symbol("mark");

export function unpickle(data: Uint8Array, opts: UnpickleOptions): unknown {
  const file = opts.name;
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const utf8 = new TextDecoder();
  const memo = new Map<number, unknown>();
  let stack: unknown[] = [];
  const marks: unknown[][] = [];
  let p = 0;
  let op = 0;
  let opAt = 0;

  const fail = (msg: string): HippoError => new HippoError(`${file}: ${msg}`);
  const need = (n: number): number => {
    if (n < 0 || p + n > data.length) {
      throw fail(`pickle data ends unexpectedly at offset ${data.length} (opcode 0x${hex(op)} at offset ${opAt} wants ${n} more bytes; truncated file?)`);
    }
    const at = p;
    p += n;
    return at;
  };
  const u8 = () => data[need(1)];
  const u16 = () => dv.getUint16(need(2), true);
  const u32 = () => dv.getUint32(need(4), true);
  const u64 = () => {
    const v = dv.getBigUint64(need(8), true);
    if (v > BigInt(data.length)) throw fail(`pickle length ${v} at offset ${opAt} exceeds the data`);
    return Number(v);
  };
  const bytes = (n: number) => data.subarray(need(n), p);
  const text = (n: number) => utf8.decode(bytes(n));
  // A function, not stack.push: popMark() in the argument swaps `stack` before the push.
  const push = (v: unknown): void => {
    stack.push(v);
  };
  const pop = (): unknown => {
    if (stack.length === 0) throw fail(`pickle stack underflow at offset ${opAt} (opcode 0x${hex(op)})`);
    return stack.pop();
  };
  const top = (): unknown => {
    if (stack.length === 0) throw fail(`pickle stack underflow at offset ${opAt} (opcode 0x${hex(op)})`);
    return stack[stack.length - 1];
  };
  const popMark = (): unknown[] => {
    const items = stack;
    const prev = marks.pop();
    if (!prev) throw fail(`pickle has no MARK for opcode 0x${hex(op)} at offset ${opAt}`);
    stack = prev;
    return items;
  };
  const str = (v: unknown, what: string): string => {
    if (typeof v !== "string") throw fail(`pickle ${what} at offset ${opAt} is not a string`);
    return v;
  };
  const resolve = (module: string, name: string): unknown => {
    const key = `${module}.${name}`;
    if (!opts.globals.has(key)) {
      throw fail(`pickle asks for global '${key}'; ${opts.allowedWhat ?? "only tensor rebuilding is allowed"}`);
    }
    return opts.globals.get(key);
  };
  const call = (fn: unknown, args: unknown): unknown => {
    if (typeof fn !== "function") throw fail(`pickle calls a non-callable value at offset ${opAt}`);
    if (!Array.isArray(args)) throw fail(`pickle call arguments at offset ${opAt} are not a tuple`);
    return (fn as (...a: unknown[]) => unknown)(...args);
  };
  const asList = (v: unknown): unknown[] => {
    if (!Array.isArray(v) || Object.isFrozen(v)) throw fail(`pickle appends to a non-list at offset ${opAt}`);
    return v;
  };
  const asDict = (v: unknown): Map<unknown, unknown> => {
    if (!(v instanceof Map)) throw fail(`pickle sets an item on a non-dict at offset ${opAt}`);
    return v;
  };
  const setItems = (d: Map<unknown, unknown>, kv: unknown[]): void => {
    if (kv.length % 2) throw fail(`pickle has an odd number of dict items at offset ${opAt}`);
    for (let i = 0; i < kv.length; i += 2) d.set(kv[i], kv[i + 1]);
  };
  const memoGet = (i: number): unknown => {
    if (!memo.has(i)) throw fail(`pickle refers to memo slot ${i} that was never set (offset ${opAt})`);
    return memo.get(i);
  };
  const tuple = (items: unknown[]): unknown[] => Object.freeze(items) as unknown[];

  for (;;) {
    opAt = p;
    if (p >= data.length) throw fail(`pickle data ends at offset ${p} without a STOP opcode (truncated file?)`);
    op = data[p++];
    switch (op) {
      case 0x80: { // PROTO
        const v = u8();
        if (v > 5) throw fail(`unsupported pickle protocol ${v}`);
        break;
      }
      case 0x95: u64(); break; // FRAME: framing is only a buffering hint
      case 0x2e: { // STOP
        const v = pop();
        return v;
      }
      case 0x28: marks.push(stack); stack = []; break; // MARK
      case 0x30: pop(); break; // POP
      case 0x31: popMark(); break; // POP_MARK
      case 0x32: push(top()); break; // DUP
      case 0x71: memo.set(u8(), top()); break; // BINPUT
      case 0x72: memo.set(u32(), top()); break; // LONG_BINPUT
      case 0x94: memo.set(memo.size, top()); break; // MEMOIZE
      case 0x68: push(memoGet(u8())); break; // BINGET
      case 0x6a: push(memoGet(u32())); break; // LONG_BINGET
      case 0x7d: push(new Map()); break; // EMPTY_DICT
      case 0x5d: push([]); break; // EMPTY_LIST
      case 0x29: push(tuple([])); break; // EMPTY_TUPLE
      case 0x8f: push(new Set()); break; // EMPTY_SET
      case 0x74: push(tuple(popMark())); break; // TUPLE
      case 0x85: push(tuple([pop()])); break; // TUPLE1
      case 0x86: { const b = pop(); const a = pop(); push(tuple([a, b])); break; } // TUPLE2
      case 0x87: { const c = pop(); const b = pop(); const a = pop(); push(tuple([a, b, c])); break; } // TUPLE3
      case 0x6c: push(popMark()); break; // LIST
      case 0x64: { const d = new Map(); setItems(d, popMark()); push(d); break; } // DICT
      case 0x61: { const v = pop(); asList(top()).push(v); break; } // APPEND
      case 0x65: { const items = popMark(); const l = asList(top()); for (const v of items) l.push(v); break; } // APPENDS
      case 0x73: { const v = pop(); const k = pop(); asDict(top()).set(k, v); break; } // SETITEM
      case 0x75: { const kv = popMark(); setItems(asDict(top()), kv); break; } // SETITEMS
      case 0x90: { // ADDITEMS
        const items = popMark();
        const s = top();
        if (!(s instanceof Set)) throw fail(`pickle adds items to a non-set at offset ${opAt}`);
        for (const v of items) s.add(v);
        break;
      }
      case 0x4a: push(dv.getInt32(need(4), true)); break; // BININT
      case 0x4b: push(u8()); break; // BININT1
      case 0x4d: push(u16()); break; // BININT2
      case 0x8a: push(long(bytes(u8()))); break; // LONG1
      case 0x47: push(dv.getFloat64(need(8), false)); break; // BINFLOAT (big-endian)
      case 0x4e: push(null); break; // NONE
      case 0x88: push(true); break; // NEWTRUE
      case 0x89: push(false); break; // NEWFALSE
      case 0x58: push(text(u32())); break; // BINUNICODE
      case 0x8c: push(text(u8())); break; // SHORT_BINUNICODE
      case 0x8d: push(text(u64())); break; // BINUNICODE8
      case 0x54: push(text(dv.getInt32(need(4), true))); break; // BINSTRING (py2 str)
      case 0x55: push(text(u8())); break; // SHORT_BINSTRING
      case 0x42: push(bytes(u32())); break; // BINBYTES
      case 0x43: push(bytes(u8())); break; // SHORT_BINBYTES
      case 0x8e: push(bytes(u64())); break; // BINBYTES8
      case 0x63: { // GLOBAL: "module\nname\n"
        const module = line();
        const name = line();
        push(resolve(module, name));
        break;
      }
      case 0x93: { // STACK_GLOBAL
        const name = str(pop(), "global name");
        const module = str(pop(), "global module");
        push(resolve(module, name));
        break;
      }
      case 0x52: { const args = pop(); const fn = pop(); push(call(fn, args)); break; } // REDUCE
      case 0x81: { const args = pop(); const cls = pop(); push(call(cls, args)); break; } // NEWOBJ
      case 0x62: { // BUILD
        pop(); // state
        // Only dicts get state in checkpoints (OrderedDict._metadata); it carries nothing we need.
        if (!(top() instanceof Map)) throw fail(`pickle BUILD at offset ${opAt} targets an unsupported object`);
        break;
      }
      case 0x51: { // BINPERSID
        const pid = pop();
        if (!opts.persistentLoad) throw fail(`pickle has a persistent id at offset ${opAt} but none are expected`);
        push(opts.persistentLoad(pid));
        break;
      }
      default:
        throw fail(`unsupported pickle opcode 0x${hex(op)} ('${printable(op)}') at offset ${opAt}`);
    }
  }

  function line(): string {
    const end = data.indexOf(0x0a, p);
    if (end < 0) throw fail(`pickle data ends unexpectedly inside GLOBAL at offset ${opAt} (truncated file?)`);
    const s = utf8.decode(data.subarray(p, end));
    p = end + 1;
    return s;
  }
}

function long(b: Uint8Array): number | bigint {
  if (b.length === 0) return 0;
  let v = 0n;
  for (let i = b.length - 1; i >= 0; i--) v = (v << 8n) | BigInt(b[i]);
  if (b[b.length - 1] & 0x80) v -= 1n << BigInt(8 * b.length);
  return v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(v) : v;
}

function hex(b: number): string {
  return b.toString(16).padStart(2, "0");
}

function printable(b: number): string {
  return b >= 0x20 && b < 0x7f ? String.fromCharCode(b) : "\\x" + hex(b);
}
