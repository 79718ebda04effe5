/**
 * Downsampling of long series in one pass, for the report's charts: rows go into buckets of consecutive rows, each
 * bucket becomes one point (the mean of its x and of each field), and the bucket size doubles (adjacent buckets
 * merged in pairs) whenever the points would pass the limit. The memory is fixed by the limit, not by the rows, so a
 * run of millions of steps is read with a few kilobytes per field.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Downsampler } from "./series.ts";
 *
 * const s = new Downsampler(["loss"], 4);
 * for (let i = 0; i < 10; i++) s.add(i, [i % 2 === 0 ? 1 : 3]);
 * const r = s.result();
 * assert.equal(r.rows, 10);
 * assert.equal(r.rowsPerPoint, 4); // 10 rows into at most 4 points: buckets of 4, 4 and 2 rows
 * assert.deepEqual(r.x, [1.5, 5.5, 8.5]);
 * assert.deepEqual(r.values.loss, [2, 2, 2]);
 * ```
 *
 * @module
 */

/** What {@linkcode Downsampler.result} returns. */
export interface DownsampledSeries {
  /** The mean x of each point's rows, ascending when the rows came in ascending x. */
  x: number[];
  /** Per field, the mean of each point's finite values (null where the bucket had none). */
  values: Record<string, (number | null)[]>;
  /** Rows per point (a power of two; the last point may have fewer). */
  rowsPerPoint: number;
  /** Rows added. */
  rows: number;
}

/**
 * Means over buckets of consecutive rows, at most `maxPoints` of them (see the module docs). A value that is not a
 * finite number (null, NaN, a string) is left out of its bucket's mean.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Downsampler } from "./series.ts";
 *
 * const s = new Downsampler(["a", "b"], 2000);
 * for (let step = 0; step < 47_000; step++) s.add(step, [step, step % 10 === 0 ? null : 1]);
 * const r = s.result();
 * assert.ok(r.x.length <= 2000 && r.x.length > 1000);
 * assert.equal(r.rowsPerPoint, 32);
 * assert.equal(r.values.a[0], 15.5); // the mean of steps 0..31
 * assert.equal(r.values.b[0], 1); // nulls left out
 * ```
 */
export class Downsampler {
  readonly #fields: readonly string[];
  readonly #max: number;
  #size = 1; // rows per bucket
  #rows = 0;
  #xSum: Float64Array; // [max]
  #n: Float64Array; // [max] rows per bucket
  #sums: Float64Array[]; // [field][max]
  #counts: Float64Array[]; // [field][max] finite values per bucket

  /**
   * Makes an empty downsampler.
   *
   * @param fields The names of the values of each row, in the order {@linkcode Downsampler.add} takes them.
   * @param maxPoints The most points kept: an even integer of at least 2 (default 2,000).
   */
  constructor(fields: readonly string[], maxPoints = 2000) {
    if (!Number.isSafeInteger(maxPoints) || maxPoints < 2 || maxPoints % 2 !== 0) {
      throw new RangeError(`maxPoints must be an even integer of at least 2, got ${maxPoints}`);
    }
    this.#fields = [...fields];
    this.#max = maxPoints;
    this.#xSum = new Float64Array(maxPoints);
    this.#n = new Float64Array(maxPoints);
    this.#sums = this.#fields.map(() => new Float64Array(maxPoints));
    this.#counts = this.#fields.map(() => new Float64Array(maxPoints));
  }

  /**
   * Adds one row.
   *
   * @param x The row's x (e.g. the step).
   * @param values One value per field, in the constructor's order.
   */
  add(x: number, values: readonly unknown[]): void {
    let b = Math.floor(this.#rows / this.#size);
    if (b === this.#max) {
      this.#halve();
      b = Math.floor(this.#rows / this.#size);
    }
    this.#xSum[b] += x;
    this.#n[b]++;
    for (let f = 0; f < this.#fields.length; f++) {
      const v = values[f];
      if (typeof v === "number" && Number.isFinite(v)) {
        this.#sums[f][b] += v;
        this.#counts[f][b]++;
      }
    }
    this.#rows++;
  }

  /** Merges buckets 2k and 2k+1 into k, doubling the bucket size. */
  #halve(): void {
    const half = this.#max / 2;
    for (const arr of [this.#xSum, this.#n, ...this.#sums, ...this.#counts]) {
      for (let k = 0; k < half; k++) arr[k] = arr[2 * k] + arr[2 * k + 1];
      arr.fill(0, half);
    }
    this.#size *= 2;
  }

  /**
   * The points so far.
   *
   * @returns x, the means per field, the rows per point and the rows.
   */
  result(): DownsampledSeries {
    const points = Math.ceil(this.#rows / this.#size);
    const x: number[] = [];
    const values: Record<string, (number | null)[]> = {};
    for (const f of this.#fields) values[f] = [];
    for (let b = 0; b < points; b++) {
      x.push(this.#xSum[b] / this.#n[b]);
      this.#fields.forEach((f, i) => {
        const c = this.#counts[i][b];
        values[f].push(c > 0 ? this.#sums[i][b] / c : null);
      });
    }
    return { x, values, rowsPerPoint: this.#size, rows: this.#rows };
  }
}
