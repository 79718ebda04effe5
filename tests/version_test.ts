// The version policy (README "Versions"): one version names a release, so the crate (native/Cargo.toml, and its
// entry in Cargo.lock), the JSR package (deno.json), the release manifest (native/manifest.json) and the library that
// was built agree; and the manifest's entries are the ones `deno task release` writes for their keys.

import assert from "node:assert/strict";
import { crateVersion, RELEASE_TARGETS } from "../src/cli/release.ts";
import { parseManifest, releaseFileName } from "../src/native/fetch.ts";
import { Context } from "../mod.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const crate = crateVersion(await Deno.readTextFile(`${ROOT}native/Cargo.toml`));
const denoJson = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)) as { version: string };
const manifest = parseManifest(JSON.parse(await Deno.readTextFile(`${ROOT}native/manifest.json`)));

Deno.test("versions: native/Cargo.toml, Cargo.lock, deno.json and native/manifest.json agree", async () => {
  assert.match(crate, /^\d+\.\d+\.\d+$/, "a plain semver version");
  assert.equal(denoJson.version, crate, "deno.json's version is the crate's: bump both together");
  assert.equal(manifest.version, crate, 'native/manifest.json is of another version: run "deno task release"');
  const lock = await Deno.readTextFile(`${ROOT}native/Cargo.lock`);
  const locked = /\[\[package\]\]\nname = "gan_native"\nversion = "([^"]+)"/.exec(lock)?.[1];
  assert.equal(locked, crate, "Cargo.lock is stale: run cargo build in native/ and commit Cargo.lock");
});

Deno.test("versions: the built library reports the crate's version", () => {
  using ctx = new Context({ backend: "cpu", threads: 1 });
  assert.equal(ctx.info().version, crate);
});

Deno.test("versions: every manifest entry is a known platform's release file, with its Rust target", () => {
  assert.ok(Object.keys(manifest.files).length > 0, "the manifest lists at least one platform");
  for (const [key, entry] of Object.entries(manifest.files)) {
    const target = RELEASE_TARGETS.find((t) => t.key === key);
    assert.ok(target, `${key} is not one of RELEASE_TARGETS`);
    assert.equal(entry.file, releaseFileName(target.os, target.arch), key);
    assert.equal(entry.target, target.triple, key);
  }
});
