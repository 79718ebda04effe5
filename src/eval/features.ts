/**
 * Feature matrices, the input of every sample-quality metric: `n` rows of `d` float32 features (row-major), e.g. a
 * classifier's penultimate activations for real and for generated images, or its class probabilities. The checks
 * here name the set, the problem and the value, so that a bad input fails before any arithmetic.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFeatures } from "./features.ts";
 *
 * const x = { data: new Float32Array([1, 2, 3, NaN]), n: 2, d: 2 };
 * assert.throws(() => checkFeatures(x, "fake"), /fake\.data\[3\] \(row 1, column 1\) is NaN/);
 * ```
 *
 * @module
 */

/** `n` rows of `d` features, row-major: `data [n, d]`. */
export interface Features {
  /** `[n, d]` row-major: feature `j` of row `i` is `data[i * d + j]`. */
  data: Float32Array<ArrayBuffer>;
  /** Rows (samples). */
  n: number;
  /** Features per row. */
  d: number;
}

/**
 * Checks that `f` is a feature matrix: `n` and `d` positive integers, `data` a Float32Array of exactly `n * d`
 * values, every value finite. The error names the set (`name`), the problem and the value: the first NaN or
 * infinite value is named by its index, row and column.
 *
 * @param f The matrix.
 * @param name Its name in messages, e.g. `real`.
 * @returns `f`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkFeatures } from "./features.ts";
 *
 * assert.throws(() => checkFeatures({ data: new Float32Array(5), n: 2, d: 3 }, "real"), /real has 5 values, expected 2 x 3 = 6/);
 * ```
 */
export function checkFeatures(f: Features, name: string): Features {
  if (typeof f !== "object" || f === null) throw new TypeError(`${name} must be { data, n, d }, got ${f}`);
  if (!(f.data instanceof Float32Array)) {
    throw new TypeError(`${name}.data must be a Float32Array, got ${describe(f.data)}`);
  }
  for (const [key, v] of [["n", f.n], ["d", f.d]] as const) {
    if (!Number.isInteger(v) || v < 1) throw new RangeError(`${name}.${key} must be a positive integer, got ${v}`);
  }
  if (f.data.length !== f.n * f.d) {
    throw new RangeError(`${name} has ${f.data.length} values, expected ${f.n} x ${f.d} = ${f.n * f.d}`);
  }
  const bad = firstNonFinite(f.data);
  if (bad >= 0) {
    const row = Math.floor(bad / f.d);
    throw new RangeError(
      `${name}.data[${bad}] (row ${row}, column ${bad - row * f.d}) is ${f.data[bad]}: features must be finite`,
    );
  }
  return f;
}

function describe(v: unknown): string {
  if (ArrayBuffer.isView(v)) return `a ${v.constructor.name}`;
  if (Array.isArray(v)) return "an Array";
  return v === null ? "null" : typeof v;
}

/** The index of the first NaN or infinite value, or -1. */
function firstNonFinite(x: Float32Array): number {
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v - v !== 0) return i; // NaN - NaN and Inf - Inf are NaN
  }
  return -1;
}

/**
 * Squared Euclidean norm of every row, in float64: `out[i] = sum_j data[i, j]^2`.
 *
 * @param f The matrix.
 * @returns `[n]` squared norms.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rowSquaredNorms } from "./features.ts";
 *
 * assert.deepEqual([...rowSquaredNorms({ data: new Float32Array([3, 4, 1, 0]), n: 2, d: 2 })], [25, 1]);
 * ```
 */
export function rowSquaredNorms(f: Features): Float64Array {
  const out = new Float64Array(f.n); // [n]
  for (let i = 0; i < f.n; i++) {
    let s = 0;
    for (let j = i * f.d, end = j + f.d; j < end; j++) s += f.data[j] * f.data[j];
    out[i] = s;
  }
  return out;
}
