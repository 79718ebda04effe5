/**
 * A lock file that gives one process at a time a folder (a run's `--out`). The lock is `<dir>/run.lock`, a small
 * JSON file holding the holder's pid, host name, start time and a random token.
 *
 * It is created atomically and never seen half-written: the content goes to a new temporary file (`O_EXCL`), which is
 * then hard-linked to the lock's name (`link` fails when the name exists, as `O_EXCL` does). The holder keeps the
 * file open with an exclusive advisory lock (`flock`) on it for as long as it holds the folder; the kernel drops that
 * lock when the process ends, however it ends (SIGKILL included). So a second process that finds the lock file tells
 * a live holder from a dead one by trying the same `flock`: refused, the holder is alive and the second process fails
 * with {@linkcode DirLockedError}, naming the folder and the holder; granted, the holder is gone and the lock is taken
 * over in place, with a one-line message. (Checking `/proc/<pid>` instead would need `--allow-all` under Deno's
 * permissions, and would mistake a reused pid for the holder.) {@linkcode DirLock.release} removes the lock file
 * while still holding the `flock`, and only while it is still this holder's.
 *
 * @example
 * ```ts
 * import { DirLock, DirLockedError } from "./lock.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * {
 *   using lock = DirLock.acquire(dir);
 *   assert.equal(JSON.parse(Deno.readTextFileSync(`${dir}/run.lock`)).pid, Deno.pid);
 *   assert.throws(() => DirLock.acquire(dir), DirLockedError);
 * }
 * assert.throws(() => Deno.statSync(`${dir}/run.lock`), Deno.errors.NotFound);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

/** The lock file's name inside the folder. */
export const LOCK_FILE = "run.lock";

/** What a lock file holds. */
export interface LockInfo {
  /** The holder's process id. */
  pid: number;
  /** The holder's host name ("unknown" when it cannot be read). */
  hostname: string;
  /** When the holder took the lock (ISO 8601). */
  started: string;
  /** A random token: this holder's, never another's. */
  token: string;
}

/**
 * The folder is locked by another live process.
 *
 * @example
 * ```ts
 * import { DirLockedError } from "./lock.ts";
 * import assert from "node:assert/strict";
 *
 * const e = new DirLockedError("runs/a", { pid: 7, hostname: "h", started: "2026-01-01T00:00:00.000Z", token: "t" });
 * assert.match(e.message, /Cannot use "runs\/a": another run holds it: pid 7 on h, started 2026-01-01/);
 * ```
 */
export class DirLockedError extends Error {
  /** Makes the error for `dir`, held by `holder` (null when its lock file could not be read). */
  constructor(
    /** The locked folder. */
    readonly dir: string,
    /** The lock's content. */
    readonly holder: LockInfo | null,
  ) {
    super(
      `Cannot use "${dir}": another run holds it: ${
        holder ? `pid ${holder.pid} on ${holder.hostname}, started ${holder.started}` : "a process (not named yet)"
      } (its lock is "${dir}/${LOCK_FILE}", held while that process lives)`,
    );
    this.name = "DirLockedError";
  }
  /** The exit code of a command that stops on this error: 2, as for a usage error (the folder is in use). */
  readonly exitCode = 2;
}

/** The host name: Deno's when the sys permission is granted, else /etc/hostname, else "unknown". */
function hostname(): string {
  try {
    if (Deno.permissions.querySync({ name: "sys", kind: "hostname" }).state === "granted") return Deno.hostname();
  } catch { /* not available */ }
  try {
    return Deno.readTextFileSync("/etc/hostname").trim() || "unknown";
  } catch {
    return "unknown";
  }
}

function parseLock(text: string): LockInfo | null {
  try {
    const v = JSON.parse(text);
    if (
      typeof v === "object" && v !== null && Number.isSafeInteger(v.pid) && typeof v.hostname === "string" &&
      typeof v.started === "string" && typeof v.token === "string"
    ) {
      return v;
    }
  } catch { /* not a lock */ }
  return null;
}

function randomToken(): string {
  return Array.from(crypto.getRandomValues(new Uint8Array(12)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function writeAll(file: Deno.FsFile, text: string): void {
  const bytes = new TextEncoder().encode(text);
  file.seekSync(0, Deno.SeekMode.Start);
  file.truncateSync(0);
  for (let n = 0; n < bytes.length;) n += file.writeSync(bytes.subarray(n));
}

function readAll(file: Deno.FsFile): string {
  const buf = new Uint8Array(4096);
  file.seekSync(0, Deno.SeekMode.Start);
  let n = 0;
  for (;;) {
    const r = file.readSync(buf.subarray(n));
    if (r === null || r === 0 || n + r >= buf.length) return new TextDecoder().decode(buf.subarray(0, n + (r ?? 0)));
    n += r;
  }
}

/** Tries the exclusive flock; null when the file system has none. */
function tryFlock(file: Deno.FsFile): boolean | null {
  try {
    return file.tryLockSync(true);
  } catch {
    return null;
  }
}

/** Opens the existing lock file without following a link; null when it is gone. */
function openExisting(path: string, dir: string): Deno.FsFile | null {
  let seen: Deno.FileInfo;
  try {
    seen = Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  if (!seen.isFile) {
    throw new Error(
      `Cannot use "${dir}": its lock "${path}" is ${seen.isSymlink ? "a symbolic link" : "not a regular file"}; ` +
        `remove it`,
    );
  }
  let file: Deno.FsFile;
  try {
    file = Deno.openSync(path, { read: true, write: true });
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const now = file.statSync();
  if (now.ino !== seen.ino || now.dev !== seen.dev) {
    file.close();
    return null; // replaced meanwhile: look again
  }
  return file;
}

/** Whether `path` still names the file open as `file`. */
function stillNames(path: string, file: Deno.FsFile): boolean {
  try {
    const a = Deno.lstatSync(path), b = file.statSync();
    return a.ino === b.ino && a.dev === b.dev;
  } catch {
    return false;
  }
}

/**
 * A held lock on a folder (see the module docs).
 *
 * @example
 * ```ts
 * import { DirLock } from "./lock.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const lock = DirLock.acquire(dir);
 * assert.equal(lock.info.pid, Deno.pid);
 * lock.release();
 * lock.release(); // harmless
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export class DirLock implements Disposable {
  /** The folder. */
  readonly dir: string;
  /** The lock file's path. */
  readonly path: string;
  /** What the lock file holds. */
  readonly info: LockInfo;
  #file: Deno.FsFile | null;

  private constructor(dir: string, path: string, info: LockInfo, file: Deno.FsFile) {
    this.dir = dir;
    this.path = path;
    this.info = info;
    this.#file = file;
  }

  /**
   * Takes the lock of `dir` (which must exist), or throws {@linkcode DirLockedError}.
   *
   * @param dir The folder.
   * @param options `say` receives the one-line message when a stale lock is taken over (default `console.error`).
   * @returns The held lock.
   *
   * @example
   * ```ts
   * import { DirLock } from "./lock.ts";
   * import assert from "node:assert/strict";
   *
   * const dir = await Deno.makeTempDir();
   * // A lock file that no live process holds (its holder died) is taken over.
   * const dead = { pid: 4194305, hostname: "h", started: "2026-01-01T00:00:00.000Z", token: "x" };
   * Deno.writeTextFileSync(`${dir}/run.lock`, JSON.stringify(dead));
   * const said: string[] = [];
   * using lock = DirLock.acquire(dir, { say: (s) => said.push(s) });
   * assert.match(said[0], /took over the stale lock .* of pid 4194305/);
   * assert.equal(JSON.parse(Deno.readTextFileSync(`${dir}/run.lock`)).pid, Deno.pid);
   * lock.release();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  static acquire(dir: string, options: { say?: (line: string) => void } = {}): DirLock {
    const say = options.say ?? console.error;
    const path = `${dir}/${LOCK_FILE}`;
    const info: LockInfo = {
      pid: Deno.pid,
      hostname: hostname(),
      started: new Date().toISOString(),
      token: randomToken(),
    };
    const content = JSON.stringify(info) + "\n";
    const cannot = (e: unknown): never => {
      throw new Error(`Cannot use "${dir}": cannot create its lock: ${(e as Error).message}`, { cause: e });
    };
    for (let attempt = 0; attempt < 8; attempt++) {
      // A new lock: written and flock-ed under a temporary name, then linked to the lock's name.
      const tmp = `${dir}/.${LOCK_FILE}.${randomToken()}.tmp`;
      let file: Deno.FsFile | null = null;
      try {
        file = Deno.openSync(tmp, { read: true, write: true, createNew: true, mode: 0o644 });
        tryFlock(file);
        writeAll(file, content);
        Deno.linkSync(tmp, path);
        const lock = new DirLock(dir, path, info, file);
        file = null;
        return lock;
      } catch (e) {
        if (!(e instanceof Deno.errors.AlreadyExists || e instanceof Deno.errors.NotFound)) cannot(e);
      } finally {
        file?.close();
        try {
          Deno.removeSync(tmp);
        } catch { /* gone */ }
      }
      // The name exists: is its holder alive?
      const existing = openExisting(path, dir);
      if (existing === null) continue;
      const free = tryFlock(existing);
      if (free !== true) {
        const holder = parseLock(readAll(existing));
        existing.close();
        if (free === false) throw new DirLockedError(dir, holder);
        throw new Error(
          `Cannot use "${dir}": its lock "${path}" exists and this file system cannot tell whether its holder ` +
            `(pid ${holder?.pid ?? "?"}) still runs; delete it only if no run uses the folder`,
        );
      }
      // No process holds it: its holder is gone. Take it over in place, if it is still the lock's file.
      if (!stillNames(path, existing)) {
        existing.close();
        continue;
      }
      const old = parseLock(readAll(existing));
      writeAll(existing, content);
      say(
        `deno-gan: took over the stale lock "${path}" of ${
          old ? `pid ${old.pid} on ${old.hostname} (started ${old.started})` : "an unknown process"
        }: no process holds it any more`,
      );
      return new DirLock(dir, path, info, existing);
    }
    throw new Error(`Cannot use "${dir}": its lock "${path}" kept changing; is another run starting?`);
  }

  /**
   * Removes the lock file (while still holding the flock, and only if it is still this holder's), then lets go.
   * Harmless when called again.
   *
   * @example
   * ```ts
   * import { DirLock } from "./lock.ts";
   *
   * const dir = await Deno.makeTempDir();
   * DirLock.acquire(dir).release();
   * await Deno.remove(dir, { recursive: true });
   * ```
   */
  release(): void {
    const file = this.#file;
    if (file === null) return;
    this.#file = null;
    try {
      if (stillNames(this.path, file) && parseLock(readAll(file))?.token === this.info.token) {
        Deno.removeSync(this.path);
      }
    } catch { /* nothing to remove */ }
    file.close();
  }

  /** Same as {@link release}. */
  [Symbol.dispose](): void {
    this.release();
  }
}
