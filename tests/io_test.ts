// Files: PNG grids (torchvision's save_image semantics), safetensors (against a file from the official package, and
// every malformed case), the JSONL metrics log, and atomic writes.

import assert from "node:assert/strict";
import { decodePng, encodeGrid, encodeImage, makeGrid, saveGrid } from "../src/io/png.ts";
import {
  expectTensor,
  MAX_HEADER_BYTES,
  readSafetensors,
  readSafetensorsFile,
  type TensorEntry,
  writeSafetensors,
  writeSafetensorsFile,
} from "../src/io/safetensors.ts";
import { MetricsLog } from "../src/io/metrics.ts";
import { writeFileAtomic } from "../src/io/atomic.ts";

/** torchvision's byte for a value already in [0, 1]: trunc(clamp(v * 255 + 0.5, 0, 255)) in float32. */
function tvByte(v: number): number {
  const s = Math.fround(Math.fround(Math.fround(v) * 255) + 0.5);
  return Math.trunc(Math.min(Math.max(s, 0), 255));
}

/** The RGB triple at (x, y) of a decoded image. */
function rgb(img: { width: number; channels: number; data: Uint8Array }, x: number, y: number): number[] {
  const o = (y * img.width + x) * img.channels;
  return [...img.data.subarray(o, o + img.channels)];
}

// ------------------------------------------------------------------------------------------------------------------
// PNG
// ------------------------------------------------------------------------------------------------------------------

Deno.test("png: 25 MNIST-sized images, 5 per row, is a 152x152 RGB PNG laid out as make_grid", () => {
  // Image k is constant: value k / 24 * 2 - 1, so after min-max normalization image k is k / 24.
  const images = new Float32Array(64 * 784);
  for (let k = 0; k < 64; k++) images.fill(k < 25 ? (k / 24) * 2 - 1 : 50, k * 784, (k + 1) * 784); // 25.. ignored
  const png = encodeGrid(images, 25, 1, 28, 28, { nrow: 5, normalize: true });
  assert.deepEqual([...png.subarray(0, 8)], [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
  const img = decodePng(png);
  assert.deepEqual([img.width, img.height, img.channels], [152, 152, 3]);
  for (let k = 0; k < 25; k++) {
    const top = 2 + Math.floor(k / 5) * 30, left = 2 + (k % 5) * 30;
    const norm = Math.fround(Math.fround(images[k * 784] - -1) / 2);
    const v = tvByte(norm);
    for (
      const [x, y] of [[left, top], [left + 27, top], [left, top + 27], [left + 27, top + 27], [left + 13, top + 9]]
    ) {
      assert.deepEqual(rgb(img, x, y), [v, v, v], `image ${k} at (${x}, ${y})`);
    }
    // The padding around it is black.
    assert.deepEqual(rgb(img, left - 1, top), [0, 0, 0]);
    assert.deepEqual(rgb(img, left + 28, top + 27), [0, 0, 0]);
  }
  assert.deepEqual(rgb(img, 2, 2), [0, 0, 0]); // image 0 is the minimum
  assert.deepEqual(rgb(img, 2 + 4 * 30, 2 + 4 * 30), [255, 255, 255]); // image 24 is the maximum
  assert.deepEqual(rgb(img, 2 + 2 * 30, 2 + 2 * 30), [128, 128, 128]); // image 12 is 0.5: 0.5 * 255 + 0.5 = 128
  assert.deepEqual(rgb(img, 151, 151), [0, 0, 0]);
});

Deno.test("png: known bytes of the conversion mul(255).add_(0.5).clamp_(0, 255) and truncation", () => {
  // Without normalize the values are taken as [0, 1]: below 0 clamps to 0, above 1 to 255.
  const values = [-1, 0, 0.001, 0.5, 0.75, 0.998, 1, 7, NaN];
  const g = makeGrid(new Float32Array(values), 1, 1, 1, values.length, { nrow: 8 });
  assert.deepEqual([g.width, g.height, g.channels], [values.length, 1, 3]); // one image: no padding
  const red = [...g.data].filter((_, i) => i % 3 === 0);
  assert.deepEqual(red, [0, 0, 0, 128, 191, 254, 255, 255, 0]);
  // 0.001 * 255 + 0.5 = 0.755 -> 0; 0.75 * 255 + 0.5 = 191.75 -> 191; 0.998 * 255 + 0.5 = 254.99 -> 254.
  for (let i = 0; i < values.length - 1; i++) assert.equal(red[i], tvByte(values[i]), `value ${values[i]}`);
});

Deno.test("png: normalize is min-max over the first n images together, not per image", () => {
  // Image 0 spans [0, 1], image 1 spans [0, 2]; image 2 (beyond n) holds extremes that must not count.
  const images = new Float32Array([0, 1, 0, 2, -100, 100]);
  const g = makeGrid(images, 2, 1, 1, 2, { nrow: 2, padding: 0, normalize: true });
  assert.deepEqual([g.width, g.height], [4, 1]);
  const red = [...g.data].filter((_, i) => i % 3 === 0);
  assert.deepEqual(red, [0, 128, 0, 255]); // image 0's max is 1 / 2 of the batch range: 0.5 * 255 + 0.5 = 128
  // A constant batch divides by max(0, 1e-5): everything becomes 0.
  const flat = makeGrid(new Float32Array(8).fill(0.3), 2, 1, 2, 2, { nrow: 2, padding: 0, normalize: true });
  assert.ok(flat.data.every((b) => b === 0));
  // Values a hair above the minimum: (x - min) / 1e-5 in float32.
  const tiny = makeGrid(new Float32Array([0, 2e-6]), 2, 1, 1, 1, { nrow: 2, padding: 0, normalize: true });
  assert.deepEqual([tiny.data[0], tiny.data[3]], [0, tvByte(Math.fround(Math.fround(2e-6) / Math.fround(1e-5)))]);
});

Deno.test("png: grid shapes for partial rows, nrow above n, padding and pad value", () => {
  const seven = makeGrid(new Float32Array(7 * 4), 7, 1, 2, 2, { nrow: 5, normalize: true });
  assert.deepEqual([seven.width, seven.height], [5 * 4 + 2, 2 * 4 + 2]); // xmaps 5, ymaps 2
  const three = makeGrid(new Float32Array(3 * 4), 3, 1, 2, 2, { nrow: 8 });
  assert.deepEqual([three.width, three.height], [3 * 4 + 2, 4 + 2]); // xmaps = min(nrow, n)
  const padded = makeGrid(new Float32Array([1, 1]), 2, 1, 1, 1, { nrow: 1, padding: 3, padValue: 1 });
  assert.deepEqual([padded.width, padded.height], [1 + 6, 2 * 4 + 3]);
  assert.ok(padded.data.every((b) => b === 255));
});

Deno.test("png: 3-channel images keep their channels, 4 channels give RGBA", () => {
  // One 1x2 RGB image: pixel 0 is (0, 0.5, 1), pixel 1 is (1, 0, 0.25); channel-major input.
  const g = makeGrid(new Float32Array([0, 1, 0.5, 0, 1, 0.25]), 1, 3, 1, 2, { nrow: 5 });
  assert.deepEqual([...g.data], [0, 128, 255, 255, 0, 64]);
  const png = decodePng(encodeGrid(new Float32Array([0, 1, 0.5, 0, 1, 0.25]), 1, 3, 1, 2, { nrow: 5 }));
  assert.deepEqual([png.channels, ...png.data], [3, 0, 128, 255, 255, 0, 64]);
  const rgba = decodePng(encodeGrid(new Float32Array([0.2, 0.4, 0.6, 1]), 1, 4, 1, 1, { nrow: 1 }));
  assert.deepEqual([rgba.channels, ...rgba.data], [4, 51, 102, 153, 255]);
});

Deno.test("png: bad arguments say what is wrong", () => {
  assert.throws(
    () => encodeGrid(new Float32Array(10), 25, 1, 28, 28, { nrow: 5 }),
    /25 images of 1x28x28 need 19600 values, the batch has 10/,
  );
  assert.throws(() => encodeGrid(new Float32Array(8), 1, 2, 2, 2, { nrow: 5 }), /2 channels; only 1, 3 or 4/);
  assert.throws(() => encodeGrid(new Float32Array(8), 0, 1, 2, 2, { nrow: 5 }), /n 0 is not a positive integer/);
  assert.throws(() => encodeGrid(new Float32Array(8), 1, 1, 2, 2, { nrow: 0 }), /nrow 0 is not a positive integer/);
  assert.throws(() => encodeGrid(new Float32Array(8), 2, 1, 2, 2, { nrow: 1, padding: -1 }), /padding -1/);
  assert.throws(
    () => encodeImage({ width: 2, height: 2, channels: 3, data: new Uint8Array(5) }),
    /needs 12 bytes, got 5/,
  );
  assert.throws(() => decodePng(new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8, 9])));
});

Deno.test("png: saveGrid writes the file atomically", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const images = new Float32Array(25 * 784).map((_, i) => Math.sin(i / 7));
    await saveGrid(`${dir}/400.png`, images, 25, 1, 28, 28, { nrow: 5, normalize: true });
    const img = decodePng(await Deno.readFile(`${dir}/400.png`));
    assert.deepEqual([img.width, img.height, img.channels], [152, 152, 3]);
    assert.deepEqual(img.data, makeGrid(images, 25, 1, 28, 28, { nrow: 5, normalize: true }).data);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["400.png"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ------------------------------------------------------------------------------------------------------------------
// safetensors
// ------------------------------------------------------------------------------------------------------------------

const REFERENCE = new URL("./fixtures/reference.safetensors", import.meta.url);

/** The tensors of tests/fixtures/reference.safetensors (written by the official package, see gen_safetensors_fixture.py). */
function referenceTensors(): TensorEntry[] {
  return [
    { name: "model.0.weight", dtype: "F32", shape: [2, 3], data: new Float32Array([0, 0.25, 0.5, 0.75, 1, 1.25]) },
    { name: "model.0.bias", dtype: "F32", shape: [2], data: new Float32Array([-1.5, 2.25]) },
    { name: "num_batches_tracked", dtype: "I64", shape: [], data: new BigInt64Array([7n]) },
    { name: "pixels", dtype: "U8", shape: [1, 3], data: new Uint8Array([0, 255, 7]) },
    { name: "running_var", dtype: "F64", shape: [3], data: new Float64Array([1, 0.1, 1e-300]) },
    { name: "empty", dtype: "F32", shape: [0, 4], data: new Float32Array(0) },
  ];
}

/** A file with a hand-written header (padded to 8 bytes) and `data` after it. */
function craft(header: unknown, data: Uint8Array = new Uint8Array(0)): Uint8Array {
  let json = new TextEncoder().encode(typeof header === "string" ? header : JSON.stringify(header));
  const padded = new Uint8Array(Math.ceil(json.length / 8) * 8).fill(0x20);
  padded.set(json);
  json = padded;
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

Deno.test("safetensors: reads the official package's file and writes it back byte for byte", async () => {
  const ref = await Deno.readFile(REFERENCE);
  const map = readSafetensors(ref, "reference.safetensors");
  assert.deepEqual(map.metadata, { epoch: "3", format: "np" });
  for (const t of referenceTensors()) {
    const got = map.get(t.name)!;
    assert.deepEqual({ dtype: got.dtype, shape: got.shape, data: got.data }, {
      dtype: t.dtype,
      shape: t.shape,
      data: t.data,
    }, t.name);
  }
  assert.equal(map.size, 6);
  assert.deepEqual(writeSafetensors(referenceTensors(), { format: "np", epoch: "3" }), ref);
});

Deno.test("safetensors: round trip, alignment, header padding, empty files", async () => {
  const tensors: TensorEntry[] = [
    { name: "a", dtype: "U8", shape: [3], data: new Uint8Array([1, 2, 3]) },
    { name: "b", dtype: "F64", shape: [2], data: new Float64Array([Math.PI, -0]) },
    { name: "c", dtype: "F32", shape: [1, 1, 1], data: new Float32Array([NaN]) },
    { name: "d", dtype: "I64", shape: [2], data: new BigInt64Array([-(2n ** 63n), 2n ** 63n - 1n]) },
  ];
  const bytes = writeSafetensors(tensors);
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + n)));
  assert.equal(header.__metadata__, undefined);
  assert.deepEqual(Object.keys(header), ["d", "b", "c", "a"]); // I64, F64, F32, U8
  const map = readSafetensors(bytes, "rt.safetensors");
  for (const t of tensors) assert.deepEqual(map.get(t.name)!.data, t.data, t.name);
  assert.ok(Object.is((map.get("b")!.data as Float64Array)[1], -0));
  // A view into a larger buffer is read from its own bytes; the read data are copies.
  const big = new Float32Array([9, 8, 7, 6]);
  const view = readSafetensors(
    writeSafetensors([{ name: "v", dtype: "F32", shape: [2], data: big.subarray(1, 3) }]),
    "v",
  );
  assert.deepEqual(view.get("v")!.data, new Float32Array([8, 7]));
  const empty = writeSafetensors([]);
  assert.equal(empty.length, 16); // "{}" padded to 8
  assert.equal(readSafetensors(empty, "e").size, 0);

  const dir = await Deno.makeTempDir();
  try {
    await writeSafetensorsFile(`${dir}/g.safetensors`, tensors, { step: "400" });
    const back = await readSafetensorsFile(`${dir}/g.safetensors`);
    assert.deepEqual(back.metadata, { step: "400" });
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["g.safetensors"]);
    await assert.rejects(
      readSafetensorsFile(`${dir}/none.safetensors`),
      /Cannot read safetensors file ".*none\.safetensors"/,
    );
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("safetensors: the writer refuses bad tensors", () => {
  const f = (
    t: Partial<TensorEntry>,
  ) => [{ name: "w", dtype: "F32", shape: [2], data: new Float32Array(2), ...t } as TensorEntry];
  assert.throws(() => writeSafetensors(f({ shape: [3] })), /tensor "w" has shape \[3\] \(3 elements\) but 2 values/);
  assert.throws(
    () => writeSafetensors(f({ data: new Float64Array(2) })),
    /tensor "w" is F32 but its data is a Float64Array/,
  );
  assert.throws(() => writeSafetensors(f({ dtype: "BF16" as "F32" })), /unsupported dtype "BF16"/);
  assert.throws(() => writeSafetensors(f({ shape: [-2] })), /invalid shape \[-2\]/);
  assert.throws(() => writeSafetensors([...f({}), ...f({})]), /tensor "w" appears twice/);
  assert.throws(() => writeSafetensors(f({ name: "__metadata__" })), /cannot be named "__metadata__"/);
  assert.throws(() => writeSafetensors(f({}), { n: 3 as unknown as string }), /metadata "n" is a number/);
});

Deno.test("safetensors: every malformed file is refused with the file and tensor named", () => {
  const four = new Uint8Array(4);
  const cases: [string, Uint8Array, RegExp][] = [
    ["short", new Uint8Array(5), /"short": the file has 5 bytes, too short for the 8-byte header length/],
    [
      "header > file",
      (() => {
        const b = craft({});
        new DataView(b.buffer).setBigUint64(0, 1000n, true);
        return b;
      })(),
      /"header > file": header length 1000 is larger than the 8 bytes after the length field/,
    ],
    [
      "header > 100MB",
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, BigInt(MAX_HEADER_BYTES + 1), true);
        return b;
      })(),
      /header length 100000001 is above the limit of 100000000 bytes/,
    ],
    [
      "huge u64",
      (() => {
        const b = new Uint8Array(16);
        new DataView(b.buffer).setBigUint64(0, 2n ** 64n - 1n, true);
        return b;
      })(),
      /header length 18446744073709551615 is above the limit/,
    ],
    ["not json", craft("{not json}"), /"not json": the header is not valid JSON/],
    ["not {", craft("[1, 2]"), /the header does not start with '\{'/],
    ["null", craft("{}x"), /the header is not valid JSON/],
    [
      "bad utf8",
      (() => {
        const b = craft('{"a":1}');
        b[10] = 0xff;
        return b;
      })(),
      /the header is not valid JSON \(.*\)/,
    ],
    [
      "dtype",
      craft({ w: { dtype: "BF16", shape: [2], data_offsets: [0, 4] } }, four),
      /"dtype": tensor "w" has unsupported dtype "BF16"; expected F32, F64, I64, F16 or U8/,
    ],
    [
      "shape",
      craft({ w: { dtype: "F32", shape: [2, -1], data_offsets: [0, 4] } }, four),
      /tensor "w" has invalid shape \[2,-1\]/,
    ],
    [
      "size",
      craft({ w: { dtype: "F32", shape: [2], data_offsets: [0, 4] } }, four),
      /tensor "w" has shape \[2\] of F32 \(8 bytes\) but data_offsets \[0, 4\] span 4 bytes/,
    ],
    [
      "offsets",
      craft({ w: { dtype: "U8", shape: [2], data_offsets: [0] } }, four),
      /tensor "w" has invalid data_offsets \[0\]/,
    ],
    [
      "reversed",
      craft({ w: { dtype: "U8", shape: [0], data_offsets: [4, 2] } }, four),
      /tensor "w" has data_offsets \[4, 2\] that end before they begin/,
    ],
    [
      "out of range",
      craft({ w: { dtype: "F32", shape: [2], data_offsets: [0, 8] } }, four),
      /tensor "w" has data_offsets \[0, 8\] beyond the 4 bytes of data/,
    ],
    [
      "overlap",
      craft({
        a: { dtype: "U8", shape: [3], data_offsets: [0, 3] },
        b: { dtype: "U8", shape: [2], data_offsets: [2, 4] },
      }, four),
      /tensor "b" at \[2, 4\] overlaps tensor "a" \(which ends at 3\)/,
    ],
    [
      "gap",
      craft({
        a: { dtype: "U8", shape: [1], data_offsets: [0, 1] },
        b: { dtype: "U8", shape: [2], data_offsets: [2, 4] },
      }, four),
      /tensor "b" starts at 2, leaving a gap of 1 bytes after tensor "a"/,
    ],
    [
      "leading gap",
      craft({ b: { dtype: "U8", shape: [2], data_offsets: [2, 4] } }, four),
      /tensor "b" starts at 2, leaving a gap of 2 bytes after the header/,
    ],
    [
      "trailing",
      craft({ a: { dtype: "U8", shape: [3], data_offsets: [0, 3] } }, four),
      /the tensors cover 3 bytes of data but the file has 4 \(1 bytes unaccounted for\)/,
    ],
    ["not object", craft({ w: [1, 2] }, four), /tensor "w" is not described by an object/],
    ["metadata", craft({ __metadata__: { a: 1 } }), /"__metadata__" entry "a" is 1, not a string/],
    ["metadata type", craft({ __metadata__: "x" }), /"__metadata__" is not an object/],
  ];
  for (const [name, bytes, re] of cases) {
    assert.throws(() => readSafetensors(bytes, name), (e: Error) => {
      assert.match(
        e.message,
        new RegExp(`^Cannot read safetensors file "${name.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}": `),
      );
      assert.match(e.message, re, name);
      return true;
    }, name);
  }
});

Deno.test("safetensors: expectTensor checks presence, dtype and shape", () => {
  const map = readSafetensors(
    writeSafetensors([{ name: "model.0.weight", dtype: "F32", shape: [128, 64], data: new Float32Array(128 * 64) }]),
    "g.safetensors",
  );
  assert.equal(expectTensor(map, "model.0.weight", "F32", [128, 64], "g.safetensors").length, 8192);
  assert.throws(() => expectTensor(map, "model.0.weight", "F32", [128, 100], "g.safetensors"), {
    message: 'Cannot load checkpoint "g.safetensors": tensor "model.0.weight" has shape [128, 64], expected [128, 100]',
  });
  assert.throws(
    () => expectTensor(map, "model.0.weight", "F32", [128, 64, 1], "g.safetensors"),
    /expected \[128, 64, 1\]/,
  );
  assert.throws(() => expectTensor(map, "model.0.weight", "F64", [128, 64], "g.safetensors"), {
    message: 'Cannot load checkpoint "g.safetensors": tensor "model.0.weight" has dtype F32, expected F64',
  });
  assert.throws(() => expectTensor(map, "model.2.weight", "F32", [1], "g.safetensors"), {
    message:
      'Cannot load checkpoint "g.safetensors": tensor "model.2.weight" is missing (the file has 1 tensors: model.0.weight)',
  });
});

// ------------------------------------------------------------------------------------------------------------------
// Metrics log and atomic writes
// ------------------------------------------------------------------------------------------------------------------

Deno.test("metrics: one JSON object per line, appended, reopened, closed", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/run/metrics.jsonl`;
    const log = MetricsLog.open(path);
    log.append({ epoch: 0, batch: 0, d_loss: 0.6931, g_loss: 0.7 });
    log.append({ epoch: 0, batch: 1, note: "multi\nline", nan: NaN });
    assert.equal((await Deno.readTextFile(path)).split("\n").length, 3); // written as it comes, before close
    log.close();
    log.close();
    assert.throws(() => log.append({ x: 1 }), /Cannot append to metrics log ".*metrics\.jsonl": it is closed/);
    {
      using again = MetricsLog.open(path);
      again.append({ epoch: 1 });
    }
    const lines = (await Deno.readTextFile(path)).split("\n");
    assert.equal(lines.pop(), "");
    assert.deepEqual(lines.map((l) => JSON.parse(l)), [
      { epoch: 0, batch: 0, d_loss: 0.6931, g_loss: 0.7 },
      { epoch: 0, batch: 1, note: "multi\nline", nan: null },
      { epoch: 1 },
    ]);
    using fresh = MetricsLog.open(path, { truncate: true });
    assert.throws(() => fresh.append({ big: 1n }), /Cannot append to metrics log ".*": .*BigInt/);
    fresh.append({ a: 1 });
    assert.equal(await Deno.readTextFile(path), '{"a":1}\n');
    assert.throws(() => MetricsLog.open(`${path}/inside-a-file.jsonl`), /Cannot open metrics log/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("atomic: writes, replaces, and leaves no temporary file on success or failure", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await writeFileAtomic(`${dir}/a.bin`, new Uint8Array([1]));
    await writeFileAtomic(`${dir}/a.bin`, new Uint8Array(100_000).fill(2));
    assert.deepEqual(await Deno.readFile(`${dir}/a.bin`), new Uint8Array(100_000).fill(2));
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.bin"]);
    // Renaming over a non-empty directory fails: the temporary file is removed, the directory is untouched.
    await Deno.mkdir(`${dir}/d`);
    await Deno.writeFile(`${dir}/d/keep`, new Uint8Array([5]));
    await assert.rejects(writeFileAtomic(`${dir}/d`, new Uint8Array([3])), /Cannot write ".*\/d": /);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.bin", "d"]);
    assert.deepEqual([...Deno.readDirSync(`${dir}/d`)].map((e) => e.name), ["keep"]);
    // A missing directory fails before anything is created.
    await assert.rejects(writeFileAtomic(`${dir}/no/such/x.bin`, new Uint8Array([1])), /Cannot write ".*x\.bin"/);
    assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["a.bin", "d"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
