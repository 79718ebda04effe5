/**
 * Downloads the four MNIST files and checks each against its known SHA-256 before it lands on disk.
 *
 * @example Fetch from a stand-in server (here an in-memory `fetch`) with the test's own hashes
 * ```ts
 * import { fetchMnist } from "./fetch_mnist.ts";
 * import { sha256Hex } from "../io/download.ts";
 * import assert from "node:assert/strict";
 *
 * const body = new Uint8Array([1, 2, 3]);
 * const dir = await Deno.makeTempDir();
 * const fetchImpl = (_url: string | URL | Request) => Promise.resolve(new Response(body));
 * const results = await fetchMnist(dir, {
 *   baseUrl: "http://mirror.invalid/mnist/",
 *   fetchImpl,
 *   files: { "train-labels-idx1-ubyte.gz": await sha256Hex(body) },
 * });
 * assert.equal(results[0].status, "downloaded");
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { writeFileAtomic } from "../io/atomic.ts";
import { downloadVerified, type FetchImpl, hashFile } from "../io/download.ts";

/**
 * The SHA-256 of each MNIST file as published by LeCun et al. and mirrored by PyTorch (the same digests appear in
 * TensorFlow Datasets and many download scripts), with the sizes in bytes.
 *
 * @example
 * ```ts
 * import { MNIST_FILES } from "./fetch_mnist.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(Object.keys(MNIST_FILES).length, 4);
 * assert.equal(MNIST_FILES["train-images-idx3-ubyte.gz"].bytes, 9912422);
 * ```
 */
export const MNIST_FILES: Readonly<Record<string, { sha256: string; bytes: number }>> = {
  "train-images-idx3-ubyte.gz": {
    sha256: "440fcabf73cc546fa21475e81ea370265605f56be210a4024d2ca8f203523609",
    bytes: 9912422,
  },
  "train-labels-idx1-ubyte.gz": {
    sha256: "3552534a0a558bbed6aed32b30c495cca23d567ec52cac8be1a0730e8010255c",
    bytes: 28881,
  },
  "t10k-images-idx3-ubyte.gz": {
    sha256: "8d422c7b0a1c1c79245a5bcf07fe86e33eeafee792b84584aec276f5a2dbc4e6",
    bytes: 1648877,
  },
  "t10k-labels-idx1-ubyte.gz": {
    sha256: "f7ae60f92e00ec6debd23a6088c31dbd2371eca3ffa0defaefb259924204aec6",
    bytes: 4542,
  },
};

/**
 * The default mirror: PyTorch's copy of the original files (the one torchvision's `datasets.MNIST` tries first).
 *
 * @example
 * ```ts
 * import { MNIST_BASE_URL } from "./fetch_mnist.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(MNIST_BASE_URL.endsWith("/"));
 * ```
 */
export const MNIST_BASE_URL = "https://ossci-datasets.s3.amazonaws.com/mnist/";

/** Options of {@linkcode fetchMnist}. */
export interface FetchMnistOptions {
  /** Where the files are, ending in `/` or not (default {@linkcode MNIST_BASE_URL}). */
  baseUrl?: string;
  /** The `fetch` to use (default the global one); tests pass their own. */
  fetchImpl?: FetchImpl;
  /**
   * The files to fetch with their expected SHA-256 (lowercase hex); defaults to the four of
   * {@linkcode MNIST_FILES}. Tests serve their own files and pass their hashes here.
   */
  files?: Record<string, string>;
  /** The most bytes one file may have (default 64 MiB); a larger download is refused. */
  maxBytes?: number;
  /** Called after each file with what happened to it (for progress output). */
  onFile?: (result: FetchResult) => void;
}

/** What {@linkcode fetchMnist} did with one file. */
export interface FetchResult {
  /** The file name, e.g. `train-images-idx3-ubyte.gz`. */
  file: string;
  /** Where it is on disk. */
  path: string;
  /** `"present"` when a file with the right hash was already there, `"downloaded"` otherwise. */
  status: "present" | "downloaded";
  /** Its size in bytes. */
  bytes: number;
  /** Its SHA-256 (lowercase hex). */
  sha256: string;
}

/**
 * Downloads the MNIST files (`train-images-idx3-ubyte.gz`, `train-labels-idx1-ubyte.gz`,
 * `t10k-images-idx3-ubyte.gz`, `t10k-labels-idx1-ubyte.gz`) from `baseUrl` into `dir`.
 *
 * A file already in `dir` with the right SHA-256 is kept. Each download is held in memory (at most `maxBytes`),
 * hashed, and written only when the hash matches, atomically (a temporary file in `dir`, then a rename), so a
 * failed or tampered download leaves nothing behind and never replaces a good file. `dir` is created if needed.
 *
 * @param dir Destination directory, e.g. `data/mnist`.
 * @param options Mirror, `fetch`, expected hashes and limits.
 * @returns One result per file, in order.
 *
 * @example A tampered file is refused
 * ```ts
 * import { fetchMnist } from "./fetch_mnist.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * const fetchImpl = (_url: string | URL | Request) => Promise.resolve(new Response("not mnist"));
 * await assert.rejects(
 *   fetchMnist(dir, { fetchImpl, files: { "t10k-labels-idx1-ubyte.gz": "00".repeat(32) } }),
 *   /has SHA-256 [0-9a-f]{64} \(9 bytes\), expected 0{64}; the file was not written/,
 * );
 * assert.deepEqual([...Deno.readDirSync(dir)], []);
 * await Deno.remove(dir);
 * ```
 */
export async function fetchMnist(dir: string, options: FetchMnistOptions = {}): Promise<FetchResult[]> {
  const base = (options.baseUrl ?? MNIST_BASE_URL).replace(/\/*$/, "/");
  const maxBytes = options.maxBytes ?? 64 * 1024 * 1024;
  const files = options.files ??
    Object.fromEntries(Object.entries(MNIST_FILES).map(([name, info]) => [name, info.sha256]));
  await Deno.mkdir(dir, { recursive: true });
  const results: FetchResult[] = [];
  for (const [file, expected] of Object.entries(files)) {
    if (!/^[0-9a-f]{64}$/.test(expected)) {
      throw new Error(`Cannot fetch "${file}": expected SHA-256 "${expected}" is not 64 lowercase hex digits`);
    }
    const path = `${dir}/${file}`;
    const have = await hashFile(path);
    let result: FetchResult;
    if (have !== null && have.sha256 === expected) {
      result = { file, path, status: "present", bytes: have.size, sha256: have.sha256 };
    } else {
      const url = new URL(file, base).href;
      let bytes: Uint8Array;
      try {
        bytes = await downloadVerified(url, { sha256: expected }, { maxBytes, fetchImpl: options.fetchImpl });
      } catch (e) {
        throw new Error(`Cannot fetch MNIST: ${(e as Error).message}; the file was not written`, { cause: e });
      }
      await writeFileAtomic(path, bytes);
      result = { file, path, status: "downloaded", bytes: bytes.length, sha256: expected };
    }
    options.onFile?.(result);
    results.push(result);
  }
  return results;
}
