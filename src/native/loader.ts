/**
 * Where the native library is found (nothing here opens it: `ffi.ts` does). In this order: an explicit path or
 * GAN_NATIVE_LIB; the checkout's native/target/release when this module is a local file (built by `deno task build`;
 * a missing or stale build is an error that names that command, unless GAN_NATIVE_BUILD=1 asks for an automatic
 * build); a prebuilt library downloaded from the release folder and checked against `native/manifest.json` when this
 * module was imported from an http(s) URL (`./fetch.ts`); else an error that says how to get one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { locateLibrary } from "./loader.ts";
 * assert.equal(locateLibrary({ path: "/opt/gan/libgan_native.so" }).source, "option");
 * ```
 *
 * @module
 */

import shippedManifest from "../../native/manifest.json" with { type: "json" };
import {
  fetchLibrary,
  libraryFileName,
  manifestEntry,
  nativeCacheRoot,
  parseManifest,
  platformKey,
  readEnv,
} from "./fetch.ts";
import type { FetchImpl } from "../io/download.ts";

/**
 * Where the library came from, for error messages and `info()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LibraryLocation } from "./loader.ts";
 * const where: LibraryLocation = { path: "/opt/libgan_native.so", source: "env" };
 * assert.ok(where.source === "env");
 * ```
 */
export interface LibraryLocation {
  /** The path that was opened. */
  path: string;
  /**
   * How it was found: `option` (an explicit path), `env` (GAN_NATIVE_LIB), `checkout` (native/target/release),
   * `download` (downloaded now from the release folder and verified) or `cache` (a verified cached download).
   */
  source: "env" | "option" | "checkout" | "download" | "cache";
  /** For `download` and `cache`: the release file's URL. */
  url?: string;
  /** For `download` and `cache`: its SHA-256, checked against the manifest before the file was opened. */
  sha256?: string;
  /**
   * For `download` and `cache`: the fresh private copy of the verified bytes that is opened instead of `path` (and
   * deleted once open), so that the bytes opened are the bytes hashed.
   */
  openPath?: string;
}

/**
 * Options for {@link loadLibrary} and {@link loadNativeLibrary}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LoadOptions } from "./loader.ts";
 * const opts: LoadOptions = { releaseUrl: "https://example.com/deno-gan/release/", cacheDir: "/tmp/gan-cache" };
 * assert.ok(opts.path === undefined);
 * ```
 */
export interface LoadOptions {
  /** An explicit path to the library; wins over everything else. */
  path?: string;
  /**
   * In a checkout, build the library with cargo when it is missing or older than its sources, instead of failing
   * with an error that says to run `deno task build` (default: only when GAN_NATIVE_BUILD=1).
   */
  build?: boolean;
  /**
   * URL imports only: the release folder to download from (else GAN_NATIVE_URL, else {@link DEFAULT_RELEASE_URL}:
   * `release/` next to mod.ts on the same host).
   */
  releaseUrl?: string | URL;
  /** URL imports only: the cache root (else GAN_NATIVE_CACHE, else `<Deno's cache directory>/deno-gan`). */
  cacheDir?: string;
}

/**
 * Where a module imported from a URL downloads the prebuilt library from, unless GAN_NATIVE_URL says otherwise: the
 * `release/` folder next to mod.ts on the same host (for `https://host/deno-gan/mod.ts`,
 * `https://host/deno-gan/release/`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DEFAULT_RELEASE_URL } from "./loader.ts";
 * assert.ok(DEFAULT_RELEASE_URL.endsWith("/release/"));
 * ```
 */
export const DEFAULT_RELEASE_URL: string = new URL("../../release/", import.meta.url).href;

/** The manifest's own URL, for messages. */
const MANIFEST_URL = new URL("../../native/manifest.json", import.meta.url).href;

/**
 * The native crate of this checkout (when this module is a local file), else undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkoutCrateDir } from "./loader.ts";
 * assert.ok(checkoutCrateDir()?.endsWith("/native/"));
 * ```
 */
export function checkoutCrateDir(): string | undefined {
  const url = new URL("../../native/", import.meta.url);
  if (url.protocol !== "file:") return undefined;
  return decodeURIComponent(url.pathname);
}

function isRemote(): boolean {
  const { protocol } = new URL(import.meta.url);
  return protocol === "http:" || protocol === "https:";
}

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch (e) {
    if (e instanceof Deno.errors.NotCapable) {
      throw new Error(`Cannot find the native library: reading "${path}" needs --allow-read: ${e.message}`, {
        cause: e,
      });
    }
    return 0;
  }
}

function newestSource(dir: string): number {
  let newest = 0;
  for (const e of Deno.readDirSync(dir)) {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory) newest = Math.max(newest, newestSource(p));
    else newest = Math.max(newest, mtime(p));
  }
  return newest;
}

/**
 * Runs `cargo build --release` in the checkout's crate, failing with cargo's output.
 *
 * @example
 * ```ts
 * import { buildCheckout, checkoutCrateDir } from "./loader.ts";
 * buildCheckout(checkoutCrateDir()!); // a no-op when the library is up to date
 * ```
 */
export function buildCheckout(crate: string): void {
  let out: Deno.CommandOutput;
  // Say so: a first build (wgpu, gemm) takes a minute or two, with cargo's output held until it ends.
  console.error(
    `deno-gan: building the native library (cargo build --release in ${crate}); the first build takes a few minutes`,
  );
  try {
    out = new Deno.Command("cargo", { args: ["build", "--release"], cwd: crate, stdout: "piped", stderr: "piped" })
      .outputSync();
  } catch (e) {
    throw new Error(
      `Cannot build the native library in "${crate}": cargo could not be started (${(e as Error).message}). ` +
        `Install a Rust toolchain (https://rustup.rs) or set GAN_NATIVE_LIB to a built library.`,
    );
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).split("\n").slice(-30).join("\n");
    throw new Error(`Cannot build the native library: cargo build --release failed in "${crate}":\n${err}`);
  }
}

function notFound(reason: string): Error {
  return new Error(
    `Cannot find the native library: this module was loaded from "${import.meta.url}", ${reason}. Get one in one of ` +
      `these ways: set GAN_NATIVE_LIB (or Context's libraryPath option) to a built ${libraryFileName()}; or build it ` +
      `in a checkout of deno-gan ("deno task build", i.e. cargo build --release in native/) and import mod.ts from ` +
      `that checkout; or import mod.ts from an http(s) server that also serves release/ and native/manifest.json ` +
      `made by "deno task release", and call "await loadNativeLibrary()"`,
  );
}

function buildRequested(opts: LoadOptions): boolean {
  if (opts.build !== undefined) return opts.build;
  try {
    return Deno.env.get("GAN_NATIVE_BUILD") === "1";
  } catch {
    return false; // no permission to read it: not asked for
  }
}

function locateCheckout(crate: string, opts: LoadOptions): LibraryLocation {
  const path = `${crate}target/release/${libraryFileName()}`;
  const cargoToml = mtime(`${crate}Cargo.toml`);
  if (cargoToml === 0) {
    if (mtime(path) !== 0) return { path, source: "checkout" };
    throw notFound(`a local file, but "${crate}Cargo.toml" does not exist (this is not a checkout with native/)`);
  }
  const built = mtime(path);
  const stale = built !== 0 && built < Math.max(newestSource(`${crate}src`), cargoToml);
  if (built === 0 || stale) {
    if (buildRequested(opts)) {
      buildCheckout(crate);
    } else {
      throw new Error(
        `Cannot load the native library: "${path}" ${built === 0 ? "does not exist" : "is older than its sources"}; ` +
          `run "deno task build" (cargo build --release in ${crate}), or set GAN_NATIVE_BUILD=1 to build it ` +
          `automatically`,
      );
    }
  }
  return { path, source: "checkout" };
}

/**
 * Finds the library without downloading: an explicit path, then GAN_NATIVE_LIB, then (when this module is a local
 * file) the checkout's native/target/release (see the module doc for a missing or stale build). A module imported from an
 * http(s) URL needs {@link locateLibraryAsync} (through {@link loadNativeLibrary}) to download its library; here it
 * gets an error that says so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { locateLibrary } from "./loader.ts";
 * assert.ok(locateLibrary({ path: "/opt/gan/libgan_native.so" }).source === "option");
 * ```
 */
export function locateLibrary(opts: LoadOptions = {}): LibraryLocation {
  if (opts.path) return { path: opts.path, source: "option" };
  const env = readEnv("GAN_NATIVE_LIB");
  if (env) return { path: env, source: "env" };
  const crate = checkoutCrateDir();
  if (crate) return locateCheckout(crate, opts);
  if (isRemote()) {
    throw new Error(
      `Cannot load the native library: this module was imported from "${import.meta.url}", so the prebuilt ` +
        `library for ${platformKey()} must be downloaded and checked against the manifest first: call ` +
        `"await loadNativeLibrary()" (exported by mod.ts) before the first Context, or set GAN_NATIVE_LIB to a ` +
        `library you built`,
    );
  }
  throw notFound("which is neither a local file nor an http(s) URL");
}

/**
 * Finds the library, downloading it when needed, in this order:
 * 1. an explicit path (`opts.path`), or GAN_NATIVE_LIB;
 * 2. when this module is a local file (a checkout): native/target/release (built by `deno task build`);
 * 3. when this module was imported from an http(s) URL: the prebuilt library for `Deno.build.os`-`Deno.build.arch`
 *    from the release folder (`opts.releaseUrl`, else GAN_NATIVE_URL, else {@link DEFAULT_RELEASE_URL}), checked
 *    against the SHA-256 manifest `native/manifest.json` that comes from the same origin as this code before it is
 *    ever opened, and cached in `<cache root>/<version>/<sha256>/` (cache root: `opts.cacheDir`, else
 *    GAN_NATIVE_CACHE, else `<Deno's cache directory>/deno-gan`); a cached copy is re-hashed every time;
 * 4. otherwise an error that says how to get a library.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { locateLibraryAsync } from "./loader.ts";
 * const where = await locateLibraryAsync(); // in a checkout: native/target/release, no network
 * assert.ok(["checkout", "env"].includes(where.source));
 * ```
 */
export async function locateLibraryAsync(opts: LoadOptions = {}): Promise<LibraryLocation> {
  if (opts.path || readEnv("GAN_NATIVE_LIB") || checkoutCrateDir() || !isRemote()) return locateLibrary(opts);
  const manifest = parseManifest(shippedManifest, `the manifest "${MANIFEST_URL}"`);
  const { baseUrl, baseUrlSource } = releaseBase(opts.releaseUrl);
  const cacheRoot = opts.cacheDir ?? nativeCacheRoot();
  const got = await fetchLibrary({ manifest, baseUrl, baseUrlSource, cacheRoot });
  return { path: got.path, openPath: got.openPath, source: got.source, url: got.url, sha256: got.sha256 };
}

/** The release folder: the option, else GAN_NATIVE_URL, else {@link DEFAULT_RELEASE_URL}; and where it came from. */
function releaseBase(option: string | URL | undefined): { baseUrl: URL; baseUrlSource: string } {
  const envUrl = option === undefined ? readEnv("GAN_NATIVE_URL") : undefined;
  const [rawBase, baseUrlSource] = option !== undefined
    ? [option, "from the releaseUrl option"]
    : envUrl
    ? [envUrl, "from GAN_NATIVE_URL"]
    : [DEFAULT_RELEASE_URL, "the default: release/ next to mod.ts; set GAN_NATIVE_URL to change it"];
  try {
    return { baseUrl: new URL(rawBase), baseUrlSource };
  } catch {
    throw new Error(`Cannot load the native library: the release URL "${rawBase}" (${baseUrlSource}) is not a URL`);
  }
}

/**
 * Options of {@link prefetchNativeLibrary}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PrefetchOptions } from "./loader.ts";
 * const o: PrefetchOptions = { platform: "linux-aarch64", releaseUrl: "https://example.com/deno-gan/release/" };
 * assert.ok(o.cacheDir === undefined);
 * ```
 */
export interface PrefetchOptions {
  /**
   * The platform, `<os>-<arch>` as in `Deno.build` (default this one's). Another platform's library can be fetched
   * into a cache folder (`cacheDir` or GAN_NATIVE_CACHE) that is then copied to a machine of that platform.
   */
  platform?: string;
  /** The release folder (else GAN_NATIVE_URL, else {@link DEFAULT_RELEASE_URL}: `release/` next to mod.ts). */
  releaseUrl?: string | URL;
  /** The cache root (else GAN_NATIVE_CACHE, else `<Deno's cache directory>/deno-gan`), as for a URL import. */
  cacheDir?: string;
  /** The `fetch` to use (default the global one). */
  fetchImpl?: FetchImpl;
}

/**
 * What {@link prefetchNativeLibrary} left in the cache.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { PrefetchResult } from "./loader.ts";
 * const source: PrefetchResult["source"] = "cache";
 * assert.ok(source === "cache");
 * ```
 */
export interface PrefetchResult {
  /** The platform key. */
  platform: string;
  /** The manifest's version (the cache folder below the root). */
  version: string;
  /** The verified file in the cache: `<cache root>/<version>/<sha256>/<library file name>`. */
  path: string;
  /** Where it was (or would have been) downloaded from. */
  url: string;
  /** Its SHA-256 (the manifest's). */
  sha256: string;
  /** Its size in bytes (the manifest's). */
  size: number;
  /** `cache` when a verified copy was already there, `download` when it was fetched now. */
  source: "cache" | "download";
}

/**
 * Downloads the prebuilt library of a platform into the cache and verifies it (size and SHA-256 against
 * `native/manifest.json`), so that a later URL import of mod.ts finds it there and needs no network: with the library
 * cached, `loadNativeLibrary()` needs only `--allow-read` and `--allow-ffi` for the cache (no `--allow-net`, no
 * `--allow-write`). It is the download half of {@link locateLibraryAsync}, with the same manifest, release folder and
 * cache, and opens nothing; a cached copy that still matches is kept and not fetched again. `deno task prefetch` is
 * its command line.
 *
 * @param opts The platform, the release folder, the cache.
 * @returns The cached file.
 *
 * @example Fetch this platform's library (or another's, for a machine without network) into the cache
 * ```ts ignore
 * import { prefetchNativeLibrary } from "https://example.com/deno-gan/mod.ts";
 * const got = await prefetchNativeLibrary({ platform: "linux-aarch64" }); // from release/ next to mod.ts
 * console.log(got.path); // <Deno's cache dir>/deno-gan/0.1.0/<sha256>/libgan_native.so
 * ```
 *
 * @example A release folder that serves other bytes than the manifest's: refused, nothing kept
 * ```ts
 * import assert from "node:assert/strict";
 * import { prefetchNativeLibrary } from "./loader.ts";
 *
 * const cacheDir = await Deno.makeTempDir();
 * const fetchImpl = () => Promise.resolve(new Response(new Uint8Array([1, 2, 3])));
 * await assert.rejects(
 *   prefetchNativeLibrary({ platform: "linux-x86_64", releaseUrl: "https://example.invalid/r/", cacheDir, fetchImpl }),
 *   /downloaded "https:\/\/example.invalid\/r\/libgan_native-linux-x86_64.so" has 3 bytes, the manifest expects \d+/,
 * );
 * assert.deepEqual([...Deno.readDirSync(cacheDir)], []);
 * await Deno.remove(cacheDir);
 * ```
 */
export async function prefetchNativeLibrary(opts: PrefetchOptions = {}): Promise<PrefetchResult> {
  const manifest = parseManifest(shippedManifest, `the manifest "${MANIFEST_URL}"`);
  const platform = opts.platform ?? platformKey();
  manifestEntry(manifest, platform); // a missing platform is an error that lists those the manifest has
  const { baseUrl, baseUrlSource } = releaseBase(opts.releaseUrl);
  const os = platform.slice(0, platform.indexOf("-")) as typeof Deno.build.os;
  const got = await fetchLibrary({
    manifest,
    baseUrl,
    baseUrlSource,
    cacheRoot: opts.cacheDir ?? nativeCacheRoot(),
    key: platform,
    fileName: libraryFileName(os),
    fetchImpl: opts.fetchImpl,
  });
  if (got.openPath) await Deno.remove(got.openPath); // the private copy is for opening; nothing is opened here
  return {
    platform,
    version: manifest.version,
    path: got.path,
    url: got.url,
    sha256: got.sha256,
    size: got.size,
    source: got.source,
  };
}
