/**
 * Prebuilt native libraries for users who import `mod.ts` from an http(s) URL: the release naming, the SHA-256
 * manifest that ships with the code (`native/manifest.json`), the cache in Deno's cache directory, and a download
 * that is checked against the manifest before anything is kept. Nothing here opens a library: {@link fetchLibrary}
 * returns the path of a verified file and `ffi.ts` opens it.
 *
 * Release files are named `<library stem>-<os>-<arch><ext>` after `Deno.build.os` and `Deno.build.arch`:
 * `libgan_native-linux-x86_64.so`, `libgan_native-darwin-aarch64.dylib`, `gan_native-windows-x86_64.dll`. The
 * manifest is keyed by `<os>-<arch>`:
 *
 * ```json
 * { "version": "0.1.0",
 *   "files": { "linux-x86_64": { "file": "libgan_native-linux-x86_64.so", "size": 1296568, "sha256": "…" } } }
 * ```
 *
 * A verified library is cached as `<cache root>/<version>/<sha256>/<library file name>`, where the cache root is
 * `GAN_NATIVE_CACHE` when set, else `<Deno's cache directory>/deno-gan` (see {@link denoCacheDir}).
 *
 * @example
 * ```ts
 * import { fetchLibrary } from "./fetch.ts";
 * import { sha256Hex } from "../io/download.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([1, 2, 3]);
 * const manifest = {
 *   version: "0.1.0",
 *   files: { "linux-x86_64": { file: "libgan_native-linux-x86_64.so", size: 3, sha256: await sha256Hex(bytes) } },
 * };
 * const cacheRoot = await Deno.makeTempDir();
 * const fetchImpl = () => Promise.resolve(new Response(bytes)); // a stand-in server: no network
 * const got = await fetchLibrary({
 *   manifest,
 *   baseUrl: "https://example.invalid/release/",
 *   cacheRoot,
 *   key: "linux-x86_64",
 *   fileName: "libgan_native.so",
 *   fetchImpl,
 * });
 * assert.equal(got.source, "download");
 * assert.deepEqual(await Deno.readFile(got.path), bytes);
 * await Deno.remove(cacheRoot, { recursive: true });
 * ```
 *
 * @module
 */

import { writeFileAtomic } from "../io/atomic.ts";
import { DownloadError, downloadVerified, type FetchImpl, sha256Hex } from "../io/download.ts";

/** Every message of a failed library load starts with this. */
const PREFIX = "Cannot load the native library:";

/**
 * The environment variables read while locating the library, for `--allow-env=` (`LOCALAPPDATA` is read on Windows
 * only, `XDG_CACHE_HOME` on Linux and the BSDs only; `HOME` elsewhere).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LIBRARY_ENV_VARS } from "./fetch.ts";
 * assert.ok(LIBRARY_ENV_VARS.includes("GAN_NATIVE_LIB"));
 * ```
 */
export const LIBRARY_ENV_VARS: readonly string[] = [
  "GAN_NATIVE_LIB",
  "GAN_NATIVE_URL",
  "GAN_NATIVE_CACHE",
  "DENO_DIR",
  "XDG_CACHE_HOME",
  "HOME",
  "LOCALAPPDATA",
];

/**
 * Reads an environment variable; empty means unset. Without the permission to read it, throws an error naming the
 * `--allow-env=` flag to add.
 *
 * @param name The variable.
 * @returns Its value, or undefined when unset or empty.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readEnv } from "./fetch.ts";
 * const lib = readEnv("GAN_NATIVE_LIB"); // needs --allow-env=GAN_NATIVE_LIB
 * assert.ok(lib === undefined || lib.length > 0);
 * ```
 */
export function readEnv(name: string): string | undefined {
  try {
    return Deno.env.get(name) || undefined;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
      throw new Error(
        `${PREFIX} reading the environment variable ${name} needs env permission: run with ` +
          `--allow-env=${LIBRARY_ENV_VARS.join(",")} (${e.message})`,
        { cause: e },
      );
    }
    throw e;
  }
}

/**
 * The file name of the library on an OS, as cargo names it.
 *
 * @param os An OS name as in `Deno.build.os` (default this one).
 * @returns `libgan_native.so`, `libgan_native.dylib` or `gan_native.dll`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { libraryFileName } from "./fetch.ts";
 * assert.ok(libraryFileName("darwin") === "libgan_native.dylib");
 * assert.ok(libraryFileName("windows") === "gan_native.dll");
 * ```
 */
export function libraryFileName(os: typeof Deno.build.os = Deno.build.os): string {
  if (os === "windows") return "gan_native.dll";
  if (os === "darwin") return "libgan_native.dylib";
  return "libgan_native.so";
}

/**
 * The manifest key of a platform: `<os>-<arch>` as in `Deno.build`.
 *
 * @param os An OS name (default this one).
 * @param arch An architecture (default this one).
 * @returns e.g. `linux-x86_64`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { platformKey } from "./fetch.ts";
 * assert.ok(platformKey("darwin", "aarch64") === "darwin-aarch64");
 * ```
 */
export function platformKey(
  os: typeof Deno.build.os = Deno.build.os,
  arch: typeof Deno.build.arch = Deno.build.arch,
): string {
  return `${os}-${arch}`;
}

/**
 * The name of a platform's file in a release folder: the library's file name with `-<os>-<arch>` before its extension.
 *
 * @param os An OS name (default this one).
 * @param arch An architecture (default this one).
 * @returns e.g. `libgan_native-linux-x86_64.so`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { releaseFileName } from "./fetch.ts";
 * assert.ok(releaseFileName("linux", "x86_64") === "libgan_native-linux-x86_64.so");
 * assert.ok(releaseFileName("windows", "x86_64") === "gan_native-windows-x86_64.dll");
 * ```
 */
export function releaseFileName(
  os: typeof Deno.build.os = Deno.build.os,
  arch: typeof Deno.build.arch = Deno.build.arch,
): string {
  const name = libraryFileName(os);
  const dot = name.lastIndexOf(".");
  return `${name.slice(0, dot)}-${os}-${arch}${name.slice(dot)}`;
}

/**
 * One platform's file in a release.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ManifestEntry } from "./fetch.ts";
 * const e: ManifestEntry = { file: "libgan_native-linux-x86_64.so", size: 3, sha256: "ab".repeat(32) };
 * assert.ok(e.size === 3);
 * ```
 */
export interface ManifestEntry {
  /** The file name in the release folder (no directories). */
  file: string;
  /** Its size in bytes. */
  size: number;
  /** Its SHA-256, 64 lowercase hex digits. */
  sha256: string;
  /** The Rust target it was built for, e.g. `aarch64-unknown-linux-gnu` (written by `deno task release`). */
  target?: string;
}

/**
 * The release manifest (`native/manifest.json`): the crate version and one entry per `<os>-<arch>`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReleaseManifest } from "./fetch.ts";
 * const m: ReleaseManifest = { version: "0.1.0", files: {} };
 * assert.ok(Object.keys(m.files).length === 0);
 * ```
 */
export interface ReleaseManifest {
  /** The version of the `gan_native` crate the files were built from. */
  version: string;
  /** Files by platform key (see {@link platformKey}). */
  files: Record<string, ManifestEntry>;
}

/**
 * Checks that a value is a well-formed manifest: a version usable as a folder name, platform keys like
 * `linux-x86_64`, plain file names (no `/`, `\` or leading `.`), positive integer sizes, and SHA-256 digests of 64
 * lowercase hex digits (and, when present, a Rust target triple).
 *
 * @param value The parsed JSON.
 * @param origin Where it came from, for messages.
 * @returns The same value, typed.
 *
 * @example
 * ```ts
 * import { parseManifest } from "./fetch.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => parseManifest({ version: "0.1.0", files: { "linux-x86_64": { file: "../x.so", size: 1, sha256: "" } } }),
 *   /files\["linux-x86_64"\]\.file must be a plain file name/,
 * );
 * ```
 */
export function parseManifest(value: unknown, origin = "the release manifest"): ReleaseManifest {
  const bad = (what: string) => new Error(`${PREFIX} ${origin} is malformed: ${what}`);
  if (typeof value !== "object" || value === null) throw bad("not a JSON object");
  const { version, files } = value as Record<string, unknown>;
  if (typeof version !== "string" || !/^[0-9A-Za-z][0-9A-Za-z.+_-]*$/.test(version)) {
    throw bad(`version must be a version string like "0.1.0", got ${JSON.stringify(version)}`);
  }
  if (typeof files !== "object" || files === null || Array.isArray(files)) throw bad("files must be an object");
  for (const [key, entry] of Object.entries(files)) {
    const at = `files[${JSON.stringify(key)}]`;
    if (!/^[a-z0-9_]+-[a-z0-9_]+$/.test(key)) throw bad(`${at}: the key must be <os>-<arch>, like "linux-x86_64"`);
    if (typeof entry !== "object" || entry === null) throw bad(`${at} must be an object`);
    const { file, size, sha256 } = entry as Record<string, unknown>;
    if (typeof file !== "string" || !/^[A-Za-z0-9_+-][A-Za-z0-9._+-]*$/.test(file)) {
      throw bad(`${at}.file must be a plain file name, got ${JSON.stringify(file)}`);
    }
    if (typeof size !== "number" || !Number.isSafeInteger(size) || size <= 0) {
      throw bad(`${at}.size must be a positive integer, got ${JSON.stringify(size)}`);
    }
    if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) {
      throw bad(`${at}.sha256 must be 64 lowercase hex digits, got ${JSON.stringify(sha256)}`);
    }
    const { target } = entry as Record<string, unknown>;
    if (target !== undefined && (typeof target !== "string" || !/^[a-z0-9_]+(-[a-z0-9_.]+){1,3}$/.test(target))) {
      throw bad(`${at}.target must be a Rust target like "aarch64-unknown-linux-gnu", got ${JSON.stringify(target)}`);
    }
  }
  return value as ReleaseManifest;
}

/**
 * The manifest's entry for a platform; when there is none, an error that lists the platforms it has.
 *
 * @param manifest A parsed manifest.
 * @param key The platform key (default this platform's).
 * @returns The entry.
 *
 * @example
 * ```ts
 * import { manifestEntry } from "./fetch.ts";
 * import assert from "node:assert/strict";
 *
 * const m = { version: "0.1.0", files: { "linux-x86_64": { file: "a.so", size: 1, sha256: "0".repeat(64) } } };
 * assert.equal(manifestEntry(m, "linux-x86_64").file, "a.so");
 * assert.throws(() => manifestEntry(m, "darwin-aarch64"), /has no build for darwin-aarch64; it has: linux-x86_64/);
 * ```
 */
export function manifestEntry(manifest: ReleaseManifest, key: string = platformKey()): ManifestEntry {
  const entry = Object.hasOwn(manifest.files, key) ? manifest.files[key] : undefined;
  if (entry) return entry;
  const have = Object.keys(manifest.files).sort();
  throw new Error(
    `${PREFIX} the release manifest (version ${manifest.version}) has no build for ${key}; it has: ` +
      `${have.length ? have.join(", ") : "none"}. Run "deno task release" on ${key} to add one, or set ` +
      `GAN_NATIVE_LIB to a library built with "cargo build --release" in native/ of a checkout`,
  );
}

/**
 * Deno's cache directory, as Deno itself picks it: `DENO_DIR` when set, else `$XDG_CACHE_HOME/deno` or
 * `~/.cache/deno` on Linux, `~/Library/Caches/deno` on macOS, `%LOCALAPPDATA%/deno` on Windows.
 *
 * @param get Reads an environment variable (default {@link readEnv}).
 * @param os The OS (default this one).
 * @returns The directory (it need not exist).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { denoCacheDir } from "./fetch.ts";
 * const env: Record<string, string> = { HOME: "/home/me" };
 * assert.ok(denoCacheDir((k) => env[k], "linux") === "/home/me/.cache/deno");
 * assert.ok(denoCacheDir((k) => env[k], "darwin") === "/home/me/Library/Caches/deno");
 * assert.ok(denoCacheDir((k) => ({ DENO_DIR: "/d" } as Record<string, string>)[k], "linux") === "/d");
 * ```
 */
export function denoCacheDir(
  get: (name: string) => string | undefined = readEnv,
  os: typeof Deno.build.os = Deno.build.os,
): string {
  const denoDir = get("DENO_DIR");
  if (denoDir) return denoDir;
  if (os === "windows") {
    const local = get("LOCALAPPDATA");
    if (local) return `${local}/deno`;
  } else if (os === "darwin") {
    const home = get("HOME");
    if (home) return `${home}/Library/Caches/deno`;
  } else {
    const xdg = get("XDG_CACHE_HOME");
    if (xdg) return `${xdg}/deno`;
    const home = get("HOME");
    if (home) return `${home}/.cache/deno`;
  }
  throw new Error(
    `${PREFIX} cannot tell where Deno's cache directory is (DENO_DIR, ` +
      `${os === "windows" ? "LOCALAPPDATA" : os === "darwin" ? "HOME" : "XDG_CACHE_HOME and HOME"} are unset); ` +
      `set GAN_NATIVE_CACHE to a directory for the downloaded library`,
  );
}

/**
 * The cache root for downloaded libraries: `GAN_NATIVE_CACHE` when set, else `<Deno's cache directory>/deno-gan`.
 *
 * @param get Reads an environment variable (default {@link readEnv}).
 * @param os The OS (default this one).
 * @returns The directory (it need not exist).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeCacheRoot } from "./fetch.ts";
 * const env: Record<string, string> = { DENO_DIR: "/tmp/deno" };
 * assert.ok(nativeCacheRoot((k) => env[k]) === "/tmp/deno/deno-gan");
 * ```
 */
export function nativeCacheRoot(
  get: (name: string) => string | undefined = readEnv,
  os: typeof Deno.build.os = Deno.build.os,
): string {
  const own = get("GAN_NATIVE_CACHE");
  if (own) return own;
  return `${denoCacheDir(get, os)}/deno-gan`;
}

/**
 * Options of {@link fetchLibrary}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FetchLibraryOptions } from "./fetch.ts";
 * const o: Partial<FetchLibraryOptions> = { baseUrl: "https://example.invalid/release/" };
 * assert.ok(o.baseUrl !== undefined);
 * ```
 */
export interface FetchLibraryOptions {
  /** The manifest the file must match. */
  manifest: ReleaseManifest;
  /** The release folder's URL; the entry's `file` is resolved against it (a missing trailing `/` is added). */
  baseUrl: string | URL;
  /** Where the base URL came from, for messages (e.g. `GAN_NATIVE_URL`). */
  baseUrlSource?: string;
  /** The cache root (see {@link nativeCacheRoot}). */
  cacheRoot: string;
  /** The platform key (default this platform's). */
  key?: string;
  /** The cached file's name (default {@link libraryFileName} of this OS). */
  fileName?: string;
  /** The `fetch` to use (default the global one); examples and tests pass their own. */
  fetchImpl?: FetchImpl;
}

/**
 * A verified library on disk.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { FetchedLibrary } from "./fetch.ts";
 * const f: FetchedLibrary = {
 *   path: "/c/x.so",
 *   openPath: "/c/.open-1.so",
 *   url: "https://h/r/x.so",
 *   sha256: "0".repeat(64),
 *   size: 1,
 *   source: "cache",
 * };
 * assert.ok(f.source === "cache");
 * ```
 */
export interface FetchedLibrary {
  /** The verified file in the cache. */
  path: string;
  /**
   * A fresh private copy of the verified bytes, to open (and delete once open); absent when the cache is read-only
   * (no write permission for it), where `path` itself is opened.
   */
  openPath?: string;
  /** Where it was (or would have been) downloaded from. */
  url: string;
  /** Its SHA-256 (equal to the manifest's). */
  sha256: string;
  /** Its size in bytes (equal to the manifest's). */
  size: number;
  /** `cache` when a verified copy was already cached, `download` when it was downloaded now. */
  source: "cache" | "download";
}

function permissionHint(e: unknown, what: string, flags: string): unknown {
  if (e instanceof Deno.errors.NotCapable || e instanceof Deno.errors.PermissionDenied) {
    return new Error(`${PREFIX} ${what} needs ${flags}: ${e.message}`, { cause: e });
  }
  return e;
}

async function removeQuietly(path: string): Promise<void> {
  try {
    await Deno.remove(path);
  } catch {
    // already gone, or a non-empty directory
  }
}

/**
 * Makes `dir` (and its missing parents below `root`) private to this user (mode 0700), and refuses a folder on the
 * way that another user owns or that others may write: the folder a verified library is opened from must not be
 * writable by anyone but the user (as ssh refuses a key file that others can read).
 */
async function privateDir(root: string, dir: string): Promise<void> {
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  await checkPrivate(root, dir, await ownUid(dir));
}

/** Refuses a folder from `dir` up to `root` that is a link, that another user owns, or that others may write. */
async function checkPrivate(root: string, dir: string, uid: number | null): Promise<void> {
  for (let d = dir; d.length >= root.length; d = d.slice(0, Math.max(d.lastIndexOf("/"), 0))) {
    const st = await Deno.lstat(d);
    if (st.isSymlink) throw new Error(`${PREFIX} the cache folder "${d}" is a symbolic link; remove it`);
    const mode = st.mode ?? 0;
    if (uid !== null && st.uid !== null && st.uid !== uid) {
      throw new Error(`${PREFIX} the cache folder "${d}" belongs to user ${st.uid}, not to this user (${uid})`);
    }
    if ((mode & 0o022) !== 0) {
      throw new Error(
        `${PREFIX} the cache folder "${d}" has mode ${(mode & 0o777).toString(8)}: others may write to it; ` +
          `run "chmod 700 ${d}" (or remove it) and try again`,
      );
    }
    if (d === root) break;
  }
}

/** Whether this process may write to `path`, asked without a prompt. */
function mayWrite(path: string): boolean {
  try {
    return Deno.permissions.querySync({ name: "write", path }).state === "granted";
  } catch {
    return false;
  }
}

/** This process's user id: from Deno.uid() when --allow-sys=uid is granted, else the owner of a probe file in `dir`. */
async function ownUid(dir: string): Promise<number | null> {
  try {
    return Deno.uid();
  } catch {
    const probe = await Deno.makeTempFile({ dir, prefix: ".uid-" });
    try {
      return (await Deno.lstat(probe)).uid;
    } finally {
      await Deno.remove(probe);
    }
  }
}

/**
 * Writes the verified bytes to a fresh file that only this process created (createNew, mode 0700) in a private
 * folder, so the file that will be opened holds exactly the bytes that were hashed: nobody but the user can swap it
 * between the check and the open. The loader deletes it once the library is open.
 */
async function privateCopy(dir: string, fileName: string, bytes: Uint8Array): Promise<string> {
  const dot = fileName.lastIndexOf(".");
  const path = `${dir}/.open-${crypto.randomUUID()}${dot > 0 ? fileName.slice(dot) : ""}`;
  await Deno.writeFile(path, bytes, { createNew: true, mode: 0o700 });
  return path;
}

/**
 * Returns a verified copy of this platform's library, from the cache or downloaded now.
 *
 * The cache folders are created private (mode 0700); a folder on the way that another user owns or that others may
 * write is refused. The cached file (`<cacheRoot>/<version>/<sha256>/<fileName>`) is read once and hashed in memory
 * on every call; when it does not match the manifest it is deleted and downloaded again. A download is held in
 * memory, cut off as soon as it exceeds the manifest's size, and compared with the manifest's size and SHA-256; only
 * a match is written to the cache (atomically). A mismatch throws, e.g. `Cannot load the native library: downloaded
 * "…/libgan_native-linux-x86_64.so" has SHA-256 ab12…, the manifest expects cd34…; nothing was written`.
 *
 * The verified bytes are also written to a fresh private file, `openPath`, which is what the loader opens (and then
 * deletes): the bytes that were hashed are the bytes that are opened. Without write permission for the cache (a
 * prefetched library used offline) a verified cached copy is opened in place instead, once its folders are checked
 * to be this user's (`Deno.uid()`, so `--allow-sys=uid`) and writable by no one else.
 *
 * @param opts The manifest, the release URL, the cache root.
 * @returns The verified file.
 *
 * @example A tampered download is refused
 * ```ts
 * import { fetchLibrary } from "./fetch.ts";
 * import assert from "node:assert/strict";
 *
 * const manifest = { version: "0.1.0", files: { "linux-x86_64": { file: "lib.so", size: 3, sha256: "0".repeat(64) } } };
 * const cacheRoot = await Deno.makeTempDir();
 * await assert.rejects(
 *   fetchLibrary({
 *     manifest,
 *     baseUrl: "https://example.invalid/release/",
 *     cacheRoot,
 *     key: "linux-x86_64",
 *     fetchImpl: () => Promise.resolve(new Response(new Uint8Array([1, 2, 3]))),
 *   }),
 *   /downloaded "https:\/\/example.invalid\/release\/lib.so" has SHA-256 [0-9a-f]{64}, the manifest expects 0{64}; nothing was written/,
 * );
 * assert.deepEqual([...Deno.readDirSync(cacheRoot)], []);
 * await Deno.remove(cacheRoot, { recursive: true });
 * ```
 */
export async function fetchLibrary(opts: FetchLibraryOptions): Promise<FetchedLibrary> {
  const { manifest, cacheRoot } = opts;
  const entry = manifestEntry(manifest, opts.key ?? platformKey());
  const base = new URL(opts.baseUrl);
  if (!base.pathname.endsWith("/")) base.pathname += "/";
  const url = new URL(entry.file, base).href;
  const versionDir = `${cacheRoot}/${manifest.version}`;
  const dir = `${versionDir}/${entry.sha256}`;
  const fileName = opts.fileName ?? libraryFileName();
  const path = `${dir}/${fileName}`;
  const cacheFlags = `--allow-read=${cacheRoot} --allow-write=${cacheRoot} (and --allow-ffi=${cacheRoot} to open it)`;
  const cacheWhat = `the library cache "${cacheRoot}" (GAN_NATIVE_CACHE, else <Deno's cache dir>/deno-gan)`;
  const verified = (bytes: Uint8Array, source: "cache" | "download") =>
    privateCopy(dir, fileName, bytes).then((openPath) => ({
      path,
      openPath,
      url,
      sha256: entry.sha256,
      size: entry.size,
      source,
    }));

  if (!mayWrite(cacheRoot)) {
    // A read-only cache (no --allow-write for it, e.g. offline after `deno task prefetch`): a verified copy is
    // opened where it is. Its folders are checked first to be this user's and writable by no one else, so nobody
    // else can swap the file between the hash below and the open. Anything else falls through to a download, whose
    // write then fails with the flags to add.
    const roFlags = `--allow-read=${cacheRoot} --allow-ffi=${cacheRoot} and --allow-sys=uid (a cache used without ` +
      `--allow-write; with it, no --allow-sys is needed)`;
    try {
      const cached = await readIfExists(path);
      if (cached) {
        let uid: number;
        try {
          uid = Deno.uid() ?? -1;
        } catch (e) {
          throw permissionHint(e, `checking that the read-only ${cacheWhat} is this user's`, roFlags);
        }
        await checkPrivate(cacheRoot, dir, uid < 0 ? null : uid);
        const bytes = await readIfExists(path); // read again after the check: these are the bytes opened
        if (bytes && bytes.length === entry.size && (await sha256Hex(bytes)) === entry.sha256) {
          return { path, url, sha256: entry.sha256, size: entry.size, source: "cache" };
        }
      }
    } catch (e) {
      throw permissionHint(e, cacheWhat, roFlags);
    }
  }

  try {
    await privateDir(cacheRoot, dir);
    const cached = await readIfExists(path);
    if (cached && cached.length === entry.size && (await sha256Hex(cached)) === entry.sha256) {
      return await verified(cached, "cache");
    }
    if (cached) await Deno.remove(path); // corrupted in the cache: fetch it again
  } catch (e) {
    throw permissionHint(e, cacheWhat, cacheFlags);
  }

  const from = `the release folder ${base.href} (${opts.baseUrlSource ?? "given"})`;
  let bytes: Uint8Array;
  try {
    bytes = await downloadVerified(url, { sha256: entry.sha256, size: entry.size, expects: "the manifest expects" }, {
      fetchImpl: opts.fetchImpl,
    });
  } catch (e) {
    await removeQuietly(dir); // only when empty
    await removeQuietly(versionDir); // only when empty
    const hinted = permissionHint(
      e instanceof DownloadError ? e.cause : e,
      `downloading "${url}"`,
      `--allow-net=${base.host}`,
    );
    if (e instanceof DownloadError && hinted !== e.cause) throw hinted;
    if (e instanceof DownloadError && (e.failure === "network" || e.failure === "http")) {
      const hint = e.failure === "http"
        ? '; set GAN_NATIVE_URL to a folder that has the files of "deno task release", or GAN_NATIVE_LIB to a library'
        : "";
      throw new Error(`${PREFIX} ${e.message.replace(/ failed: /, ` from ${from} failed: `)}${hint}`, { cause: e });
    }
    throw new Error(`${PREFIX} ${(e as Error).message}; nothing was written`, { cause: e });
  }
  try {
    await writeFileAtomic(path, bytes);
    return await verified(bytes, "download");
  } catch (e) {
    throw permissionHint(e, cacheWhat, cacheFlags);
  }
}

async function readIfExists(path: string): Promise<Uint8Array | null> {
  try {
    return await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}
