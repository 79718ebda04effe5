/**
 * `deno task prefetch [--platform KEY] [--url RELEASE_URL] [--cache DIR]`: downloads a platform's prebuilt library
 * from a release folder into the cache and verifies it against `native/manifest.json`, so that a later URL import of
 * mod.ts needs no network (see {@link prefetchNativeLibrary}). Run from a URL it prepares that URL's release:
 *
 * ```sh
 * deno run --allow-import=example.com --allow-net=example.com --allow-read="$CACHE" --allow-write="$CACHE" \
 *   --allow-env=GAN_NATIVE_URL,GAN_NATIVE_CACHE,DENO_DIR,XDG_CACHE_HOME,HOME \
 *   https://example.com/deno-gan/src/cli/prefetch.ts
 * ```
 *
 * @module
 */

import { prefetchNativeLibrary } from "../native/loader.ts";
import { parseFlags, runCommand, UsageError } from "./run.ts";

const USAGE = `Usage: deno task prefetch [--platform KEY] [--url RELEASE_URL] [--cache DIR]

Downloads the prebuilt native library of a platform from a release folder, checks its size and SHA-256 against
native/manifest.json, and keeps it in the cache that a URL import of mod.ts looks in first, so that later runs need
no network (only --allow-read and --allow-ffi for the cache).

  --platform KEY      <os>-<arch> as in Deno.build, e.g. linux-aarch64 (default: this machine's)
  --url RELEASE_URL   the release folder (default: GAN_NATIVE_URL, else release/ next to mod.ts)
  --cache DIR         the cache root (default: GAN_NATIVE_CACHE, else <Deno's cache directory>/deno-gan)`;

/**
 * Runs the command; returns the exit code.
 *
 * @param args The command line (without the program).
 * @returns 0 on success (1 and 2 are thrown as errors and usage errors, see `runCommand`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "./prefetch.ts";
 * assert.equal(await main(["--help"]), 0);
 * await assert.rejects(main(["--platform", "linux"]), /--platform must be <os>-<arch>/);
 * ```
 */
export async function main(args: string[]): Promise<number> {
  const v = parseFlags(args, { platform: "string", url: "string", cache: "string", help: "boolean" }) as {
    platform?: string;
    url?: string;
    cache?: string;
    help?: boolean;
  };
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (v.platform !== undefined && !/^[a-z0-9_]+-[a-z0-9_]+$/.test(v.platform)) {
    throw new UsageError(`--platform must be <os>-<arch>, like linux-aarch64, got ${JSON.stringify(v.platform)}`);
  }
  if (v.url !== undefined && !URL.canParse(v.url)) throw new UsageError(`--url must be a URL, got "${v.url}"`);
  if (v.cache === "") throw new UsageError(`--cache must name a folder, got ""`);
  const got = await prefetchNativeLibrary({ platform: v.platform, releaseUrl: v.url, cacheDir: v.cache });
  console.log(
    `${got.platform}: ${got.path} (${got.source === "cache" ? "already cached" : `downloaded from ${got.url}`}; ` +
      `${got.size} bytes, sha256 ${got.sha256}, version ${got.version})`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await runCommand("prefetch", main));
