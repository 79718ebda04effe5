/**
 * Image grids as PNG files, pixel for pixel as torchvision's `save_image(images[:n], path, nrow, normalize=True)`.
 *
 * PNG encoding and decoding use the npm package `fast-png` (pure TypeScript, synchronous, maintained by the
 * image-js project, no Node built-ins), pinned to 8.0.0.
 *
 * @example Save the first 25 of a batch of generated 28x28 images, 5 per row
 * ```ts
 * import { decodePng, encodeGrid } from "./png.ts";
 * import assert from "node:assert/strict";
 *
 * const images = new Float32Array(64 * 784).map((_, i) => Math.sin(i)); // [64, 1, 28, 28] in [-1, 1]
 * const png = encodeGrid(images, 25, 1, 28, 28, { nrow: 5, normalize: true });
 * const img = decodePng(png);
 * assert.deepEqual([img.width, img.height, img.channels], [152, 152, 3]);
 * ```
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- pinned here until deno.json maps "fast-png"
import { decode, encode } from "npm:fast-png@8.0.0";
import { writeFileAtomic } from "./atomic.ts";
// The one home of the grid rule, shared with the exported page (src/web/runtime.js is plain JavaScript).
import { makeGrid as gridOf } from "../web/runtime.js";

/** Options of {@linkcode makeGrid} and {@linkcode encodeGrid}, as torchvision's `make_grid`. */
export interface GridOptions {
  /** Images per row (torchvision's `nrow`; the seed uses 5). */
  nrow: number;
  /** Pixels between and around images (default 2). */
  padding?: number;
  /**
   * Min-max normalize the whole batch (the first `n` images together) to [0, 1] before conversion
   * (default false: values are taken to be in [0, 1] already and clamped).
   */
  normalize?: boolean;
  /** Value of the padding pixels, in [0, 1] (default 0: black). */
  padValue?: number;
}

/** A decoded or composed 8-bit image, row-major, channels interleaved (`[height, width, channels]`). */
export interface RasterImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** Channels per pixel: 1 (grey), 2 (grey + alpha), 3 (RGB) or 4 (RGBA). */
  channels: number;
  /** The pixels, `[height, width, channels]`. */
  data: Uint8Array;
}

/**
 * Lays out the first `n` images of a `[*, channels, height, width]` float32 batch as torchvision's `make_grid`
 * followed by `save_image`'s conversion to bytes.
 *
 * - Grid: `xmaps = min(nrow, n)` columns, `ymaps = ceil(n / xmaps)` rows, `padding` pixels of `padValue` between
 *   and around the images; size `(height + padding) * ymaps + padding` by `(width + padding) * xmaps + padding`.
 *   A single image (`n = 1`) is returned without padding, as `make_grid` does.
 * - Channels: a 1-channel batch is repeated to 3 channels (RGB); 3 and 4 channels are kept.
 * - `normalize`: `x = (x - min) / max(max - min, 1e-5)` with min and max over all `n` images (float32, as PyTorch
 *   on the CPU; PyTorch on CUDA multiplies by the reciprocal instead, which can move a rare pixel by one level).
 * - Bytes: `trunc(clamp(x * 255 + 0.5, 0, 255))` in float32; NaN becomes 0.
 *
 * @param images The batch, `[>= n, channels, height, width]` float32 (extra images are ignored).
 * @param n How many images to show.
 * @param channels 1, 3 or 4.
 * @param height Image height.
 * @param width Image width.
 * @param opts Layout and normalization.
 * @returns The grid as `[H, W, 3 or 4]` bytes.
 *
 * @example
 * ```ts
 * import { makeGrid } from "./png.ts";
 * import assert from "node:assert/strict";
 *
 * // Two 1x1 images, -1 and 1, side by side with padding 1: the middle row is pad, 0, pad, 255, pad.
 * const g = makeGrid(new Float32Array([-1, 1]), 2, 1, 1, 1, { nrow: 5, padding: 1, normalize: true });
 * assert.deepEqual([g.width, g.height, g.channels], [5, 3, 3]);
 * const red = [...g.data.subarray(3 * 5, 3 * 10)].filter((_, i) => i % 3 === 0);
 * assert.deepEqual(red, [0, 0, 0, 255, 0]);
 * ```
 */
export function makeGrid(
  images: Float32Array,
  n: number,
  channels: number,
  height: number,
  width: number,
  opts: GridOptions,
): RasterImage {
  return gridOf(images, n, channels, height, width, opts);
}

/**
 * Encodes the first `n` images of a batch as a PNG grid, exactly as torchvision's
 * `save_image(images[:n], path, nrow=opts.nrow, normalize=opts.normalize)` (see {@linkcode makeGrid} for the
 * layout and the arithmetic). A 1-channel batch gives an RGB PNG, as in torchvision.
 *
 * @param images The batch, `[>= n, channels, height, width]` float32.
 * @param n How many images to show.
 * @param channels 1, 3 or 4.
 * @param height Image height.
 * @param width Image width.
 * @param opts Layout and normalization.
 * @returns The PNG file's bytes (8-bit RGB or RGBA).
 *
 * @example
 * ```ts
 * import { decodePng, encodeGrid } from "./png.ts";
 * import assert from "node:assert/strict";
 *
 * const png = encodeGrid(new Float32Array(25 * 784), 25, 1, 28, 28, { nrow: 5, normalize: true });
 * const img = decodePng(png);
 * assert.deepEqual([img.width, img.height, img.channels], [152, 152, 3]);
 * ```
 */
export function encodeGrid(
  images: Float32Array,
  n: number,
  channels: number,
  height: number,
  width: number,
  opts: GridOptions,
): Uint8Array {
  return encodeImage(makeGrid(images, n, channels, height, width, opts));
}

/**
 * Encodes an 8-bit image as PNG.
 *
 * @param image The pixels and their shape.
 * @returns The PNG file's bytes.
 *
 * @example
 * ```ts
 * import { decodePng, encodeImage } from "./png.ts";
 * import assert from "node:assert/strict";
 *
 * const png = encodeImage({ width: 2, height: 1, channels: 1, data: new Uint8Array([0, 255]) });
 * assert.deepEqual(decodePng(png).data, new Uint8Array([0, 255]));
 * ```
 */
export function encodeImage(image: RasterImage): Uint8Array {
  const { width, height, channels, data } = image;
  if (channels < 1 || channels > 4 || data.length !== width * height * channels) {
    throw new Error(
      `Cannot encode PNG: ${width}x${height}x${channels} needs ${width * height * channels} bytes, got ${data.length}`,
    );
  }
  return encode({ width, height, channels, depth: 8, data });
}

/**
 * Decodes an 8-bit PNG (grey, grey + alpha, RGB or RGBA; no palette, no 16-bit).
 *
 * @param bytes The PNG file's bytes.
 * @returns The pixels as `[height, width, channels]` bytes.
 *
 * @example
 * ```ts
 * import { decodePng, encodeImage } from "./png.ts";
 * import assert from "node:assert/strict";
 *
 * const img = decodePng(encodeImage({ width: 1, height: 1, channels: 3, data: new Uint8Array([1, 2, 3]) }));
 * assert.deepEqual(img, { width: 1, height: 1, channels: 3, data: new Uint8Array([1, 2, 3]) });
 * ```
 */
export function decodePng(bytes: Uint8Array): RasterImage {
  const png = decode(bytes);
  if (png.depth !== 8 || png.palette !== undefined || !(png.data instanceof Uint8Array)) {
    throw new Error(
      `Cannot decode PNG: ${png.depth}-bit ${png.palette ? "palette " : ""}images are not supported, only 8-bit`,
    );
  }
  return { width: png.width, height: png.height, channels: png.channels, data: png.data };
}

/**
 * {@linkcode encodeGrid}, then {@linkcode writeFileAtomic} to `path`: the seed's
 * `save_image(gen_imgs.data[:25], "images/%d.png" % batches_done, nrow=5, normalize=True)`.
 *
 * @param path Destination file (its directory must exist).
 * @param images The batch, `[>= n, channels, height, width]` float32.
 * @param n How many images to show.
 * @param channels 1, 3 or 4.
 * @param height Image height.
 * @param width Image width.
 * @param opts Layout and normalization.
 *
 * @example
 * ```ts
 * import { saveGrid } from "./png.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await saveGrid(`${dir}/400.png`, new Float32Array(25 * 784), 25, 1, 28, 28, { nrow: 5, normalize: true });
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function saveGrid(
  path: string,
  images: Float32Array,
  n: number,
  channels: number,
  height: number,
  width: number,
  opts: GridOptions,
): Promise<void> {
  await writeFileAtomic(path, encodeGrid(images, n, channels, height, width, opts));
}
