/**
 * Checks of the arguments that the handle classes pass to the library, so that no caller (plain JavaScript or an
 * `as any` cast included) can make the library read or write outside a buffer: a buffer must be the typed array the
 * C signature names (the library reads `len` elements of 4 bytes from a `float*`), attached, and not shared; an
 * integer must fit the C type. A wrong type is a TypeError and a value out of range a RangeError, naming the
 * function, the parameter and what it got.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { f32Arg } from "./args.ts";
 * assert.throws(() => f32Arg(new Uint8Array(4), "x", "NativeMlp.forward"), /x must be a Float32Array, got a Uint8Array/);
 * ```
 *
 * @module
 */

function describe(v: unknown): string {
  if (v === null) return "null";
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (Array.isArray(v)) return "an Array";
  if (typeof v === "object") return `an object (${(v as object).constructor?.name ?? "no prototype"})`;
  return `${typeof v} ${String(v)}`;
}

function checkView(v: ArrayBufferView, param: string, fn: string): void {
  const buf = v.buffer as ArrayBuffer & { detached?: boolean };
  if (typeof SharedArrayBuffer !== "undefined" && buf instanceof SharedArrayBuffer) {
    throw new TypeError(`${fn}: ${param} must not be backed by a SharedArrayBuffer (the library writes without locks)`);
  }
  if (buf.detached === true) throw new TypeError(`${fn}: ${param} is backed by a detached ArrayBuffer`);
}

/**
 * `v` as a Float32Array (the library reads or writes `v.length` floats at `v.byteOffset`); with `length`, it must
 * have exactly that many elements.
 *
 * @param v The argument.
 * @param param Its name, for messages.
 * @param fn The function, for messages.
 * @param length The required element count, if any.
 * @returns `v`, typed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { f32Arg } from "./args.ts";
 * const x = new Float32Array(8).subarray(2, 6); // views with an offset are fine
 * assert.equal(f32Arg(x, "x", "f", 4), x);
 * assert.throws(() => f32Arg(x, "x", "f", 5), /x has 4 values, expected 5/);
 * ```
 */
export function f32Arg(v: unknown, param: string, fn: string, length?: number): Float32Array<ArrayBuffer> {
  if (!(v instanceof Float32Array)) throw new TypeError(`${fn}: ${param} must be a Float32Array, got ${describe(v)}`);
  checkView(v, param, fn);
  if (length !== undefined && v.length !== length) {
    throw new RangeError(`${fn}: ${param} has ${v.length} values, expected ${length}`);
  }
  return v as Float32Array<ArrayBuffer>;
}

/**
 * `v` as a Uint8Array (bytes).
 *
 * @param v The argument.
 * @param param Its name, for messages.
 * @param fn The function, for messages.
 * @returns `v`, typed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { u8Arg } from "./args.ts";
 * assert.throws(() => u8Arg([1, 2], "pixels", "NativeGan.setData"), /pixels must be a Uint8Array, got an Array/);
 * ```
 */
export function u8Arg(v: unknown, param: string, fn: string): Uint8Array<ArrayBuffer> {
  if (!(v instanceof Uint8Array)) throw new TypeError(`${fn}: ${param} must be a Uint8Array, got ${describe(v)}`);
  checkView(v, param, fn);
  return v as Uint8Array<ArrayBuffer>;
}

/**
 * `v` as a Uint32Array (for a `uint32_t*`).
 *
 * @param v The argument.
 * @param param Its name, for messages.
 * @param fn The function, for messages.
 * @returns `v`, typed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { u32ArrayArg } from "./args.ts";
 * assert.throws(() => u32ArrayArg(new Int32Array(2), "labels", "f"), /labels must be a Uint32Array, got a Int32Array/);
 * ```
 */
export function u32ArrayArg(v: unknown, param: string, fn: string): Uint32Array<ArrayBuffer> {
  if (!(v instanceof Uint32Array)) throw new TypeError(`${fn}: ${param} must be a Uint32Array, got ${describe(v)}`);
  checkView(v, param, fn);
  return v as Uint32Array<ArrayBuffer>;
}

/**
 * `v` as an integer in `[min, max]` (default the range of a C `uint32_t`).
 *
 * @param v The argument.
 * @param param Its name, for messages.
 * @param fn The function, for messages.
 * @param min The smallest value accepted (default 0).
 * @param max The largest value accepted (default 2^32 - 1).
 * @returns `v`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { intArg } from "./args.ts";
 * assert.equal(intArg(3, "rows", "f"), 3);
 * assert.throws(() => intArg(1e12, "n", "NativeGan.step"), /n must be an integer in \[0, 4294967295\], got 1000000000000/);
 * ```
 */
export function intArg(v: unknown, param: string, fn: string, min = 0, max = 2 ** 32 - 1): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    const got = typeof v === "number" ? String(v) : describe(v);
    throw new RangeError(`${fn}: ${param} must be an integer in [${min}, ${max}], got ${got}`);
  }
  return v;
}

/** The largest integer a JavaScript number holds exactly, the bound of every u64 argument. */
const SAFE = Number.MAX_SAFE_INTEGER;

/**
 * `v` as a non-negative safe integer, as a BigInt for a C `uint64_t`.
 *
 * @param v The argument.
 * @param param Its name, for messages.
 * @param fn The function, for messages.
 * @returns `BigInt(v)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { u64Arg } from "./args.ts";
 * assert.equal(u64Arg(7, "seed", "f"), 7n);
 * assert.throws(() => u64Arg(-1, "seed", "f"), /seed must be an integer in \[0, 9007199254740991\], got -1/);
 * ```
 */
export function u64Arg(v: unknown, param: string, fn: string): bigint {
  return BigInt(intArg(v, param, fn, 0, SAFE));
}
