/**
 * All pairwise dot products of two feature sets, `A B^T`, computed in tiles by the project's own native GEMM: a
 * one-layer {@link NativeMlp} (`input: d`, one Linear of `out: w`, no BatchNorm, no activation) whose weight is a
 * block of `w` rows of `B` (`[w, d]`, bias 0) computes `x W^T = A_rows B_block^T` for a block of rows of `A` with one
 * `forward`. Squared distances follow as `|a|^2 + |b|^2 - 2 a.b`. Only one tile `[w, w]` exists at a time, so memory
 * stays bounded whatever `n` is (see {@link tileBytes}); callers keep what they need from each tile (the k smallest
 * distances per row, counts per row) and drop the rest.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DotTiles } from "./pairwise.ts";
 *
 * const a = { data: new Float32Array([1, 0, 0, 1, 1, 1]), n: 3, d: 2 };
 * using tiles = new DotTiles({ blockSize: 2 }); // blocks of 2 columns: 3 rows need 2 blocks
 * const dots = new Float64Array(9);
 * tiles.forEachSelf(a, (t) => { // one set: the tiles on and above the diagonal, so fill both halves
 *   for (let i = 0; i < t.rows; i++) {
 *     for (let j = 0; j < t.cols; j++) {
 *       dots[(t.r0 + i) * 3 + t.c0 + j] = dots[(t.c0 + j) * 3 + t.r0 + i] = t.dots[i * t.stride + j];
 *     }
 *   }
 * });
 * assert.deepEqual([...dots], [1, 0, 1, 0, 1, 1, 1, 1, 2]);
 * ```
 *
 * @module
 */

import { Context, NativeMlp } from "../native/handles.ts";
import type { Features } from "./features.ts";

/**
 * The default tile side: 1,024 columns by up to 1,024 rows, 23 MB of tiles at `d = 256` (see {@link tileBytes}). As
 * fast as 2,048 here (the native GEMM's fixed cost per output value dominates either way) at a quarter of the memory.
 */
export const DEFAULT_BLOCK_SIZE = 1024;

/**
 * Checks a tile side (an integer in 1..65536; undefined is the default) and returns it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkBlockSize } from "./pairwise.ts";
 * assert.equal(checkBlockSize(undefined), 1024);
 * assert.throws(() => checkBlockSize(0), /blockSize must be an integer in 1..65536, got 0/);
 * ```
 */
export function checkBlockSize(blockSize: number | undefined): number {
  const b = blockSize ?? DEFAULT_BLOCK_SIZE;
  if (!Number.isInteger(b) || b < 1 || b > 1 << 16) {
    throw new RangeError(`blockSize must be an integer in 1..65536, got ${b}`);
  }
  return b;
}

/**
 * One tile of `A B^T`: rows `r0 .. r0 + rows` of `A` against rows `c0 .. c0 + cols` of `B`. `dots[i * stride + j]`
 * is `a_{r0+i} . b_{c0+j}` (float32); columns `cols .. stride` of each row are padding.
 */
export interface DotTile {
  /** First row of `A`. */
  r0: number;
  /** Rows of `A` in the tile. */
  rows: number;
  /** First row of `B`. */
  c0: number;
  /** Rows of `B` in the tile (valid columns of `dots`). */
  cols: number;
  /** Row stride of `dots` (the block width, at least `cols`). */
  stride: number;
  /** `[rows, stride]` the dot products. */
  dots: Float32Array;
  /**
   * `cross`: every tile of `A B^T` is visited. With one set (`A A^T`) only the tiles on and above the diagonal are
   * visited: `diagonal` holds both `(i, j)` and `(j, i)` and the pairs `i = j`; `upper` holds each
   * pair `i < j` once, standing for its mirror too.
   */
  kind: "cross" | "diagonal" | "upper";
}

/** Options of {@link DotTiles}. */
export interface DotTilesOptions {
  /** The context the GEMM runs in (else a CPU context is opened, and closed by `close()`). */
  context?: Context;
  /** The largest tile side (default {@link DEFAULT_BLOCK_SIZE}). */
  blockSize?: number;
}

/**
 * The width of the column blocks for a set of `n` rows: the fewest blocks of at most `blockSize`, evened out, so the
 * last block is at most one column narrower than the others (`10,000` rows at `2,048` are 5 blocks of `2,000`).
 *
 * @param n Rows of the set.
 * @param blockSize The largest block.
 * @returns The block width.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { blockWidth } from "./pairwise.ts";
 *
 * assert.equal(blockWidth(10_000, 2048), 2000);
 * assert.equal(blockWidth(2049, 2048), 1025);
 * assert.equal(blockWidth(300, 2048), 300);
 * ```
 */
export function blockWidth(n: number, blockSize: number): number {
  return Math.ceil(n / Math.ceil(n / blockSize));
}

/**
 * The bytes that tiles of side `w` over `d` features hold at once: in the library, the MLP's parameters, gradients
 * and both Adam moments (`4 w (d + 1)` floats) and its workspace for `w` rows (the input `d w`, the output `w w`, two
 * gradient buffers `2 max(d, w) w`); in JavaScript the tile `w w` and the weight block `w (d + 1)`. At `d = 256`:
 * 23 MB in all for `w = 1,024` (18 MB in the library), 80 MB for `w = 2,048` (61 MB in the library).
 *
 * @param w The tile side.
 * @param d Features per row.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { tileBytes } from "./pairwise.ts";
 *
 * assert.equal(Math.round(tileBytes(1024, 256) / 1e6), 23);
 * assert.equal(Math.round(tileBytes(2048, 256) / 1e6), 80);
 * ```
 */
export function tileBytes(w: number, d: number): number {
  const native = 4 * w * (d + 1) + d * w + w * w + 2 * Math.max(d, w) * w;
  return 4 * (native + w * w + w * (d + 1));
}

/**
 * Streams the tiles of `A B^T` (see {@link DotTile}) through the native GEMM, one weight block at a time. Holds one
 * MLP, rebuilt when the block width changes; `close()` frees it (and the context, when it opened one).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DotTiles } from "./pairwise.ts";
 *
 * const a = { data: new Float32Array([1, 2, 3, 4]), n: 2, d: 2 };
 * const b = { data: new Float32Array([1, 0, 0, 1, 1, 1]), n: 3, d: 2 };
 * using tiles = new DotTiles();
 * tiles.forEachCross(a, b, (t) => assert.deepEqual([...t.dots], [1, 2, 3, 3, 4, 7])); // [2, 3]
 * ```
 */
export class DotTiles implements Disposable {
  readonly #ctx: Context;
  readonly #ownsContext: boolean;
  readonly #blockSize: number;
  #mlp: NativeMlp | null = null;
  #width = 0;
  #d = 0;

  /** Opens a CPU context unless one is given. */
  constructor(options: DotTilesOptions = {}) {
    this.#blockSize = checkBlockSize(options.blockSize);
    this.#ownsContext = options.context === undefined;
    this.#ctx = options.context ?? new Context({ backend: "cpu" });
  }

  /** Calls `visit` with every tile of `A B^T` (kind `cross`); `a` and `b` may be the same set. */
  forEachCross(a: Features, b: Features, visit: (t: DotTile) => void): void {
    this.#forEach(a, b, false, visit);
  }

  /** Calls `visit` with the tiles on and above the diagonal of `X X^T` (kinds `diagonal` and `upper`). */
  forEachSelf(x: Features, visit: (t: DotTile) => void): void {
    this.#forEach(x, x, true, visit);
  }

  /** The tiles of `A B^T`, or with `self` those of `A A^T` on and above the diagonal; `dots` is valid during the call. */
  #forEach(a: Features, b: Features, self: boolean, visit: (t: DotTile) => void): void {
    if (a.d !== b.d) throw new RangeError(`pairwise dot products: ${a.d} features against ${b.d}`);
    const w = blockWidth(b.n, this.#blockSize);
    const rowChunk = self ? w : blockWidth(a.n, this.#blockSize);
    const mlp = this.#mlpFor(w, a.d);
    const [weight, bias] = mlp.layout().params;
    const flat = new Float32Array(mlp.size("params")); // [w, d] weight then [w] bias (stays 0)
    for (let c0 = 0; c0 < b.n; c0 += w) {
      const cols = Math.min(w, b.n - c0);
      if (cols < w) flat.fill(0, weight.offset, weight.offset + weight.size);
      flat.set(b.data.subarray(c0 * b.d, (c0 + cols) * b.d), weight.offset);
      flat.fill(0, bias.offset, bias.offset + bias.size);
      mlp.set("params", flat);
      const rowEnd = self ? c0 + cols : a.n;
      for (let r0 = 0; r0 < rowEnd; r0 += rowChunk) {
        const rows = Math.min(rowChunk, rowEnd - r0);
        const dots = mlp.forward(a.data.subarray(r0 * a.d, (r0 + rows) * a.d), rows, false); // [rows, w]
        const kind = !self ? "cross" : r0 === c0 ? "diagonal" : "upper";
        visit({ r0, rows, c0, cols, stride: w, dots, kind });
      }
    }
  }

  /** The one-layer MLP that multiplies by a `[w, d]` block. */
  #mlpFor(w: number, d: number): NativeMlp {
    if (this.#mlp !== null && this.#width === w && this.#d === d) return this.#mlp;
    this.#mlp?.close();
    this.#mlp = null; // freed before the next one is allocated
    this.#mlp = new NativeMlp(this.#ctx, { input: d, layers: [{ out: w, bn: null, act: { kind: "none" } }] });
    [this.#width, this.#d] = [w, d];
    return this.#mlp;
  }

  /** Frees the MLP, and the context when this object opened it. */
  close(): void {
    this.#mlp?.close();
    this.#mlp = null;
    if (this.#ownsContext) this.#ctx.close();
  }

  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
