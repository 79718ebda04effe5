/**
 * Verified downloads, for every file deno-gan fetches (the MNIST files, the prebuilt native library): the body is read
 * into memory with a byte limit enforced while it streams in, then compared with the expected size and SHA-256. Only
 * bytes that matched are returned, so a caller never writes or opens anything unverified.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { downloadVerified, sha256Hex } from "./download.ts";
 * const body = new Uint8Array([1, 2, 3]);
 * const fetchImpl = () => Promise.resolve(new Response(body)); // a stand-in server: no network
 * const got = await downloadVerified("https://example.invalid/f", { sha256: await sha256Hex(body) }, { fetchImpl });
 * assert.deepEqual(got, body);
 * ```
 *
 * @module
 */

/** The `fetch` signature the downloads use (tests and examples pass their own). */
export type FetchImpl = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/**
 * The SHA-256 of bytes as lowercase hex.
 *
 * @param bytes The data.
 * @returns 64 hex digits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sha256Hex } from "./download.ts";
 * assert.equal(await sha256Hex(new Uint8Array()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
 * ```
 */
export async function sha256Hex(bytes: Uint8Array): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes as Uint8Array<ArrayBuffer>));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * The size and SHA-256 of a file, or null when it does not exist.
 *
 * @param path The file.
 * @returns `{ size, sha256 }` or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hashFile } from "./download.ts";
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/f`, new Uint8Array());
 * assert.equal((await hashFile(`${dir}/f`))?.size, 0);
 * assert.equal(await hashFile(`${dir}/missing`), null);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function hashFile(path: string): Promise<{ size: number; sha256: string } | null> {
  let bytes: Uint8Array;
  try {
    bytes = await Deno.readFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  return { size: bytes.length, sha256: await sha256Hex(bytes) };
}

/**
 * Why a verified download failed: `network` (fetch threw), `http` (a non-2xx status), `too_large` (more than the
 * limit arrived, or was announced), `size` (not the expected size), `sha256` (the hash differs).
 */
export type DownloadFailure = "network" | "http" | "too_large" | "size" | "sha256";

/**
 * A failed verified download. The message names the URL and what differed, e.g.
 * `downloaded "https://h/f" has SHA-256 ab12…, the manifest expects cd34…`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DownloadError } from "./download.ts";
 * const e = new DownloadError("http", "https://h/f", 'downloading "https://h/f" failed: HTTP 404');
 * assert.equal(e.failure, "http");
 * ```
 */
export class DownloadError extends Error {
  /** What went wrong. */
  readonly failure: DownloadFailure;
  /** The URL. */
  readonly url: string;
  /** Makes the error. */
  constructor(failure: DownloadFailure, url: string, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "DownloadError";
    this.failure = failure;
    this.url = url;
  }
}

/** What a download must match. */
export interface ExpectedFile {
  /** Its SHA-256 (64 lowercase hex digits). */
  sha256: string;
  /** Its exact size in bytes, when known (it also becomes the byte limit). */
  size?: number;
  /** Who expects it, for messages (default `expected`, e.g. `the manifest expects`). */
  expects?: string;
}

/** Options of {@link downloadVerified}. */
export interface DownloadOptions {
  /** The most bytes accepted when the size is not known (default 64 MiB). */
  maxBytes?: number;
  /** The `fetch` to use (default the global one). */
  fetchImpl?: FetchImpl;
}

async function readLimited(res: Response, url: string, limit: number): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = (what: string) => new DownloadError("too_large", url, `downloaded "${url}" ${what}`);
  const declared = Number(res.headers.get("content-length") ?? NaN);
  if (declared > limit) {
    await res.body?.cancel();
    throw tooLarge(`announces ${declared} bytes, above the limit of ${limit}`);
  }
  if (res.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = res.body.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > limit) {
      await reader.cancel();
      throw tooLarge(`is larger than the limit of ${limit} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

/**
 * Downloads `url` into memory (never more than the expected size, or `maxBytes`) and returns the bytes only when
 * their size and SHA-256 match `expected`; otherwise throws a {@link DownloadError}.
 *
 * @param url What to download.
 * @param expected The hash (and size) it must have.
 * @param options The limit and the `fetch` to use.
 * @returns The verified bytes.
 *
 * @example A tampered body is refused
 * ```ts
 * import assert from "node:assert/strict";
 * import { downloadVerified } from "./download.ts";
 * const fetchImpl = () => Promise.resolve(new Response("tampered"));
 * await assert.rejects(
 *   downloadVerified("https://example.invalid/f", { sha256: "0".repeat(64) }, { fetchImpl }),
 *   /downloaded "https:\/\/example.invalid\/f" has SHA-256 [0-9a-f]{64} \(8 bytes\), expected 0{64}/,
 * );
 * ```
 */
export async function downloadVerified(
  url: string,
  expected: ExpectedFile,
  options: DownloadOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  const expects = expected.expects ?? "expected";
  let res: Response;
  try {
    res = await (options.fetchImpl ?? fetch)(url);
  } catch (e) {
    throw new DownloadError("network", url, `downloading "${url}" failed: ${(e as Error).message}`, { cause: e });
  }
  if (!res.ok) {
    await res.body?.cancel();
    throw new DownloadError("http", url, `downloading "${url}" failed: HTTP ${res.status} ${res.statusText}`.trimEnd());
  }
  const limit = expected.size ?? options.maxBytes ?? 64 * 1024 * 1024;
  let bytes: Uint8Array<ArrayBuffer>;
  try {
    bytes = await readLimited(res, url, limit);
  } catch (e) {
    if (e instanceof DownloadError && expected.size !== undefined) {
      throw new DownloadError("too_large", url, `downloaded "${url}" is larger than the ${limit} bytes ${expects}`);
    }
    throw e;
  }
  if (expected.size !== undefined && bytes.length !== expected.size) {
    throw new DownloadError("size", url, `downloaded "${url}" has ${bytes.length} bytes, ${expects} ${expected.size}`);
  }
  const got = await sha256Hex(bytes);
  if (got !== expected.sha256) {
    const size = expected.size === undefined ? ` (${bytes.length} bytes)` : "";
    throw new DownloadError(
      "sha256",
      url,
      `downloaded "${url}" has SHA-256 ${got}${size}, ${expects} ${expected.sha256}`,
    );
  }
  return bytes;
}
