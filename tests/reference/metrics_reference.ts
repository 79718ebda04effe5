/**
 * The float64 reference of the sample-quality metrics (src/eval/), written for clarity, not speed, and independently
 * of the production code: distances by their definition (no norm trick, no GEMM), the matrix square root by the
 * Denman-Beavers iteration on the non-symmetric product `S1 S2` (not by eigen-decompositions), every k-NN count by
 * brute force, KID's MMD by the formula of torch-fidelity on explicit subsets. Tests compare src/eval/ against it.
 *
 * @example Usage
 * ```ts
 * import { refFid } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * const x = { data: Float64Array.of(0, 1, 2, 3), n: 4, d: 1 }; // variance 5/3
 * const y = { data: Float64Array.of(10, 11, 12, 13), n: 4, d: 1 };
 * assert.ok(Math.abs(refFid(x, y) - 100) < 1e-12); // same spread, means 10 apart
 * ```
 *
 * @module
 */

/** A float64 feature matrix `[n, d]`, row-major. */
export interface RefFeatures {
  data: ArrayLike<number>;
  n: number;
  d: number;
}

/**
 * The mean `[d]` and the unbiased covariance `[d, d]` (divided by `n - 1`), one pass per entry.
 *
 * @example Usage
 * ```ts
 * import { refMeanCov } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * const { mean, cov } = refMeanCov({ data: [1, 0, 3, 4], n: 2, d: 2 });
 * assert.deepEqual([...mean, ...cov], [2, 2, 2, 4, 4, 8]);
 * ```
 */
export function refMeanCov(x: RefFeatures): { mean: Float64Array; cov: Float64Array } {
  const { n, d, data } = x;
  const mean = new Float64Array(d);
  for (let j = 0; j < d; j++) {
    for (let i = 0; i < n; i++) mean[j] += data[i * d + j];
    mean[j] /= n;
  }
  const cov = new Float64Array(d * d);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      let s = 0;
      for (let i = 0; i < n; i++) s += (data[i * d + a] - mean[a]) * (data[i * d + b] - mean[b]);
      cov[a * d + b] = s / (n - 1);
    }
  }
  return { mean, cov };
}

function matmul(a: Float64Array, b: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < d; j++) {
      let s = 0;
      for (let k = 0; k < d; k++) s += a[i * d + k] * b[k * d + j];
      out[i * d + j] = s;
    }
  }
  return out;
}

/** The inverse by Gauss-Jordan elimination with partial pivoting. */
function inverse(m: Float64Array, d: number): Float64Array {
  const a = Float64Array.from(m);
  const inv = new Float64Array(d * d);
  for (let i = 0; i < d; i++) inv[i * d + i] = 1;
  for (let c = 0; c < d; c++) {
    let p = c;
    for (let r = c + 1; r < d; r++) if (Math.abs(a[r * d + c]) > Math.abs(a[p * d + c])) p = r;
    for (let k = 0; k < d; k++) {
      [a[c * d + k], a[p * d + k]] = [a[p * d + k], a[c * d + k]];
      [inv[c * d + k], inv[p * d + k]] = [inv[p * d + k], inv[c * d + k]];
    }
    const piv = a[c * d + c];
    for (let k = 0; k < d; k++) [a[c * d + k], inv[c * d + k]] = [a[c * d + k] / piv, inv[c * d + k] / piv];
    for (let r = 0; r < d; r++) {
      if (r === c) continue;
      const f = a[r * d + c];
      for (let k = 0; k < d; k++) {
        [a[r * d + k], inv[r * d + k]] = [a[r * d + k] - f * a[c * d + k], inv[r * d + k] - f * inv[c * d + k]];
      }
    }
  }
  return inv;
}

/**
 * The principal square root of a matrix with positive real eigenvalues by the Denman-Beavers iteration
 * (`Y <- (Y + Z^-1) / 2`, `Z <- (Z + Y^-1) / 2`, from `Y = A`, `Z = I`), to convergence.
 *
 * @example Usage
 * ```ts
 * import { refSqrtm } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * const r = refSqrtm(Float64Array.of(4, 1, 0, 9), 2); // upper triangular: the root is [[2, 0.2], [0, 3]]
 * assert.ok([2, 0.2, 0, 3].every((v, i) => Math.abs(r[i] - v) < 1e-12));
 * ```
 */
export function refSqrtm(a: Float64Array, d: number): Float64Array {
  let y = Float64Array.from(a);
  let z = new Float64Array(d * d);
  for (let i = 0; i < d; i++) z[i * d + i] = 1;
  for (let it = 0; it < 100; it++) {
    const [yi, zi] = [inverse(y, d), inverse(z, d)];
    const next = y.map((v, i) => (v + zi[i]) / 2);
    z = z.map((v, i) => (v + yi[i]) / 2);
    const change = next.reduce((m, v, i) => Math.max(m, Math.abs(v - y[i])), 0);
    y = next;
    if (change < 1e-15 * Math.max(1, ...y.map(Math.abs))) break;
  }
  return y;
}

/**
 * FID by its definition: `|mu1 - mu2|^2 + tr(S1 + S2 - 2 sqrtm(S1 S2))`, the root by {@link refSqrtm}.
 *
 * @example Usage
 * ```ts
 * import { refFid } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * const x = { data: [0, 0, 1, 0, 0, 1, 1, 1], n: 4, d: 2 };
 * assert.ok(Math.abs(refFid(x, x)) < 1e-12);
 * ```
 */
export function refFid(x: RefFeatures, y: RefFeatures): number {
  const d = x.d;
  const [a, b] = [refMeanCov(x), refMeanCov(y)];
  const root = refSqrtm(matmul(a.cov, b.cov, d), d);
  let fid = 0;
  for (let j = 0; j < d; j++) {
    fid += (a.mean[j] - b.mean[j]) ** 2 + a.cov[j * d + j] + b.cov[j * d + j] - 2 * root[j * d + j];
  }
  return fid;
}

/**
 * The squared Euclidean distance between row `i` of `x` and row `j` of `y`, term by term.
 *
 * @example Usage
 * ```ts
 * import { refDist2 } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(refDist2({ data: [0, 0], n: 1, d: 2 }, 0, { data: [3, 4], n: 1, d: 2 }, 0), 25);
 * ```
 */
export function refDist2(x: RefFeatures, i: number, y: RefFeatures, j: number): number {
  let s = 0;
  for (let c = 0; c < x.d; c++) s += (x.data[i * x.d + c] - y.data[j * y.d + c]) ** 2;
  return s;
}

/**
 * Every point's distance to its k-th nearest other point (by index), by sorting all its distances.
 *
 * @example Usage
 * ```ts
 * import { refRadii } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...refRadii({ data: [0, 1, 3, 7], n: 4, d: 1 }, 2)], [3, 2, 3, 6]);
 * ```
 */
export function refRadii(x: RefFeatures, k: number): Float64Array {
  const out = new Float64Array(x.n);
  for (let i = 0; i < x.n; i++) {
    const others: number[] = [];
    for (let j = 0; j < x.n; j++) if (j !== i) others.push(refDist2(x, i, x, j));
    others.sort((a, b) => a - b);
    out[i] = Math.sqrt(others[k - 1]);
  }
  return out;
}

/**
 * Precision, recall (`<=`, Kynkäänniemi et al.), density and coverage (`<`, Naeem et al.) by brute force over every
 * (real, fake) pair.
 *
 * @example Usage
 * ```ts
 * import { refManifold } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * const real = { data: [0, 1, 2, 3], n: 4, d: 1 };
 * assert.deepEqual(refManifold(real, { data: [10, 11], n: 2, d: 1 }, 1), { precision: 0, recall: 0, density: 0, coverage: 0 });
 * ```
 */
export function refManifold(
  real: RefFeatures,
  fake: RefFeatures,
  k: number,
): { precision: number; recall: number; density: number; coverage: number } {
  const [rr, rf] = [refRadii(real, k), refRadii(fake, k)];
  let [precision, recall, density, coverage] = [0, 0, 0, 0];
  for (let f = 0; f < fake.n; f++) {
    let inside = false;
    for (let r = 0; r < real.n; r++) {
      const dist = Math.sqrt(refDist2(real, r, fake, f));
      if (dist <= rr[r]) inside = true;
      if (dist < rr[r]) density++;
    }
    if (inside) precision++;
  }
  for (let r = 0; r < real.n; r++) {
    let [inside, nearest] = [false, Infinity];
    for (let f = 0; f < fake.n; f++) {
      const dist = Math.sqrt(refDist2(real, r, fake, f));
      if (dist <= rf[f]) inside = true;
      nearest = Math.min(nearest, dist);
    }
    if (inside) recall++;
    if (nearest < rr[r]) coverage++;
  }
  return {
    precision: precision / fake.n,
    recall: recall / real.n,
    density: density / (k * fake.n),
    coverage: coverage / real.n,
  };
}

/**
 * KID's estimate for one pair of subsets, as torch-fidelity writes it: with `k(x, y) = (x.y / d + 1)^3`,
 * `((sum K_XX - tr K_XX + sum K_YY - tr K_YY) / (m - 1) - 2 sum K_XY / m) / m`.
 *
 * @example Usage
 * ```ts
 * import { refMmd } from "./metrics_reference.ts";
 * import assert from "node:assert/strict";
 *
 * // X = {1, 2}, Y = {3, 4}, d = 1: off-diagonal sums 2 * 27 and 2 * 2197, cross sum 64 + 125 + 343 + 729
 * const x = { data: [1, 2, 3, 4], n: 4, d: 1 };
 * assert.equal(refMmd(x, x, [0, 1], [2, 3]), ((54 + 4394) / 1 - (2 * 1261) / 2) / 2);
 * ```
 */
export function refMmd(x: RefFeatures, y: RefFeatures, xs: ArrayLike<number>, ys: ArrayLike<number>): number {
  const m = xs.length;
  const kernel = (a: RefFeatures, i: number, b: RefFeatures, j: number) => {
    let dot = 0;
    for (let c = 0; c < a.d; c++) dot += a.data[i * a.d + c] * b.data[j * b.d + c];
    return (dot / a.d + 1) ** 3;
  };
  let [a, diag, b] = [0, 0, 0];
  for (let p = 0; p < m; p++) {
    for (let q = 0; q < m; q++) {
      a += kernel(x, xs[p], x, xs[q]) + kernel(y, ys[p], y, ys[q]);
      b += kernel(x, xs[p], y, ys[q]);
    }
    diag += kernel(x, xs[p], x, xs[p]) + kernel(y, ys[p], y, ys[p]);
  }
  return ((a - diag) / (m - 1) - (2 * b) / m) / m;
}
