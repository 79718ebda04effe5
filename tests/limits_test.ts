// What a hostile or broken input costs: IDX files whose resize would need gigabytes. Each is refused
// with a message naming the file and the problem, quickly, with bounded memory. The bombs run in subprocesses under a
// memory and time guard (tests/bounded.ts), so that on code without the limits they fail fast instead of exhausting
// the machine.

import assert from "node:assert/strict";
import { writeIdx } from "../src/data/idx.ts";
import { runBounded } from "./bounded.ts";

const PERMS = ["--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "--allow-run"];
const TRAIN = ["run", ...PERMS, "src/cli/train.ts"];

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/**
 * The peak RSS of the same command refused for a missing file (it loads every module, and everything it loads before
 * the file): what the bounds below add to.
 */
async function baseline(args: string[]): Promise<number> {
  const r = await runBounded(args, { maxMiB: 4096, maxSeconds: 120 });
  assert.equal(r.code, 1, r.stderr);
  assert.match(r.stderr, /none found/);
  return r.peakMiB;
}

/** Runs a CLI that must refuse its input: not killed by the guard, exit code 1, the message, bounded peak RSS. */
async function refused(args: string[], re: RegExp, label: string, base: number) {
  const r = await runBounded(args, { maxMiB: base + 256, maxSeconds: 60 });
  const what = `${label}: exit ${r.code} after ${r.seconds.toFixed(1)} s, peak ${r.peakMiB.toFixed(0)} MiB`;
  assert.equal(r.killed, null, `${what}: killed by the guard (${r.killed}); stderr: ${r.stderr.slice(-400)}`);
  assert.equal(r.code, 1, `${what}; stderr: ${r.stderr.slice(-400)}`);
  assert.match(r.stderr, re, label);
  const grown = r.peakMiB - base;
  console.log(
    `  ${label}: refused in ${r.seconds.toFixed(2)} s, peak RSS ${grown >= 0 ? "+" : ""}${grown.toFixed(1)} MiB`,
  );
  assert.ok(grown < 64, `${what}: ${grown.toFixed(1)} MiB above the baseline of ${base.toFixed(0)} MiB`);
}

Deno.test("limits: IDX resize bombs given to the train CLI are refused at once, with bounded memory", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const put = async (name: string, file: string, bytes: Uint8Array) => {
      await Deno.mkdir(`${dir}/${name}`);
      await Deno.writeFile(`${dir}/${name}/${file}`, bytes);
    };
    // The two of the finding: a 16 KB .gz of 16 images of 1x1048576 (13 GB to resize: 3 GB of RSS in 54 s before),
    // a 1 MiB plain file of 64 images of 1x16384 (843 MB before it failed on the shape after resizing).
    await put("wide_gz", "train-images-idx3-ubyte.gz", await gzip(writeIdx([16, 1, 1048576], new Uint8Array(2 ** 24))));
    await put("wide_plain", "train-images-idx3-ubyte", writeIdx([64, 1, 16384], new Uint8Array(2 ** 20)));
    // A square one: 4,194,304 images of 1x1 in a 4 KB .gz, 3.3 GB once resized to 28x28.
    await put("many_gz", "train-images-idx3-ubyte.gz", await gzip(writeIdx([2 ** 22, 1, 1], new Uint8Array(2 ** 22))));
    await put("zero_width", "train-images-idx3-ubyte", writeIdx([3, 28, 0], new Uint8Array(0)));
    const out = `${dir}/out`;
    const base = await baseline([...TRAIN, "--dataset", "idx", "--data", `${dir}/none`, "--out", out]);
    const cases: [string, RegExp][] = [
      ["wide_gz", /Resize\(28\) keeps the aspect ratio and makes them 28x29360128, not the 28x28 the model needs/],
      ["wide_plain", /its images are 1x16384 pixels; Resize\(28\) keeps the aspect ratio and makes them 28x458752/],
      ["many_gz", /makes its 4194304 images of 1x1 pixels 28x28, which needs \d+ bytes \(3\.06 GiB\), above the limit/],
      ["zero_width", /has images of 28x0 pixels, expected at least 1x1/],
    ];
    for (const [name, re] of cases) {
      const path = `${dir}/${name}/train-images-idx3-ubyte`;
      await refused(
        [...TRAIN, "--dataset", "idx", "--data", `${dir}/${name}`, "--out", out],
        new RegExp(`Cannot load dataset "idx" from "${path}(\\.gz)?": .*${re.source}`),
        name,
        base,
      );
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
