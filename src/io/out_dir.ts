/**
 * A run's output folder (`--out`), opened for one run: locked ({@linkcode DirLock}), checked for symbolic links,
 * cleaned of what an interrupted run left behind, and with its metrics log opened (afresh, or cut back to the step a
 * resumed run continues from).
 *
 * The layout: `images/`, `checkpoints/`, `metrics.jsonl`, `run.json` and the lock `run.lock`. No file of it is
 * written through a symbolic link: a link at any of these names is refused at open, the metrics log is opened
 * without following links, and every other file is written by an atomic rename, which replaces a link instead of
 * following it.
 *
 * @example
 * ```ts
 * import { OutDir } from "./out_dir.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   using out = OutDir.open(`${dir}/run`);
 *   out.metrics.append({ step: 0 });
 *   assert.deepEqual([...Deno.readDirSync(`${dir}/run`)].map((e) => e.name).sort(), [
 *     "checkpoints", "images", "metrics.jsonl", "run.lock",
 *   ]);
 * }
 * assert.deepEqual([...Deno.readDirSync(`${dir}/run`)].map((e) => e.name).sort(), ["checkpoints", "images", "metrics.jsonl"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { DirLock } from "./lock.ts";
import { MetricsLog } from "./metrics.ts";

/** The sub-folders of an output folder. */
const SUBDIRS = ["images", "checkpoints"] as const;

/** The files at fixed names, checked for links at open. */
const FILES = [
  "metrics.jsonl",
  "run.json",
  "checkpoints/latest.safetensors",
  "checkpoints/generator.safetensors",
] as const;

/**
 * The names of temporary files: `.<name>.<random>.tmp` (atomic writes, the lock's) and `.run.lock.<random>.stale`
 * (a lock being taken over).
 */
const LEFTOVER = /^\..+\.[0-9a-z]+\.(tmp|stale)$/;

/** Options of {@linkcode OutDir.open}. */
export interface OutDirOptions {
  /**
   * The step a resumed run continues from: `metrics.jsonl` is cut back to its complete rows below it (see
   * `MetricsLog.open`'s `keepBelowStep`). Without it the log is started afresh.
   */
  resumeStep?: number;
  /** Receives one-line notes (a stale lock taken over, leftovers removed); default `console.error`. */
  say?: (line: string) => void;
}

function linkTarget(path: string): string {
  try {
    return Deno.readLinkSync(path);
  } catch {
    return "?";
  }
}

/** lstat, or null when the path does not exist. */
function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

/**
 * An output folder held by this run (see the module docs). Close it (or `using`) to close the log and release the
 * lock.
 *
 * @example
 * ```ts
 * import { OutDir } from "./out_dir.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":0}\n{"step":1}\n{"step":2}\n');
 * await Deno.mkdir(`${dir}/checkpoints`);
 * await Deno.writeFile(`${dir}/checkpoints/.latest.safetensors.k3j2.tmp`, new Uint8Array(8)); // left by a kill
 * const notes: string[] = [];
 * const out = OutDir.open(dir, { resumeStep: 2, say: (s) => notes.push(s) });
 * out.close();
 * assert.equal(await Deno.readTextFile(`${dir}/metrics.jsonl`), '{"step":0}\n{"step":1}\n');
 * assert.deepEqual([...Deno.readDirSync(`${dir}/checkpoints`)], []);
 * assert.match(notes[0], /removed 1 temporary file/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class OutDir implements Disposable {
  /** The folder. */
  readonly dir: string;
  /** The lock held on it. */
  readonly lock: DirLock;
  /** Its open `metrics.jsonl`. */
  readonly metrics: MetricsLog;

  private constructor(dir: string, lock: DirLock, metrics: MetricsLog) {
    this.dir = dir;
    this.lock = lock;
    this.metrics = metrics;
  }

  /**
   * Creates the folder if needed and takes it: the lock (a `DirLockedError` when another run holds it), its
   * sub-folders (real folders, not links), no link at a fixed file name, temporary files of an interrupted writer
   * removed (safe: the lock says no other writer is at work), and the metrics log opened.
   *
   * @param dir The output folder (a link to a folder is fine; links inside it are not).
   * @param options The step a resumed run continues from, and where notes go.
   * @returns The held folder.
   *
   * @example
   * ```ts
   * import { OutDir } from "./out_dir.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * await Deno.writeTextFile(`${dir}/elsewhere.txt`, "keep");
   * await Deno.symlink(`${dir}/elsewhere.txt`, `${dir}/run.json`);
   * assert.throws(() => OutDir.open(dir), /"run.json" is a symbolic link \(to ".*elsewhere.txt"\)/);
   * assert.equal(await Deno.readTextFile(`${dir}/elsewhere.txt`), "keep");
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static open(dir: string, options: OutDirOptions = {}): OutDir {
    const say = options.say ?? console.error;
    const fail = (what: string): never => {
      throw new Error(`Cannot use output folder "${dir}": ${what}`);
    };
    try {
      Deno.mkdirSync(dir, { recursive: true });
    } catch (e) {
      fail((e as Error).message);
    }
    const lock = DirLock.acquire(dir, { say });
    try {
      for (const sub of SUBDIRS) {
        const path = `${dir}/${sub}`;
        const info = lstatOrNull(path);
        if (info === null) Deno.mkdirSync(path);
        else if (info.isSymlink) {
          fail(
            `"${sub}" is a symbolic link (to "${linkTarget(path)}"); deno-gan does not write through links in its ` +
              `output folder: remove the link`,
          );
        } else if (!info.isDirectory) fail(`"${sub}" is not a folder`);
      }
      for (const name of FILES) {
        const path = `${dir}/${name}`;
        const info = lstatOrNull(path);
        if (info?.isSymlink) {
          fail(
            `"${name}" is a symbolic link (to "${linkTarget(path)}"); deno-gan does not write through links in its ` +
              `output folder: remove the link`,
          );
        }
        if (info !== null && !info.isFile) fail(`"${name}" is not a regular file`);
      }
      let removed = 0, bytes = 0;
      for (const sub of [".", ...SUBDIRS]) {
        const folder = sub === "." ? dir : `${dir}/${sub}`;
        for (const e of Deno.readDirSync(folder)) {
          if (!LEFTOVER.test(e.name) || e.isDirectory) continue;
          const path = `${folder}/${e.name}`;
          bytes += lstatOrNull(path)?.size ?? 0;
          try {
            Deno.removeSync(path); // a link is removed itself, never its target
            removed++;
          } catch (err) {
            if (!(err instanceof Deno.errors.NotFound)) throw err;
          }
        }
      }
      if (removed > 0) {
        say(
          `deno-gan: removed ${removed} temporary file${removed === 1 ? "" : "s"} (${bytes} bytes) left by an ` +
            `interrupted run in "${dir}"`,
        );
      }
      const metrics = MetricsLog.open(
        `${dir}/metrics.jsonl`,
        options.resumeStep === undefined ? { truncate: true } : { keepBelowStep: options.resumeStep },
      );
      return new OutDir(dir, lock, metrics);
    } catch (e) {
      lock.release();
      throw e;
    }
  }

  /**
   * Closes the metrics log and releases the lock. Harmless when called again.
   *
   * @example
   * ```ts
   * import { OutDir } from "./out_dir.ts";
   *
   * const dir = await Deno.makeTempDir();
   * const out = OutDir.open(dir);
   * out.close();
   * out.close();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  close(): void {
    this.metrics.close();
    this.lock.release();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
