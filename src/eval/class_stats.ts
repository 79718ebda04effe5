/**
 * What a classifier says about generated samples: how the predicted classes spread (the class histogram, the classes
 * covered, its KL divergence from the real histogram) and the classifier score, the Inception Score's analogue,
 * `exp(E_x KL(p(y|x) || p(y)))` with `p(y)` the mean prediction over the generated samples (one split). A sample's
 * class is the argmax of its probabilities (the first on ties).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classStats } from "./class_stats.ts";
 *
 * // 4 fakes, all predicted as class 0 with certainty; real labels spread over 2 classes
 * const fake = { data: new Float32Array([1, 0, 1, 0, 1, 0, 1, 0]), n: 4, d: 2 };
 * const s = classStats(fake, [0, 1, 0, 1]);
 * assert.equal(s.covered, 1); // mode collapse: one class
 * assert.equal(s.score, 1); // every sample says the same thing
 * ```
 *
 * @module
 */

import { checkFeatures, type Features } from "./features.ts";

/** The class statistics of generated samples. */
export interface ClassStats {
  /** Classes (the columns of the probabilities). */
  classes: number;
  /** `[classes]` the share of generated samples predicted as each class. */
  histogram: Float64Array;
  /** `[classes]` the share of real samples of each class (their labels, or their predicted classes). */
  realHistogram: Float64Array;
  /** Classes holding at least `threshold` (default 2%) of the generated samples. */
  covered: number;
  /** Classes holding at least `threshold` of the real samples. */
  realCovered: number;
  /** `KL(histogram || realHistogram) = sum_c p_c ln((p_c + eps) / (q_c + eps))` over `p_c > 0` (nats). */
  kl: number;
  /** The classifier score `exp(E_x KL(p(y|x) || p(y)))`: 1 when every sample has the same prediction, up to `classes`. */
  score: number;
}

/** Options of {@link classStats}. */
export interface ClassStatsOptions {
  /** The share of the samples a class must hold to count as covered (default 0.02). */
  threshold?: number;
  /** Added to both histograms inside the KL's logarithm, so a class the real set lacks costs a finite amount (default 1e-6). */
  epsilon?: number;
}

/** How far a row of probabilities may sum from 1 (float32 softmax rounding is ~1e-6). */
const SUM_TOLERANCE = 1e-3;

/** Checks that every row of `p` is a probability vector; names the first row that is not. */
function checkProbabilities(p: Features, name: string): void {
  checkFeatures(p, name);
  for (let i = 0; i < p.n; i++) {
    let sum = 0;
    for (let c = 0; c < p.d; c++) {
      const v = p.data[i * p.d + c];
      if (v < 0) throw new RangeError(`${name}: probability [${i}, ${c}] is ${v}, below 0`);
      sum += v;
    }
    if (Math.abs(sum - 1) > SUM_TOLERANCE) {
      throw new RangeError(`${name}: row ${i} sums to ${sum}, not 1 (within ${SUM_TOLERANCE})`);
    }
  }
}

/** The share of samples predicted as each class (argmax of each row). */
function predictedHistogram(p: Features): Float64Array {
  const h = new Float64Array(p.d); // [classes]
  for (let i = 0; i < p.n; i++) {
    let best = 0;
    for (let c = 1; c < p.d; c++) if (p.data[i * p.d + c] > p.data[i * p.d + best]) best = c;
    h[best]++;
  }
  return h.map((count) => count / p.n);
}

/** The share of each label; every label an integer in `0 .. classes - 1`. */
function labelHistogram(labels: ArrayLike<number>, classes: number): Float64Array {
  if (labels.length === 0) throw new RangeError("real labels: none given");
  const h = new Float64Array(classes); // [classes]
  for (let i = 0; i < labels.length; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= classes) {
      throw new RangeError(`real label [${i}] is ${y}, expected an integer in 0..${classes - 1}`);
    }
    h[y]++;
  }
  return h.map((count) => count / labels.length);
}

/** `exp(mean_i sum_c p_ic ln(p_ic / p_c))`, `p_c` the mean of column `c`; terms with `p_ic = 0` are 0. */
function classifierScore(p: Features): number {
  const marginal = new Float64Array(p.d); // [classes]
  for (let i = 0; i < p.n; i++) for (let c = 0; c < p.d; c++) marginal[c] += p.data[i * p.d + c];
  for (let c = 0; c < p.d; c++) marginal[c] /= p.n;
  let kl = 0;
  for (let i = 0; i < p.n; i++) {
    for (let c = 0; c < p.d; c++) {
      const v = p.data[i * p.d + c];
      if (v > 0) kl += v * Math.log(v / marginal[c]);
    }
  }
  return Math.exp(kl / p.n);
}

/**
 * Class statistics of generated samples from a classifier's probabilities.
 *
 * @param fakeProbs `[M, classes]` the classifier's probabilities for the generated samples (rows sum to 1).
 * @param real The real samples' classes: their labels (integers `0 .. classes - 1`), or the classifier's
 *   probabilities for them `[N, classes]` (their argmax is taken).
 * @param options The coverage threshold and the KL's epsilon.
 * @returns The histograms, the classes covered, the KL divergence and the classifier score.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classStats } from "./class_stats.ts";
 *
 * // 10 classes, each sample certain of its own class, an even spread: the score is the number of classes
 * const data = new Float32Array(100 * 10).map((_, i) => (i % 10 === Math.floor(i / 10) % 10 ? 1 : 0));
 * const s = classStats({ data, n: 100, d: 10 }, { data, n: 100, d: 10 });
 * assert.ok(Math.abs(s.score - 10) < 1e-9);
 * assert.equal(s.covered, 10);
 * assert.equal(s.kl, 0);
 * ```
 */
export function classStats(
  fakeProbs: Features,
  real: ArrayLike<number> | Features,
  options: ClassStatsOptions = {},
): ClassStats {
  const threshold = options.threshold ?? 0.02;
  const eps = options.epsilon ?? 1e-6;
  if (!(threshold > 0 && threshold <= 1)) throw new RangeError(`threshold must be in (0, 1], got ${threshold}`);
  if (!(eps > 0 && eps < 1)) throw new RangeError(`epsilon must be in (0, 1), got ${eps}`);
  checkProbabilities(fakeProbs, "fake probabilities");
  const classes = fakeProbs.d;
  let realHistogram: Float64Array;
  if ("data" in real && real.data instanceof Float32Array) {
    checkProbabilities(real as Features, "real probabilities");
    if ((real as Features).d !== classes) {
      throw new RangeError(`real probabilities have ${(real as Features).d} classes, fake ones ${classes}`);
    }
    realHistogram = predictedHistogram(real as Features);
  } else {
    realHistogram = labelHistogram(real as ArrayLike<number>, classes);
  }
  const histogram = predictedHistogram(fakeProbs);
  let kl = 0;
  for (let c = 0; c < classes; c++) {
    if (histogram[c] > 0) kl += histogram[c] * Math.log((histogram[c] + eps) / (realHistogram[c] + eps));
  }
  const coveredIn = (h: Float64Array) => h.reduce((n, share) => n + (share >= threshold ? 1 : 0), 0);
  return {
    classes,
    histogram,
    realHistogram,
    covered: coveredIn(histogram),
    realCovered: coveredIn(realHistogram),
    kl,
    score: classifierScore(fakeProbs),
  };
}

/** How often a classifier names the label a conditional generator was asked for (see {@link labelAccuracy}). */
export interface LabelAccuracy {
  /** The mean of `per_label` over the labels that have samples. */
  mean: number;
  /** `[labels]` the share of each label's samples whose predicted class (argmax) is that label (null: no samples). */
  per_label: (number | null)[];
  /** `[labels]` the samples of each label. */
  counts: number[];
}

/**
 * Per-label accuracy of a conditional generator: for each label `k`, the share of the samples generated with label
 * `k` that the classifier predicts as class `k` (the argmax of its probabilities, the first on ties), and their mean
 * over the labels with samples. A label the classifier has no class for is never right.
 *
 * @param probs `[n, classes]` the classifier's probabilities for the samples (rows sum to 1).
 * @param labels `[n]` the label each sample was generated with (integers in `0 .. labelCount - 1`).
 * @param labelCount The generator's labels (its n_classes).
 * @returns The accuracy per label and its mean.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { labelAccuracy } from "./class_stats.ts";
 * // 4 samples of labels 0, 1, 0, 1; the classifier says 0, 1, 1, 1
 * const probs = { data: new Float32Array([1, 0, 0, 1, 0, 1, 0, 1]), n: 4, d: 2 };
 * const a = labelAccuracy(probs, [0, 1, 0, 1], 2);
 * assert.deepEqual(a.per_label, [0.5, 1]);
 * assert.equal(a.mean, 0.75);
 * ```
 */
export function labelAccuracy(probs: Features, labels: ArrayLike<number>, labelCount: number): LabelAccuracy {
  checkProbabilities(probs, "probabilities");
  if (labels.length !== probs.n) throw new RangeError(`labels: ${labels.length} for ${probs.n} samples`);
  if (!Number.isSafeInteger(labelCount) || labelCount < 1) {
    throw new RangeError(`labelCount must be a positive integer, got ${labelCount}`);
  }
  const right = new Array<number>(labelCount).fill(0), counts = new Array<number>(labelCount).fill(0);
  for (let i = 0; i < probs.n; i++) {
    const y = labels[i];
    if (!Number.isInteger(y) || y < 0 || y >= labelCount) {
      throw new RangeError(`label [${i}] is ${y}, expected an integer in 0..${labelCount - 1}`);
    }
    let best = 0;
    for (let c = 1; c < probs.d; c++) if (probs.data[i * probs.d + c] > probs.data[i * probs.d + best]) best = c;
    counts[y]++;
    if (best === y) right[y]++;
  }
  const per_label = counts.map((n, k) => (n === 0 ? null : right[k] / n));
  const seen = per_label.filter((a): a is number => a !== null);
  return { mean: seen.reduce((s, a) => s + a, 0) / Math.max(1, seen.length), per_label, counts };
}
