// The package as JSR would get it: `deno publish --dry-run` passes with no warning (every import analyzable, no slow
// types, a license) and the package holds exactly mod.ts, src/, native/manifest.json, the WGSL kernels
// (native/src/gpu/shaders/, for the exported page), README.md, LICENSE (and the deno.json that every JSR package
// carries). And the lazy imports stay lazy: importing mod.ts from this checkout with an empty DENO_DIR asks the npm
// registry for nothing (tests/url_import_test.ts checks the same for a URL import),
// so the analyzable forms chosen for `deno publish` did not make Deno fetch the PNG encoder, ml-matrix, uPlot or the
// MNIST digits along with mod.ts.

import assert from "node:assert/strict";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

function decode(b: Uint8Array): string {
  return new TextDecoder().decode(b);
}

/** Files under `dir` (relative to ROOT), recursively. */
function filesUnder(dir: string): string[] {
  const out: string[] = [];
  for (const e of Deno.readDirSync(`${ROOT}${dir}`)) {
    const rel = `${dir}/${e.name}`;
    if (e.isDirectory) out.push(...filesUnder(rel));
    else if (e.isFile) out.push(rel);
  }
  return out;
}

Deno.test("deno publish --dry-run: no warnings; the package holds mod.ts, src/, the manifest, the kernels, README, LICENSE", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["publish", "--dry-run", "--allow-dirty"],
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = decode(out.stdout) + decode(out.stderr);
  assert.equal(out.code, 0, text);
  assert.doesNotMatch(text, /^(warning|error)/m, text);
  assert.match(text, /Dry run complete/, text);
  const listed = [...text.matchAll(/^\s+file:\/\/(\S+) \(/gm)].map((m) => m[1].slice(ROOT.length)).sort();
  const expected = [
    "LICENSE",
    "README.md",
    "deno.json",
    "mod.ts",
    "native/manifest.json",
    ...filesUnder("native/src/gpu/shaders"), // the exported page's kernels (src/web/site.ts imports them as text)
    ...filesUnder("src"),
  ].sort();
  assert.deepEqual(listed, expected);
});

Deno.test("importing mod.ts from a checkout asks the npm registry for nothing (an empty DENO_DIR)", async () => {
  // A stand-in npm registry on 127.0.0.1 that counts what it is asked for: a literal dynamic import of an npm package
  // (or of a module that imports one) would show up here, as Deno fetches those along with mod.ts.
  const asked: string[] = [];
  const registry = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    asked.push(new URL(req.url).pathname);
    return new Response("not found", { status: 404 });
  });
  const denoDir = await Deno.makeTempDir({ prefix: "gan-npm-free-" });
  try {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--no-config", "--no-lock", "--no-prompt", `--allow-read=${ROOT}`, "--allow-env", "-"],
      cwd: ROOT,
      clearEnv: true,
      env: {
        NO_COLOR: "1",
        DENO_DIR: denoDir,
        NPM_CONFIG_REGISTRY: `http://127.0.0.1:${registry.addr.port}/`,
      },
      stdin: "piped",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const writer = child.stdin.getWriter();
    await writer.write(
      new TextEncoder().encode(
        `import * as mod from ${JSON.stringify(`file://${ROOT}mod.ts`)};\n` +
          `console.log(typeof mod.GanTrainer, typeof mod.writeReport, typeof mod.loadEmbeddedMnist);\n`,
      ),
    );
    await writer.close();
    const r = await child.output();
    const text = decode(r.stdout) + decode(r.stderr);
    assert.equal(r.code, 0, text);
    assert.equal(decode(r.stdout).trim(), "function function function", text);
    assert.deepEqual(asked, [], `importing mod.ts asked the npm registry for ${asked.join(", ")}`);
  } finally {
    await registry.shutdown();
    await Deno.remove(denoDir, { recursive: true });
  }
});
