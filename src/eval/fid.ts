/**
 * The Fréchet distance between the Gaussians fitted to two feature sets (FID when the features are Inception's; here
 * any classifier's): `|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^{1/2})`, with unbiased covariances in float64 as
 * pytorch-fid and torch-fidelity compute them. The trace of the matrix square root goes through two eigen-
 * decompositions of symmetric matrices (ml-matrix): `sqrt(S1) = V diag(sqrt(l)) V^T`, then `M = sqrt(S1) S2 sqrt(S1)`
 * (symmetric, positive semi-definite, with the eigenvalues of `S1 S2`) and `tr sqrt(S1 S2) = sum sqrt(max(eig(M), 0))`,
 * which holds for singular covariances too (a collapsed set, or fewer samples than features).
 *
 * This module imports the npm package `ml-matrix`; `computeMetrics` loads it on first use only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frechetDistance, gaussianStats } from "./fid.ts";
 *
 * const a = gaussianStats({ data: new Float32Array([0, 0, 2, 2]), n: 2, d: 2 }); // mean [1, 1], covariance [[2, 2], [2, 2]]
 * const b = gaussianStats({ data: new Float32Array([1, 1, 3, 3]), n: 2, d: 2 }); // the same shifted by [1, 1]
 * assert.ok(Math.abs(frechetDistance(a, b) - 2) < 1e-6); // |mu1 - mu2|^2; a zero eigenvalue costs ~sqrt(eps)
 * ```
 *
 * @module
 */

// deno-lint-ignore no-import-prefix -- pinned here like fast-png in src/io/png.ts
import { EigenvalueDecomposition, Matrix } from "npm:ml-matrix@6.15.1";
import type { Features } from "./features.ts";
import type { FidRequest } from "./metrics.ts";

/** The Gaussian fitted to a feature set. */
export interface GaussianStats {
  /** Features per sample. */
  d: number;
  /** Samples it was fitted to. */
  n: number;
  /** `[d]` the mean. */
  mean: Float64Array;
  /** `[d, d]` row-major, the unbiased covariance (divided by `n - 1`). */
  cov: Float64Array;
}

/**
 * The mean and the unbiased covariance of `f`, in float64 (two passes: the mean, then the centred products, four rows
 * at a time over the upper triangle). Needs at least 2 rows.
 *
 * @param f The features `[n, d]` (checked by the caller).
 * @returns Its Gaussian.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { gaussianStats } from "./fid.ts";
 *
 * const s = gaussianStats({ data: new Float32Array([1, 0, 3, 4]), n: 2, d: 2 });
 * assert.deepEqual([...s.mean], [2, 2]);
 * assert.deepEqual([...s.cov], [2, 4, 4, 8]);
 * ```
 */
export function gaussianStats(f: Features): GaussianStats {
  const { n, d, data } = f;
  if (n < 2) throw new RangeError(`a covariance needs at least 2 samples, got n = ${n}`);
  const mean = new Float64Array(d); // [d]
  for (let i = 0; i < n; i++) for (let j = 0; j < d; j++) mean[j] += data[i * d + j];
  for (let j = 0; j < d; j++) mean[j] /= n;
  const cov = new Float64Array(d * d); // [d, d], the upper triangle first
  const rows = [0, 1, 2, 3].map(() => new Float64Array(d)); // 4 centred rows [d] each
  for (let i = 0; i < n; i += 4) {
    const count = Math.min(4, n - i);
    for (let r = 0; r < 4; r++) {
      for (let j = 0; j < d; j++) rows[r][j] = r < count ? data[(i + r) * d + j] - mean[j] : 0;
    }
    addOuterUpper(cov, rows[0], rows[1], rows[2], rows[3], d);
  }
  for (let a = 0; a < d; a++) {
    for (let b = a; b < d; b++) {
      const v = cov[a * d + b] / (n - 1);
      cov[a * d + b] = v;
      cov[b * d + a] = v;
    }
  }
  return { d, n, mean, cov };
}

/** `cov[a, b] += sum_r x_r[a] x_r[b]` for `b >= a`, over four rows at once. */
function addOuterUpper(
  cov: Float64Array,
  x0: Float64Array,
  x1: Float64Array,
  x2: Float64Array,
  x3: Float64Array,
  d: number,
): void {
  for (let a = 0; a < d; a++) {
    const [u0, u1, u2, u3] = [x0[a], x1[a], x2[a], x3[a]];
    const row = a * d;
    for (let b = a; b < d; b++) cov[row + b] += u0 * x0[b] + u1 * x1[b] + u2 * x2[b] + u3 * x3[b];
  }
}

/** A symmetric `[d, d]` Float64Array as an ml-matrix Matrix. */
function toMatrix(x: Float64Array, d: number): Matrix {
  return Matrix.from1DArray(d, d, x);
}

/** `(m + m^T) / 2`: removes the rounding asymmetry of a product that is symmetric in exact arithmetic. */
function symmetrize(m: Matrix): Matrix {
  return m.add(m.transpose()).mul(0.5);
}

/** The symmetric square root of a symmetric PSD matrix: `V diag(sqrt(max(l, 0))) V^T`. */
function symmetricSqrt(m: Matrix): Matrix {
  const e = new EigenvalueDecomposition(m, { assumeSymmetric: true });
  const roots = e.realEigenvalues.map((l) => Math.sqrt(Math.max(l, 0)));
  const v = e.eigenvectorMatrix;
  return v.clone().mulRowVector(roots).mmul(v.transpose());
}

/**
 * `tr (S1 S2)^{1/2}` for symmetric positive semi-definite `S1`, `S2` (`[d, d]` row-major): the sum of the square
 * roots of the eigenvalues of `sqrt(S1) S2 sqrt(S1)`, negative rounding noise clamped to 0.
 *
 * @param s1 `[d, d]`.
 * @param s2 `[d, d]`.
 * @param d The side.
 * @returns The trace.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { traceSqrtProduct } from "./fid.ts";
 *
 * // diag(4, 9) diag(1, 4) = diag(4, 36): the root's trace is 2 + 6
 * assert.ok(Math.abs(traceSqrtProduct(Float64Array.of(4, 0, 0, 9), Float64Array.of(1, 0, 0, 4), 2) - 8) < 1e-12);
 * ```
 */
export function traceSqrtProduct(s1: Float64Array, s2: Float64Array, d: number): number {
  return traceSqrtWithRoot(symmetricSqrt(toMatrix(s1, d)), s2, d);
}

/** `tr (S1 S2)^{1/2}` from `sqrt(S1)` (as a Matrix) and `S2`. */
function traceSqrtWithRoot(root1: Matrix, s2: Float64Array, d: number): number {
  const m = symmetrize(root1.mmul(toMatrix(s2, d)).mmul(root1));
  const eig = new EigenvalueDecomposition(m, { assumeSymmetric: true }).realEigenvalues;
  return eig.reduce((sum, l) => sum + Math.sqrt(Math.max(l, 0)), 0);
}

/** A Gaussian with the symmetric square root of its covariance: one side of many Fréchet distances. */
export interface PreparedGaussian extends GaussianStats {
  /** `[d, d]` row-major `cov^{1/2}`. */
  root: Float64Array;
}

/**
 * Fits the Gaussian of `f` and takes its covariance's square root once, for {@link frechetDistanceTo}.
 *
 * @param f The features `[n, d]`, `n >= 2`.
 * @returns The Gaussian and its root.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { prepareGaussian } from "./fid.ts";
 *
 * const p = prepareGaussian({ data: new Float32Array([0, 0, 2, 4]), n: 2, d: 2 }); // cov [[2, 4], [4, 8]]
 * assert.ok(Math.abs(p.root[0] ** 2 + p.root[1] ** 2 - 2) < 1e-12); // (root root)[0, 0] = cov[0, 0]
 * ```
 */
export function prepareGaussian(f: Features): PreparedGaussian {
  const g = gaussianStats(f);
  return { ...g, root: Float64Array.from(symmetricSqrt(toMatrix(g.cov, g.d)).to1DArray()) };
}

/**
 * {@link frechetDistance} from a prepared Gaussian: the same arithmetic, with `sqrt(S1)` taken from `a.root`.
 *
 * @param a The prepared side (e.g. the real features).
 * @param b The other Gaussian.
 * @returns The distance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frechetDistance, frechetDistanceTo, gaussianStats, prepareGaussian } from "./fid.ts";
 *
 * const x = { data: Float32Array.from({ length: 60 }, (_, i) => Math.sin(i * 1.7)), n: 20, d: 3 };
 * const y = { ...x, data: x.data.map((v, i) => v * 2 + (i % 3)) };
 * const want = frechetDistance(gaussianStats(x), gaussianStats(y));
 * assert.ok(Math.abs(frechetDistanceTo(prepareGaussian(x), gaussianStats(y)) - want) < 1e-9 * want);
 * ```
 */
export function frechetDistanceTo(a: PreparedGaussian, b: GaussianStats): number {
  if (a.d !== b.d) throw new RangeError(`Fréchet distance: the Gaussians have ${a.d} and ${b.d} features`);
  return fromTraces(a, b, traceSqrtWithRoot(toMatrix(a.root, a.d), b.cov, a.d));
}

/** `|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^{1/2}` from the last term. */
function fromTraces(a: GaussianStats, b: GaussianStats, traceSqrt: number): number {
  const d = a.d;
  let meanTerm = 0;
  let traces = 0;
  for (let j = 0; j < d; j++) {
    meanTerm += (a.mean[j] - b.mean[j]) ** 2;
    traces += a.cov[j * d + j] + b.cov[j * d + j];
  }
  return meanTerm + traces - 2 * traceSqrt;
}

/**
 * The Fréchet distance between two Gaussians: `|mu1 - mu2|^2 + tr S1 + tr S2 - 2 tr (S1 S2)^{1/2}`. Symmetric in
 * its arguments up to rounding; not clamped, so two fits of one set give a value within rounding of 0 (possibly
 * a tiny negative one), as pytorch-fid's does.
 *
 * @param a The first Gaussian.
 * @param b The second (of the same `d`).
 * @returns The distance (squared units of the features).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { frechetDistance } from "./fid.ts";
 *
 * const g = (mu: number, v: number) => ({ d: 1, n: 10, mean: Float64Array.of(mu), cov: Float64Array.of(v) });
 * // 1-d: (mu1 - mu2)^2 + (s1 - s2)^2 with s the standard deviations
 * assert.ok(Math.abs(frechetDistance(g(0, 4), g(3, 1)) - (9 + 1)) < 1e-12);
 * ```
 */
export function frechetDistance(a: GaussianStats, b: GaussianStats): number {
  if (a.d !== b.d) throw new RangeError(`Fréchet distance: the Gaussians have ${a.d} and ${b.d} features`);
  return fromTraces(a, b, traceSqrtProduct(a.cov, b.cov, a.d));
}

/**
 * Answers one request of the FID worker (see `FidRequest` in metrics.ts): `prepare` fits and roots the real
 * Gaussian; `fid` gives the distance of a fake set from a prepared real one. The worker and the in-thread path both
 * call this, so their numbers are the same to the last bit.
 *
 * @param request The request.
 * @returns The prepared Gaussian, or the distance.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { answerFidRequest, type PreparedGaussian } from "./fid.ts";
 *
 * const x = { data: new Float32Array([0, 1, 2, 3]), n: 4, d: 1 };
 * const real = answerFidRequest({ op: "prepare", real: x }) as PreparedGaussian;
 * assert.equal(answerFidRequest({ op: "fid", real, fake: { ...x, data: x.data.map((v) => v + 10) } }), 100);
 * ```
 */
export function answerFidRequest(request: FidRequest): PreparedGaussian | number {
  return request.op === "prepare"
    ? prepareGaussian(request.real)
    : frechetDistanceTo(request.real, gaussianStats(request.fake));
}
