/**
 * The safetensors checkpoint format (https://github.com/huggingface/safetensors): an 8-byte little-endian header
 * length N, N bytes of JSON (`{"__metadata__": {...}, "<name>": {"dtype", "shape", "data_offsets": [begin, end]}}`,
 * padded with spaces to a multiple of 8 bytes), then the tensors' little-endian data, contiguous, with offsets
 * relative to the end of the header.
 *
 * The reader is strict, as the reference Rust implementation: it refuses a header larger than the file or than
 * 100 MB, a header that is not a JSON object, unknown dtypes, shapes whose size disagrees with their offsets,
 * offsets out of range, overlapping tensors, and gaps (the tensors must cover the data exactly). It is stricter in
 * two ways: a name that appears twice in the header (JSON.parse would keep the last silently) is refused, and so is
 * a header with more than {@linkcode MAX_HEADER_ENTRIES} entries or {@linkcode MAX_HEADER_VALUES} values, counted
 * by a scan of the bytes before any JSON is parsed. Files are read with {@linkcode RegularFile}: anything but a
 * regular file is refused without blocking, and so is a file above a size limit ({@linkcode MAX_FILE_BYTES} unless
 * the caller knows better).
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = writeSafetensors([
 *   { name: "model.0.weight", dtype: "F32", shape: [2, 3], data: new Float32Array([1, 2, 3, 4, 5, 6]) },
 *   { name: "step", dtype: "I64", shape: [], data: new BigInt64Array([400n]) },
 * ], { format: "pt" });
 * const t = readSafetensors(bytes, "g.safetensors");
 * assert.deepEqual(t.get("model.0.weight")!.shape, [2, 3]);
 * assert.equal(t.get("step")!.data[0], 400n);
 * ```
 *
 * @module
 */

import { writeFileAtomic } from "./atomic.ts";
import { RegularFile } from "./regular_file.ts";

/** The dtypes this project reads and writes. */
export type Dtype = "F32" | "F64" | "I64" | "U8" | "F16";

/** The typed array of each dtype. */
export interface DtypeArray {
  /** float32 */
  F32: Float32Array;
  /** float64 */
  F64: Float64Array;
  /** int64 */
  I64: BigInt64Array;
  /** uint8 */
  U8: Uint8Array;
  /** float16, as its bits (the exported page's optional half-precision weights) */
  F16: Uint16Array;
}

/** Any of the typed arrays a tensor can hold. */
export type TensorData = DtypeArray[Dtype];

/** A named tensor to write. */
export interface TensorEntry {
  /** The tensor's name, e.g. `model.0.weight`. */
  name: string;
  /** Its element type. */
  dtype: Dtype;
  /** Its shape; `[]` for a scalar. */
  shape: number[];
  /** Its elements, row-major; the array type must match `dtype`. */
  data: TensorData;
}

/** A tensor read from a file (its data is a copy, aligned and owned by the caller). */
export interface Tensor {
  /** Its element type. */
  dtype: Dtype;
  /** Its shape. */
  shape: number[];
  /** Its elements, row-major. */
  data: TensorData;
}

/** The tensors of a file by name (in file order), with the file's `__metadata__` (`{}` when absent) as `metadata`. */
export type TensorMap = Map<string, Tensor> & { metadata?: Record<string, string> };

/**
 * The header key of the free-form string metadata.
 *
 * @example
 * ```ts
 * import { METADATA } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(METADATA, "__metadata__");
 * ```
 */
export const METADATA = "__metadata__";

/**
 * The largest header the reader accepts (100 MB, as the reference implementation).
 *
 * @example
 * ```ts
 * import { MAX_HEADER_BYTES } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_HEADER_BYTES, 100_000_000);
 * ```
 */
export const MAX_HEADER_BYTES = 100_000_000;

/**
 * The most entries (tensors, plus `__metadata__`) a header may have: 65,536. The seed's full checkpoint has 89; a
 * large language model's shard has a few thousand. Counted before the header is parsed, so a header of millions of
 * empty tensors costs a scan of its bytes, not millions of objects.
 *
 * @example
 * ```ts
 * import { MAX_HEADER_ENTRIES } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_HEADER_ENTRIES, 65536);
 * ```
 */
export const MAX_HEADER_ENTRIES = 65_536;

/**
 * The most JSON values (numbers, strings, arrays, objects, at any depth below the header's object) a header may
 * hold: 16 per allowed entry. A tensor's entry of rank r holds 6 + r (its object, dtype, shape and its r
 * dimensions, offsets and their 2 numbers); this bounds one entry with a shape of millions of dimensions as well.
 *
 * @example
 * ```ts
 * import { MAX_HEADER_ENTRIES, MAX_HEADER_VALUES } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_HEADER_VALUES, 16 * MAX_HEADER_ENTRIES);
 * ```
 */
export const MAX_HEADER_VALUES = 16 * MAX_HEADER_ENTRIES;

/**
 * The default size limit of {@linkcode readSafetensorsFile}: 4 GiB (a billion float32 values; the seed's full
 * checkpoint is 24 MB). Callers that know the model pass a tighter one.
 *
 * @example
 * ```ts
 * import { MAX_FILE_BYTES } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_FILE_BYTES, 4 * 2 ** 30);
 * ```
 */
export const MAX_FILE_BYTES = 4 * 2 ** 30;

const DTYPES: Record<Dtype, { size: number; array: new (n: number) => TensorData; rank: number }> = {
  // rank: the order of the reference writer, which stores larger-alignment dtypes first (I64 > F64 > F32 > F16 > U8)
  I64: { size: 8, array: BigInt64Array, rank: 4 },
  F64: { size: 8, array: Float64Array, rank: 3 },
  F32: { size: 4, array: Float32Array, rank: 2 },
  F16: { size: 2, array: Uint16Array, rank: 1 },
  U8: { size: 1, array: Uint8Array, rank: 0 },
};

if (new Uint8Array(new Uint16Array([1]).buffer)[0] !== 1) {
  throw new Error("safetensors.ts assumes a little-endian platform");
}

function isDtype(s: unknown): s is Dtype {
  return typeof s === "string" && Object.hasOwn(DTYPES, s);
}

function fmtShape(shape: readonly number[]): string {
  return `[${shape.join(", ")}]`;
}

function product(shape: readonly number[]): number {
  return shape.reduce((a, b) => a * b, 1);
}

/**
 * Serializes tensors (and optional string metadata) to the safetensors format, byte for byte as the reference
 * writer (the `safetensors` Python/Rust package): tensors stored by dtype (I64, F64, F32, F16, then U8, so every
 * tensor's data is aligned to its element size) and by name within a dtype, metadata keys sorted, the header
 * compact JSON padded with spaces to a multiple of 8 bytes.
 *
 * @param tensors The tensors; names must be unique and not `__metadata__`.
 * @param metadata Optional string-to-string metadata.
 * @returns The file's bytes.
 *
 * @example
 * ```ts
 * import { writeSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = writeSafetensors([{ name: "b", dtype: "U8", shape: [2], data: new Uint8Array([7, 9]) }]);
 * const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
 * assert.equal((8 + n) % 8, 0);
 * assert.deepEqual([...bytes.subarray(8 + n)], [7, 9]);
 * ```
 */
export function writeSafetensors(tensors: TensorEntry[], metadata?: Record<string, string>): Uint8Array<ArrayBuffer> {
  const fail = (what: string): never => {
    throw new Error(`Cannot write safetensors: ${what}`);
  };
  const names = new Set<string>();
  for (const t of tensors) {
    if (t.name === METADATA) fail(`a tensor cannot be named "${METADATA}"`);
    if (names.has(t.name)) fail(`tensor "${t.name}" appears twice`);
    names.add(t.name);
    if (!isDtype(t.dtype)) {
      fail(`tensor "${t.name}" has unsupported dtype "${t.dtype}"; expected F32, F64, I64, F16 or U8`);
    }
    if (!(t.data instanceof DTYPES[t.dtype].array)) {
      fail(`tensor "${t.name}" is ${t.dtype} but its data is a ${t.data.constructor.name}`);
    }
    if (!t.shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
      fail(`tensor "${t.name}" has invalid shape ${fmtShape(t.shape)}`);
    }
    if (product(t.shape) !== t.data.length) {
      fail(
        `tensor "${t.name}" has shape ${fmtShape(t.shape)} (${product(t.shape)} elements) but ${t.data.length} values`,
      );
    }
  }
  if (metadata !== undefined) {
    for (const [k, v] of Object.entries(metadata)) {
      if (typeof v !== "string") fail(`metadata "${k}" is a ${typeof v}, not a string`);
    }
  }
  const ordered = [...tensors].sort((a, b) =>
    DTYPES[b.dtype].rank - DTYPES[a.dtype].rank || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)
  );
  const header: Record<string, unknown> = {};
  if (metadata !== undefined && Object.keys(metadata).length > 0) {
    // Sorted by key, as the reference writer does (byte-identical files for the same input).
    header[METADATA] = Object.fromEntries(Object.entries(metadata).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));
  }
  let offset = 0;
  for (const t of ordered) {
    const size = t.data.byteLength;
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + size] };
    offset += size;
  }
  let json = new TextEncoder().encode(JSON.stringify(header));
  const padded = Math.ceil(json.length / 8) * 8;
  if (padded !== json.length) {
    const p = new Uint8Array(padded).fill(0x20);
    p.set(json);
    json = p;
  }
  const out = new Uint8Array(8 + json.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  let at = 8 + json.length;
  for (const t of ordered) {
    out.set(new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength), at);
    at += t.data.byteLength;
  }
  return out;
}

/**
 * Scans the header's JSON bytes before it is parsed: counts the top-level entries and all values against the limits,
 * and refuses a key that appears twice in one object (JSON.parse keeps the last one silently). Malformed JSON is
 * left to JSON.parse to describe: the scan only has to be right for well-formed input.
 */
function scanHeader(h: Uint8Array, fail: (what: string) => never): void {
  const decoder = new TextDecoder("utf-8", { fatal: false });
  // One entry per open container: a Set of its keys for an object, null for an array.
  const stack: (Set<string> | null)[] = [];
  let expectKey = false;
  let entries = 0, values = 0;
  let topKey = "";
  for (let i = 0; i < h.length; i++) {
    const c = h[i];
    if (c === 0x22) { // '"': a string; find its end
      const start = i;
      let escaped = false;
      for (i++; i < h.length; i++) {
        if (escaped) escaped = false;
        else if (h[i] === 0x5c) escaped = true;
        else if (h[i] === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const raw = h.subarray(start, i + 1);
        let key: string;
        try {
          key = raw.includes(0x5c) ? JSON.parse(decoder.decode(raw)) : decoder.decode(raw.subarray(1, raw.length - 1));
        } catch {
          return; // malformed: JSON.parse says how
        }
        if (top.has(key)) {
          fail(
            stack.length === 1
              ? `the header names ${JSON.stringify(key)} twice`
              : `the header's entry ${JSON.stringify(topKey)} has the key ${JSON.stringify(key)} twice`,
          );
        }
        top.add(key);
        if (stack.length === 1) {
          topKey = key;
          if (++entries > MAX_HEADER_ENTRIES) {
            fail(`the header has more than ${MAX_HEADER_ENTRIES} entries (the limit)`);
          }
        }
        expectKey = false;
      }
    } else if (c === 0x7b || c === 0x5b) { // '{' or '['
      stack.push(c === 0x7b ? new Set() : null);
      expectKey = c === 0x7b;
      if (c === 0x5b) {
        let j = i + 1;
        while (j < h.length && (h[j] === 0x20 || h[j] === 0x0a || h[j] === 0x0d || h[j] === 0x09)) j++;
        if (h[j] !== 0x5d) values++; // a non-empty array: its first element
      }
    } else if (c === 0x7d || c === 0x5d) { // '}' or ']'
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c || c === 0x3a) { // ',' or ':'
      expectKey = c === 0x2c && stack[stack.length - 1] != null;
      if (!expectKey) values++; // the value after a ':' or an array's ','
    }
    if (values > MAX_HEADER_VALUES) fail(`the header holds more than ${MAX_HEADER_VALUES} values (the limit)`);
  }
}

/**
 * Parses a safetensors file held in memory, validating it strictly (see the module docs). Errors name the file
 * and, where there is one, the tensor.
 *
 * @param bytes The whole file.
 * @param fileName The file's name, used in error messages.
 * @returns The tensors by name (in file order); the `metadata` property holds `__metadata__` (or `{}`).
 *
 * @example
 * ```ts
 * import { readSafetensors, writeSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = writeSafetensors([{ name: "w", dtype: "F64", shape: [1], data: new Float64Array([0.5]) }], { epoch: "3" });
 * const map = readSafetensors(bytes, "d.safetensors");
 * assert.deepEqual(map.metadata, { epoch: "3" });
 * assert.throws(() => readSafetensors(bytes.subarray(0, 20), "cut.safetensors"), /cut\.safetensors/);
 * ```
 */
export function readSafetensors(bytes: Uint8Array, fileName: string): TensorMap {
  const fail = (what: string): never => {
    throw new Error(`Cannot read safetensors file "${fileName}": ${what}`);
  };
  const { header, dataStart } = parseHeader(bytes, fail);
  const dataLen = bytes.length - dataStart;
  const out: TensorMap = new Map();
  out.metadata = {};
  const entries: RawEntry[] = [];
  for (const [name, info] of Object.entries(header)) {
    if (name === METADATA) out.metadata = parseMetadata(info, fail);
    else entries.push(parseEntry(name, info, dataLen, fail));
  }
  checkCoverage(entries, dataLen, fail);
  for (const e of entries) {
    const { array, size } = DTYPES[e.dtype];
    const data = new array((e.end - e.begin) / size); // [count] of the dtype
    new Uint8Array(data.buffer).set(bytes.subarray(dataStart + e.begin, dataStart + e.end));
    out.set(e.name, { dtype: e.dtype, shape: e.shape, data });
  }
  return out;
}

/** One tensor of the header, checked: its dtype, shape and byte range within the data. */
interface RawEntry {
  name: string;
  dtype: Dtype;
  shape: number[];
  begin: number;
  end: number;
}

type Fail = (what: string) => never;

/** The 8-byte length, the header's limits and duplicate-free scan, then the JSON object. */
function parseHeader(bytes: Uint8Array, fail: Fail): { header: Record<string, unknown>; dataStart: number } {
  if (bytes.length < 8) fail(`the file has ${bytes.length} bytes, too short for the 8-byte header length`);
  const n = new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true);
  if (n > BigInt(MAX_HEADER_BYTES)) fail(`header length ${n} is above the limit of ${MAX_HEADER_BYTES} bytes`);
  const headerLen = Number(n);
  if (8 + headerLen > bytes.length) {
    fail(`header length ${headerLen} is larger than the ${bytes.length - 8} bytes after the length field`);
  }
  if (headerLen < 2 || bytes[8] !== 0x7b) fail(`the header does not start with '{'`);
  scanHeader(bytes.subarray(8, 8 + headerLen), fail);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(8, 8 + headerLen)));
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== "object" || header === null || Array.isArray(header)) fail("the header is not a JSON object");
  return { header: header as Record<string, unknown>, dataStart: 8 + headerLen };
}

function parseMetadata(info: unknown, fail: Fail): Record<string, string> {
  if (typeof info !== "object" || info === null || Array.isArray(info)) fail(`"${METADATA}" is not an object`);
  for (const [k, v] of Object.entries(info as Record<string, unknown>)) {
    if (typeof v !== "string") fail(`"${METADATA}" entry "${k}" is ${JSON.stringify(v)}, not a string`);
  }
  return info as Record<string, string>;
}

function parseEntry(name: string, info: unknown, dataLen: number, fail: Fail): RawEntry {
  const bad = (what: string): never => fail(`tensor "${name}" ${what}`);
  if (typeof info !== "object" || info === null || Array.isArray(info)) bad("is not described by an object");
  const { dtype, shape, data_offsets: offsets } = info as Record<string, unknown>;
  if (!isDtype(dtype)) bad(`has unsupported dtype ${JSON.stringify(dtype)}; expected F32, F64, I64, F16 or U8`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    bad(`has invalid shape ${JSON.stringify(shape)}`);
  }
  if (!Array.isArray(offsets) || offsets.length !== 2 || !offsets.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    bad(`has invalid data_offsets ${JSON.stringify(offsets)}`);
  }
  const [begin, end] = offsets as number[];
  if (end < begin) bad(`has data_offsets [${begin}, ${end}] that end before they begin`);
  if (end > dataLen) bad(`has data_offsets [${begin}, ${end}] beyond the ${dataLen} bytes of data`);
  const shp = shape as number[];
  const bytes = product(shp) * DTYPES[dtype as Dtype].size;
  if (bytes !== end - begin) {
    bad(
      `has shape ${fmtShape(shp)} of ${dtype} (${bytes} bytes) but data_offsets [${begin}, ${end}] span ${
        end - begin
      } bytes`,
    );
  }
  return { name, dtype: dtype as Dtype, shape: shp, begin, end };
}

/** The tensors tile the data exactly: no overlap, no gap, nothing left over. */
function checkCoverage(entries: RawEntry[], dataLen: number, fail: Fail): void {
  entries.sort((a, b) => a.begin - b.begin || a.end - b.end);
  let covered = 0;
  let prev = "";
  for (const e of entries) {
    if (e.begin < covered) {
      fail(`tensor "${e.name}" at [${e.begin}, ${e.end}] overlaps tensor "${prev}" (which ends at ${covered})`);
    }
    if (e.begin > covered) {
      const after = prev ? `tensor "${prev}"` : "the header";
      fail(`tensor "${e.name}" starts at ${e.begin}, leaving a gap of ${e.begin - covered} bytes after ${after}`);
    }
    covered = e.end;
    prev = e.name;
  }
  if (covered !== dataLen) {
    const left = dataLen - covered;
    fail(`the tensors cover ${covered} bytes of data but the file has ${dataLen} (${left} bytes unaccounted for)`);
  }
}

/** Options of {@linkcode readSafetensorsFile}. */
export interface ReadSafetensorsFileOptions {
  /** The largest file accepted, in bytes (default {@linkcode MAX_FILE_BYTES}). */
  maxBytes?: number;
  /** Why the limit is what it is, for the message (e.g. "what a checkpoint of this model can hold"). */
  limitNote?: string;
}

/**
 * Reads and parses a safetensors file (see {@linkcode readSafetensors}). The path must name a regular file (a FIFO,
 * a device or a directory is refused without blocking, naming what it is) of at most `maxBytes`; no more than the
 * size it had when opened is read.
 *
 * @param path The file.
 * @param options The size limit.
 * @returns The tensors by name, with `metadata`.
 *
 * @example
 * ```ts
 * import { readSafetensorsFile, writeSafetensorsFile } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeSafetensorsFile(`${dir}/g.safetensors`, [{ name: "x", dtype: "F32", shape: [1], data: new Float32Array([2]) }]);
 * assert.equal((await readSafetensorsFile(`${dir}/g.safetensors`)).get("x")!.data[0], 2);
 * await assert.rejects(readSafetensorsFile(dir), /is a directory, not a regular file/);
 * await assert.rejects(readSafetensorsFile(`${dir}/g.safetensors`, { maxBytes: 10 }), /above the limit of 10 bytes/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export function readSafetensorsFile(path: string, options: ReadSafetensorsFileOptions = {}): Promise<TensorMap> {
  try {
    using file = RegularFile.open(path, {
      what: "safetensors file",
      maxBytes: options.maxBytes ?? MAX_FILE_BYTES,
      limitNote: options.limitNote,
    });
    return Promise.resolve(readSafetensors(file.readAll(), path));
  } catch (e) {
    return Promise.reject(e);
  }
}

/**
 * Serializes tensors with {@linkcode writeSafetensors} and writes them atomically to `path`.
 *
 * @param path The destination file (its directory must exist).
 * @param tensors The tensors.
 * @param metadata Optional string metadata.
 *
 * @example
 * ```ts
 * import { writeSafetensorsFile } from "./safetensors.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await writeSafetensorsFile(`${dir}/d.safetensors`, [], { note: "empty" });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeSafetensorsFile(
  path: string,
  tensors: TensorEntry[],
  metadata?: Record<string, string>,
): Promise<void> {
  await writeFileAtomic(path, writeSafetensors(tensors, metadata));
}

/**
 * Returns the tensor `name` of a loaded checkpoint after checking its dtype and shape, or throws a message such as
 * `Cannot load checkpoint "g.safetensors": tensor "model.0.weight" has shape [128, 64], expected [128, 100]`.
 *
 * @param map The tensors, from {@linkcode readSafetensors}.
 * @param name The tensor's name.
 * @param dtype The expected dtype.
 * @param shape The expected shape.
 * @param fileName The checkpoint's name, for the message.
 * @returns The tensor's data, typed by `dtype`.
 *
 * @example
 * ```ts
 * import { expectTensor, readSafetensors, writeSafetensors } from "./safetensors.ts";
 * import assert from "node:assert/strict";
 *
 * const map = readSafetensors(
 *   writeSafetensors([{ name: "model.0.weight", dtype: "F32", shape: [128, 64], data: new Float32Array(128 * 64) }]),
 *   "g.safetensors",
 * );
 * const w: Float32Array = expectTensor(map, "model.0.weight", "F32", [128, 64], "g.safetensors");
 * assert.equal(w.length, 8192);
 * assert.throws(
 *   () => expectTensor(map, "model.0.weight", "F32", [128, 100], "g.safetensors"),
 *   { message: 'Cannot load checkpoint "g.safetensors": tensor "model.0.weight" has shape [128, 64], expected [128, 100]' },
 * );
 * ```
 */
export function expectTensor<D extends Dtype>(
  map: Map<string, Tensor>,
  name: string,
  dtype: D,
  shape: readonly number[],
  fileName: string,
): DtypeArray[D] {
  const prefix = `Cannot load checkpoint "${fileName}": tensor "${name}"`;
  const t = map.get(name);
  if (t === undefined) {
    const names = [...map.keys()];
    const list = names.length > 8 ? `${names.slice(0, 8).join(", ")}, ...` : names.join(", ");
    throw new Error(`${prefix} is missing (the file has ${names.length} tensors${names.length ? `: ${list}` : ""})`);
  }
  if (t.dtype !== dtype) throw new Error(`${prefix} has dtype ${t.dtype}, expected ${dtype}`);
  if (t.shape.length !== shape.length || t.shape.some((d, i) => d !== shape[i])) {
    throw new Error(`${prefix} has shape ${fmtShape(t.shape)}, expected ${fmtShape(shape)}`);
  }
  return t.data as DtypeArray[D];
}
