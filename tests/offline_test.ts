// Offline use of a URL import: `prefetch.ts` run from the URL (as `deno task prefetch` runs it locally) downloads and
// verifies the library of this platform, and of another one, into the cache; then the server is shut down, and a
// second run, with no --allow-net and no --allow-write (and --cached-only, so Deno itself fetches nothing), imports
// mod.ts from the same URL, finds the verified library in the cache, trains and samples. A copy of the sources and a
// release made by the release script's functions are served on 127.0.0.1 from this test, as in url_import_test.ts.

import assert from "node:assert/strict";
import { makeRelease, mergeManifest } from "../src/cli/release.ts";
import { libraryFileName, parseManifest, platformKey } from "../src/native/fetch.ts";
import { sha256Hex } from "../src/io/download.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const TIMEOUT_MS = 60_000;

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

function filesUnder(dir: string, prefix = ""): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(dir)) {
    if (e.isDirectory) out.push(...filesUnder(`${dir}/${e.name}`, `${prefix}${e.name}/`));
    else out.push(`${prefix}${e.name}`);
  }
  return out.sort();
}

async function deno(args: string[], env: Record<string, string>) {
  const child = new Deno.Command(Deno.execPath(), {
    args,
    clearEnv: true,
    env: { NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", ...env },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  return { code: out.code, stdout, stderr, show: `exit ${out.code}\nstdout: ${stdout}\nstderr: ${stderr}` };
}

const DRIVER = (modUrl: string) =>
  `import * as mod from ${JSON.stringify(modUrl)};
if (Deno.args[0] === "import") Deno.exit(0);
const { location } = await mod.loadNativeLibrary();
const pixels = new Uint8Array(32 * 49).map((_, i) => (i * 37) % 256);
const data = { name: "toy", count: 32, height: 7, width: 7, channels: 1, pixels };
const trainer = await mod.GanTrainer.create(data, { backend: "cpu", threads: 1, imgSize: 7, latentDim: 8, batchSize: 16, nEpochs: 2 });
const summary = await trainer.run();
const sample = trainer.sample(2, 1);
trainer.close();
console.log(JSON.stringify({ location, steps: summary.steps, sample: sample.length, finite: sample.every(Number.isFinite) }));
`;

Deno.test("offline: a prefetched library serves a later URL import with no --allow-net, no --allow-write, no server", async () => {
  const tmp = await Deno.makeTempDir({ prefix: "gan-offline-" });
  try {
    const site = `${tmp}/site`;
    await Deno.mkdir(`${site}/native`, { recursive: true });
    await Deno.copyFile(`${ROOT}mod.ts`, `${site}/mod.ts`);
    await copyTree(`${ROOT}src`, `${site}/src`);
    // This platform's library as built for the suite, and a stand-in for another platform (only its hash is checked).
    const release = await makeRelease({
      crateDir: `${ROOT}native`,
      releaseDir: `${site}/release`,
      manifestPath: `${site}/native/manifest.json`,
      build: false,
    });
    const other = new Uint8Array(4096).map((_, i) => (i * 131) % 251);
    await Deno.writeFile(`${site}/release/libgan_native-darwin-aarch64.dylib`, other);
    const otherEntry = {
      file: "libgan_native-darwin-aarch64.dylib",
      size: other.length,
      sha256: await sha256Hex(other),
    };
    const { manifest } = mergeManifest(release.manifest, release.manifest.version, "darwin-aarch64", otherEntry);
    await Deno.writeTextFile(`${site}/native/manifest.json`, JSON.stringify(manifest, null, 2));
    parseManifest(manifest);

    const requests: string[] = [];
    const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
      const path = decodeURIComponent(new URL(req.url).pathname);
      requests.push(path);
      if (path.split("/").includes("..")) return new Response("bad path", { status: 400 });
      try {
        const type = path.endsWith(".ts") ? "application/typescript" : "application/octet-stream";
        return new Response(await Deno.readFile(`${site}${path}`), { headers: { "content-type": type } });
      } catch {
        return new Response("not found", { status: 404 });
      }
    });
    const host = `127.0.0.1:${server.addr.port}`;
    const cache = `${tmp}/cache`;
    const env = { DENO_DIR: `${tmp}/deno_dir`, GAN_NATIVE_CACHE: cache };
    const envFlag = "--allow-env=GAN_NATIVE_LIB,GAN_NATIVE_URL,GAN_NATIVE_CACHE,DENO_DIR,XDG_CACHE_HOME,HOME";
    await Deno.writeTextFile(`${tmp}/driver.js`, DRIVER(`http://${host}/mod.ts`));
    const prefetch = (platform: string) =>
      deno([
        "run",
        "--no-config",
        "--no-lock",
        "--no-prompt",
        `--allow-import=${host}`,
        `--allow-net=${host}`,
        `--allow-read=${cache}`,
        `--allow-write=${cache}`,
        envFlag,
        `http://${host}/src/cli/prefetch.ts`,
        "--platform",
        platform,
      ], env);
    try {
      const here = await prefetch(platformKey());
      assert.equal(here.code, 0, here.show);
      const entry = manifest.files[platformKey()];
      assert.match(
        here.stdout,
        new RegExp(`^${platformKey()}: .* \\(downloaded from http://${host}/release/`),
        here.show,
      );
      const again = await prefetch(platformKey());
      assert.equal(again.code, 0, again.show);
      assert.match(again.stdout, /\(already cached;/, again.show);
      const mac = await prefetch("darwin-aarch64");
      assert.equal(mac.code, 0, mac.show);
      assert.deepEqual(
        filesUnder(cache),
        [
          `${manifest.version}/${entry.sha256}/${libraryFileName()}`,
          `${manifest.version}/${otherEntry.sha256}/libgan_native.dylib`,
        ].sort(),
      );
      assert.equal(requests.filter((p) => p.startsWith("/release/")).length, 2, "each library downloaded once");
      // The sources, as a first run caches them in DENO_DIR: this one imports mod.ts and stops (no --allow-net).
      const imported = await deno(
        ["run", "--no-config", "--no-lock", "--no-prompt", `--allow-import=${host}`, `${tmp}/driver.js`, "import"],
        env,
      );
      assert.equal(imported.code, 0, imported.show);
      assert.equal(requests.filter((p) => p.startsWith("/release/")).length, 2, "importing fetched no library");
    } finally {
      await server.shutdown();
    }

    // No server, no --allow-net, no --allow-write; Deno's own module cache (DENO_DIR) holds the sources.
    const offlineRun = (cacheDir: string) =>
      deno([
        "run",
        "--no-config",
        "--no-lock",
        "--no-prompt",
        "--cached-only",
        `--allow-import=${host}`,
        `--allow-read=${cacheDir}`,
        `--allow-ffi=${cacheDir}`,
        envFlag,
        "--allow-sys=uid,systemMemoryInfo",
        `${tmp}/driver.js`,
      ], { ...env, GAN_NATIVE_CACHE: cacheDir });
    const offline = await offlineRun(cache);
    assert.equal(offline.code, 0, offline.show);
    const got = JSON.parse(offline.stdout.trim().split("\n").at(-1)!);
    const entry = manifest.files[platformKey()];
    assert.equal(got.location.source, "cache", offline.show);
    assert.equal(got.location.sha256, entry.sha256);
    assert.equal(got.location.path, `${cache}/${manifest.version}/${entry.sha256}/${libraryFileName()}`);
    assert.deepEqual([got.steps, got.sample, got.finite], [4, 2 * 49, true]);
    // The same run on a cache without the library says what it would need.
    await Deno.mkdir(`${tmp}/empty`, { mode: 0o700 });
    const empty = await offlineRun(`${tmp}/empty`);
    assert.notEqual(empty.code, 0, empty.show);
    assert.match(
      empty.stderr,
      new RegExp(`the library cache "${tmp}/empty" .* needs --allow-read=\\S+ --allow-write=`),
      empty.show,
    );
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
});
