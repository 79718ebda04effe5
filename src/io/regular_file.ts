/**
 * Bounded reads of regular files: a path that names a FIFO, a device, a directory or a socket is refused before any
 * byte is read (and a FIFO never blocks the open), a file above a size limit is refused before anything is allocated,
 * and no read goes past the size the file had when it was opened.
 *
 * @example
 * ```ts
 * import { readRegularFile } from "./regular_file.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/a.bin`, new Uint8Array([1, 2, 3]));
 * assert.deepEqual(readRegularFile(`${dir}/a.bin`, { what: "file", maxBytes: 10 }), new Uint8Array([1, 2, 3]));
 * assert.throws(() => readRegularFile(dir, { what: "file", maxBytes: 10 }), /is a directory, not a regular file/);
 * assert.throws(() => readRegularFile(`${dir}/a.bin`, { what: "file", maxBytes: 2 }), /above the limit of 2 bytes/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";

/** Options of {@linkcode RegularFile.open} and {@linkcode readRegularFile}. */
export interface RegularFileOptions {
  /** What the file is, for messages: `Cannot read <what> "<path>": ...` (e.g. `"safetensors file"`). */
  what: string;
  /** The largest size accepted, in bytes. */
  maxBytes: number;
  /** Why the limit is what it is, appended to the message in parentheses (e.g. "the size of this model"). */
  limitNote?: string;
  /**
   * Refuse a symbolic link at `path` (default false: a link to a regular file is followed). The path is checked with
   * `lstat` and opened with `O_NOFOLLOW`, so a link swapped in between is refused too.
   */
  noFollow?: boolean;
}

/**
 * A human size: `"4 GiB"`, `"1.5 MiB"`, `"512 bytes"`.
 *
 * @param n Bytes.
 * @returns The size in the largest binary unit that keeps it at least 1.
 *
 * @example
 * ```ts
 * import { formatBytes } from "./regular_file.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatBytes(4 * 2 ** 30), "4 GiB");
 * assert.equal(formatBytes(1536 * 1024), "1.5 MiB");
 * assert.equal(formatBytes(100), "100 bytes");
 * ```
 */
export function formatBytes(n: number): string {
  const units = ["KiB", "MiB", "GiB", "TiB"];
  if (n < 1024) return `${n} bytes`;
  let v = n / 1024, u = 0;
  while (v >= 1024 && u < units.length - 1) (v /= 1024, u++);
  return `${Math.round(v * 100) / 100} ${units[u]}`;
}

/** "a directory", "a FIFO (named pipe)", ... for a non-regular file. */
function kindOf(s: {
  isDirectory(): boolean;
  isFIFO(): boolean;
  isCharacterDevice(): boolean;
  isBlockDevice(): boolean;
  isSocket(): boolean;
  isSymbolicLink(): boolean;
}): string {
  if (s.isDirectory()) return "a directory";
  if (s.isFIFO()) return "a FIFO (named pipe)";
  if (s.isCharacterDevice()) return "a character device";
  if (s.isBlockDevice()) return "a block device";
  if (s.isSocket()) return "a socket";
  if (s.isSymbolicLink()) return "a symbolic link";
  return "not a regular file";
}

/** The kind of a `Deno.FileInfo` that is not a regular file. */
function kindOfInfo(i: Deno.FileInfo): string {
  return kindOf({
    isDirectory: () => i.isDirectory,
    isFIFO: () => i.isFifo === true,
    isCharacterDevice: () => i.isCharDevice === true,
    isBlockDevice: () => i.isBlockDevice === true,
    isSocket: () => i.isSocket === true,
    isSymbolicLink: () => i.isSymlink,
  });
}

/**
 * A regular file opened for bounded reading. {@linkcode RegularFile.open} checks the path with `stat` (which never
 * blocks) and refuses anything but a regular file; it then opens it with `O_NONBLOCK` (so that a FIFO swapped in
 * meanwhile cannot block the open either), checks the opened file again with `fstat`, and refuses a size above
 * `maxBytes`. Reads never go past {@linkcode RegularFile.size}.
 *
 * @example
 * ```ts
 * import { RegularFile } from "./regular_file.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeFile(path, new Uint8Array([5, 6, 7, 8]));
 * using f = RegularFile.open(path, { what: "data file", maxBytes: 1024 });
 * assert.equal(f.size, 4);
 * assert.deepEqual(f.readAt(1, 2), new Uint8Array([6, 7]));
 * assert.throws(() => f.readAt(3, 2), /ends at byte 4/);
 * f.close();
 * await Deno.remove(path);
 * ```
 */
export class RegularFile implements Disposable {
  #fd: number | null;
  /** The path, as given. */
  readonly path: string;
  /** The size the file had when it was opened (fstat). */
  readonly size: number;
  readonly #what: string;

  private constructor(path: string, fd: number, size: number, what: string) {
    this.path = path;
    this.#fd = fd;
    this.size = size;
    this.#what = what;
  }

  /**
   * Opens `path` for reading after the checks described above.
   *
   * @param path The file.
   * @param options What it is (for messages) and the size limit.
   * @returns The open file.
   *
   * @example
   * ```ts
   * import { RegularFile } from "./regular_file.ts";
   * import assert from "node:assert/strict";
   *
   * assert.throws(
   *   () => RegularFile.open("/dev/null", { what: "checkpoint", maxBytes: 1 }),
   *   { message: 'Cannot read checkpoint "/dev/null": it is a character device, not a regular file' },
   * );
   * ```
   *
   * @example With `noFollow`, a link is refused, naming its target
   * ```ts
   * import { RegularFile } from "./regular_file.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(`${dir}/real.txt`, "x");
   * await Deno.symlink(`${dir}/real.txt`, `${dir}/link.txt`);
   * assert.throws(
   *   () => RegularFile.open(`${dir}/link.txt`, { what: "log", maxBytes: 10, noFollow: true }),
   *   /it is a symbolic link \(to ".*real.txt"\), and links are not followed here/,
   * );
   * RegularFile.open(`${dir}/link.txt`, { what: "log", maxBytes: 10 }).close(); // followed by default
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static open(path: string, options: RegularFileOptions): RegularFile {
    const fail = (what: string, cause?: unknown): never => {
      throw new Error(`Cannot read ${options.what} "${path}": ${what}`, cause === undefined ? undefined : { cause });
    };
    let info: Deno.FileInfo;
    try {
      // Neither opens, so neither blocks; stat follows links, lstat (noFollow) does not.
      info = options.noFollow ? Deno.lstatSync(path) : Deno.statSync(path);
    } catch (e) {
      return fail((e as Error).message, e);
    }
    if (info.isSymlink) {
      let target = "?";
      try {
        target = Deno.readLinkSync(path);
      } catch { /* unreadable */ }
      fail(`it is a symbolic link (to "${target}"), and links are not followed here`);
    }
    if (!info.isFile) fail(`it is ${kindOfInfo(info)}, not a regular file`);
    const limit = () => {
      const notes = [options.maxBytes >= 1024 ? formatBytes(options.maxBytes) : "", options.limitNote ?? ""]
        .filter((n) => n !== "");
      return `above the limit of ${options.maxBytes} bytes${notes.length ? ` (${notes.join(", ")})` : ""}`;
    };
    if (info.size > options.maxBytes) fail(`the file has ${info.size} bytes, ${limit()}`);
    let fd: number;
    try {
      const noFollow = options.noFollow ? (constants.O_NOFOLLOW ?? 0) : 0;
      fd = openSync(path, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0) | noFollow);
    } catch (e) {
      return fail((e as Error).message, e);
    }
    try {
      const s = fstatSync(fd);
      if (!s.isFile()) fail(`it is ${kindOf(s)}, not a regular file`);
      if (s.size > options.maxBytes) fail(`the file has ${s.size} bytes, ${limit()}`);
      return new RegularFile(path, fd, s.size, options.what);
    } catch (e) {
      closeSync(fd);
      throw e;
    }
  }

  /**
   * Reads exactly `length` bytes at `position`; throws when they lie past {@linkcode RegularFile.size} or the file
   * ends early (it was truncated while open).
   *
   * @param position The offset of the first byte.
   * @param length How many bytes.
   * @returns A new array of `length` bytes.
   *
   * @example
   * ```ts
   * import { RegularFile } from "./regular_file.ts";
   * import assert from "node:assert/strict";
   *
   * const path = await Deno.makeTempFile();
   * await Deno.writeTextFile(path, "hello");
   * using f = RegularFile.open(path, { what: "text", maxBytes: 100 });
   * assert.equal(new TextDecoder().decode(f.readAt(0, 5)), "hello");
   * f.close();
   * await Deno.remove(path);
   * ```
   */
  readAt(position: number, length: number): Uint8Array<ArrayBuffer> {
    if (this.#fd === null) throw new Error(`Cannot read ${this.#what} "${this.path}": it is closed`);
    if (position + length > this.size) {
      throw new Error(
        `Cannot read ${this.#what} "${this.path}": bytes ${position}..${position + length} asked for, the file ends ` +
          `at byte ${this.size}`,
      );
    }
    const out = new Uint8Array(length);
    let got = 0;
    while (got < length) {
      const n = readSync(this.#fd, out, got, Math.min(length - got, 1 << 30), position + got);
      if (n === 0) {
        throw new Error(
          `Cannot read ${this.#what} "${this.path}": the file ended at byte ${position + got} while being read ` +
            `(it had ${this.size} bytes when opened)`,
        );
      }
      got += n;
    }
    return out;
  }

  /**
   * Reads the whole file (its size when opened).
   *
   * @returns The bytes.
   *
   * @example
   * ```ts
   * import { RegularFile } from "./regular_file.ts";
   * import assert from "node:assert/strict";
   *
   * const path = await Deno.makeTempFile();
   * await Deno.writeFile(path, new Uint8Array([9]));
   * using f = RegularFile.open(path, { what: "file", maxBytes: 1 });
   * assert.deepEqual(f.readAll(), new Uint8Array([9]));
   * f.close();
   * await Deno.remove(path);
   * ```
   */
  readAll(): Uint8Array<ArrayBuffer> {
    return this.readAt(0, this.size);
  }

  /**
   * Closes the file; closing twice is harmless.
   *
   * @example
   * ```ts
   * import { RegularFile } from "./regular_file.ts";
   *
   * const path = await Deno.makeTempFile();
   * const f = RegularFile.open(path, { what: "file", maxBytes: 1 });
   * f.close();
   * f.close();
   * await Deno.remove(path);
   * ```
   */
  close(): void {
    if (this.#fd !== null) {
      closeSync(this.#fd);
      this.#fd = null;
    }
  }

  /** Closes the file (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * Reads a whole regular file after the checks of {@linkcode RegularFile.open}.
 *
 * @param path The file.
 * @param options What it is (for messages) and the size limit.
 * @returns The bytes.
 *
 * @example
 * ```ts
 * import { readRegularFile } from "./regular_file.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile();
 * await Deno.writeTextFile(path, "abc");
 * assert.equal(readRegularFile(path, { what: "file", maxBytes: 3 }).length, 3);
 * await Deno.remove(path);
 * ```
 */
export function readRegularFile(path: string, options: RegularFileOptions): Uint8Array<ArrayBuffer> {
  using f = RegularFile.open(path, options);
  return f.readAll();
}
