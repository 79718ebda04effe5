// What a hostile or broken input costs: IDX files whose resize would need gigabytes, checkpoint paths that are not
// regular files or are far too large, safetensors headers with duplicate names or millions of entries. Each is refused
// with a message naming the file and the problem, quickly, with bounded memory. The bombs run in subprocesses under a
// memory and time guard (tests/bounded.ts), so that on code without the limits they fail fast instead of exhausting
// the machine.

import assert from "node:assert/strict";
import { writeIdx } from "../src/data/idx.ts";
import { loadIdxFile } from "../src/data/idx.ts";
import { readCheckpoint } from "../src/train/checkpoint.ts";
import { MAX_HEADER_ENTRIES, MAX_HEADER_VALUES, readSafetensors } from "../src/io/safetensors.ts";
import { runBounded } from "./bounded.ts";
import { SUBPROCESS_PERMS } from "./small_gan.ts";

const PERMS = SUBPROCESS_PERMS;
const TRAIN = ["run", ...PERMS, "src/cli/train.ts"];
const SAMPLE = ["run", ...PERMS, "src/cli/sample.ts"];

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
  assert.match(r.stderr, /No such file|none found/);
  assert.ok(r.peakMiB > 10, `the guard measured a peak RSS of ${r.peakMiB} MiB`);
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

Deno.test("limits: a checkpoint that is /dev/zero, a FIFO, a folder or a 10 GiB sparse file is refused at once", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const fifo = `${dir}/fifo.safetensors`;
    assert.equal((await new Deno.Command("mkfifo", { args: [fifo] }).output()).code, 0);
    const sparse = `${dir}/sparse.safetensors`;
    await Deno.writeFile(sparse, new Uint8Array(0));
    await Deno.truncate(sparse, 10 * 2 ** 30); // 10 GiB, no blocks
    await Deno.mkdir(`${dir}/folder.safetensors`);
    const what = (p: string, kind: string) =>
      new RegExp(`Cannot read safetensors file "${p}": it is ${kind}, not a regular file`);
    const cases: [string, RegExp][] = [
      ["/dev/zero", what("/dev/zero", "a character device")],
      [fifo, what(fifo, "a FIFO \\(named pipe\\)")],
      [`${dir}/folder.safetensors`, what(`${dir}/folder.safetensors`, "a directory")],
    ];
    // sample reads any checkpoint: the general limit (4 GiB). --resume knows the model: the limit is its size.
    const sampleArgs = (p: string) => [...SAMPLE, "--checkpoint", p, "--out", `${dir}/s.png`];
    const resumeArgs = (p: string) => [
      ...TRAIN,
      ...["--dataset", "embedded", "--resume", p, "--out", `${dir}/out`, "--max_steps", "1"],
    ];
    const sampleBase = await baseline(sampleArgs(`${dir}/none.safetensors`));
    const resumeBase = await baseline(resumeArgs(`${dir}/none.safetensors`));
    for (
      const [path, re] of [
        ...cases,
        [sparse, /the file has 10737418240 bytes, above the limit of 4294967296 bytes \(4 GiB\)/] as const,
      ]
    ) {
      await refused(sampleArgs(path), re, `sample --checkpoint ${path.replace(dir, "")}`, sampleBase);
    }
    const model =
      /the file has 10737418240 bytes, above the limit of \d+ bytes \(.*, what a checkpoint of this model can hold: \d+ bytes of tensors and up to 16 MiB of header\)/;
    for (const [path, re] of [...cases, [sparse, model] as const]) {
      await refused(resumeArgs(path), re, `train --resume ${path.replace(dir, "")}`, resumeBase);
    }
    // In-process too, with a guard for the FIFO: while a read blocks on it, a writer is opened to unblock it.
    let blocked = 0;
    const guard = setInterval(() => {
      blocked++;
      Deno.open(fifo, { write: true }).then((f) => f.close(), () => {});
    }, 5_000);
    try {
      await assert.rejects(readCheckpoint(fifo), what(fifo, "a FIFO \\(named pipe\\)"));
      await assert.rejects(loadIdxFile(fifo), /Cannot read IDX file ".*fifo.safetensors": it is a FIFO \(named pipe\)/);
    } finally {
      clearInterval(guard);
    }
    assert.equal(blocked, 0, "reading the FIFO blocked");
    // The IDX reader, on /dev/zero (in a guarded subprocess: without the check it reads zeros forever).
    const idx = new URL("../src/data/idx.ts", import.meta.url).href;
    const r = await runBounded(
      ["eval", `import { loadIdxFile } from "${idx}"; await loadIdxFile("/dev/zero");`],
      { maxMiB: 512, maxSeconds: 60 },
    );
    assert.equal(r.killed, null, `killed by the guard (${r.killed}) at ${r.peakMiB.toFixed(0)} MiB`);
    assert.match(r.stderr, /Cannot read IDX file "\/dev\/zero": it is a character device, not a regular file/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** A safetensors file with a hand-written header (padded to 8 bytes) and no data. */
function craft(header: string): Uint8Array {
  const json = new TextEncoder().encode(header);
  const n = Math.ceil(json.length / 8) * 8;
  const out = new Uint8Array(8 + n).fill(0x20);
  new DataView(out.buffer).setBigUint64(0, BigInt(n), true);
  out.set(json, 8);
  return out;
}

Deno.test("limits: a name twice in a safetensors header is refused (JSON.parse would keep the last)", () => {
  const t = (off: number) => `{"dtype":"U8","shape":[0],"data_offsets":[${off},${off}]}`;
  const cases: [string, RegExp][] = [
    [`{"a":${t(0)},"b":${t(0)},"a":${t(0)}}`, /the header names "a" twice/],
    [`{"model.0.weight":${t(0)},"model.0.w\\u0065ight":${t(0)}}`, /the header names "model.0.weight" twice/],
    [`{"__metadata__":{"k":"1"},"__metadata__":{"k":"2"}}`, /the header names "__metadata__" twice/],
    [`{"__metadata__":{"config":"{}","config":"{\\"seed\\":1}"}}`, /entry "__metadata__" has the key "config" twice/],
    [`{"a":{"dtype":"U8","dtype":"F32","shape":[0],"data_offsets":[0,0]}}`, /entry "a" has the key "dtype" twice/],
  ];
  for (const [header, re] of cases) {
    assert.throws(() => readSafetensors(craft(header), "dup.safetensors"), (e: Error) => {
      assert.match(e.message, /^Cannot read safetensors file "dup.safetensors": /);
      assert.match(e.message, re, header);
      return true;
    });
  }
  // The same names in different objects are fine, and so are strings that only look like keys.
  const ok = `{"__metadata__":{"a":"\\"a\\":"},"a":${t(0)},"b":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}}`;
  assert.equal(readSafetensors(craft(ok), "ok").size, 2);
});

Deno.test("limits: a header of 1.5 million empty tensors is refused from a scan of its bytes, with bounded memory", () => {
  // 1.5M entries of an empty tensor: 87 MB of header, under the 100 MB header limit (it cost 19.6 s and 1.36 GB).
  // Written straight into the file's bytes, so that no garbage of the test's own is collected while measuring.
  const enc = new TextEncoder();
  const body = new Uint8Array(90_000_000);
  let n = 0;
  body[n++] = 0x7b;
  for (let i = 0; i < 1_500_000; i++) {
    n += enc.encodeInto(`${i ? "," : ""}"t${i}":{"dtype":"U8","shape":[0],"data_offsets":[0,0]}`, body.subarray(n))
      .written;
  }
  body[n++] = 0x7d;
  const len = Math.ceil(n / 8) * 8;
  const bytes = new Uint8Array(8 + len).fill(0x20);
  new DataView(bytes.buffer).setBigUint64(0, BigInt(len), true);
  bytes.set(body.subarray(0, n), 8);
  const before = Deno.memoryUsage().rss;
  const t0 = performance.now();
  assert.throws(
    () => readSafetensors(bytes, "many.safetensors"),
    {
      message:
        `Cannot read safetensors file "many.safetensors": the header has more than ${MAX_HEADER_ENTRIES} entries (the limit)`,
    },
  );
  const ms = performance.now() - t0, grown = (Deno.memoryUsage().rss - before) / 2 ** 20;
  console.log(
    `  ${(bytes.length / 1e6).toFixed(0)} MB header refused in ${ms.toFixed(0)} ms, RSS +${grown.toFixed(1)} MiB`,
  );
  assert.ok(grown < 64, `RSS grew by ${grown.toFixed(1)} MiB`);
  // One entry with a shape of 2 million dimensions: bounded by the count of values.
  const deep = craft(`{"a":{"dtype":"U8","shape":[${new Array(2_000_000).fill(1).join(",")}],"data_offsets":[0,1]}}`);
  assert.throws(() => readSafetensors(deep, "deep"), {
    message: `Cannot read safetensors file "deep": the header holds more than ${MAX_HEADER_VALUES} values (the limit)`,
  });
});
