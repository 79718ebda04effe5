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
   * Opens `path` for appending (created if missing, with its parent directories).
   *
   * @param path The log file, e.g. `runs/1/metrics.jsonl`.
   * @param options `truncate: true` starts the file afresh instead of appending.
   * @returns The open log.
   *
   * @example
   * ```ts
   * import { MetricsLog } from "./metrics.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const log = MetricsLog.open(`${dir}/sub/metrics.jsonl`, { truncate: true });
   * log.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static open(path: string, options: { truncate?: boolean } = {}): MetricsLog {
    try {
      const cut = path.lastIndexOf("/");
      if (cut > 0) Deno.mkdirSync(path.slice(0, cut), { recursive: true });
      const file = options.truncate
        ? Deno.openSync(path, { write: true, create: true, truncate: true })
        : Deno.openSync(path, { append: true, create: true });
      return new MetricsLog(path, file);
    } catch (e) {
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
