/**
 * The one FFI boundary: the symbol table of `gan_native`, where the library is found, and how status codes become
 * typed errors. Every other module reaches native code through {@link lib} and {@link check}.
 *
 * The library is found in this order (see {@link locateLibraryAsync}): an explicit path or GAN_NATIVE_LIB; the
 * checkout's native/target/release (built with cargo) when this module is a local file; a prebuilt library downloaded
 * from the release folder and checked against `native/manifest.json` when it was imported from an http(s) URL
 * (`./fetch.ts`); else an error that says how to get one.
 *
 * @module
 */

import shippedManifest from "../../native/manifest.json" with { type: "json" };
import { fetchLibrary, libraryFileName, nativeCacheRoot, parseManifest, platformKey, readEnv } from "./fetch.ts";

export { libraryFileName };

/** The ABI version this file declares; the library must report the same. */
export const ABI_VERSION = 2;

/** The symbol table, with the C signature of each function. */
export const SYMBOLS = {
  // uint32_t gan_abi_version(void)
  gan_abi_version: { parameters: [], result: "u32" },
  // int64_t gan_contract(uint8_t* buf, size_t cap)
  gan_contract: { parameters: ["buffer", "usize"], result: "i64" },
  // size_t gan_last_error(uint8_t* buf, size_t cap)
  gan_last_error: { parameters: ["buffer", "usize"], result: "usize" },
  // int32_t gan_last_status(void)
  gan_last_status: { parameters: [], result: "i32" },
  // uint32_t gan_live_handles(void)
  gan_live_handles: { parameters: [], result: "u32" },
  // uint32_t gan_context_new(const uint8_t* backend, size_t backend_len, uint32_t threads)
  gan_context_new: { parameters: ["buffer", "usize", "u32"], result: "u32" },
  // int64_t gan_context_info(uint32_t ctx, uint8_t* buf, size_t cap)
  gan_context_info: { parameters: ["u32", "buffer", "usize"], result: "i64" },
  // int32_t gan_context_free(uint32_t ctx)
  gan_context_free: { parameters: ["u32"], result: "i32" },
  // uint32_t gan_mlp_new(uint32_t ctx, const uint8_t* spec_json, size_t len)
  gan_mlp_new: { parameters: ["u32", "buffer", "usize"], result: "u32" },
  // int64_t gan_mlp_info(uint32_t mlp, uint8_t* buf, size_t cap)
  gan_mlp_info: { parameters: ["u32", "buffer", "usize"], result: "i64" },
  // int32_t gan_mlp_get(uint32_t mlp, uint32_t which, float* out, size_t len)
  gan_mlp_get: { parameters: ["u32", "u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_mlp_set(uint32_t mlp, uint32_t which, const float* src, size_t len)
  gan_mlp_set: { parameters: ["u32", "u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_mlp_init(uint32_t mlp, uint64_t seed, uint32_t stream)
  gan_mlp_init: { parameters: ["u32", "u64", "u32"], result: "i32" },
  // int32_t gan_mlp_set_counters(uint32_t mlp, uint64_t adam_step, uint64_t num_batches_tracked)
  gan_mlp_set_counters: { parameters: ["u32", "u64", "u64"], result: "i32" },
  // int32_t gan_mlp_forward(uint32_t mlp, const float* x, size_t x_len, uint32_t rows, uint32_t train, float* y,
  //                         size_t y_len)
  gan_mlp_forward: { parameters: ["u32", "buffer", "usize", "u32", "u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_mlp_backward(uint32_t mlp, const float* dy, size_t dy_len, float* dx, size_t dx_len)
  gan_mlp_backward: { parameters: ["u32", "buffer", "usize", "buffer", "usize"], result: "i32" },
  // int32_t gan_mlp_output(uint32_t mlp, float* out, size_t len)
  gan_mlp_output: { parameters: ["u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_mlp_adam(uint32_t mlp, double lr, double b1, double b2, double eps)
  gan_mlp_adam: { parameters: ["u32", "f64", "f64", "f64", "f64"], result: "i32" },
  // int32_t gan_mlp_free(uint32_t mlp)
  gan_mlp_free: { parameters: ["u32"], result: "i32" },
  // int32_t gan_bce(const float* p, const float* y, size_t n, float* loss, float* dp, size_t dp_len)
  gan_bce: { parameters: ["buffer", "buffer", "usize", "buffer", "buffer", "usize"], result: "i32" },
  // int32_t gan_sigmoid_bce(const float* logits, const float* y, size_t n, float* loss, float* dz, size_t dz_len)
  gan_sigmoid_bce: { parameters: ["buffer", "buffer", "usize", "buffer", "buffer", "usize"], result: "i32" },
  // int32_t gan_adam(float* params, const float* grads, float* m, float* v, size_t n, uint64_t t, double lr,
  //                  double b1, double b2, double eps)
  gan_adam: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "usize", "u64", "f64", "f64", "f64", "f64"],
    result: "i32",
  },
  // int32_t gan_rng_normal(uint64_t seed, uint32_t domain, uint32_t stream, float* out, size_t n)
  gan_rng_normal: { parameters: ["u64", "u32", "u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_rng_permutation(uint64_t seed, uint32_t epoch, uint32_t* out, size_t n)
  gan_rng_permutation: { parameters: ["u64", "u32", "buffer", "usize"], result: "i32" },
  // uint32_t gan_gan_new(uint32_t ctx, uint32_t g, uint32_t d, const uint8_t* config_json, size_t len)
  gan_gan_new: { parameters: ["u32", "u32", "u32", "buffer", "usize"], result: "u32" },
  // int32_t gan_gan_set_data(uint32_t gan, const uint8_t* pixels, size_t len, uint32_t count)
  gan_gan_set_data: { parameters: ["u32", "buffer", "usize", "u32"], result: "i32" },
  // int32_t gan_gan_step(uint32_t gan, uint32_t n, float* out, size_t out_len)
  gan_gan_step: { parameters: ["u32", "u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_gan_step_explicit(uint32_t gan, const float* z, size_t z_len, const float* x_real, size_t x_len,
  //                               uint32_t rows, float* out, size_t out_len)
  gan_gan_step_explicit: {
    parameters: ["u32", "buffer", "usize", "buffer", "usize", "u32", "buffer", "usize"],
    result: "i32",
  },
  // int64_t gan_gan_info(uint32_t gan, uint8_t* buf, size_t cap)
  gan_gan_info: { parameters: ["u32", "buffer", "usize"], result: "i64" },
  // int32_t gan_gan_set_step(uint32_t gan, uint64_t step)
  gan_gan_set_step: { parameters: ["u32", "u64"], result: "i32" },
  // int32_t gan_gan_free(uint32_t gan)
  gan_gan_free: { parameters: ["u32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

/** The loaded library's functions. */
export type NativeSymbols = Deno.DynamicLibrary<typeof SYMBOLS>["symbols"];

/** Status codes of the C ABI (see native/src/error.rs). */
export const STATUS = {
  0: "Ok",
  1: "InvalidArgument",
  2: "InvalidHandle",
  3: "InvalidState",
  4: "Backend",
  5: "Unavailable",
  6: "Panic",
  7: "Diverged",
} as const;

/** The name of a status code. */
export type StatusName = (typeof STATUS)[keyof typeof STATUS];

/**
 * A failure reported by the native library: the status code and the library's own message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NativeError } from "./ffi.ts";
 * const e = new NativeError(1, "gan_mlp_forward", "batch size must be at least 1, got 0");
 * assert.ok(e.status === "InvalidArgument");
 * assert.ok(e.message === "gan_mlp_forward: batch size must be at least 1, got 0");
 * ```
 */
export class NativeError extends Error {
  /** The numeric status code. */
  readonly code: number;
  /** The status code's name. */
  readonly status: StatusName | "Unknown";
  /** The message of the native library, without the function name. */
  readonly nativeMessage: string;
  /** Makes an error for a failed call of `fn`. */
  constructor(code: number, fn: string, nativeMessage: string) {
    super(`${fn}: ${nativeMessage}`);
    this.name = "NativeError";
    this.code = code;
    this.status = (STATUS as Record<number, StatusName>)[code] ?? "Unknown";
    this.nativeMessage = nativeMessage;
  }
}

/**
 * Where the library came from, for error messages and `info()`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LibraryLocation } from "./ffi.ts";
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
}

/**
 * Options for {@link loadLibrary} and {@link loadNativeLibrary}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { LoadOptions } from "./ffi.ts";
 * const opts: LoadOptions = { releaseUrl: "https://example.com/deno-gan/release/", cacheDir: "/tmp/gan-cache" };
 * assert.ok(opts.path === undefined);
 * ```
 */
export interface LoadOptions {
  /** An explicit path to the library; wins over everything else. */
  path?: string;
  /** Build the checkout's library with cargo when it is missing or older than its sources (default true). */
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
 * import { DEFAULT_RELEASE_URL } from "./ffi.ts";
 * assert.ok(DEFAULT_RELEASE_URL.endsWith("/release/"));
 * ```
 */
export const DEFAULT_RELEASE_URL: string = new URL("../../release/", import.meta.url).href;

/** The manifest's own URL, for messages. */
const MANIFEST_URL = new URL("../../native/manifest.json", import.meta.url).href;

let loaded: { lib: Deno.DynamicLibrary<typeof SYMBOLS>; location: LibraryLocation } | undefined;

/**
 * The native crate of this checkout (when this module is a local file), else undefined.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkoutCrateDir } from "./ffi.ts";
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
 * import { buildCheckout, checkoutCrateDir } from "./ffi.ts";
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

function locateCheckout(crate: string, opts: LoadOptions): LibraryLocation {
  const path = `${crate}target/release/${libraryFileName()}`;
  const cargoToml = mtime(`${crate}Cargo.toml`);
  if (cargoToml === 0) {
    if (mtime(path) !== 0) return { path, source: "checkout" };
    throw notFound(`a local file, but "${crate}Cargo.toml" does not exist (this is not a checkout with native/)`);
  }
  if (opts.build !== false) {
    const built = mtime(path);
    if (built === 0 || built < Math.max(newestSource(`${crate}src`), cargoToml)) {
      buildCheckout(crate);
    }
  }
  return { path, source: "checkout" };
}

/**
 * Finds the library without downloading: an explicit path, then GAN_NATIVE_LIB, then (when this module is a local
 * file) the checkout's native/target/release, built with cargo when missing or stale. A module imported from an
 * http(s) URL needs {@link locateLibraryAsync} (through {@link loadNativeLibrary}) to download its library; here it
 * gets an error that says so.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { locateLibrary } from "./ffi.ts";
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
 * 2. when this module is a local file (a checkout): native/target/release, built with cargo when missing or stale;
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
 * import { locateLibraryAsync } from "./ffi.ts";
 * const where = await locateLibraryAsync(); // in a checkout: native/target/release, no network
 * assert.ok(["checkout", "env"].includes(where.source));
 * ```
 */
export async function locateLibraryAsync(opts: LoadOptions = {}): Promise<LibraryLocation> {
  if (opts.path || readEnv("GAN_NATIVE_LIB") || checkoutCrateDir() || !isRemote()) return locateLibrary(opts);
  const manifest = parseManifest(shippedManifest, `the manifest "${MANIFEST_URL}"`);
  const envUrl = opts.releaseUrl === undefined ? readEnv("GAN_NATIVE_URL") : undefined;
  const [rawBase, baseUrlSource] = opts.releaseUrl !== undefined
    ? [opts.releaseUrl, "from the releaseUrl option"]
    : envUrl
    ? [envUrl, "from GAN_NATIVE_URL"]
    : [DEFAULT_RELEASE_URL, "the default: release/ next to mod.ts; set GAN_NATIVE_URL to change it"];
  let baseUrl: URL;
  try {
    baseUrl = new URL(rawBase);
  } catch {
    throw new Error(`Cannot load the native library: the release URL "${rawBase}" (${baseUrlSource}) is not a URL`);
  }
  const cacheRoot = opts.cacheDir ?? nativeCacheRoot();
  const got = await fetchLibrary({ manifest, baseUrl, baseUrlSource, cacheRoot });
  return { path: got.path, source: got.source, url: got.url, sha256: got.sha256 };
}

function openLibrary(location: LibraryLocation): { symbols: NativeSymbols; location: LibraryLocation } {
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(location.path, SYMBOLS);
  } catch (e) {
    const dir = location.path.slice(0, Math.max(location.path.lastIndexOf("/"), location.path.lastIndexOf("\\")));
    const hint = e instanceof Deno.errors.NotCapable ? `; run with --allow-ffi=${dir || location.path}` : "";
    throw new Error(
      `Cannot open the native library "${location.path}" (found through ${location.source}): ` +
        `${(e as Error).message}${hint}`,
    );
  }
  const abi = lib.symbols.gan_abi_version();
  if (abi !== ABI_VERSION) {
    lib.close();
    throw new Error(
      `The native library "${location.path}" has ABI version ${abi}, this module needs ${ABI_VERSION}: rebuild it`,
    );
  }
  loaded = { lib, location };
  return { symbols: lib.symbols, location };
}

/**
 * Opens the library once (later calls return the same one) and checks its ABI version. Synchronous, so it cannot
 * download: a module imported from a URL calls {@link loadNativeLibrary} first.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadLibrary } from "./ffi.ts";
 * const { location } = loadLibrary();
 * assert.ok(location.path.length > 0);
 * ```
 */
export function loadLibrary(opts: LoadOptions = {}): { symbols: NativeSymbols; location: LibraryLocation } {
  if (loaded) return { symbols: loaded.lib.symbols, location: loaded.location };
  return openLibrary(locateLibrary(opts));
}

/**
 * Opens the library once (later calls return the same one), downloading and verifying it first when this module was
 * imported from an http(s) URL (see {@link locateLibraryAsync} for the order). Call it once before the first
 * `Context` when importing mod.ts from a URL; in a checkout it is the same as {@link loadLibrary}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadNativeLibrary } from "./ffi.ts";
 * const { location } = await loadNativeLibrary();
 * assert.ok(["checkout", "env", "option"].includes(location.source));
 * ```
 */
export async function loadNativeLibrary(opts: LoadOptions = {}): Promise<{ location: LibraryLocation }> {
  if (!loaded) {
    const location = await locateLibraryAsync(opts);
    if (!loaded) openLibrary(location);
  }
  return { location: loaded!.location };
}

/** The loaded library's symbols (loading it on first use). */
export function lib(): NativeSymbols {
  return loadLibrary().symbols;
}

/** This thread's last native error message. */
export function lastError(): string {
  const s = lib();
  const n = Number(s.gan_last_error(null, 0n));
  if (n === 0) return "(no message)";
  const buf = new Uint8Array(n);
  s.gan_last_error(buf, BigInt(n));
  return new TextDecoder().decode(buf);
}

/** Throws a {@link NativeError} for a non-zero status. */
export function check(status: number, fn: string): void {
  if (status !== 0) throw new NativeError(status, fn, lastError());
}

/** Throws for a zero handle; returns the handle otherwise. */
export function checkHandle(handle: number, fn: string): number {
  if (handle === 0) {
    throw new NativeError(lib().gan_last_status(), fn, lastError());
  }
  return handle;
}

/** Calls a JSON getter (two calls: the length, then the bytes) and parses the result. */
export function readJson(
  fn: string,
  call: (buf: Uint8Array<ArrayBuffer> | null, cap: number) => number | bigint,
): unknown {
  const n = Number(call(null, 0));
  if (n < 0) throw new NativeError(-n, fn, lastError());
  const buf = new Uint8Array(n);
  const m = Number(call(buf, n));
  if (m < 0) throw new NativeError(-m, fn, lastError());
  return JSON.parse(new TextDecoder().decode(buf));
}

/** UTF-8 bytes of a string, for `(const uint8_t*, size_t)` arguments. */
export function utf8(s: string): Uint8Array<ArrayBuffer> {
  return new TextEncoder().encode(s) as Uint8Array<ArrayBuffer>;
}
