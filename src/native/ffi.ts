/**
 * The one FFI boundary: the symbol table of `gan_native`, where the library is found, and how status codes become
 * typed errors. Every other module reaches native code through {@link lib} and {@link check}.
 *
 * @module
 */

/** The ABI version this file declares; the library must report the same. */
export const ABI_VERSION = 1;

/** The symbol table, with the C signature of each function. */
export const SYMBOLS = {
  // uint32_t gan_abi_version(void)
  gan_abi_version: { parameters: [], result: "u32" },
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
  // int32_t gan_rng_normal(uint64_t seed, uint32_t stream, float* out, size_t n)
  gan_rng_normal: { parameters: ["u64", "u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_rng_permutation(uint64_t seed, uint32_t epoch, uint32_t* out, size_t n)
  gan_rng_permutation: { parameters: ["u64", "u32", "buffer", "usize"], result: "i32" },
  // uint32_t gan_gan_new(uint32_t ctx, uint32_t g, uint32_t d, const uint8_t* config_json, size_t len)
  gan_gan_new: { parameters: ["u32", "u32", "u32", "buffer", "usize"], result: "u32" },
  // int32_t gan_gan_set_data(uint32_t gan, const uint8_t* pixels, size_t len, uint32_t count)
  gan_gan_set_data: { parameters: ["u32", "buffer", "usize", "u32"], result: "i32" },
  // int32_t gan_gan_step(uint32_t gan, uint32_t n, float* out, size_t out_len)
  gan_gan_step: { parameters: ["u32", "u32", "buffer", "usize"], result: "i32" },
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
} as const;

/** The name of a status code. */
export type StatusName = (typeof STATUS)[keyof typeof STATUS];

/**
 * A failure reported by the native library: the status code and the library's own message.
 *
 * @example
 * ```ts
 * import { NativeError } from "./ffi.ts";
 * const e = new NativeError(1, "gan_mlp_forward", "batch size must be at least 1, got 0");
 * console.assert(e.status === "InvalidArgument");
 * console.assert(e.message === "gan_mlp_forward: batch size must be at least 1, got 0");
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

/** Where the library came from and the steps tried, for error messages and `info()`. */
export interface LibraryLocation {
  /** The path that was opened. */
  path: string;
  /** How it was found: `env` (GAN_NATIVE_LIB), `option` (an explicit path) or `checkout` (native/target/release). */
  source: "env" | "option" | "checkout";
}

/** Options for {@link loadLibrary}. */
export interface LoadOptions {
  /** An explicit path to the library; wins over everything else. */
  path?: string;
  /** Build the checkout's library with cargo when it is missing or older than its sources (default true). */
  build?: boolean;
}

let loaded: { lib: Deno.DynamicLibrary<typeof SYMBOLS>; location: LibraryLocation } | undefined;

/** The file name of the library on this OS. */
export function libraryFileName(os: typeof Deno.build.os = Deno.build.os): string {
  if (os === "windows") return "gan_native.dll";
  if (os === "darwin") return "libgan_native.dylib";
  return "libgan_native.so";
}

/** The native crate of this checkout (when this module is a local file), else undefined. */
export function checkoutCrateDir(): string | undefined {
  const url = new URL("../../native/", import.meta.url);
  if (url.protocol !== "file:") return undefined;
  return decodeURIComponent(url.pathname);
}

function mtime(path: string): number {
  try {
    return Deno.statSync(path).mtime?.getTime() ?? 0;
  } catch {
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

/** Runs `cargo build --release` in the checkout's crate, failing with cargo's output. */
export function buildCheckout(crate: string): void {
  let out: Deno.CommandOutput;
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

/** Finds the library: an explicit path, then GAN_NATIVE_LIB, then the checkout's build (built when missing/stale). */
export function locateLibrary(opts: LoadOptions = {}): LibraryLocation {
  if (opts.path) return { path: opts.path, source: "option" };
  const env = Deno.env.get("GAN_NATIVE_LIB");
  if (env) return { path: env, source: "env" };
  const crate = checkoutCrateDir();
  if (!crate) {
    throw new Error(
      "Cannot find the native library: this module was not loaded from a local checkout and GAN_NATIVE_LIB is not set.",
    );
  }
  const path = `${crate}target/release/${libraryFileName()}`;
  if (opts.build !== false) {
    const built = mtime(path);
    if (built === 0 || built < Math.max(newestSource(`${crate}src`), mtime(`${crate}Cargo.toml`))) {
      buildCheckout(crate);
    }
  }
  return { path, source: "checkout" };
}

/** Opens the library once (later calls return the same one) and checks its ABI version. */
export function loadLibrary(opts: LoadOptions = {}): { symbols: NativeSymbols; location: LibraryLocation } {
  if (loaded) return { symbols: loaded.lib.symbols, location: loaded.location };
  const location = locateLibrary(opts);
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(location.path, SYMBOLS);
  } catch (e) {
    throw new Error(
      `Cannot open the native library "${location.path}" (found through ${location.source}): ${(e as Error).message}`,
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
