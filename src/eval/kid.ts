/**
 * The kernel inception distance (Bińkowski et al., 2018), as torch-fidelity computes it: the unbiased estimate of
 * the squared MMD between real and generated features under the cubic polynomial kernel `k(x, y) = (x.y / d + 1)^3`,
 * over `subsets` pairs of random subsets of `m` samples each (drawn without replacement), reported as the mean and the
 * standard deviation (population, numpy's `std`) over the subsets. For one pair of subsets `X`, `Y`:
 *
 * ```
 * mmd^2 = (sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)) / (m (m - 1)) - 2 sum_{i, j} k(x_i, y_j) / m^2
 * ```
 *
 * The subsets come from a small seeded generator (mulberry32, partial Fisher-Yates), real then fake for each
 * subset, so a seed gives the same subsets everywhere. The kernel sums need the dot products of the pairs inside
 * each subset: they are gathered from the tiles of the same GEMM passes that the k-NN metrics stream (every pair of
 * each set and across the sets), so KID costs no GEMM of its own.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelInceptionDistance } from "./kid.ts";
 *
 * const rand = (shift: number) => Float32Array.from({ length: 200 * 4 }, (_, i) => Math.sin(i * 12.9898) + shift);
 * const real = { data: rand(0), n: 200, d: 4 };
 * const kid = kernelInceptionDistance(real, { data: rand(0.5), n: 200, d: 4 }, { subsets: 10, subsetSize: 100 });
 * assert.ok(kid.mean > 0.1 && kid.std < kid.mean);
 * ```
 *
 * @module
 */

import type { Features } from "./features.ts";
import { type DotTile, DotTiles, type DotTilesOptions } from "./pairwise.ts";

/**
 * mulberry32: a tiny seeded generator of uniform numbers in [0, 1) (32-bit state).
 *
 * @param seed Any integer (taken modulo 2^32).
 * @returns The generator.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mulberry32 } from "./kid.ts";
 *
 * assert.equal(mulberry32(7)(), mulberry32(7)());
 * ```
 */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The subsets of a KID estimate: `real[s]` and `fake[s]` are the sorted sample indices of subset pair `s`. */
export interface KidSubsets {
  /** `subsets` sorted Int32Arrays of `m` distinct indices into the real set. */
  real: Int32Array[];
  /** `subsets` sorted Int32Arrays of `m` distinct indices into the fake set. */
  fake: Int32Array[];
}

/** `m` distinct indices of `0..n` (sorted), by `m` steps of Fisher-Yates over `perm` (any arrangement of 0..n). */
function drawSubset(perm: Int32Array, m: number, rand: () => number): Int32Array {
  const n = perm.length;
  for (let i = 0; i < m; i++) {
    const j = i + Math.floor(rand() * (n - i));
    [perm[i], perm[j]] = [perm[j], perm[i]];
  }
  return perm.slice(0, m).sort();
}

/**
 * Draws the subsets of a KID estimate: `subsets` real ones (`m` of the `nReal` real samples each, from
 * `mulberry32(seed)`) and as many fake ones (`m` of the `nFake` fakes each, from a second stream of the seed), without
 * replacement inside a subset. The real subsets depend on `nReal`, `m`, `subsets` and `seed` only, so the real side
 * can be summed once for many fake sets.
 *
 * @param nReal Real samples.
 * @param nFake Generated samples.
 * @param m Samples per subset (at most `min(nReal, nFake)`).
 * @param subsets Subset pairs.
 * @param seed The generator's seed.
 * @returns The index sets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kidSubsets } from "./kid.ts";
 *
 * const s = kidSubsets(10, 20, 5, 3, 0);
 * assert.equal(s.real.length, 3);
 * assert.ok(s.fake.every((x) => new Set(x).size === 5 && x.every((i) => i >= 0 && i < 20)));
 * assert.deepEqual(kidSubsets(10, 20, 5, 3, 0), s); // the seed fixes them
 * assert.deepEqual(kidSubsets(10, 50, 5, 3, 0).real, s.real); // the real subsets do not depend on the fakes
 * ```
 */
export function kidSubsets(nReal: number, nFake: number, m: number, subsets: number, seed: number): KidSubsets {
  checkKidSizes(nReal, nFake, m, subsets);
  return { real: kidRealSubsets(nReal, m, subsets, seed), fake: kidFakeSubsets(nFake, m, subsets, seed) };
}

/** What the fake subsets' seed is xor-ed with: the two sides draw from separate mulberry32 streams. */
const FAKE_STREAM = 0x9e3779b9;

/** `subsets` sorted subsets of `m` distinct indices of `0..n`, from `mulberry32(seed)`. */
function drawSubsets(n: number, m: number, subsets: number, seed: number): Int32Array[] {
  const rand = mulberry32(seed), perm = Int32Array.from({ length: n }, (_, i) => i);
  return Array.from({ length: subsets }, () => drawSubset(perm, m, rand));
}

/**
 * The real half of {@link kidSubsets} (the same subsets, for any number of fakes): what a prepared real side sums.
 *
 * @param nReal Real samples.
 * @param m Samples per subset (at most `nReal`).
 * @param subsets Subset pairs.
 * @param seed The generator's seed.
 * @returns `subsets` sorted index sets.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kidRealSubsets, kidSubsets } from "./kid.ts";
 *
 * assert.deepEqual(kidRealSubsets(10, 5, 3, 7), kidSubsets(10, 40, 5, 3, 7).real);
 * ```
 */
export function kidRealSubsets(nReal: number, m: number, subsets: number, seed: number): Int32Array[] {
  checkKidSizes(nReal, nReal, m, subsets);
  return drawSubsets(nReal, m, subsets, seed);
}

/** The fake half of {@link kidSubsets}, from the seed's second stream (see {@link kidRealSubsets}). */
export function kidFakeSubsets(nFake: number, m: number, subsets: number, seed: number): Int32Array[] {
  checkKidSizes(nFake, nFake, m, subsets);
  return drawSubsets(nFake, m, subsets, (seed ^ FAKE_STREAM) >>> 0);
}

/**
 * Checks KID's subset count and size against the set sizes.
 *
 * @param nReal Real samples.
 * @param nFake Generated samples.
 * @param m Samples per subset.
 * @param subsets Subset pairs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkKidSizes } from "./kid.ts";
 *
 * assert.throws(() => checkKidSizes(500, 300, 1000, 100), /subset size 1000 is larger than the smaller set \(real 500, fake 300/);
 * ```
 */
export function checkKidSizes(nReal: number, nFake: number, m: number, subsets: number): void {
  if (!Number.isInteger(subsets) || subsets < 1) {
    throw new RangeError(`KID subsets must be a positive integer, got ${subsets}`);
  }
  if (!Number.isInteger(m) || m < 2) throw new RangeError(`KID subset size must be an integer >= 2, got ${m}`);
  if (m > Math.min(nReal, nFake)) {
    throw new RangeError(
      `KID subset size ${m} is larger than the smaller set (real ${nReal}, fake ${nFake} samples)`,
    );
  }
}

/** For every sample, the subsets it belongs to (CSR: `of[start[i] .. start[i + 1]]`). */
interface Membership {
  start: Int32Array; // [n + 1]
  of: Int32Array; // [subsets * m]
}

function membership(sets: Int32Array[], n: number): Membership {
  const start = new Int32Array(n + 1);
  for (const set of sets) for (const i of set) start[i + 1]++;
  for (let i = 0; i < n; i++) start[i + 1] += start[i];
  const fill = start.slice(0, n);
  const of = new Int32Array(start[n]);
  sets.forEach((set, s) => set.forEach((i) => void (of[fill[i]++] = s)));
  return { start, of };
}

/** The first index of sorted `a` holding a value >= `v`. */
function lowerBound(a: Int32Array, v: number): number {
  let [lo, hi] = [0, a.length];
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (a[mid] < v) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

const cube = (v: number) => v * v * v;

/** `sum_x k(dots[o + cols[x]])` over `x` in `lo .. hi`, `k(u) = (u / d + 1)^3` (two accumulators, for speed). */
function kernelSum(dots: Float32Array, o: number, cols: Int32Array, lo: number, hi: number, invD: number): number {
  let [s0, s1] = [0, 0];
  let x = lo;
  for (; x + 1 < hi; x += 2) {
    const v0 = dots[o + cols[x]] * invD + 1;
    const v1 = dots[o + cols[x + 1]] * invD + 1;
    s0 += v0 * v0 * v0;
    s1 += v1 * v1 * v1;
  }
  if (x < hi) s0 += cube(dots[o + cols[x]] * invD + 1);
  return s0 + s1;
}

/** Which kernel sum a pass feeds: real against real, fake against fake, or real against fake. */
export type KidPass = "real" | "fake" | "cross";

/**
 * The kernel sums of every subset pair, gathered from the tiles of the three passes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { KidSums } from "./kid.ts";
 *
 * // one subset pair, X = {1, 2} and Y = {3, 4} in 1-d, given as the dot products of all four samples
 * const sums = new KidSums({ real: [Int32Array.of(0, 1)], fake: [Int32Array.of(0, 1)] }, 2, 2, 1);
 * sums.addTile({ r0: 0, rows: 2, c0: 0, cols: 2, stride: 2, dots: Float32Array.of(1, 2, 2, 4), kind: "diagonal" }, "real");
 * sums.addTile({ r0: 0, rows: 2, c0: 0, cols: 2, stride: 2, dots: Float32Array.of(9, 12, 12, 16), kind: "diagonal" }, "fake");
 * sums.addTile({ r0: 0, rows: 2, c0: 0, cols: 2, stride: 2, dots: Float32Array.of(3, 4, 6, 8), kind: "cross" }, "cross");
 * assert.deepEqual([sums.real[0], sums.fake[0], sums.cross[0]], [54, 4394, 1261]);
 * assert.equal(sums.result().mean, (54 + 4394 - 1261) / 2);
 * ```
 */
export class KidSums {
  readonly #sets: KidSubsets;
  readonly #members: { real: Membership; fake: Membership };
  readonly #invD: number;
  readonly #ranges: Int32Array;
  /** `[subsets]` `sum_{i != j} k(x_i, x_j)` over each real subset. */
  readonly real: Float64Array;
  /** `[subsets]` `sum_{i != j} k(y_i, y_j)` over each fake subset. */
  readonly fake: Float64Array;
  /** `[subsets]` `sum_{i, j} k(x_i, y_j)` over each pair of subsets. */
  readonly cross: Float64Array;

  /** For the subsets `sets` of sets of `nReal` and `nFake` samples of `d` features. */
  constructor(sets: KidSubsets, nReal: number, nFake: number, d: number) {
    this.#sets = sets;
    this.#members = { real: membership(sets.real, nReal), fake: membership(sets.fake, nFake) };
    this.#invD = 1 / d;
    this.#ranges = new Int32Array(2 * sets.real.length);
    [this.real, this.fake, this.cross] = [0, 1, 2].map(() => new Float64Array(sets.real.length));
  }

  /**
   * Adds the kernel values of one tile to every subset holding both its row sample and its column sample: for each
   * row, for each subset it is in, the subset's column members inside the tile. `upper` tiles count twice (the pair
   * and its mirror), `diagonal` ones skip `i = j`.
   */
  addTile(t: DotTile, pass: KidPass): void {
    const rowSide = pass === "fake" ? this.#members.fake : this.#members.real;
    const colSets = pass === "real" ? this.#sets.real : this.#sets.fake;
    const acc = this[pass];
    const weight = t.kind === "upper" ? 2 : 1;
    const ranges = this.#ranges; // [subsets, 2]: each subset's members in c0 .. c0 + cols
    colSets.forEach((set, s) => {
      ranges[2 * s] = lowerBound(set, t.c0);
      ranges[2 * s + 1] = lowerBound(set, t.c0 + t.cols);
    });
    for (let i = 0; i < t.rows; i++) {
      const p = t.r0 + i;
      const o = i * t.stride - t.c0; // dots[o + q] is the pair (p, q)
      for (let e = rowSide.start[p]; e < rowSide.start[p + 1]; e++) {
        const s = rowSide.of[e];
        let sum = kernelSum(t.dots, o, colSets[s], ranges[2 * s], ranges[2 * s + 1], this.#invD);
        if (t.kind === "diagonal") sum -= cube(t.dots[o + p] * this.#invD + 1); // the pair (p, p)
        acc[s] += weight * sum;
      }
    }
  }

  /** The estimate of every subset pair, their mean and standard deviation. */
  result(): Kid {
    const m = this.#sets.real[0].length;
    const mmd = this.real.map((xx, s) => (xx + this.fake[s]) / (m * (m - 1)) - (2 * this.cross[s]) / (m * m));
    const mean = mmd.reduce((a, b) => a + b, 0) / mmd.length;
    const variance = mmd.reduce((a, b) => a + (b - mean) ** 2, 0) / mmd.length;
    return { mean, std: Math.sqrt(variance), subsets: mmd };
  }
}

/** A KID estimate. */
export interface Kid {
  /** The mean of the subsets' unbiased MMD^2 estimates. */
  mean: number;
  /** Their standard deviation (population: divided by the number of subsets, as numpy's `std`). */
  std: number;
  /** `[subsets]` each subset pair's estimate. */
  subsets: Float64Array;
}

/** Options of {@link kernelInceptionDistance}. */
export interface KidOptions extends DotTilesOptions {
  /** Subset pairs (default 100). */
  subsets?: number;
  /** Samples per subset (default `min(1000, nReal, nFake)`). */
  subsetSize?: number;
  /** Seed of the subsets (default 0). */
  seed?: number;
}

/**
 * KID of `fake` against `real` on its own (three GEMM passes; `computeMetrics` shares them with the k-NN metrics).
 *
 * @param real Real features `[N, d]` (checked).
 * @param fake Generated features `[M, d]` (checked).
 * @param options Subsets, their size, the seed, the tiles.
 * @returns The mean, the standard deviation and every subset's estimate.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kernelInceptionDistance } from "./kid.ts";
 *
 * const x = { data: Float32Array.from({ length: 50 * 3 }, (_, i) => Math.cos(i * 7.1)), n: 50, d: 3 };
 * const kid = kernelInceptionDistance(x, x, { subsets: 20, subsetSize: 25 });
 * assert.ok(Math.abs(kid.mean) < 3 * kid.std); // one set against itself: 0 within the subsets' spread
 * ```
 */
export function kernelInceptionDistance(real: Features, fake: Features, options: KidOptions = {}): Kid {
  const m = options.subsetSize ?? Math.min(1000, real.n, fake.n);
  const sets = kidSubsets(real.n, fake.n, m, options.subsets ?? 100, options.seed ?? 0);
  const sums = new KidSums(sets, real.n, fake.n, real.d);
  using tiles = new DotTiles(options);
  tiles.forEachSelf(real, (t) => sums.addTile(t, "real"));
  tiles.forEachSelf(fake, (t) => sums.addTile(t, "fake"));
  tiles.forEachCross(real, fake, (t) => sums.addTile(t, "cross"));
  return sums.result();
}
