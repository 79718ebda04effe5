/**
 * The one FFI boundary: the symbol table of `gan_native`, opening the library (found by `./loader.ts`), and how
 * status codes become typed errors. Every other module reaches native code through {@link lib} and {@link check};
 * the handle classes that own native objects are in `./handles.ts`.
 *
 * @module
 */

import { libraryFileName } from "./fetch.ts";
import { type LibraryLocation, type LoadOptions, locateLibrary, locateLibraryAsync } from "./loader.ts";

export { libraryFileName };
export type { LibraryLocation, LoadOptions };

/** The ABI version this file declares; the library must report the same. */
export const ABI_VERSION = 6;

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
  // int64_t gan_spec_info(const uint8_t* spec_json, size_t len, uint8_t* buf, size_t cap)
  gan_spec_info: { parameters: ["buffer", "usize", "buffer", "usize"], result: "i64" },
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
  // int32_t gan_mlp_forward_labeled(uint32_t mlp, const float* x, size_t x_len, const uint32_t* labels,
  //                                 size_t labels_len, uint32_t rows, uint32_t train, float* y, size_t y_len)
  gan_mlp_forward_labeled: {
    parameters: ["u32", "buffer", "usize", "buffer", "usize", "u32", "u32", "buffer", "usize"],
    result: "i32",
  },
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
  // int32_t gan_softmax_ce(uint32_t ctx, const float* logits, size_t logits_len, const uint32_t* labels, size_t rows,
  //                        uint32_t classes, float* loss, float* dlogits, size_t dlogits_len)
  gan_softmax_ce: {
    parameters: ["u32", "buffer", "usize", "buffer", "usize", "u32", "buffer", "buffer", "usize"],
    result: "i32",
  },
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
  // uint32_t gan_gan_new_with_encoder(uint32_t ctx, uint32_t g, uint32_t d, uint32_t e, const uint8_t* config_json,
  //                                   size_t len)
  gan_gan_new_with_encoder: { parameters: ["u32", "u32", "u32", "u32", "buffer", "usize"], result: "u32" },
  // int32_t gan_gan_set_data(uint32_t gan, const uint8_t* pixels, size_t len, uint32_t count)
  gan_gan_set_data: { parameters: ["u32", "buffer", "usize", "u32"], result: "i32" },
  // int32_t gan_gan_set_labels(uint32_t gan, const uint32_t* labels, size_t len)
  gan_gan_set_labels: { parameters: ["u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_gan_step(uint32_t gan, uint32_t n, float* out, size_t out_len)
  gan_gan_step: { parameters: ["u32", "u32", "buffer", "usize"], result: "i32" },
  // int32_t gan_gan_step_explicit(uint32_t gan, const float* z, size_t z_len, const float* x_real, size_t x_len,
  //                               const float* aux, size_t aux_len, uint32_t rows, float* out, size_t out_len)
  gan_gan_step_explicit: {
    parameters: ["u32", "buffer", "usize", "buffer", "usize", "buffer", "usize", "u32", "buffer", "usize"],
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

/**
 * The contract of the C ABI as the library states it (`gan_contract`): the status codes by name, the fields of the
 * per-step record that `gan_gan_step` writes, the flat buffers of an MLP by selector, and the random-stream domains.
 * TypeScript reads these instead of restating them.
 */
export interface NativeContract {
  /** The library's ABI version. */
  abi_version: number;
  /** Status code by name, e.g. `{ Ok: 0, InvalidArgument: 1, …, Diverged: 7 }`. */
  status: Record<string, number>;
  /** The per-step record's fields, in order, e.g. `["d_loss", "g_loss", "d_real", "d_fake"]`. */
  step_fields: string[];
  /** The flat buffers of an MLP: `buffers[i]` is selector `i` of get/set, e.g. `params`, `running`. */
  buffers: string[];
  /** Random-stream domains by name, e.g. `{ noise: 1, shuffle: 2, init: 3, fixed: 4, sample: 5 }`. */
  rng_domains: Record<string, number>;
  /** The adversarial losses of the fused GAN step (the GAN config's `loss`), e.g. `["bce", "mse", ...]`. */
  gan_losses: string[];
  /** The models of the GAN config's `model`, each with upstream's defaults and its own options. */
  models: Record<string, NativeModelDefaults>;
}

/** One model's defaults in the contract (`models`): PyTorch-GAN's values for its script. */
export interface NativeModelDefaults {
  /** `adam` or `rmsprop`. */
  optimizer: string;
  /** Learning rate. */
  lr: number;
  /** Adam's beta1. */
  b1: number;
  /** Adam's beta2. */
  b2: number;
  /** What the discriminator ends in: `sigmoid` (a probability) or `linear` (a score). */
  d_output: "sigmoid" | "linear";
  /** The model's own options (the only other keys its GAN config takes) with their defaults. */
  options: Record<string, number | string | boolean>;
}

let contractCache: NativeContract | undefined;

/**
 * The contract of the loaded library (loading it on first use; read once).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeContract } from "./ffi.ts";
 * const c = nativeContract();
 * assert.equal(c.status.Ok, 0);
 * assert.ok(c.step_fields.includes("d_loss"));
 * ```
 */
export function nativeContract(): NativeContract {
  if (contractCache === undefined) {
    const s = lib();
    contractCache = readJson("gan_contract", (b, n) => s.gan_contract(b, BigInt(n))) as NativeContract;
  }
  return contractCache;
}

/**
 * The name of a status code, as the library names it ("Unknown" for a code it does not define).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { statusName } from "./ffi.ts";
 * assert.equal(statusName(0), "Ok");
 * assert.equal(statusName(99), "Unknown");
 * ```
 */
export function statusName(code: number): string {
  const hit = Object.entries(nativeContract().status).find(([, c]) => c === code);
  return hit ? hit[0] : "Unknown";
}

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
  /** The status code's name, as the library names it (see {@link nativeContract}), or "Unknown". */
  readonly status: string;
  /** The message of the native library, without the function name. */
  readonly nativeMessage: string;
  /** Makes an error for a failed call of `fn`. */
  constructor(code: number, fn: string, nativeMessage: string) {
    super(`${fn}: ${nativeMessage}`);
    this.name = "NativeError";
    this.code = code;
    this.status = statusName(code);
    this.nativeMessage = nativeMessage;
  }
}

let loaded: { lib: Deno.DynamicLibrary<typeof SYMBOLS>; location: LibraryLocation } | undefined;

function openLibrary(location: LibraryLocation): { symbols: NativeSymbols; location: LibraryLocation } {
  let lib: Deno.DynamicLibrary<typeof SYMBOLS>;
  try {
    lib = Deno.dlopen(location.openPath ?? location.path, SYMBOLS);
  } catch (e) {
    const dir = location.path.slice(0, Math.max(location.path.lastIndexOf("/"), location.path.lastIndexOf("\\")));
    const hint = e instanceof Deno.errors.NotCapable ? `; run with --allow-ffi=${dir || location.path}` : "";
    throw new Error(
      `Cannot open the native library "${location.path}" (found through ${location.source}): ` +
        `${(e as Error).message}${hint}`,
    );
  } finally {
    // The private copy of a verified download is only for this open: the mapping outlives the file.
    if (location.openPath) removeQuietly(location.openPath);
  }
  const abi = lib.symbols.gan_abi_version();
  if (abi !== ABI_VERSION) {
    lib.close();
    throw new Error(
      `The native library "${location.path}" has ABI version ${abi}, this module needs ${ABI_VERSION}: rebuild it`,
    );
  }
  const { openPath: _, ...where } = location;
  loaded = { lib, location: where };
  return { symbols: lib.symbols, location: where };
}

function removeQuietly(path: string): void {
  try {
    Deno.removeSync(path);
  } catch {
    // already gone
  }
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
 * imported from an http(s) URL (see `locateLibraryAsync` in `./loader.ts` for the order). Call it once before the first
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
