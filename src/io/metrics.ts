/**
 * Append-only JSON Lines logs: one JSON object per line, written as it comes, the file opened once.
 *
 * @example
 * ```ts
 * import { MetricsLog } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   using log = MetricsLog.open(`${dir}/metrics.jsonl`);
 *   log.append({ step: 1, d_loss: 0.69, g_loss: 0.71 });
 * }
 * assert.equal(await Deno.readTextFile(`${dir}/metrics.jsonl`), '{"step":1,"d_loss":0.69,"g_loss":0.71}\n');
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

const encoder = new TextEncoder();

/** Opens `path` for reading and appending without ever following a symbolic link at `path` (see MetricsLog.open). */
function openNoFollow(path: string): Deno.FsFile {
  for (let attempt = 0; attempt < 3; attempt++) {
    let seen: Deno.FileInfo;
    try {
      seen = Deno.lstatSync(path);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      try {
        return Deno.openSync(path, { read: true, append: true, createNew: true, mode: 0o644 });
      } catch (e2) {
        if (e2 instanceof Deno.errors.AlreadyExists) continue; // created meanwhile: look again
        throw e2;
      }
    }
    if (seen.isSymlink) {
      let target = "?";
      try {
        target = Deno.readLinkSync(path);
      } catch { /* unreadable */ }
      throw new Error(
        `it is a symbolic link (to "${target}"); deno-gan does not write through links in its output folder: ` +
          `remove the link`,
      );
    }
    if (!seen.isFile) throw new Error(`it is not a regular file`);
    const file = Deno.openSync(path, { read: true, append: true });
    const now = file.statSync();
    if (now.ino === seen.ino && now.dev === seen.dev) return file;
    file.close(); // swapped between lstat and open: nothing was written; look again
  }
  throw new Error("it kept changing while being opened");
}

/** The length of the prefix of complete lines whose "step" is below `step` (see MetricsLog.open). */
function keptBytes(file: Deno.FsFile, step: number): number {
  const decoder = new TextDecoder();
  const chunk = new Uint8Array(1 << 20);
  let kept = 0; // bytes of accepted lines
  let pending: Uint8Array = new Uint8Array(0); // bytes after the last newline seen
  file.seekSync(0, Deno.SeekMode.Start);
  for (;;) {
    const n = file.readSync(chunk);
    if (n === null || n === 0) return kept; // what is left in `pending` is a torn line
    let buf = chunk.subarray(0, n);
    if (pending.length > 0) {
      const joined = new Uint8Array(pending.length + n);
      joined.set(pending);
      joined.set(buf, pending.length);
      buf = joined;
    }
    let start = 0;
    for (let nl = buf.indexOf(0x0a); nl >= 0; nl = buf.indexOf(0x0a, start)) {
      let row: unknown;
      try {
        row = JSON.parse(decoder.decode(buf.subarray(start, nl)));
      } catch {
        return kept;
      }
      const { step: s, kind } = (row ?? {}) as { step?: unknown; kind?: unknown };
      // A step row `s` is step s's result; an eval row `s` scores the state after s steps, which a resume at s holds.
      if (typeof s !== "number" || !(kind === "eval" ? s <= step : s < step)) return kept;
      kept += nl + 1 - start;
      start = nl + 1;
    }
    pending = buf.slice(start);
  }
}

/**
 * An append-only JSONL writer. The file is opened once (created if missing, appended to if present); each
 * {@linkcode MetricsLog.append} writes one whole line at once, so a crash leaves complete lines behind.
 * `NaN` and `Infinity` are written as `null` (as `JSON.stringify` does).
 *
 * @example
 * ```ts
 * import { MetricsLog } from "./metrics.ts";
 * import assert from "node:assert/strict";
 *
 * const path = await Deno.makeTempFile({ suffix: ".jsonl" });
 * const log = MetricsLog.open(path);
 * log.append({ epoch: 0, batch: 0 });
 * log.append({ epoch: 0, batch: 1 });
 * log.close();
 * const lines = (await Deno.readTextFile(path)).trimEnd().split("\n").map((l) => JSON.parse(l));
 * assert.deepEqual(lines, [{ epoch: 0, batch: 0 }, { epoch: 0, batch: 1 }]);
 * await Deno.remove(path);
 * ```
 */
export class MetricsLog implements Disposable {
  #file: Deno.FsFile | null;
  /** The file being written. */
  readonly path: string;

  private constructor(path: string, file: Deno.FsFile) {
    this.path = path;
    this.#file = file;
  }

  /**
   * Opens `path` for appending (created if missing, with its parent directories). The file is never reached through
   * a symbolic link: a link at `path` is refused (naming where it points), a missing file is created with `O_EXCL`
   * (which does not follow links), and an existing one is checked after opening to be the very file `lstat` saw, so
   * a link swapped in meanwhile is refused before anything is written.
   *
   * @param path The log file, e.g. `runs/1/metrics.jsonl`.
   * @param options `truncate: true` starts the file afresh instead of appending. `keepBelowStep: s` first cuts the
   *   file back to its complete lines whose `step` is below `s`, in order: it stops at the first line that is torn
   *   (no newline), not JSON, without a numeric `step`, or at step `s` or later (the rows a resumed run redoes).
   *   Eval rows (`"kind": "eval"`, scoring the state after `step` steps) are kept up to step `s` itself.
   * @returns The open log.
   *
   * @example
   * ```ts
   * import { MetricsLog } from "./metrics.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * const log = MetricsLog.open(`${dir}/sub/metrics.jsonl`, { truncate: true });
   * log.close();
   * await Deno.writeTextFile(`${dir}/m.jsonl`, '{"step":0}\n{"step":1}\n{"kind":"eval","step":2}\n{"step":2}\n{"st');
   * MetricsLog.open(`${dir}/m.jsonl`, { keepBelowStep: 2 }).close();
   * assert.equal(await Deno.readTextFile(`${dir}/m.jsonl`), '{"step":0}\n{"step":1}\n{"kind":"eval","step":2}\n');
   * await Deno.symlink(`${dir}/m.jsonl`, `${dir}/link.jsonl`);
   * assert.throws(() => MetricsLog.open(`${dir}/link.jsonl`), /is a symbolic link/);
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static open(path: string, options: { truncate?: boolean; keepBelowStep?: number } = {}): MetricsLog {
    let file: Deno.FsFile | null = null;
    try {
      const cut = path.lastIndexOf("/");
      if (cut > 0) Deno.mkdirSync(path.slice(0, cut), { recursive: true });
      file = openNoFollow(path);
      if (options.truncate) file.truncateSync(0);
      else if (options.keepBelowStep !== undefined) file.truncateSync(keptBytes(file, options.keepBelowStep));
      return new MetricsLog(path, file);
    } catch (e) {
      file?.close();
      throw new Error(`Cannot open metrics log "${path}": ${(e as Error).message}`, { cause: e });
    }
  }

  /**
   * Appends `record` as one line of JSON.
   *
   * @param record A JSON-serializable object.
   *
   * @example
   * ```ts
   * import { MetricsLog } from "./metrics.ts";
   *
   * const path = await Deno.makeTempFile();
   * {
   *   using log = MetricsLog.open(path);
   *   log.append({ step: 400, d_loss: 0.5 });
   * }
   * await Deno.remove(path);
   * ```
   */
  append(record: Record<string, unknown>): void {
    if (this.#file === null) throw new Error(`Cannot append to metrics log "${this.path}": it is closed`);
    let json: string;
    try {
      json = JSON.stringify(record);
    } catch (e) {
      throw new Error(`Cannot append to metrics log "${this.path}": ${(e as Error).message}`, { cause: e });
    }
    const bytes = encoder.encode(json + "\n");
    let written = 0;
    while (written < bytes.length) written += this.#file.writeSync(bytes.subarray(written));
  }

  /**
   * Closes the file; later appends throw. Closing twice is harmless.
   *
   * @example
   * ```ts
   * import { MetricsLog } from "./metrics.ts";
   *
   * const path = await Deno.makeTempFile();
   * const log = MetricsLog.open(path);
   * log.close();
   * log.close();
   * await Deno.remove(path);
   * ```
   */
  close(): void {
    if (this.#file !== null) {
      this.#file.close();
      this.#file = null;
    }
  }

  /** Closes the file (for `using`). */
  [Symbol.dispose](): void {
    this.close();
  }
}
