// Release check of linux-aarch64 (run by bench/aarch64_check.sh, which finds qemu and the aarch64 Deno binary): the
// release as a user gets it. mod.ts, src/, native/manifest.json and release/ of this checkout are served on
// 127.0.0.1; the aarch64 Deno binary, under qemu-user, imports mod.ts from there, downloads the linux-aarch64 library
// and checks it against the manifest (the loader's own path: nothing is pointed at by hand), trains a few steps of a
// small GAN on the cpu backend and samples. The same driver run by this (x86-64) Deno, on the linux-x86_64 library, is
// the reference: the losses and samples must agree to float32 rounding (the two builds' GEMM kernels differ).
//
//   deno run --allow-read --allow-write --allow-net=127.0.0.1 --allow-run --allow-env bench/aarch64_check.ts \
//     --qemu /usr/bin/qemu-aarch64 --sysroot /usr/aarch64-linux-gnu --deno PATH/TO/aarch64/deno

import { parseArgs } from "node:util";
import { manifestEntry, parseManifest } from "../src/native/fetch.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const TIMEOUT_MS = 300_000;

interface DriverResult {
  ok: boolean;
  message?: string;
  platform?: string;
  location?: { source: string; url?: string; sha256?: string };
  backend?: { backend: string; simd: string[]; threads: number; version: string };
  steps?: number;
  losses?: [number, number][];
  sample?: number[];
  seconds?: number;
}

/** The driver, as a user would write it: import mod.ts from the URL, load the library, train, sample. */
function driverSource(modUrl: string): string {
  return `import * as mod from ${JSON.stringify(modUrl)};
const t0 = performance.now();
try {
  const { location } = await mod.loadNativeLibrary();
  const pixels = new Uint8Array(64 * 49).map((_, i) => (i * 37) % 256); // 64 images of 7x7
  const data = { name: "toy", count: 64, height: 7, width: 7, channels: 1, pixels };
  const trainer = await mod.GanTrainer.create(data, {
    backend: "cpu", threads: 2, imgSize: 7, latentDim: 8, batchSize: 16, nEpochs: 2, seed: 3,
  });
  const losses = [];
  const summary = await trainer.run({ onStep: (e) => void losses.push([e.dLoss, e.gLoss]) });
  const sample = Array.from(trainer.sample(4, 1));
  const info = trainer.backendInfo();
  trainer.close();
  console.log(JSON.stringify({
    ok: true,
    platform: Deno.build.os + "-" + Deno.build.arch,
    location: { source: location.source, url: location.url, sha256: location.sha256 },
    backend: { backend: info.backend, simd: info.simd, threads: info.threads, version: info.version },
    steps: summary.steps, losses, sample, seconds: (performance.now() - t0) / 1000,
  }));
} catch (e) {
  console.log(JSON.stringify({ ok: false, message: String(e?.stack ?? e) }));
  Deno.exit(3);
}
`;
}

async function copyTree(from: string, to: string): Promise<void> {
  await Deno.mkdir(to, { recursive: true });
  for await (const e of Deno.readDir(from)) {
    if (e.isDirectory) await copyTree(`${from}/${e.name}`, `${to}/${e.name}`);
    else if (e.isFile) await Deno.copyFile(`${from}/${e.name}`, `${to}/${e.name}`);
  }
}

async function run(cmd: string, args: string[], env: Record<string, string>): Promise<DriverResult> {
  const child = new Deno.Command(cmd, { args, clearEnv: true, env, stdout: "piped", stderr: "piped" }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), TIMEOUT_MS);
  const out = await child.output();
  clearTimeout(timer);
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  try {
    return JSON.parse(stdout.trim().split("\n").at(-1) ?? "") as DriverResult;
  } catch {
    return { ok: false, message: `exit ${out.code}\nstdout: ${stdout}\nstderr: ${stderr}` };
  }
}

function maxDiff(a: number[], b: number[]): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: { qemu: { type: "string" }, sysroot: { type: "string" }, deno: { type: "string" } },
    strict: true,
  });
  if (!values.qemu || !values.sysroot || !values.deno) {
    console.error("usage: aarch64_check.ts --qemu PATH --sysroot DIR --deno PATH (see bench/aarch64_check.sh)");
    return 2;
  }
  const manifest = parseManifest(JSON.parse(await Deno.readTextFile(`${ROOT}native/manifest.json`)));
  const arm = manifestEntry(manifest, "linux-aarch64");
  const x86 = manifestEntry(manifest, "linux-x86_64");
  for (const e of [arm, x86]) {
    try {
      await Deno.stat(`${ROOT}release/${e.file}`);
    } catch {
      console.error(`release/${e.file} is missing: run "deno task release" first`);
      return 1;
    }
  }

  const tmp = await Deno.makeTempDir({ prefix: "gan-aarch64-check-" });
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
    const path = decodeURIComponent(new URL(req.url).pathname);
    if (path.split("/").includes("..")) return new Response("bad path", { status: 400 });
    try {
      const type = path.endsWith(".ts") ? "application/typescript" : "application/octet-stream";
      return new Response(await Deno.readFile(`${tmp}/site${path}`), { headers: { "content-type": type } });
    } catch {
      return new Response("not found", { status: 404 });
    }
  });
  try {
    const site = `${tmp}/site`;
    await Deno.mkdir(`${site}/native`, { recursive: true });
    await Deno.copyFile(`${ROOT}mod.ts`, `${site}/mod.ts`);
    await copyTree(`${ROOT}src`, `${site}/src`);
    await Deno.copyFile(`${ROOT}native/manifest.json`, `${site}/native/manifest.json`);
    await copyTree(`${ROOT}release`, `${site}/release`);
    const host = `127.0.0.1:${server.addr.port}`;
    const driver = `${tmp}/driver.js`;
    await Deno.writeTextFile(driver, driverSource(`http://${host}/mod.ts`));
    const perms = (cache: string) => [
      "run",
      "--no-config",
      "--no-lock",
      "--no-prompt",
      `--allow-import=${host}`,
      `--allow-net=${host}`,
      `--allow-read=${cache}`,
      `--allow-write=${cache}`,
      `--allow-ffi=${cache}`,
      "--allow-env=GAN_NATIVE_LIB,GAN_NATIVE_URL,GAN_NATIVE_CACHE,DENO_DIR",
      "--allow-sys=systemMemoryInfo",
      driver,
    ];
    const env = (denoDir: string) => ({ NO_COLOR: "1", DENO_NO_UPDATE_CHECK: "1", DENO_DIR: denoDir });

    console.log(`reference: linux-x86_64 (${Deno.execPath()})`);
    const ref = await run(Deno.execPath(), perms(`${tmp}/x86/deno-gan`), env(`${tmp}/x86`));
    if (!ref.ok) throw new Error(`the x86-64 reference failed: ${ref.message}`);
    console.log(`  ${ref.steps} steps, ${ref.seconds!.toFixed(1)} s`);

    const qemuArgs = ["-L", values.sysroot, values.deno, ...perms(`${tmp}/arm/deno-gan`)];
    console.log(`under qemu: ${values.qemu} ${qemuArgs.slice(0, 3).join(" ")} run ...`);
    const got = await run(values.qemu, qemuArgs, env(`${tmp}/arm`));
    if (!got.ok) throw new Error(`the aarch64 run failed: ${got.message}`);

    const problems: string[] = [];
    const expect = (cond: boolean, what: string) => cond || problems.push(what);
    expect(got.platform === "linux-aarch64", `platform ${got.platform}, expected linux-aarch64`);
    expect(got.location?.source === "download", `library from ${got.location?.source}, expected a download`);
    expect(got.location?.url === `http://${host}/release/${arm.file}`, `downloaded ${got.location?.url}`);
    expect(got.location?.sha256 === arm.sha256, `sha256 ${got.location?.sha256}, the manifest has ${arm.sha256}`);
    expect(ref.location?.sha256 === x86.sha256, `reference sha256 ${ref.location?.sha256}, manifest ${x86.sha256}`);
    expect(
      got.backend?.backend === "cpu" && got.backend.simd.includes("neon"),
      `backend ${JSON.stringify(got.backend)}`,
    );
    expect(got.backend?.version === manifest.version, `library version ${got.backend?.version}`);
    expect(got.steps === ref.steps && got.steps! > 0, `${got.steps} steps, the reference ran ${ref.steps}`);
    const lossDiff = maxDiff(got.losses!.flat(), ref.losses!.flat());
    const sampleDiff = maxDiff(got.sample!, ref.sample!);
    expect(got.losses!.flat().every(Number.isFinite) && got.sample!.every(Number.isFinite), "a non-finite value");
    expect(got.sample!.length === ref.sample!.length, `sample of ${got.sample!.length} values`);
    expect(lossDiff <= 1e-4, `losses differ from the x86-64 reference by ${lossDiff}`);
    expect(sampleDiff <= 1e-3, `samples differ from the x86-64 reference by ${sampleDiff}`);

    console.log(`  platform ${got.platform}, library ${got.location?.source} ${got.location?.url}`);
    console.log(`  sha256 ${got.location?.sha256} (manifest: ${arm.sha256})`);
    console.log(`  backend ${JSON.stringify(got.backend)}`);
    console.log(
      `  ${got.steps} steps, d/g losses of the first and last: ${JSON.stringify(got.losses![0])} ... ${
        JSON.stringify(got.losses!.at(-1))
      }`,
    );
    console.log(
      `  sample of 4 images (${got.sample!.length} values), first: ${got.sample!.slice(0, 3).map((v) => v.toFixed(6))}`,
    );
    console.log(
      `  vs x86-64: max |loss diff| ${lossDiff.toExponential(2)}, max |sample diff| ${sampleDiff.toExponential(2)}`,
    );
    console.log(`  ${got.seconds!.toFixed(1)} s inside the aarch64 Deno (qemu emulation)`);
    if (problems.length) {
      console.error(`FAILED:\n  ${problems.join("\n  ")}`);
      return 1;
    }
    console.log("linux-aarch64: OK");
    return 0;
  } finally {
    await server.shutdown();
    await Deno.remove(tmp, { recursive: true });
  }
}

Deno.exit(await main());
