/**
 * Command line: make a release of the native library for a list of platforms, for users who import mod.ts from a URL.
 *
 * ```sh
 * deno task release                                # this platform and those it cross-builds (linux-aarch64 here)
 * deno task release --target linux-x86_64          # only these (repeat the flag, or separate keys with commas)
 * # = deno run --allow-read=. --allow-write=release,native/manifest.json --allow-run=cargo src/cli/release.ts
 * ```
 *
 * For each platform it runs cargo in native/ (`cargo build --release` for this platform; `cargo build --release
 * --locked --target <triple>` with the cross linker for another, see {@link RELEASE_TARGETS}), checks that the file
 * is a library of that platform (its ELF, Mach-O or PE header), copies it to `release/<stem>-<os>-<arch><ext>` (e.g.
 * `release/libgan_native-linux-aarch64.so`, `release/libgan_native-darwin-aarch64.dylib`,
 * `release/gan_native-windows-x86_64.dll`; os and arch as in `Deno.build`) and records it in `native/manifest.json`
 * under the key `<os>-<arch>`: its file name (resolved against the release folder's URL), size, SHA-256 and Rust
 * target. Entries of other platforms are kept when their version is the crate's (run it on each platform and combine
 * the release/ folders and manifests). The crate's version must be deno.json's (see "Versions" in the README).
 * Publish release/ next to mod.ts and commit native/manifest.json with the code: a URL import checks every download
 * against that manifest.
 *
 * Flags: `--target KEY` (repeatable), `--no-build` (use the libraries already built), `--help`.
 *
 * @example
 * ```ts
 * import { main } from "./release.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["--help"]), 0);
 * assert.equal(await main(["--bogus"]), 2);
 * assert.equal(await main(["--target", "linux-sparc"]), 2);
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
 * A platform that a release can hold: its manifest key, its Rust target, and the hosts that cross-build it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RELEASE_TARGETS, type ReleaseTarget } from "./release.ts";
 * const arm: ReleaseTarget | undefined = RELEASE_TARGETS.find((t) => t.key === "linux-aarch64");
 * assert.equal(arm?.triple, "aarch64-unknown-linux-gnu");
 * ```
 */
export interface ReleaseTarget {
  /** The manifest key, `<os>-<arch>` as in `Deno.build`. */
  key: string;
  /** The OS, as in `Deno.build.os`. */
  os: typeof Deno.build.os;
  /** The architecture, as in `Deno.build.arch`. */
  arch: typeof Deno.build.arch;
  /** The Rust target triple. */
  triple: string;
  /**
   * Hosts (by key) that cross-build this target: the linker cargo is told to use, and what installs the cross
   * toolchain.
   */
  crossFrom?: Readonly<Record<string, { linker: string; install: string }>>;
}

/**
 * The platforms a release can hold. Each is built natively on itself; linux-aarch64 is also cross-built on
 * linux-x86_64 (Debian's `gcc-aarch64-linux-gnu` links it). macOS and Windows libraries cannot be built or run on
 * Linux here: they are made by `deno task release --target <key>` on such a machine (see "Releases" in the README).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { RELEASE_TARGETS } from "./release.ts";
 * assert.ok(RELEASE_TARGETS.some((t) => t.key === "darwin-aarch64" && t.triple === "aarch64-apple-darwin"));
 * ```
 */
export const RELEASE_TARGETS: readonly ReleaseTarget[] = [
  { key: "linux-x86_64", os: "linux", arch: "x86_64", triple: "x86_64-unknown-linux-gnu" },
  {
    key: "linux-aarch64",
    os: "linux",
    arch: "aarch64",
    triple: "aarch64-unknown-linux-gnu",
    crossFrom: {
      "linux-x86_64": {
        linker: "aarch64-linux-gnu-gcc",
        install: "apt-get install gcc-aarch64-linux-gnu libc6-dev-arm64-cross && " +
          "rustup target add aarch64-unknown-linux-gnu",
      },
    },
  },
  { key: "darwin-x86_64", os: "darwin", arch: "x86_64", triple: "x86_64-apple-darwin" },
  { key: "darwin-aarch64", os: "darwin", arch: "aarch64", triple: "aarch64-apple-darwin" },
  { key: "windows-x86_64", os: "windows", arch: "x86_64", triple: "x86_64-pc-windows-msvc" },
];

/**
 * The target of a manifest key; unknown keys are an error that lists the known ones.
 *
 * @param key A platform key, e.g. `linux-aarch64`.
 * @returns Its target.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { releaseTarget } from "./release.ts";
 * assert.equal(releaseTarget("linux-x86_64").triple, "x86_64-unknown-linux-gnu");
 * assert.throws(() => releaseTarget("linux-sparc"), /unknown platform "linux-sparc"; known: linux-x86_64, /);
 * ```
 */
export function releaseTarget(key: string): ReleaseTarget {
  const t = RELEASE_TARGETS.find((t) => t.key === key);
  if (t) return t;
  throw new Error(`unknown platform "${key}"; known: ${RELEASE_TARGETS.map((t) => t.key).join(", ")}`);
}

/**
 * What `deno task release` builds by default on a host: the host's own platform, then those it cross-builds.
 *
 * @param host The host's key (default this platform's).
 * @returns The keys.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { defaultTargets } from "./release.ts";
 * assert.deepEqual(defaultTargets("linux-x86_64"), ["linux-x86_64", "linux-aarch64"]);
 * assert.deepEqual(defaultTargets("darwin-aarch64"), ["darwin-aarch64"]);
 * ```
 */
export function defaultTargets(host: string = platformKey()): string[] {
  return [host, ...RELEASE_TARGETS.filter((t) => t.key !== host && t.crossFrom?.[host]).map((t) => t.key)];
}

/**
 * The platform a library file was built for, from its header: ELF (Linux), Mach-O (macOS) or PE (Windows), and the
 * machine (x86-64 or AArch64).
 *
 * @param bytes The file (its first bytes are enough).
 * @returns A platform key like `linux-aarch64`, or null when the header is none of those.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { binaryPlatform } from "./release.ts";
 * const elf = new Uint8Array(64);
 * elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
 * elf[18] = 0xb7; // e_machine EM_AARCH64
 * assert.equal(binaryPlatform(elf), "linux-aarch64");
 * assert.equal(binaryPlatform(new Uint8Array([1, 2, 3])), null);
 * ```
 */
export function binaryPlatform(bytes: Uint8Array): string | null {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const u16 = (at: number) => (at + 2 <= bytes.length ? view.getUint16(at, true) : -1);
  const u32 = (at: number) => (at + 4 <= bytes.length ? view.getUint32(at, true) : -1);
  if (bytes.length >= 20 && bytes[0] === 0x7f && bytes[1] === 0x45 && bytes[2] === 0x4c && bytes[3] === 0x46) {
    if (bytes[5] !== 1) return null; // big-endian
    const machine = u16(18);
    return machine === 0x3e ? "linux-x86_64" : machine === 0xb7 ? "linux-aarch64" : null;
  }
  if (u32(0) === 0xfeedfacf) {
    const cpu = u32(4);
    return cpu === 0x01000007 ? "darwin-x86_64" : cpu === 0x0100000c ? "darwin-aarch64" : null;
  }
  if (bytes[0] === 0x4d && bytes[1] === 0x5a) {
    const pe = u32(0x3c);
    if (pe < 0 || u32(pe) !== 0x00004550) return null;
    const machine = u16(pe + 4);
    return machine === 0x8664 ? "windows-x86_64" : machine === 0xaa64 ? "windows-aarch64" : null;
  }
  return null;
}

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
    files[k] = k === key
      ? {
        file: entry.file,
        size: entry.size,
        sha256: entry.sha256,
        ...(entry.target === undefined ? {} : { target: entry.target }),
      }
      : keep[k];
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
 * const o: ReleaseOptions = { releaseDir: "/tmp/release", build: false, targets: ["linux-x86_64"] };
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
  /**
   * The deno.json whose version must be the crate's (default the one beside the crate's folder; not checked when
   * there is none).
   */
  denoJsonPath?: string;
  /** The platforms, by key (default this platform only; the command line defaults to {@link defaultTargets}). */
  targets?: string[];
  /** Run cargo first (default true; a no-op when the library is fresh). */
  build?: boolean;
  /** The host's key (default this platform's): which targets are native and which are cross-built. */
  host?: string;
}

/**
 * One platform's file in a release, as {@link makeRelease} wrote it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReleasedFile } from "./release.ts";
 * const key: ReleasedFile["key"] = "linux-aarch64";
 * assert.ok(key.includes("-"));
 * ```
 */
export interface ReleasedFile {
  /** The platform key. */
  key: string;
  /** The manifest entry written. */
  entry: ManifestEntry;
  /** The built library it was copied from. */
  builtPath: string;
  /** The release file. */
  releasePath: string;
}

/**
 * What {@link makeRelease} did.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import type { ReleaseResult } from "./release.ts";
 * const r: Pick<ReleaseResult, "dropped"> = { dropped: [] };
 * assert.equal(r.dropped.length, 0);
 * ```
 */
export interface ReleaseResult {
  /** The files, in the order of the targets. */
  files: ReleasedFile[];
  /** The whole manifest written. */
  manifest: ReleaseManifest;
  /** The manifest file. */
  manifestPath: string;
  /** Platforms dropped from the manifest for being of another version. */
  dropped: string[];
}

/** Where cargo puts the library of `target` when built on `host`. */
function builtLibrary(crate: string, target: ReleaseTarget, host: string): string {
  const dir = target.key === host ? "target/release" : `target/${target.triple}/release`;
  return `${crate}/${dir}/${libraryFileName(target.os)}`;
}

/** Runs cargo for `target` on `host` (natively, or cross with the target's linker), failing with cargo's output. */
function buildTarget(crate: string, target: ReleaseTarget, host: string): void {
  if (target.key === host) return buildCheckout(crate);
  const cross = target.crossFrom?.[host];
  if (!cross) {
    throw new Error(
      `${target.key} cannot be built on ${host}: run "deno task release --target ${target.key}" on ${target.key} ` +
        `and combine the release/ folders and manifests (see "Releases" in the README)`,
    );
  }
  const linkerVar = `CARGO_TARGET_${target.triple.toUpperCase().replaceAll("-", "_")}_LINKER`;
  console.error(`deno-gan: cross-building ${target.key} (cargo build --release --target ${target.triple})`);
  let out: Deno.CommandOutput;
  try {
    out = new Deno.Command("cargo", {
      args: ["build", "--release", "--locked", "--target", target.triple],
      cwd: crate,
      env: { [linkerVar]: cross.linker },
      stdout: "piped",
      stderr: "piped",
    }).outputSync();
  } catch (e) {
    throw new Error(`cargo could not be started (${(e as Error).message}); install a Rust toolchain`);
  }
  if (!out.success) {
    const err = new TextDecoder().decode(out.stderr).split("\n").slice(-30).join("\n");
    throw new Error(
      `cargo build --release --target ${target.triple} failed in "${crate}" (the cross toolchain: ` +
        `${cross.install}):\n${err}`,
    );
  }
}

/**
 * Builds the library for each platform, checks each file's header, copies it into the release folder under its
 * platform name, and merges its entry into the manifest.
 *
 * @param opts Where the crate, the release folder and the manifest are; which platforms.
 * @returns What was written.
 *
 * @example A release of a stand-in crate (no cargo: `build: false`)
 * ```ts
 * import { makeRelease } from "./release.ts";
 * import { libraryFileName } from "../native/fetch.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.mkdir(`${dir}/native/target/aarch64-unknown-linux-gnu/release`, { recursive: true });
 * await Deno.writeTextFile(`${dir}/native/Cargo.toml`, '[package]\nversion = "9.9.9"\n');
 * const elf = new Uint8Array(64);
 * elf.set([0x7f, 0x45, 0x4c, 0x46, 2, 1]);
 * elf[18] = 0xb7; // AArch64
 * await Deno.writeFile(`${dir}/native/target/aarch64-unknown-linux-gnu/release/libgan_native.so`, elf);
 * const r = await makeRelease({
 *   crateDir: `${dir}/native`,
 *   releaseDir: `${dir}/release`,
 *   manifestPath: `${dir}/native/manifest.json`,
 *   targets: ["linux-aarch64"],
 *   host: "linux-x86_64",
 *   build: false,
 * });
 * assert.equal(r.manifest.version, "9.9.9");
 * assert.deepEqual(r.manifest.files["linux-aarch64"].target, "aarch64-unknown-linux-gnu");
 * assert.equal(r.files[0].entry.file, "libgan_native-linux-aarch64.so");
 * assert.deepEqual(await Deno.readFile(r.files[0].releasePath), elf);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function makeRelease(opts: ReleaseOptions = {}): Promise<ReleaseResult> {
  const crate = (opts.crateDir ?? `${ROOT}native`).replace(/\/+$/, "");
  const releaseDir = (opts.releaseDir ?? `${ROOT}release`).replace(/\/+$/, "");
  const manifestPath = opts.manifestPath ?? `${ROOT}native/manifest.json`;
  const host = opts.host ?? platformKey();
  const targets = (opts.targets ?? [host]).map(releaseTarget);
  const version = crateVersion(await Deno.readTextFile(`${crate}/Cargo.toml`));
  await checkDenoJsonVersion(opts.denoJsonPath ?? `${crate.slice(0, Math.max(crate.lastIndexOf("/"), 0))}/deno.json`, {
    version,
    crate,
  });
  if (opts.build !== false) { for (const t of targets) buildTarget(crate, t, host); }
  await Deno.mkdir(releaseDir, { recursive: true });
  let manifest: ReleaseManifest | null = null;
  try {
    manifest = parseManifest(JSON.parse(await Deno.readTextFile(manifestPath)), `"${manifestPath}"`);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  const files: ReleasedFile[] = [];
  const dropped = new Set<string>();
  for (const t of targets) {
    const builtPath = builtLibrary(crate, t, host);
    let bytes: Uint8Array;
    try {
      bytes = await Deno.readFile(builtPath);
    } catch (e) {
      if (!(e instanceof Deno.errors.NotFound)) throw e;
      throw new Error(`${t.key}: "${builtPath}" does not exist (build it, or drop --no-build)`);
    }
    const found = binaryPlatform(bytes);
    if (found !== t.key) {
      throw new Error(
        `"${builtPath}" is ${found === null ? "not a library this loader knows" : `a ${found} library`}, not ${t.key}`,
      );
    }
    const file = releaseFileName(t.os, t.arch);
    const releasePath = `${releaseDir}/${file}`;
    await Deno.copyFile(builtPath, releasePath);
    const hashed = await hashFile(releasePath);
    if (hashed === null) throw new Error(`"${releasePath}" vanished after the copy`);
    const entry: ManifestEntry = { file, size: hashed.size, sha256: hashed.sha256, target: t.triple };
    const merged = mergeManifest(manifest, version, t.key, entry);
    manifest = merged.manifest;
    for (const k of merged.dropped) dropped.add(k);
    files.push({ key: t.key, entry, builtPath, releasePath });
  }
  if (manifest === null) manifest = { version, files: {} };
  await Deno.writeTextFile(manifestPath, JSON.stringify(manifest, null, 2) + "\n");
  return { files, manifest, manifestPath, dropped: [...dropped].filter((k) => !(k in manifest.files)).sort() };
}

/** Refuses a release whose crate version is not deno.json's (see "Versions" in the README). */
async function checkDenoJsonVersion(path: string, crate: { version: string; crate: string }): Promise<void> {
  let text: string;
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw e;
  }
  const version = (JSON.parse(text) as { version?: unknown }).version;
  if (version !== crate.version) {
    throw new Error(
      `"${path}" has version ${JSON.stringify(version)} but "${crate.crate}/Cargo.toml" has "${crate.version}": ` +
        `bump both together (see "Versions" in the README)`,
    );
  }
}

const USAGE = `Usage: release [--target KEY]... [--no-build]

Builds native/ for each platform (default here: ${defaultTargets().join(", ")}), copies each library to
release/<stem>-<os>-<arch><ext> (e.g. release/${releaseFileName()}) and records its size, SHA-256 and
Rust target under "<os>-<arch>" in native/manifest.json (other platforms' entries of the same version are kept).
Publish release/ next to mod.ts; commit native/manifest.json.

  --target KEY   a platform to build (repeatable, or KEY,KEY): ${RELEASE_TARGETS.map((t) => t.key).join(", ")}
  --no-build     use the libraries already in native/target
  -h, --help     show this help
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
  let values: { "no-build"?: boolean; help?: boolean; target?: string[] };
  let targets: string[] | undefined;
  try {
    ({ values } = parseArgs({
      args,
      options: {
        "no-build": { type: "boolean" },
        help: { type: "boolean", short: "h" },
        target: { type: "string", multiple: true },
      },
      strict: true,
      allowPositionals: false,
    }));
    targets = values.target?.flatMap((t) => t.split(",")).map((t) => t.trim()).filter((t) => t !== "");
    for (const t of targets ?? []) releaseTarget(t);
  } catch (e) {
    console.error(`release: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  try {
    const r = await makeRelease({
      ...opts,
      targets: targets ?? opts.targets ?? defaultTargets(opts.host),
      build: values["no-build"] ? false : opts.build,
    });
    for (const f of r.files) console.log(`${f.releasePath}  ${f.entry.size} bytes  sha256 ${f.entry.sha256}`);
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
