// mod.ts imported from an http:// URL, as a user of the published library would: a copy of the TS sources with a
// release folder and a manifest (made by the release script's functions) is served on 127.0.0.1 from this test, and a
// `deno run` subprocess with narrow permissions (no GAN_NATIVE_LIB, a fresh DENO_DIR) imports it, downloads and checks
// the library, trains a tiny GAN and samples from it. Then: a tampered and a truncated library are refused and nothing is kept,
// a second import downloads nothing, a corrupted cached copy is fetched again. The download/cache logic also gets
// direct in-process tests with a stand-in fetch.

import assert from "node:assert/strict";
import * as local from "../mod.ts";
import { makeRelease } from "../src/cli/release.ts";
import {
  fetchLibrary,
  libraryFileName,
  manifestEntry,
  parseManifest,
  platformKey,
  releaseFileName,
  type ReleaseManifest,
} from "../src/native/fetch.ts";
import { sha256Hex } from "../src/io/download.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const SUBPROCESS_TIMEOUT_MS = 60_000;

interface TinyResult {
  location: local.LibraryLocation;
  version: string;
  losses: local.StepResult[];
  sample: number[];
  step: number;
}

/**
 * The computation run through the URL import and, as the reference, in this process. Its source is copied into the
 * subprocess's driver with `toString()`, so it only uses `mod` and plain JavaScript (no `using`: that is transpiled
 * into module-level helpers).
 */
async function tinyGan(mod: typeof local): Promise<TinyResult> {
  const { location } = await mod.loadNativeLibrary();
  const ctx = new mod.Context({ backend: "cpu", threads: 1 });
  const g = new mod.NativeMlp(ctx, {
    input: 4,
    layers: [
      { out: 8, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 6, bn: null, act: { kind: "tanh" } },
    ],
  });
  const d = new mod.NativeMlp(ctx, {
    input: 6,
    layers: [
      { out: 5, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 1, bn: null, act: { kind: "sigmoid" } },
    ],
  });
  const fill = (n: number, k: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i * 0.37 + k) * 0.4);
  g.set("params", fill(g.info().param_count, 1));
  d.set("params", fill(d.info().param_count, 2));
  const gan = new mod.NativeGan(ctx, g, d, { batch_size: 4, seed: 7, lr: 0.01, b1: 0.5, b2: 0.999, eps: 1e-8 });
  gan.setData(Uint8Array.from({ length: 8 * 6 }, (_, i) => (i * 37) % 256), 8);
  const losses = gan.step(3);
  const sample = Array.from(g.forward(fill(2 * 4, 3), 2, false)); // eval mode: BN running statistics
  const out = { location, version: ctx.info().version, losses, sample, step: gan.info().step };
  gan.close();
  d.close();
  g.close();
  ctx.close();
  return out;
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

/** Files (not folders) under `dir`, relative. */
function filesUnder(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return out;
    throw e;
  }
  for (const e of entries) {
    if (e.isDirectory) out.push(...filesUnder(`${dir}/${e.name}`, `${prefix}${e.name}/`));
    else out.push(`${prefix}${e.name}`);
  }
  return out;
}

const CONTENT_TYPES: Record<string, string> = {
  ts: "application/typescript; charset=utf-8",
  json: "application/json; charset=utf-8",
};

/** Serves `root` on 127.0.0.1 (a random port), counting requests per path; `override` replaces one path's body. */
function serveTree(root: string) {
  const requests = new Map<string, number>();
  const state: { override: { path: string; body: Uint8Array<ArrayBuffer> } | null } = { override: null };
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    requests.set(path, (requests.get(path) ?? 0) + 1);
    if (path.split("/").includes("..")) return new Response("bad path", { status: 400 });
    if (state.override?.path === path) return new Response(state.override.body);
    try {
      const body = await Deno.readFile(`${root}${path}`);
      const ext = path.slice(path.lastIndexOf(".") + 1);
      return new Response(body, { headers: { "content-type": CONTENT_TYPES[ext] ?? "application/octet-stream" } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  return { server, port: server.addr.port, requests, state };
}

interface DriverRun {
  code: number;
  stdout: string;
  stderr: string;
  result: ({ ok: true } & TinyResult) | { ok: false; message: string } | null;
}

/** Runs the driver (which imports mod.ts from `modUrl`) with exactly `perms` and `env`, killed after a minute. */
async function runDriver(
  driver: string,
  cwd: string,
  perms: string[],
  env: Record<string, string>,
  mode: "train" | "sync" = "train",
): Promise<DriverRun> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-config", "--no-lock", "--no-prompt", ...perms, driver, mode],
    cwd,
    clearEnv: true,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), SUBPROCESS_TIMEOUT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  let result: DriverRun["result"] = null;
  try {
    result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "");
  } catch {
    // reported by the caller's assertion, with stdout and stderr
  }
  return { code: out.code, stdout, stderr, result };
}

function driverSource(modUrl: string): string {
  return `import * as mod from ${JSON.stringify(modUrl)};
const tinyGan = ${tinyGan.toString()};
try {
  if (Deno.args[0] === "sync") new mod.Context({ backend: "cpu", threads: 1 });
  console.log(JSON.stringify({ ok: true, ...(await tinyGan(mod)) }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, message: String(e && e.message || e) }));
  Deno.exit(3);
}
`;
}

function flipByte(bytes: Uint8Array<ArrayBuffer>): Uint8Array<ArrayBuffer> {
  const out = bytes.slice();
  out[out.length >> 1] ^= 0xff;
  return out;
}

Deno.test("mod.ts imported from an http URL downloads, verifies, caches and uses the prebuilt library", async (t) => {
  const tmp = await Deno.makeTempDir({ prefix: "gan-url-import-" });
  try {
    await urlImportScenarios(t, tmp);
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});

async function urlImportScenarios(t: Deno.TestContext, tmp: string): Promise<void> {
  const site = `${tmp}/site`;
  const denoDir = `${tmp}/deno_dir`;
  const work = `${tmp}/work`;
  // The repository's TS sources, as they would be published.
  await Deno.mkdir(`${site}/native`, { recursive: true });
  await Deno.mkdir(work, { recursive: true });
  for (const f of ["mod.ts", "deno.json", "deno.lock"]) await Deno.copyFile(`${ROOT}${f}`, `${site}/${f}`);
  await copyTree(`${ROOT}src`, `${site}/src`);
  await Deno.copyFile(`${ROOT}native/manifest.json`, `${site}/native/manifest.json`);
  // The release folder and its manifest, made by the release script from the library the suite already built.
  const release = await makeRelease({
    crateDir: `${ROOT}native`,
    releaseDir: `${site}/release`,
    manifestPath: `${site}/native/manifest.json`,
  });
  const manifest = parseManifest(JSON.parse(await Deno.readTextFile(`${site}/native/manifest.json`)));
  const entry = manifestEntry(manifest);
  assert.equal(entry.file, releaseFileName());
  const good = await Deno.readFile(release.files[0].releasePath);
  assert.equal(entry.size, good.length);
  assert.equal(entry.sha256, await sha256Hex(good));

  const { server, port, requests, state } = serveTree(site);
  const host = `127.0.0.1:${port}`;
  const libPath = `/release/${entry.file}`;
  const libUrl = `http://${host}${libPath}`;
  const libRequests = () => requests.get(libPath) ?? 0;
  const driver = `${work}/driver.js`;
  await Deno.writeTextFile(driver, driverSource(`http://${host}/mod.ts`));
  const envVars = "--allow-env=GAN_NATIVE_LIB,GAN_NATIVE_URL,GAN_NATIVE_CACHE,DENO_DIR";
  const permsFor = (cache: string) => [
    `--allow-import=${host}`,
    `--allow-net=${host}`,
    `--allow-read=${cache}`,
    `--allow-write=${cache}`,
    `--allow-ffi=${cache}`,
    envVars,
  ];
  const defaultCache = `${denoDir}/deno-gan`; // DENO_DIR/deno-gan when GAN_NATIVE_CACHE is unset
  const cachedFile = `${defaultCache}/${manifest.version}/${entry.sha256}/${libraryFileName()}`;
  const show = (r: DriverRun) => `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
  const reference = JSON.parse(JSON.stringify(await tinyGan(local))) as TinyResult;

  const expectTrained = (r: DriverRun, source: "download" | "cache") => {
    assert.equal(r.code, 0, show(r));
    assert.ok(r.result?.ok, show(r));
    const got = r.result as { ok: true } & TinyResult;
    assert.deepEqual(got.location, { path: cachedFile, source, url: libUrl, sha256: entry.sha256 });
    assert.equal(got.version, reference.version);
    assert.equal(got.step, 3);
    assert.equal(got.losses.length, 3);
    for (const l of got.losses) assert.ok(Object.values(l).every(Number.isFinite), JSON.stringify(l));
    assert.equal(got.sample.length, 2 * 6);
    assert.ok(got.sample.every((v) => Math.abs(v) <= 1), "tanh outputs");
    // The same library bytes, threads and inputs as this process: bit-identical results.
    assert.deepEqual(got.losses, reference.losses);
    assert.deepEqual(got.sample, reference.sample);
  };

  const expectRefused = async (
    body: Uint8Array<ArrayBuffer>,
    message: (got: Uint8Array<ArrayBuffer>) => Promise<string>,
  ) => {
    state.override = { path: libPath, body };
    const cache = await Deno.makeTempDir({ dir: tmp, prefix: "cache-" });
    const before = libRequests();
    const r = await runDriver(driver, work, permsFor(cache), { DENO_DIR: denoDir, GAN_NATIVE_CACHE: cache });
    state.override = null;
    assert.equal(r.code, 3, show(r));
    assert.deepEqual(r.result, { ok: false, message: await message(body) }, show(r));
    assert.equal(libRequests(), before + 1);
    assert.deepEqual(filesUnder(cache), [], "nothing unverified is left in the cache");
  };

  try {
    await t.step("first import: downloads the library once, verifies it, trains and samples", async () => {
      const r = await runDriver(driver, work, permsFor(defaultCache), { DENO_DIR: denoDir });
      expectTrained(r, "download");
      assert.equal(libRequests(), 1);
      assert.ok((requests.get("/native/manifest.json") ?? 0) >= 1, "the manifest comes from the same origin");
      assert.deepEqual(filesUnder(defaultCache), [`${manifest.version}/${entry.sha256}/${libraryFileName()}`]);
      // The README's claim: a URL import (which trains and samples without writing grids) pulls in no npm package;
      // with a fresh DENO_DIR, nothing npm lands in it.
      const npm = [...filesUnder(`${denoDir}/npm`), ...r.stderr.split("\n").filter((l) => l.includes("npmjs.org"))];
      assert.deepEqual(npm.slice(0, 5), [], `the URL import fetched npm packages: ${npm.slice(0, 5).join(", ")}`);
    });

    await t.step("second import: uses the cache, downloads nothing", async () => {
      const r = await runDriver(driver, work, permsFor(defaultCache), { DENO_DIR: denoDir });
      expectTrained(r, "cache");
      assert.equal(libRequests(), 1);
    });

    await t.step("a cached copy that no longer matches is re-hashed, deleted and downloaded again", async () => {
      await Deno.writeFile(cachedFile, flipByte(await Deno.readFile(cachedFile)));
      const r = await runDriver(driver, work, permsFor(defaultCache), { DENO_DIR: denoDir });
      expectTrained(r, "download");
      assert.equal(libRequests(), 2);
      assert.deepEqual(await Deno.readFile(cachedFile), good);
    });

    await t.step("one byte changed: refused before it is opened, nothing kept", async () => {
      await expectRefused(
        flipByte(good),
        async (got) =>
          `Cannot load the native library: downloaded "${libUrl}" has SHA-256 ${await sha256Hex(got)}, ` +
          `the manifest expects ${entry.sha256}; nothing was written`,
      );
    });

    await t.step("truncated: refused, nothing kept", async () => {
      await expectRefused(
        good.slice(0, good.length >> 1),
        (got) =>
          Promise.resolve(
            `Cannot load the native library: downloaded "${libUrl}" has ${got.length} bytes, ` +
              `the manifest expects ${entry.size}; nothing was written`,
          ),
      );
    });

    await t.step("a Context before loadNativeLibrary() says what to do", async () => {
      const r = await runDriver(driver, work, permsFor(defaultCache), { DENO_DIR: denoDir }, "sync");
      assert.equal(r.code, 3, show(r));
      assert.equal(r.result?.ok, false, show(r));
      assert.match(
        (r.result as { message: string }).message,
        /^Cannot load the native library: this module was imported from "http:\/\/127\.0\.0\.1:\d+\/src\/native\/loader\.ts", so the prebuilt library for [a-z0-9_]+-[a-z0-9_]+ must be downloaded .*call "await loadNativeLibrary\(\)"/,
      );
    });
  } finally {
    await server.shutdown();
  }
}

const SITE = "https://example.invalid/release/";

async function manifestFor(bytes: Uint8Array): Promise<ReleaseManifest> {
  return {
    version: "0.1.0",
    files: { [platformKey()]: { file: releaseFileName(), size: bytes.length, sha256: await sha256Hex(bytes) } },
  };
}

Deno.test("fetchLibrary: no entry for this platform lists the platforms the manifest has", () => {
  const m: ReleaseManifest = {
    version: "0.1.0",
    files: {
      "darwin-aarch64": { file: "libgan_native-darwin-aarch64.dylib", size: 1, sha256: "a".repeat(64) },
      "windows-x86_64": { file: "gan_native-windows-x86_64.dll", size: 1, sha256: "b".repeat(64) },
    },
  };
  assert.throws(
    () => manifestEntry(m, "linux-riscv64"),
    (e: Error) => {
      assert.ok(
        e.message.startsWith(
          "Cannot load the native library: the release manifest (version 0.1.0) has no build for linux-riscv64; " +
            "it has: darwin-aarch64, windows-x86_64.",
        ),
        e.message,
      );
      return true;
    },
  );
});

Deno.test("fetchLibrary: HTTP errors, oversized bodies, bad manifests, cache hits without fetching", async () => {
  const bytes = new Uint8Array([1, 2, 3, 4, 5]);
  const manifest = await manifestFor(bytes);
  const cacheRoot = await Deno.makeTempDir({ prefix: "gan-fetch-" });
  try {
    const url = `${SITE}${releaseFileName()}`;
    await assert.rejects(
      fetchLibrary({
        manifest,
        baseUrl: SITE,
        baseUrlSource: "from GAN_NATIVE_URL",
        cacheRoot,
        fetchImpl: () => Promise.resolve(new Response("no", { status: 404, statusText: "Not Found" })),
      }),
      (e: Error) => {
        assert.equal(
          e.message,
          `Cannot load the native library: downloading "${url}" from the release folder ${SITE} (from GAN_NATIVE_URL) ` +
            `failed: HTTP 404 Not Found; set GAN_NATIVE_URL to a folder that has the files of "deno task release", ` +
            `or GAN_NATIVE_LIB to a library`,
        );
        return true;
      },
    );
    await assert.rejects(
      fetchLibrary({
        manifest,
        baseUrl: SITE,
        cacheRoot,
        fetchImpl: () => Promise.resolve(new Response(new Uint8Array(1000))),
      }),
      new RegExp(`downloaded "${url}" is larger than the 5 bytes the manifest expects; nothing was written`),
    );
    assert.deepEqual(filesUnder(cacheRoot), []);
    // A base URL without its trailing slash still names the folder.
    let fetched = 0;
    const fetchImpl = (input: string | URL | Request) => {
      fetched++;
      assert.equal(String(input), url);
      return Promise.resolve(new Response(bytes));
    };
    const first = await fetchLibrary({ manifest, baseUrl: SITE.slice(0, -1), cacheRoot, fetchImpl });
    const second = await fetchLibrary({ manifest, baseUrl: SITE, cacheRoot, fetchImpl });
    assert.equal(first.source, "download");
    assert.equal(second.source, "cache");
    assert.equal(second.path, first.path);
    assert.equal(fetched, 1);
    assert.throws(
      () => parseManifest({ version: "0.1.0", files: { "linux-x86_64": { file: "a.so", size: 1, sha256: "AB" } } }),
      /files\["linux-x86_64"\]\.sha256 must be 64 lowercase hex digits, got "AB"/,
    );
    assert.throws(() => parseManifest({ version: "../x", files: {} }), /version must be a version string/);
  } finally {
    await Deno.remove(cacheRoot, { recursive: true });
  }
});
