/**
 * k-nearest-neighbour radii and the four metrics built on them: improved precision and recall (Kynkäänniemi et al.,
 * 2019) and density and coverage (Naeem et al., 2020). A point's radius is the distance to its k-th nearest
 * neighbour in its own set, the point itself excluded (by index, so a duplicate of it counts as a neighbour at
 * distance 0). Distances come from {@link DotTiles} as `|a|^2 + |b|^2 - 2 a.b` (norms in float64, the dot products
 * from the float32 GEMM, clamped at 0), and every comparison is on squared distances.
 *
 * - precision: the share of fake samples inside at least one real ball, `|f - r| <= radius(r)`;
 * - recall: the share of real samples inside at least one fake ball, `|r - f| <= radius(f)`;
 * - density: `1 / (k M)` times the number of (fake, real) pairs with `|f - r| < radius(r)` (`M` fakes; about 1 when
 *   the fakes follow the real distribution, above 1 where they crowd into dense real regions);
 * - coverage: the share of real samples whose nearest fake is strictly inside their own ball.
 *
 * `<=` for precision and recall and `<` for density and coverage are each the reference code's (NVlabs'
 * improved-precision-recall-metric, clovaai's prdc); they differ only at exact ties.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kNearestRadii } from "./knn.ts";
 *
 * const x = { data: new Float32Array([0, 1, 3, 7]), n: 4, d: 1 };
 * assert.deepEqual([...kNearestRadii(x, 1)], [1, 1, 2, 4]); // the nearest other point of each
 * ```
 *
 * @module
 */

import { rowSquaredNorms } from "./features.ts";
import type { Features } from "./features.ts";
import { type DotTile, DotTiles, type DotTilesOptions } from "./pairwise.ts";

/**
 * The k smallest squared distances from each point of a set to the others, kept while tiles stream past.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NearestK } from "./knn.ts";
 *
 * const nn = new NearestK(1, 2);
 * for (const d2 of [9, 4, 16, 1]) if (d2 < nn.kth[0]) nn.offer(0, d2);
 * assert.deepEqual([...nn.best], [1, 4]);
 * assert.equal(nn.kth[0], 4);
 * ```
 */
export class NearestK {
  /** Neighbours kept per point. */
  readonly k: number;
  /** `[n, k]` the k smallest squared distances of each point, ascending (Infinity until filled). */
  readonly best: Float64Array;
  /** `[n]` the k-th smallest squared distance of each point (`best[i * k + k - 1]`), the bar a new one must beat. */
  readonly kth: Float64Array;

  /** Room for `n` points. */
  constructor(n: number, k: number) {
    this.k = k;
    this.best = new Float64Array(n * k).fill(Infinity);
    this.kth = new Float64Array(n).fill(Infinity);
  }

  /** Offers the squared distance `d2` to point `p`. */
  offer(p: number, d2: number): void {
    const k = this.k;
    const best = this.best;
    let at = p * k + k - 1; // the last slot, which d2 beats
    const first = p * k;
    while (at > first && best[at - 1] > d2) {
      best[at] = best[at - 1];
      at--;
    }
    best[at] = d2;
    this.kth[p] = best[first + k - 1];
  }

  /**
   * Takes one tile of a set against itself (see {@link DotTile}): a `diagonal` tile offers every pair but `i = j` to
   * its row; an `upper` tile offers each pair to both its points. Squared distances below 0 (rounding) count as 0.
   */
  addSelfTile(t: DotTile, norms: Float64Array): void {
    const { dots, stride, r0, c0, rows, cols } = t;
    const kth = this.kth;
    const upper = t.kind === "upper";
    for (let i = 0; i < rows; i++) {
      const p = r0 + i;
      const [np, o] = [norms[p], i * stride];
      let bar = kth[p]; // the row's k-th best so far
      for (let j = 0; j < cols; j++) {
        const q = c0 + j;
        const d2 = np + norms[q] - 2 * dots[o + j];
        if (d2 < bar && q !== p) {
          this.offer(p, d2 < 0 ? 0 : d2);
          bar = kth[p];
        }
        if (upper && d2 < kth[q]) this.offer(q, d2 < 0 ? 0 : d2);
      }
    }
  }
}

/** Options of the k-NN functions: the tiles' context and size. */
export type KnnOptions = DotTilesOptions;

/**
 * Checks that `k` is a positive integer and that a set of `n` points has a k-th neighbour other than each point.
 *
 * @param k The neighbour.
 * @param n Points in the set.
 * @param name The set, for the message.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkK } from "./knn.ts";
 *
 * assert.throws(() => checkK(3, 3, "fake"), /fake has 3 samples: the k-th nearest neighbour \(k = 3\) needs at least 4/);
 * ```
 */
export function checkK(k: number, n: number, name: string): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`k must be a positive integer, got ${k}`);
  if (n < k + 1) {
    throw new RangeError(`${name} has ${n} samples: the k-th nearest neighbour (k = ${k}) needs at least ${k + 1}`);
  }
}

/**
 * The k-th nearest-neighbour squared distance of every point of `x` among the other points of `x`, from the
 * tiles on and above the diagonal of `x x^T`.
 *
 * @param tiles The GEMM tiles.
 * @param x The set `[n, d]` (checked, `n > k`).
 * @param norms `[n]` its squared row norms.
 * @param k The neighbour.
 * @param visit Also called with every tile (another statistic of the same pass).
 * @returns `[n]` squared radii.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowSquaredNorms } from "./features.ts";
 * import { selfRadii2 } from "./knn.ts";
 * import { DotTiles } from "./pairwise.ts";
 *
 * const x = { data: new Float32Array([0, 1, 3]), n: 3, d: 1 };
 * using tiles = new DotTiles();
 * let seen = 0;
 * assert.deepEqual([...selfRadii2(tiles, x, rowSquaredNorms(x), 1, () => seen++)], [1, 1, 4]);
 * assert.equal(seen, 1); // one tile holds the whole set
 * ```
 */
export function selfRadii2(
  tiles: DotTiles,
  x: Features,
  norms: Float64Array,
  k: number,
  visit?: (t: DotTile) => void,
): Float64Array {
  const nn = new NearestK(x.n, k);
  tiles.forEachSelf(x, (t) => {
    nn.addSelfTile(t, norms);
    visit?.(t);
  });
  return nn.kth;
}

/**
 * The distance from every point of `x` to its k-th nearest other point (the radius of its k-NN ball), through the
 * native GEMM.
 *
 * @param x The set `[n, d]`, `n > k`.
 * @param k The neighbour (1 = the nearest other point).
 * @param options The tiles' context and size.
 * @returns `[n]` radii (not squared).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { kNearestRadii } from "./knn.ts";
 *
 * const x = { data: new Float32Array([0, 0, 3, 4, 0, 0]), n: 3, d: 2 }; // a duplicate is a neighbour at 0
 * assert.deepEqual([...kNearestRadii(x, 1)], [0, 5, 0]);
 * assert.deepEqual([...kNearestRadii(x, 2)], [5, 5, 5]);
 * ```
 */
export function kNearestRadii(x: Features, k: number, options: KnnOptions = {}): Float64Array {
  checkK(k, x.n, "the set");
  using tiles = new DotTiles(options);
  return selfRadii2(tiles, x, rowSquaredNorms(x), k).map(Math.sqrt);
}

/** Improved precision and recall, density and coverage. */
export interface ManifoldMetrics {
  /** The share of fake samples inside at least one real k-NN ball (Kynkäänniemi et al.). */
  precision: number;
  /** The share of real samples inside at least one fake k-NN ball (Kynkäänniemi et al.). */
  recall: number;
  /** Real k-NN balls containing a fake, counted with multiplicity, per fake and per k (Naeem et al.). */
  density: number;
  /** The share of real samples whose k-NN ball holds a fake (Naeem et al.). */
  coverage: number;
}

/**
 * The per-sample counts behind {@link ManifoldMetrics}, kept while the tiles of `real fake^T` stream past.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ManifoldCounts } from "./knn.ts";
 *
 * // 1-d: reals at 0 and 4 (radius 4), one fake at 1 (radius 0: a set of one has no neighbour)
 * const counts = new ManifoldCounts(Float64Array.of(16, 16), Float64Array.of(0), Float64Array.of(0, 16), Float64Array.of(1));
 * counts.addTile({ r0: 0, rows: 2, c0: 0, cols: 1, stride: 1, dots: Float32Array.of(0, 4), kind: "cross" });
 * assert.deepEqual(counts.result(1), { precision: 1, recall: 0, density: 2, coverage: 1 });
 * ```
 */
export class ManifoldCounts {
  readonly #realR2: Float64Array;
  readonly #fakeR2: Float64Array;
  readonly #realNorms: Float64Array;
  readonly #fakeNorms: Float64Array;
  /** `[nFake]` 1 where the fake is inside some real ball (`<=`). */
  readonly inReal: Uint8Array;
  /** `[nFake]` how many real balls hold the fake strictly (`<`). */
  readonly ballCount: Int32Array;
  /** `[nReal]` 1 where the real is inside some fake ball (`<=`). */
  readonly inFake: Uint8Array;
  /** `[nReal]` squared distance to the nearest fake. */
  readonly nearestFake2: Float64Array;

  /** From the squared radii and squared norms of both sets. */
  constructor(realR2: Float64Array, fakeR2: Float64Array, realNorms: Float64Array, fakeNorms: Float64Array) {
    [this.#realR2, this.#fakeR2, this.#realNorms, this.#fakeNorms] = [realR2, fakeR2, realNorms, fakeNorms];
    this.inReal = new Uint8Array(fakeR2.length);
    this.ballCount = new Int32Array(fakeR2.length);
    this.inFake = new Uint8Array(realR2.length);
    this.nearestFake2 = new Float64Array(realR2.length).fill(Infinity);
  }

  /** Takes one `cross` tile of `real fake^T` (rows real, columns fake). */
  addTile(t: DotTile): void {
    const { dots, stride, r0, c0, rows, cols } = t;
    const [fakeR2, fakeNorms, inReal, ballCount] = [this.#fakeR2, this.#fakeNorms, this.inReal, this.ballCount];
    for (let i = 0; i < rows; i++) {
      const r = r0 + i;
      const [nr, rr2, o] = [this.#realNorms[r], this.#realR2[r], i * stride];
      let nearest = this.nearestFake2[r];
      let inFake = this.inFake[r];
      for (let j = 0; j < cols; j++) {
        const f = c0 + j;
        const d2 = nr + fakeNorms[f] - 2 * dots[o + j]; // below 0 only by rounding: compared as 0
        if (d2 < nearest) nearest = d2;
        if (d2 <= fakeR2[f]) inFake = 1;
        if (d2 <= rr2) {
          inReal[f] = 1;
          if ((d2 < 0 ? 0 : d2) < rr2) ballCount[f]++;
        }
      }
      this.nearestFake2[r] = nearest < 0 ? 0 : nearest;
      this.inFake[r] = inFake;
    }
  }

  /** The four metrics from the counts, for neighbour `k`. */
  result(k: number): ManifoldMetrics {
    const [nReal, nFake] = [this.inFake.length, this.inReal.length];
    let [inReal, balls, inFake, covered] = [0, 0, 0, 0];
    for (let f = 0; f < nFake; f++) [inReal, balls] = [inReal + this.inReal[f], balls + this.ballCount[f]];
    for (let r = 0; r < nReal; r++) {
      inFake += this.inFake[r];
      if (this.nearestFake2[r] < this.#realR2[r]) covered++;
    }
    return {
      precision: inReal / nFake,
      recall: inFake / nReal,
      density: balls / (k * nFake),
      coverage: covered / nReal,
    };
  }
}

/**
 * Improved precision and recall (Kynkäänniemi et al., 2019) and density and coverage (Naeem et al., 2020) of `fake`
 * against `real`, from the k-NN balls of both sets: three passes of the native GEMM (real against real, fake against
 * fake, real against fake).
 *
 * @param real The real features `[N, d]` (checked, `N > k`).
 * @param fake The generated features `[M, d]` (checked, `M > k`).
 * @param k The neighbour that sets the radii (3 in both papers).
 * @param options The tiles' context and size.
 * @returns The four metrics.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { manifoldMetrics } from "./knn.ts";
 *
 * const real = { data: new Float32Array([0, 1, 2, 3, 4, 5]), n: 6, d: 1 };
 * assert.deepEqual(manifoldMetrics(real, real, 3), { precision: 1, recall: 1, density: 1, coverage: 1 });
 * const far = { data: new Float32Array([100, 101, 102, 103]), n: 4, d: 1 };
 * assert.deepEqual(manifoldMetrics(real, far, 3), { precision: 0, recall: 0, density: 0, coverage: 0 });
 * ```
 */
export function manifoldMetrics(real: Features, fake: Features, k = 3, options: KnnOptions = {}): ManifoldMetrics {
  checkK(k, real.n, "real");
  checkK(k, fake.n, "fake");
  using tiles = new DotTiles(options);
  const [realNorms, fakeNorms] = [rowSquaredNorms(real), rowSquaredNorms(fake)];
  const counts = new ManifoldCounts(
    selfRadii2(tiles, real, realNorms, k),
    selfRadii2(tiles, fake, fakeNorms, k),
    realNorms,
    fakeNorms,
  );
  tiles.forEachCross(real, fake, (t) => counts.addTile(t));
  return counts.result(k);
}
