// The verified load cannot be raced: while a swapper replaces the cached library by a foreign one (whose constructor
// announces itself) every few milliseconds, 200 verified loads open the real library every time. The file that is
// opened is a fresh private copy of the bytes that were hashed, never the cache path that was checked. A control run
// opens the checked cache path instead (hash, then open by path, as the loader did before) and counts the foreign
// loads the swapper wins there, to show that the race is real on this machine.

import assert from "node:assert/strict";
import { fetchLibrary } from "../src/native/fetch.ts";
import { hashFile, sha256Hex } from "../src/io/download.ts";

const LOADS = 200;

async function run(cmd: string, args: string[]): Promise<void> {
  const out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  if (!out.success) throw new Error(`${cmd} ${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
}

/** A shared library whose constructor appends `name` to `marker` and whose gan_abi_version returns `abi`. */
async function markerLibrary(dir: string, marker: string, name: string, abi: number): Promise<string> {
  const src = `${dir}/${name}.c`;
  await Deno.writeTextFile(
    src,
    `#include <stdio.h>\n#include <stdint.h>\n` +
      `__attribute__((constructor)) static void announce(void) { FILE* f = fopen("${marker}", "a"); ` +
      `if (f) { fputs("${name}\\n", f); fclose(f); } }\n` +
      `uint32_t gan_abi_version(void) { return ${abi}; }\n`,
  );
  const so = `${dir}/${name}.so`;
  await run("cc", ["-shared", "-fPIC", "-o", so, src]);
  return so;
}

function loads(marker: string, name: string): number {
  try {
    return Deno.readTextFileSync(marker).split("\n").filter((l) => l === name).length;
  } catch {
    return 0;
  }
}

/** Swaps `target` between the foreign and the good library every ~2 ms, by rename(2), until killed. */
/** Swaps `target` between the two libraries until the file `stop` exists (then bash ends after its current `cp` or
 * `mv`: a SIGKILL would leave that child writing into the folder while the test removes it). */
function startSwapper(target: string, good: string, foreign: string, stop: string): Deno.ChildProcess {
  const script = `while [ ! -e "${stop}" ]; do cp "${foreign}" "${target}.f"; mv -f "${target}.f" "${target}"; ` +
    `sleep 0.002; cp "${good}" "${target}.g"; mv -f "${target}.g" "${target}"; sleep 0.002; done`;
  return new Deno.Command("bash", { args: ["-c", script], stdout: "null", stderr: "null" }).spawn();
}

Deno.test("load race: a swapper in the cache folder never gets a foreign library opened (200 loads)", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gan-race-" });
  const marker = `${dir}/marker.txt`;
  // Two small libraries that announce every load: the verified one (ABI 2) and the foreign one.
  const goodPath = await markerLibrary(dir, marker, "good", 2);
  const foreign = await markerLibrary(dir, marker, "foreign", 999);
  const good = await Deno.readFile(goodPath);
  const entry = { file: "lib.so", size: good.length, sha256: await sha256Hex(good) };
  const manifest = { version: "0.0.0-race", files: { "linux-x86_64": entry } };
  const cacheRoot = `${dir}/cache`;
  const opts = {
    manifest,
    baseUrl: "https://example.invalid/release/",
    cacheRoot,
    key: "linux-x86_64",
    fileName: "libgan_native.so",
    fetchImpl: () => Promise.resolve(new Response(good)),
  };
  const first = await fetchLibrary(opts);
  Deno.removeSync(first.openPath!); // a writable cache: always a private copy
  const stop = `${dir}/stop`;
  const swapper = startSwapper(first.path, goodPath, foreign, stop);
  let verified = 0, controlForeign = 0;
  try {
    for (let i = 0; i < LOADS; i++) {
      const got = await fetchLibrary(opts); // re-downloads (from the stub) when the swap made the cache mismatch
      const lib = Deno.dlopen(got.openPath!, { gan_abi_version: { parameters: [], result: "u32" } } as const);
      Deno.removeSync(got.openPath!);
      assert.equal(lib.symbols.gan_abi_version(), 2, `load ${i} opened a foreign library`);
      lib.close();
      verified++;
    }
    const before = loads(marker, "foreign");
    assert.equal(before, 0, `${before} foreign constructors ran during the verified loads`);
    assert.equal(loads(marker, "good"), LOADS, "every verified load ran the verified library's constructor");
    // Control: hash the cache path, then open it by path (the old way). The swapper may win between the two.
    for (let i = 0; i < LOADS; i++) {
      const h = await hashFile(first.path);
      if (h?.sha256 !== entry.sha256) continue;
      try {
        Deno.dlopen(first.path, { gan_abi_version: { parameters: [], result: "u32" } }).close();
      } catch {
        // the swap landed mid-open
      }
    }
    controlForeign = loads(marker, "foreign");
  } finally {
    Deno.writeTextFileSync(stop, "");
    await swapper.status;
    await Deno.remove(dir, { recursive: true });
  }
  assert.equal(verified, LOADS);
  console.log(`verified loads: ${verified}, foreign: 0; control (hash then open by path): ${controlForeign} foreign`);
});

Deno.test("load race: a cache folder that others may write, or another user's, is refused", async () => {
  const dir = await Deno.makeTempDir({ prefix: "gan-cache-mode-" });
  try {
    const bytes = new Uint8Array([1, 2, 3]);
    const manifest = {
      version: "0.0.0",
      files: { "linux-x86_64": { file: "lib.so", size: 3, sha256: await sha256Hex(bytes) } },
    };
    const opts = {
      manifest,
      baseUrl: "https://example.invalid/release/",
      cacheRoot: dir,
      key: "linux-x86_64",
      fetchImpl: () => Promise.resolve(new Response(bytes)),
    };
    const got = await fetchLibrary(opts);
    assert.equal((Deno.statSync(`${dir}/0.0.0`).mode ?? 0) & 0o777, 0o700, "cache folders are created 0700");
    Deno.removeSync(got.openPath!);
    Deno.chmodSync(`${dir}/0.0.0`, 0o777);
    await assert.rejects(fetchLibrary(opts), /the cache folder ".*\/0\.0\.0" has mode 777: others may write to it/);
    Deno.chmodSync(`${dir}/0.0.0`, 0o700);
    Deno.chmodSync(dir, 0o757);
    await assert.rejects(fetchLibrary(opts), /has mode 757/);
  } finally {
    Deno.chmodSync(dir, 0o700);
    await Deno.remove(dir, { recursive: true });
  }
});
