/**
 * Command line: make a release of the native library for this platform, for users who import mod.ts from a URL.
 *
 * ```sh
 * deno task release
 * # = deno run --allow-read=. --allow-write=release,native/manifest.json --allow-run=cargo src/cli/release.ts
 * ```
 *
 * It runs `cargo build --release` in native/, copies the library to `release/<stem>-<os>-<arch><ext>` (e.g.
 * `release/libgan_native-linux-x86_64.so`, `release/libgan_native-darwin-aarch64.dylib`,
 * `release/gan_native-windows-x86_64.dll`; os and arch as in `Deno.build`) and records its size and SHA-256 in
 * `native/manifest.json` under the key `<os>-<arch>`, keeping the entries of other platforms when their version is the
 * crate's (run it on each platform and combine the release/ folders and manifests). Publish release/ next to mod.ts
 * and commit native/manifest.json with the code: a URL import checks every download against that manifest.
 *
 * Flags: `--no-build` (use the library already in native/target/release), `--help`.
 *
 * @example
 * ```ts
 * import { main } from "./release.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["--help"]), 0);
 * assert.equal(await main(["--bogus"]), 2);
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { buildCheckout } from "../native/loader.ts";
import { hashFile } from "../io/download.ts";
import {
  libraryFileName,
  type ManifestEntry,
  parseManifest,
  platformKey,
  releaseFileName,
  type ReleaseManifest,
} from "../native/fetch.ts";

const ROOT = decodeURIComponent(new URL("../../", import.meta.url).pathname);

/**
 * The `version` of the `[package]` table of a Cargo.toml.
 *
 * @param cargoToml The file's text.
 * @returns The version, e.g. `0.1.0`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { crateVersion } from "./release.ts";
 * assert.ok(crateVersion('[package]\nname = "gan_native"\nversion = "0.1.0"\n') === "0.1.0");
 * ```
 */
export function crateVersion(cargoToml: string): string {
  let section = "";
  for (const raw of cargoToml.split(/\r?\n/)) {
    const line = raw.trim();
    const header = /^\[([^\]]+)\]$/.exec(line);
    if (header) {
      section = header[1].trim();
      continue;
    }
    const m = /^version\s*=\s*"([^"]+)"/.exec(line);
    if (section === "package" && m) return m[1];
  }
  throw new Error('Cargo.toml has no version = "..." in its [package] table');
}

/**
 * Adds (or replaces) one platform's entry. Entries of other platforms are kept when the manifest's version is
 * `version`; a manifest of another version is started afresh (its files were built from other sources).
 *
 * @param existing The current manifest, or null.
 * @param version The crate version of the new file.
 * @param key The platform key, e.g. `linux-x86_64`.
 * @param entry The new file.
 * @returns The new manifest (files sorted by key) and the keys dropped for being of another version.
 *
 * @example
 * ```ts
 * import { mergeManifest } from "./release.ts";
 * import assert from "node:assert/strict";
 *
 * const mac = { file: "libgan_native-darwin-aarch64.dylib", size: 5, sha256: "1".repeat(64) };
 * const linux = { file: "libgan_native-linux-x86_64.so", size: 7, sha256: "2".repeat(64) };
 * const { manifest } = mergeManifest({ version: "0.1.0", files: { "darwin-aarch64": mac } }, "0.1.0", "linux-x86_64", linux);
 * assert.deepEqual(Object.keys(manifest.files), ["darwin-aarch64", "linux-x86_64"]);
 * const { dropped } = mergeManifest(manifest, "0.2.0", "linux-x86_64", linux);
 * assert.deepEqual(dropped, ["darwin-aarch64"]);
 * ```
 */
export function mergeManifest(
  existing: ReleaseManifest | null,
  version: string,
  key: string,
  entry: ManifestEntry,
): { manifest: ReleaseManifest; dropped: string[] } {
  const keep = existing !== null && existing.version === version ? existing.files : {};
  const dropped = existing !== null && existing.version !== version
    ? Object.keys(existing.files).filter((k) => k !== key).sort()
    : [];
  const files: Record<string, ManifestEntry> = {};
  for (const k of [...new Set([...Object.keys(keep), key])].sort()) {
    files[k] = k === key ? { file: entry.file, size: entry.size, sha256: entry.sha256 } : keep[k];
  }
  return { manifest: { version, files }, dropped };
}

/**
 * Options of {@link makeRelease}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReleaseOptions } from "./release.ts";
 * const o: ReleaseOptions = { releaseDir: "/tmp/release", build: false };
 * assert.ok(o.build === false);
 * ```
 */
export interface ReleaseOptions {
  /** The crate (default native/ of this checkout). */
  crateDir?: string;
  /** The release folder (default release/ of this checkout); created when missing. */
  releaseDir?: string;
  /** The manifest to update (default native/manifest.json of this checkout). */
  manifestPath?: string;
  /** Run `cargo build --release` first (default true; a no-op when the library is fresh). */
  build?: boolean;
}

/**
 * What {@link makeRelease} did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReleaseResult } from "./release.ts";
 * const key: ReleaseResult["key"] = "linux-x86_64";
 * assert.ok(key.includes("-"));
 * ```
 */
export interface ReleaseResult {
  /** The platform key. */
  key: string;
  /** The manifest entry written. */
  entry: ManifestEntry;
  /** The whole manifest written. */
  manifest: ReleaseManifest;
  /** The release file. */
  releasePath: string;
  /** The manifest file. */
  manifestPath: string;
  /** Platforms dropped from the manifest for being of another version. */
  dropped: string[];
}

/**
 * Builds the library, copies it into the release folder under its platform name, and merges its entry into the
 * manifest.
 *
 * @param opts Where the crate, the release folder and the manifest are.
 * @returns What was written.
 *
 * @example A release of a stand-in crate (no cargo: `build: false`)
 * ```ts
 * import { makeRelease } from "./release.ts";
 * import { libraryFileName } from "../native/fetch.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/native/target/release`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/native/Cargo.toml`, '[package]\nversion = "9.9.9"\n');
 * await Deno.writeFile(`${dir}/native/target/release/${libraryFileName()}`, new Uint8Array([1, 2, 3]));
 * const r = await makeRelease({
 *   crateDir: `${dir}/native`,
 *   releaseDir: `${dir}/release`,
 *   manifestPath: `${dir}/native/manifest.json`,
 *   build: false,
 * });
 * assert.equal(r.manifest.version, "9.9.9");
 * assert.equal(r.entry.size, 3);
 * assert.deepEqual(await Deno.readFile(r.releasePath), new Uint8Array([1, 2, 3]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function makeRelease(opts: ReleaseOptions = {}): Promise<ReleaseResult> {
  const crate = (opts.crateDir ?? `${ROOT}native`).replace(/\/+$/, "");
  const releaseDir = (opts.releaseDir ?? `${ROOT}release`).replace(/\/+$/, "");
  const manifestPath = opts.manifestPath ?? `${ROOT}native/manifest.json`;
  if (opts.build !== false) buildCheckout(crate);
  const version = crateVersion(await Deno.readTextFile(`${crate}/Cargo.toml`));
  const built = `${crate}/target/release/${libraryFileName()}`;
  const key = platformKey();
  const file = releaseFileName();
  const releasePath = `${releaseDir}/${file}`;
  await Deno.mkdir(releaseDir, { recursive: true });
  await Deno.copyFile(built, releasePath);
  const hashed = await hashFile(releasePath);
  if (hashed === null) throw new Error(`Cannot make a release: "${releasePath}" vanished after the copy`);
  let existing: ReleaseManifest | null = null;
  try {
    existing = parseManifest(JSON.parse(await Deno.readTextFile(manifestPath)), `"${manifestPath}"`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const entry: ManifestEntry = { file, size: hashed.size, sha256: hashed.sha256 };
  const { manifest, dropped } = mergeManifest(existing, version, key, entry);
  await Deno.writeTextFile(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  return { key, entry, manifest, releasePath, manifestPath, dropped };
}

const USAGE = `Usage: release [--no-build]

Builds native/ (cargo build --release), copies the library to release/${releaseFileName()}
and records its size and SHA-256 under "${platformKey()}" in native/manifest.json (other platforms' entries of the
same version are kept). Publish release/ next to mod.ts; commit native/manifest.json.

  --no-build   use the library already in native/target/release
  -h, --help   show this help
`;

/**
 * Runs the command with `args` and returns the exit code: 0 on success, 1 when the release fails, 2 on bad usage.
 *
 * @param args Command-line arguments (without the program name).
 * @param opts Passed to {@link makeRelease}.
 * @returns The exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { main } from "./release.ts";
 * assert.ok((await main(["--no-build", "extra"])) === 2);
 * ```
 */
export async function main(args: string[], opts: ReleaseOptions = {}): Promise<number> {
  let values: { "no-build"?: boolean; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: { "no-build": { type: "boolean" }, help: { type: "boolean", short: "h" } },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`release: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const r = await makeRelease({ ...opts, build: values["no-build"] ? false : opts.build });
    console.log(`${r.releasePath}  ${r.entry.size} bytes  sha256 ${r.entry.sha256}`);
    console.log(`${r.manifestPath}: version ${r.manifest.version}, ${Object.keys(r.manifest.files).join(", ")}`);
    if (r.dropped.length) console.log(`dropped entries of an older version: ${r.dropped.join(", ")}`);
  } catch (e) {
    console.error(`release: ${(e as Error).message}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
