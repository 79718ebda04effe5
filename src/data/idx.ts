/**
 * Reader and writer for the IDX format of MNIST-style datasets (plain or gzip-compressed).
 *
 * An IDX file is a 4-byte magic number (`0x00 0x00 <type> <ndims>`), `ndims` big-endian uint32 dimensions,
 * then the data in row-major order. Only the unsigned-byte type (`0x08`) is supported: it is what MNIST,
 * Fashion-MNIST and their labels use.
 *
 * Nothing is allocated on the word of a header alone: a header's size is checked against the bytes the file
 * actually holds (plain files: before the data is read) or against {@linkcode IDX_MAX_BYTES} (gzip), and gzip data
 * is inflated in bounded pieces that stop with an error as soon as the output passes what the header promised. A
 * caller's `checkHeader` sees the dimensions before any data is read or inflated. Files are read with
 * {@linkcode RegularFile}: a FIFO, a device or a directory is refused without blocking.
 *
 * @example Round trip through the writer and the reader
 * ```ts
 * import { readIdx, writeIdx } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = writeIdx([2, 2, 3], new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]));
 * const { dims, data } = readIdx(bytes, "tiny.idx");
 * assert.deepEqual(dims, [2, 2, 3]);
 * assert.equal(data[11], 12);
 * ```
 *
 * @module
 */

/** A decoded IDX array: its dimensions (outermost first) and its row-major unsigned bytes. */
export interface IdxArray {
  /** Dimensions from the header, outermost first, e.g. `[60000, 28, 28]` for MNIST training images. */
  dims: number[];
  /** The elements, row-major; `data.length` is the product of `dims`. */
  data: Uint8Array;
}

import { RegularFile } from "../io/regular_file.ts";

/** Options shared by the IDX readers. */
export interface IdxReadOptions {
  /**
   * The most bytes (header plus data) a decoded file may have; larger headers are refused before anything is
   * allocated. Defaults to {@linkcode IDX_MAX_BYTES}.
   */
  maxBytes?: number;
  /**
   * Called with the header's dimensions as soon as the header is parsed, before any data is read or inflated; it
   * throws to refuse the file (e.g. images a later step could not handle). Its message is used as it is.
   */
  checkHeader?: (dims: readonly number[]) => void;
}

/**
 * The default upper bound, in bytes, on a decoded IDX file (256 MiB: MNIST's training images are 47 MB).
 *
 * @example
 * ```ts
 * import { IDX_MAX_BYTES } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(IDX_MAX_BYTES, 256 * 1024 * 1024);
 * ```
 */
export const IDX_MAX_BYTES: number = 256 * 1024 * 1024;

/** The IDX type codes and their names (for error messages). */
const IDX_TYPES: Record<number, string> = {
  0x08: "unsigned byte",
  0x09: "signed byte",
  0x0b: "int16",
  0x0c: "int32",
  0x0d: "float32",
  0x0e: "float64",
};

/** How many compressed bytes are handed to the inflater at a time; bounds the size of each inflated piece. */
const GZIP_INPUT_CHUNK = 16 * 1024;

/**
 * The first piece is small, so that the header (and a caller's `checkHeader`) is seen after inflating at most about
 * 1032 times this (deflate's largest ratio), not after a whole chunk of highly compressible data.
 */
const GZIP_FIRST_CHUNK = 64;

/** Elements above this count are refused whatever `maxBytes` says (the IDX dims are uint32; we index with int32). */
const MAX_ELEMENTS = 2 ** 31;

function hex2(n: number): string {
  return "0x" + n.toString(16).toUpperCase().padStart(2, "0");
}

function hexBytes(bytes: Uint8Array, n: number): string {
  return "0x" + Array.from(bytes.subarray(0, n), (b) => b.toString(16).padStart(2, "0")).join("");
}

function mib(n: number): string {
  return `${Math.round((n / (1024 * 1024)) * 100) / 100} MiB`;
}

/** "60000 images of 28x28", "10000 labels" or "shape [2, 3, 4, 5]". */
function describeDims(dims: number[]): string {
  if (dims.length === 1) return `${dims[0]} labels`;
  if (dims.length === 3) return `${dims[0]} images of ${dims[1]}x${dims[2]}`;
  return `shape [${dims.join(", ")}]`;
}

/**
 * Returns true when `bytes` starts with the gzip magic number `1f 8b`.
 *
 * @example
 * ```ts
 * import { isGzip } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isGzip(new Uint8Array([0x1f, 0x8b, 8, 0])), true);
 * assert.equal(isGzip(new Uint8Array([0, 0, 8, 3])), false);
 * ```
 */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

interface IdxHeader {
  dims: number[];
  headerBytes: number;
  dataBytes: number;
}

/**
 * Parses and validates an IDX header from the first bytes of a file. Returns null when `head` is too short to
 * hold the whole header yet and `final` is false (more bytes may come); throws on anything invalid.
 */
function parseHeader(head: Uint8Array, name: string, maxBytes: number, final: boolean): IdxHeader | null {
  const fail = (what: string): never => {
    throw new Error(`Cannot read IDX file "${name}": ${what}`);
  };
  if (head.length < 4) {
    if (!final) return null;
    fail(`the file has ${head.length} bytes, too short for the 4-byte magic number`);
  }
  if (head[0] !== 0 || head[1] !== 0) {
    const gz = isGzip(head) ? " (it looks gzip-compressed: decode it with decodeIdx or loadIdxFile)" : "";
    fail(`bad magic number ${hexBytes(head, 4)}, expected 0x0000 followed by type and ndims${gz}`);
  }
  const type = head[2];
  if (type !== 0x08) {
    const known = IDX_TYPES[type];
    fail(
      known === undefined
        ? `unknown data type ${hex2(type)} in the magic number ${hexBytes(head, 4)}`
        : `data type ${hex2(type)} (${known}) is not supported; only 0x08 (unsigned byte) is`,
    );
  }
  const ndims = head[3];
  if (ndims < 1 || ndims > 4) fail(`ndims ${ndims} is out of the supported range 1..4`);
  const headerBytes = 4 + 4 * ndims;
  if (head.length < headerBytes) {
    if (!final) return null;
    fail(
      `truncated header: ${ndims} dimensions need a ${headerBytes}-byte header but the file has ${head.length} bytes`,
    );
  }
  const view = new DataView(head.buffer, head.byteOffset, headerBytes);
  const dims: number[] = [];
  let count = 1;
  for (let i = 0; i < ndims; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    dims.push(d);
    count *= d; // exact: each factor < 2^32 and we stop once the running product passes 2^31
    if (count > MAX_ELEMENTS) {
      // Report the full dims for context, computed without trusting them further.
      for (let j = i + 1; j < ndims; j++) dims.push(view.getUint32(4 + 4 * j, false));
      fail(`header says ${describeDims(dims)}, more than 2^31 elements`);
    }
  }
  if (headerBytes + count > maxBytes) {
    fail(`header says ${describeDims(dims)} (${count} bytes), above the limit of ${maxBytes} bytes (${mib(maxBytes)})`);
  }
  return { dims, headerBytes, dataBytes: count };
}

function dataMismatch(name: string, h: IdxHeader, have: string): Error {
  const says = `header says ${describeDims(h.dims)} (${h.dataBytes} bytes)`;
  return new Error(`Cannot read IDX file "${name}": ${says} but the file has ${have} of data`);
}

/**
 * Decodes an uncompressed IDX file held in memory. The returned `data` is a view into `bytes` (no copy).
 *
 * Throws when the magic number, data type (only `0x08` is supported), number of dimensions (1..4) or header is
 * invalid, when the dimensions overflow, and when the data is shorter or longer than the header says. Gzip input
 * is refused with a pointer to {@linkcode decodeIdx}.
 *
 * @param bytes The whole file.
 * @param name The file name, used in error messages.
 * @param options Limits (see {@linkcode IdxReadOptions}).
 * @returns The dimensions and the data.
 *
 * @example
 * ```ts
 * import { readIdx } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * // Three labels: magic 0x00000801, one dimension of 3, then the data.
 * const bytes = new Uint8Array([0, 0, 8, 1, 0, 0, 0, 3, 7, 2, 1]);
 * assert.deepEqual(readIdx(bytes, "labels.idx"), { dims: [3], data: new Uint8Array([7, 2, 1]) });
 * assert.throws(() => readIdx(bytes.subarray(0, 10), "cut.idx"), /header says 3 labels \(3 bytes\) but the file has 2 bytes/);
 * ```
 */
export function readIdx(bytes: Uint8Array, name: string, options: IdxReadOptions = {}): IdxArray {
  const h = parseHeader(bytes, name, options.maxBytes ?? IDX_MAX_BYTES, true)!;
  options.checkHeader?.(h.dims);
  const have = bytes.length - h.headerBytes;
  if (have !== h.dataBytes) throw dataMismatch(name, h, `${have} bytes`);
  return { dims: h.dims, data: bytes.subarray(h.headerBytes) };
}

/**
 * Feeds `bytes` to a stream in pieces of `size` (the first of `first`), one piece per pull (so the consumer sets the
 * pace).
 */
function chunkedStream(bytes: Uint8Array, size: number, first: number): ReadableStream<Uint8Array<ArrayBuffer>> {
  let offset = 0;
  return new ReadableStream<Uint8Array<ArrayBuffer>>({
    pull(controller) {
      if (offset >= bytes.length) {
        controller.close();
        return;
      }
      const n = offset === 0 ? first : size;
      controller.enqueue(bytes.subarray(offset, offset + n) as Uint8Array<ArrayBuffer>);
      offset += n;
    },
  }, { highWaterMark: 0 });
}

async function gunzipIdx(
  bytes: Uint8Array,
  name: string,
  maxBytes: number,
  checkHeader: IdxReadOptions["checkHeader"],
): Promise<IdxArray> {
  const reader = chunkedStream(bytes, GZIP_INPUT_CHUNK, GZIP_FIRST_CHUNK).pipeThrough(new DecompressionStream("gzip"))
    .getReader();
  let head = new Uint8Array(0);
  let header: IdxHeader | null = null;
  // The output buffer starts at a size the compressed input makes plausible and doubles as real data arrives,
  // never past what the header promises: a tiny file with a huge header costs a tiny buffer.
  let out = new Uint8Array(0);
  let filled = 0;
  const append = (h: IdxHeader, chunk: Uint8Array) => {
    if (filled + chunk.length > h.dataBytes) throw dataMismatch(name, h, `more than ${h.dataBytes} bytes`);
    if (filled + chunk.length > out.length) {
      const grown = new Uint8Array(Math.min(h.dataBytes, Math.max(2 * out.length, filled + chunk.length)));
      grown.set(out.subarray(0, filled));
      out = grown;
    }
    out.set(chunk, filled);
    filled += chunk.length;
  };
  try {
    for (;;) {
      let step: ReadableStreamReadResult<Uint8Array>;
      try {
        step = await reader.read();
      } catch (e) {
        throw new Error(`Cannot read IDX file "${name}": the gzip data is corrupt (${(e as Error).message})`);
      }
      if (step.done) break;
      let chunk = step.value;
      if (header === null) {
        // Collect at most the 20-byte maximum header before parsing it.
        const take = Math.min(chunk.length, 20 - head.length);
        const grown = new Uint8Array(head.length + take);
        grown.set(head);
        grown.set(chunk.subarray(0, take), head.length);
        head = grown;
        header = parseHeader(head, name, maxBytes, false);
        if (header === null) continue; // fewer than 20 bytes so far, all of them taken
        checkHeader?.(header.dims);
        out = new Uint8Array(Math.min(header.dataBytes, 16 * bytes.length + 65536));
        append(header, head.subarray(header.headerBytes)); // bytes of `head` past the header are data
        chunk = chunk.subarray(take);
      }
      append(header, chunk);
    }
  } finally {
    // Stops the inflater early on errors; a no-op once the stream has ended.
    await reader.cancel().catch(() => {});
  }
  if (header === null) {
    header = parseHeader(head, name, maxBytes, true)!; // throws the precise reason
    checkHeader?.(header.dims);
  }
  if (filled !== header.dataBytes) throw dataMismatch(name, header, `${filled} bytes`);
  return { dims: header.dims, data: out.length === filled ? out : out.slice(0, filled) };
}

/**
 * Decodes an IDX file held in memory, gzip-compressed (detected by the magic `1f 8b`) or plain.
 *
 * Gzip data is inflated in bounded pieces into a buffer that grows with the data actually inflated (never past the
 * checked header's size); the inflation stops with an error as soon as the output passes what the header promises.
 * A small file can therefore not make it allocate much more than the data it really holds, nor more than
 * `maxBytes`.
 *
 * @param bytes The whole file.
 * @param name The file name, used in error messages.
 * @param options Limits (see {@linkcode IdxReadOptions}).
 * @returns The dimensions and the data.
 *
 * @example
 * ```ts
 * import { decodeIdx, writeIdx } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * const plain = writeIdx([4], new Uint8Array([5, 0, 4, 1]));
 * const gz = new Uint8Array(
 *   await new Response(new Blob([plain]).stream().pipeThrough(new CompressionStream("gzip"))).arrayBuffer(),
 * );
 * const { dims, data } = await decodeIdx(gz, "labels.gz");
 * assert.deepEqual(dims, [4]);
 * assert.deepEqual(data, new Uint8Array([5, 0, 4, 1]));
 * ```
 */
export async function decodeIdx(bytes: Uint8Array, name: string, options: IdxReadOptions = {}): Promise<IdxArray> {
  const maxBytes = options.maxBytes ?? IDX_MAX_BYTES;
  if (isGzip(bytes)) return await gunzipIdx(bytes, name, maxBytes, options.checkHeader);
  return readIdx(bytes, name, { maxBytes, checkHeader: options.checkHeader });
}

/**
 * Reads an IDX file from disk, gzip-compressed or plain (see {@linkcode decodeIdx}). Anything but a regular file
 * (a FIFO, a device, a directory) is refused without blocking; a plain file's header is checked against the file's
 * size (and by `checkHeader`) before its data is read.
 *
 * @param path The file to read.
 * @param options Limits (see {@linkcode IdxReadOptions}); a file larger than `maxBytes` is refused before reading.
 * @returns The dimensions and the data.
 *
 * @example
 * ```ts
 * import { loadIdxFile, writeIdx } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/labels-idx1-ubyte`, writeIdx([3], new Uint8Array([1, 2, 3])));
 * const { dims } = await loadIdxFile(`${dir}/labels-idx1-ubyte`);
 * assert.deepEqual(dims, [3]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadIdxFile(path: string, options: IdxReadOptions = {}): Promise<IdxArray> {
  const maxBytes = options.maxBytes ?? IDX_MAX_BYTES;
  using file = RegularFile.open(path, { what: "IDX file", maxBytes });
  const head = file.readAt(0, Math.min(file.size, 20));
  if (isGzip(head)) return await decodeIdx(file.readAll(), path, options);
  // Plain: the header is checked against the file's size before the data is read.
  const h = parseHeader(head, path, maxBytes, true)!;
  options.checkHeader?.(h.dims);
  const have = file.size - h.headerBytes;
  if (have !== h.dataBytes) throw dataMismatch(path, h, `${have} bytes`);
  return { dims: h.dims, data: file.readAt(h.headerBytes, h.dataBytes) };
}

/**
 * Encodes an unsigned-byte IDX file (uncompressed): the magic `0x00 0x00 0x08 <ndims>`, the dimensions as
 * big-endian uint32, then the data.
 *
 * @param dims One to four dimensions, outermost first.
 * @param data Row-major elements; its length must be the product of `dims`.
 * @returns The file's bytes.
 *
 * @example
 * ```ts
 * import { writeIdx } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(writeIdx([2], new Uint8Array([9, 8])), new Uint8Array([0, 0, 8, 1, 0, 0, 0, 2, 9, 8]));
 * ```
 */
export function writeIdx(dims: number[], data: Uint8Array): Uint8Array<ArrayBuffer> {
  if (dims.length < 1 || dims.length > 4) {
    throw new Error(`Cannot write IDX: ${dims.length} dimensions given, expected 1..4`);
  }
  let count = 1;
  for (const d of dims) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff) {
      throw new Error(`Cannot write IDX: dimension ${d} in [${dims.join(", ")}] is not a uint32`);
    }
    count *= d;
  }
  if (count !== data.length) {
    throw new Error(
      `Cannot write IDX: dims [${dims.join(", ")}] hold ${count} elements but the data has ${data.length}`,
    );
  }
  const headerBytes = 4 + 4 * dims.length;
  const out = new Uint8Array(headerBytes + data.length);
  const view = new DataView(out.buffer);
  out[2] = 0x08;
  out[3] = dims.length;
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  out.set(data, headerBytes);
  return out;
}
