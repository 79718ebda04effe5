/**
 * Sample quality in one call: `evaluate(generatorOrSamples, dataset)` draws N samples (default 10,000, from a fixed
 * noise seed), takes their features with the dataset's classifier (trained by this engine and cached), and scores
 * them against the real images with {@link computeMetrics} and {@link classStats}. Two reference rows are computed by
 * the same code beside every result: two disjoint halves of the real images (about the best possible at that size)
 * and uniform noise images (about the worst).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluate } from "./evaluate.ts";
 * import { trainClassifier } from "./classifier.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * const digits = await loadEmbeddedMnist();
 * using classifier = trainClassifier(ctx, digits, { epochs: 2, limit: 2000 });
 * const noise = new Float32Array(400 * 784).map((_, i) => Math.sin(i * 12.9898) % 1);
 * const r = await evaluate(noise, digits, { context: ctx, classifier, n: 400 });
 * assert.ok(r.fid > r.reference!.real.fid); // noise is far from the digits
 * ```
 *
 * @module
 */

import { Context, type NativeMlp, nativeNormal, nativePermutation } from "../native/handles.ts";
import type { Dataset } from "../data/dataset.ts";
import { type Classifier, FEATURE_DIM, loadOrTrainClassifier } from "./classifier.ts";
import { checkMemory, memoryLimit } from "../train/memory.ts";
import { DEFAULT_BLOCK_SIZE, tileBytes } from "./pairwise.ts";
import { cachedReferenceRows } from "./reference_cache.ts";
import { type Metrics, type MetricsOptions, RealSide } from "./metrics.ts";
import { classStats, type LabelAccuracy, labelAccuracy } from "./class_stats.ts";
import type { Features } from "./features.ts";

/** Options of {@link evaluate}. */
export interface EvaluateOptions {
  /** Generated samples to score (default 10,000; with given samples, their count). */
  n?: number;
  /** Seed of the generator's noise and of the real subset (default 0). */
  seed?: number;
  /** The context the classifier and the metrics run in (default: a CPU context opened and closed here). */
  context?: Context;
  /** The classifier (default: the dataset's, from the cache or trained now; see `loadOrTrainClassifier`). */
  classifier?: Classifier;
  /** The classifier cache folder (when `classifier` is not given). */
  cacheDir?: string;
  /** Told (one line) when the dataset's classifier is not in the cache and is trained now (about half a minute). */
  onClassifierTraining?: (message: string) => void;
  /** Compute the reference rows (default true). */
  reference?: boolean;
  /**
   * The most memory the evaluation may plan to use, in bytes (default: 80% of the machine's memory, see
   * `memoryLimit`); an `n` estimated above it is refused before anything is allocated.
   */
  memoryLimit?: number;
}

/** The scores of one set of samples. */
export interface QualityRow extends Metrics {
  /** Classes holding at least 2% of the samples (null without labels). */
  classes_covered: number | null;
  /** KL(predicted class histogram || real class histogram), nats (null without labels). */
  class_kl: number | null;
  /** The classifier score, exp(E KL(p(y|x) || p(y))) (null without labels). */
  classifier_score: number | null;
  /** `[classes]` the share of the samples predicted as each class (null without labels). */
  histogram: number[] | null;
  /** Samples scored. */
  n: number;
}

/** What {@link evaluate} reports. */
export interface EvaluateResult extends QualityRow {
  /** The features the metrics ran on: the classifier's (`classifier`) or, without labels, the pixels (`pixels`). */
  features: "classifier" | "pixels";
  /** The classifier's held-out accuracy (null without labels). */
  classifier_accuracy: number | null;
  /** `[classes]` the share of each class among the real images scored against (null without labels). */
  real_histogram: number[] | null;
  /** Metrics that could not run, with why (e.g. the class metrics of a dataset without labels). */
  skipped: string[];
  /**
   * A conditional generator's (cgan's) per-label accuracy: how often the classifier predicts the label each sample was
   * generated with (equal counts per label: sample `i` has label `i % n_classes`); null for a generator without labels
   * or a dataset without a classifier.
   */
  label_accuracy: LabelAccuracy | null;
  /** The reference rows: two halves of the real images, and uniform noise. */
  reference?: { real: QualityRow; noise: QualityRow };
}

/** Images `idx` of `ds` in [-1, 1]: `[idx.length, features]`. */
function realImages(ds: Dataset, idx: Uint32Array): Float32Array<ArrayBuffer> {
  const f = ds.channels * ds.height * ds.width, out = new Float32Array(idx.length * f);
  idx.forEach((i, r) => {
    for (let j = 0; j < f; j++) out[r * f + j] = ds.pixels[i * f + j] / 127.5 - 1;
  });
  return out;
}

/**
 * The labels of the samples of a conditional generator in an evaluation: sample `i` has label `i % classes` (equal
 * counts per label when `n` is a multiple of `classes`, else they differ by one).
 *
 * @param n Samples.
 * @param classes The generator's classes.
 * @returns `[n]` labels.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluationLabels } from "./evaluate.ts";
 * assert.deepEqual([...evaluationLabels(5, 2)], [0, 1, 0, 1, 0]);
 * ```
 */
export function evaluationLabels(n: number, classes: number): Uint32Array<ArrayBuffer> {
  return Uint32Array.from({ length: n }, (_, i) => i % classes);
}

/**
 * `n` samples of `g` in eval mode, 1,000 at a time, from the sample noise of `seed` (stream = chunk); a conditional
 * generator's with the labels of {@link evaluationLabels}.
 */
function generate(g: NativeMlp, n: number, seed: number): Float32Array<ArrayBuffer> {
  const { input, output } = g.info(), out = new Float32Array(n * output);
  const labels = g.embedding ? evaluationLabels(n, g.embedding.classes) : undefined;
  for (let r = 0, chunk = 0; r < n; r += 1000, chunk++) {
    const rows = Math.min(1000, n - r);
    const z = nativeNormal(seed, chunk, rows * input, "sample");
    out.set(g.forward(z, rows, false, labels?.slice(r, r + rows)), r * output);
  }
  return out;
}

/** Features of images: the classifier's when there is one, else the pixels themselves. */
function featuresOf(images: Float32Array<ArrayBuffer>, f: number, c: Classifier | null): Features {
  const n = images.length / f;
  return c ? { data: c.features(images, n), n, d: FEATURE_DIM } : { data: images, n, d: f };
}

/** The metrics of `fake` against a prepared real side, with the class statistics when there is a classifier. */
async function scoreRow(
  real: RealSide,
  fake: Features,
  realLabels: Uint8Array | null,
  c: Classifier | null,
): Promise<QualityRow> {
  const m = await real.score(fake);
  const none = { classes_covered: null, class_kl: null, classifier_score: null, histogram: null, n: fake.n };
  if (!c || !realLabels) return { ...m, ...none };
  const probs = { data: c.probabilities(fake.data, fake.n), n: fake.n, d: c.classes };
  const s = classStats(probs, realLabels);
  return {
    ...m,
    classes_covered: s.covered,
    class_kl: s.kl,
    classifier_score: s.score,
    histogram: Array.from(s.histogram),
    n: fake.n,
  };
}

/** The metrics options of every row (KID subsets of up to 1,000 samples). */
function metricsOptions(ctx: Context, n: number): MetricsOptions {
  return { context: ctx, kidSubsetSize: Math.min(1000, n) };
}

/**
 * The real side of an evaluation, prepared once and scored against any number of generators or sample sets: the
 * dataset's classifier, the features of the real subset and their part of every metric (see {@link RealSide}), the
 * real class histogram, and the reference rows. {@link evaluate} is one `Evaluator` scoring one source; a training
 * run that evaluates every N steps keeps one for the run, so each evaluation costs the generated side only.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Evaluator } from "./evaluate.ts";
 * import { trainClassifier } from "./classifier.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * const digits = await loadEmbeddedMnist();
 * using classifier = trainClassifier(ctx, digits, { epochs: 2, limit: 2000 });
 * using ev = await Evaluator.create(digits, { context: ctx, classifier, n: 500 });
 * const real = new Float32Array(500 * 784).map((_, i) => digits.pixels[784 * 1000 + i] / 127.5 - 1);
 * const r = await ev.score(real);
 * assert.ok(r.fid < ev.reference!.noise.fid && r.n === 500);
 * ```
 */
export class Evaluator implements Disposable {
  readonly #ds: Dataset;
  readonly #ctx: Context;
  readonly #ownsContext: boolean;
  readonly #classifier: Classifier | null;
  readonly #ownsClassifier: boolean;
  readonly #real: RealSide;
  readonly #labels: Uint8Array | null;
  readonly #n: number;
  readonly #seed: number;
  /** The reference rows (when asked for): two halves of the real images, and uniform noise. */
  readonly reference: { real: QualityRow; noise: QualityRow } | undefined;
  /** The share of each class among the real images scored against (null without labels). */
  readonly realHistogram: number[] | null;

  private constructor(
    ds: Dataset,
    own: { ctx: Context; ownsContext: boolean; classifier: Classifier | null; ownsClassifier: boolean },
    real: { side: RealSide; labels: Uint8Array | null; histogram: number[] | null },
    n: number,
    seed: number,
    reference: { real: QualityRow; noise: QualityRow } | undefined,
  ) {
    [this.#ds, this.#ctx, this.#ownsContext] = [ds, own.ctx, own.ownsContext];
    [this.#classifier, this.#ownsClassifier] = [own.classifier, own.ownsClassifier];
    [this.#real, this.#labels, this.realHistogram] = [real.side, real.labels, real.histogram];
    [this.#n, this.#seed, this.reference] = [n, seed, reference];
  }

  /**
   * Prepares the real side of `dataset`: the classifier (given, or the dataset's from the cache or trained now),
   * `min(n, count)` real images drawn by the seed, and the reference rows unless `reference` is false.
   */
  static async create(dataset: Dataset, options: EvaluateOptions = {}): Promise<Evaluator> {
    const n = options.n ?? 10000, seed = options.seed ?? 0;
    if (!Number.isSafeInteger(n) || n < 4) throw new RangeError(`n must be an integer of at least 4, got ${n}`);
    const limit = options.memoryLimit === undefined
      ? memoryLimit()
      : { bytes: options.memoryLimit, what: "the memoryLimit option" };
    checkMemory(estimateEvalBytes(dataset, n, options.reference ?? true), `evaluating ${n} samples`, limit);
    const ctx = options.context ?? new Context({ backend: "cpu" });
    let c = options.classifier ?? null, ownsClassifier = false;
    let cached: { path: string; sha256: string } | null = null;
    try {
      if (!c && dataset.labels) {
        const onTrain = (r: { epochs: number; limit: number }) =>
          options.onClassifierTraining?.(
            `training the classifier of "${dataset.name}" (${r.epochs} epochs of ${r.limit} images; once, then cached)`,
          );
        const got = await loadOrTrainClassifier(ctx, dataset, { cacheDir: options.cacheDir, onTrain });
        [c, cached, ownsClassifier] = [got.classifier, got, true];
      }
      const f = dataset.channels * dataset.height * dataset.width, count = Math.min(n, dataset.count);
      const idx = nativePermutation(seed, 1, count > 0 ? dataset.count : 1).subarray(0, count);
      const labels = dataset.labels ? Uint8Array.from(idx, (i) => dataset.labels![i]) : null;
      const features = featuresOf(realImages(dataset, idx), f, c);
      const side = await RealSide.prepare(features, metricsOptions(ctx, count));
      const histogram = labels && c ? classHistogram(labels, c.classes) : null;
      const compute = () => referenceRows(dataset, features, side, labels, n, seed, c, ctx);
      // Rows of a cached classifier are cached beside it; a classifier given by the caller has no identity to key on.
      const key = cached && { classifierPath: cached.path, classifierSha256: cached.sha256, n, seed };
      const reference = !(options.reference ?? true)
        ? undefined
        : key
        ? await cachedReferenceRows(key, compute)
        : await compute();
      const own = { ctx, ownsContext: !options.context, classifier: c, ownsClassifier };
      return new Evaluator(dataset, own, { side, labels, histogram }, n, seed, reference);
    } catch (e) {
      if (ownsClassifier) c?.[Symbol.dispose]();
      if (!options.context) ctx.close();
      throw e;
    }
  }

  /** The classifier's held-out accuracy (null without one). */
  get classifierAccuracy(): number | null {
    return this.#classifier?.accuracy ?? null;
  }

  /**
   * Scores a generator (`n` samples in eval mode from the sample noise of the seed) or given samples (`[m, features]`
   * in [-1, 1], at least KID's subset size of them) against the prepared real side. A conditional generator's samples
   * have equal counts per label ({@link evaluationLabels}) and its result has their per-label accuracy; given samples
   * have one when their labels are given too.
   *
   * @param source The generator or the samples.
   * @param labels With given samples: the label each was generated with, and the generator's classes.
   * @returns The scores.
   */
  async score(
    source: NativeMlp | Float32Array<ArrayBuffer>,
    labels?: { labels: ArrayLike<number>; classes: number },
  ): Promise<EvaluateResult> {
    const ds = this.#ds, f = ds.channels * ds.height * ds.width, c = this.#classifier;
    if (!(source instanceof Float32Array) && source.info().output !== f) {
      throw new RangeError(
        `evaluate: the generator makes images of ${source.info().output} values, the dataset's have ${f} ` +
          `(${ds.channels}x${ds.height}x${ds.width})`,
      );
    }
    const samples = source instanceof Float32Array ? source : generate(source, this.#n, this.#seed);
    if (samples.length === 0 || samples.length % f !== 0) {
      throw new RangeError(
        `evaluate: the samples have ${samples.length} values, not a whole number of ${f}-value images`,
      );
    }
    const fake = featuresOf(samples, f, c);
    const row = await scoreRow(this.#real, fake, this.#labels, c);
    const skipped = c ? [] : ["classes_covered, class_kl, classifier_score: the dataset has no labels (no classifier)"];
    const asked = source instanceof Float32Array
      ? labels
      : source.embedding
      ? { labels: evaluationLabels(this.#n, source.embedding.classes), classes: source.embedding.classes }
      : undefined;
    if (asked && asked.labels.length !== fake.n) {
      throw new RangeError(`evaluate: ${asked.labels.length} labels for ${fake.n} samples`);
    }
    let accuracy: LabelAccuracy | null = null;
    if (asked && c) {
      accuracy = labelAccuracy(
        { data: c.probabilities(fake.data, fake.n), n: fake.n, d: c.classes },
        asked.labels,
        asked.classes,
      );
    } else if (asked) {
      skipped.push("label_accuracy: the dataset has no labels (no classifier)");
    }
    const out: EvaluateResult = {
      ...row,
      features: c ? "classifier" : "pixels",
      classifier_accuracy: c?.accuracy ?? null,
      real_histogram: this.realHistogram,
      skipped,
      label_accuracy: accuracy,
    };
    if (this.reference) out.reference = this.reference;
    return out;
  }

  /** Releases the classifier (when this evaluator loaded it) and the context (when it opened it). */
  close(): void {
    this.#real[Symbol.dispose]();
    if (this.#ownsClassifier) this.#classifier?.[Symbol.dispose]();
    if (this.#ownsContext) this.#ctx.close();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** The share of each class among `labels`. */
function classHistogram(labels: Uint8Array, classes: number): number[] {
  const h = new Array<number>(classes).fill(0);
  for (const y of labels) if (y < classes) h[y]++;
  return h.map((v) => v / Math.max(1, labels.length));
}

/**
 * Scores a generator (or its samples, `[n, features]` in [-1, 1]) against `dataset`: one {@link Evaluator}, used
 * once.
 *
 * @param source A generator `NativeMlp` (sampled in eval mode) or the samples themselves.
 * @param dataset The real images (labels give the classifier and the class metrics).
 * @param options N, the seed, the context, the classifier.
 * @returns The metrics, with the reference rows.
 *
 * @example Score 300 real digits (the classifier of the digits is trained on first use and cached)
 * ```ts
 * import assert from "node:assert/strict";
 * import { evaluate } from "./evaluate.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { trainClassifier } from "./classifier.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * const digits = await loadEmbeddedMnist();
 * using classifier = trainClassifier(ctx, digits, { epochs: 2, limit: 2000 }); // a quick one for the example
 * const samples = new Float32Array(300 * 784).map((_, i) => digits.pixels[7 * 784 * 3 + i] / 127.5 - 1);
 * const r = await evaluate(samples, digits, { context: ctx, classifier, reference: false });
 * assert.equal(r.n, 300);
 * assert.ok(r.precision > 0.5);
 * ```
 */
export async function evaluate(
  source: NativeMlp | Float32Array<ArrayBuffer>,
  dataset: Dataset,
  options: EvaluateOptions = {},
): Promise<EvaluateResult> {
  const f = dataset.channels * dataset.height * dataset.width;
  const n = source instanceof Float32Array ? source.length / f : options.n ?? 10000;
  if (source instanceof Float32Array && (source.length === 0 || source.length % f !== 0)) {
    throw new RangeError(
      `evaluate: the samples have ${source.length} values, not a whole number of ${f}-value images`,
    );
  }
  using ev = await Evaluator.create(dataset, { ...options, n });
  return await ev.score(source);
}

/** Two disjoint halves of the real features against each other, and uniform noise against the real features. */
async function referenceRows(
  ds: Dataset,
  real: Features,
  side: RealSide,
  labels: Uint8Array | null,
  n: number,
  seed: number,
  c: Classifier | null,
  ctx: Context,
): Promise<{ real: QualityRow; noise: QualityRow }> {
  const half = Math.floor(real.n / 2), d = real.d;
  const a = { data: real.data.slice(0, half * d), n: half, d };
  const b = { data: real.data.slice(half * d, 2 * half * d), n: half, d };
  using halfSide = await RealSide.prepare(a, metricsOptions(ctx, half));
  const realRow = await scoreRow(halfSide, b, labels?.subarray(0, half) ?? null, c);
  const f = ds.channels * ds.height * ds.width;
  let state = (seed * 2654435761 + 12345) >>> 0;
  const noise = new Float32Array(n * f).map(() =>
    ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 31) - 1
  );
  const noiseRow = await scoreRow(side, featuresOf(noise, f, c), labels, c);
  return { real: realRow, noise: noiseRow };
}

/**
 * The bytes an evaluation of `n` samples plans to hold at its peak: the samples, their features and class
 * probabilities, the real images and features, the noise reference set, the GEMM tiles and the FID worker's copies.
 *
 * @param dataset The real images (their shape and count; labels mean 256 classifier features, else the pixels).
 * @param n Generated samples.
 * @param reference Whether the reference rows are computed too.
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateEvalBytes } from "./evaluate.ts";
 * const digits = { name: "d", count: 10000, height: 28, width: 28, channels: 1, pixels: new Uint8Array(0), labels: new Uint8Array(0) };
 * assert.ok(estimateEvalBytes(digits, 10000, true) < 2 ** 30); // the default run: well under a GiB
 * assert.ok(estimateEvalBytes(digits, 1e9, true) > 2 ** 40); // a billion samples: terabytes
 * ```
 */
export function estimateEvalBytes(dataset: Dataset, n: number, reference: boolean): number {
  const f = dataset.channels * dataset.height * dataset.width, d = dataset.labels ? FEATURE_DIM : f;
  const real = Math.min(n, dataset.count);
  const fake = n * (f + 2 * d + 16); // samples, features (and the worker's copy), probabilities
  const sides = real * (f + 2 * d) + (reference ? n * (f + d) : 0);
  return 4 * (fake + sides) + tileBytes(DEFAULT_BLOCK_SIZE, d) + 64 * 2 ** 20;
}

/**
 * A row as one flat JSON record: the metrics with KID's mean as `kid` and its spread as `kid_std` (the form of the
 * eval rows of metrics.jsonl, run.json's `final_eval` and `deno task eval --json`).
 *
 * @param row A scored row.
 * @returns The record.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { qualityRecord } from "./evaluate.ts";
 * const row = { fid: 1, kid: { mean: 0.5, std: 0.1 }, precision: 1, recall: 1, density: 1, coverage: 1,
 *   classes_covered: 10, class_kl: 0, classifier_score: 9.8, histogram: null, n: 100 };
 * assert.deepEqual(qualityRecord(row).kid, 0.5);
 * assert.deepEqual(qualityRecord(row).kid_std, 0.1);
 * ```
 */
export function qualityRecord(row: QualityRow): QualityRecord {
  return {
    fid: row.fid,
    kid: row.kid.mean,
    kid_std: row.kid.std,
    precision: row.precision,
    recall: row.recall,
    density: row.density,
    coverage: row.coverage,
    classes_covered: row.classes_covered,
    class_kl: row.class_kl,
    classifier_score: row.classifier_score,
    histogram: row.histogram,
    n: row.n,
  };
}

/** {@link QualityRow} as a flat record (see {@link qualityRecord}). */
export interface QualityRecord {
  /** Fréchet distance of the feature Gaussians. */
  fid: number;
  /** KID: the mean of the subsets' unbiased MMD^2. */
  kid: number;
  /** KID's standard deviation over the subsets. */
  kid_std: number;
  /** Improved precision. */
  precision: number;
  /** Improved recall. */
  recall: number;
  /** Density. */
  density: number;
  /** Coverage. */
  coverage: number;
  /** Classes holding at least 2% of the samples (null without labels). */
  classes_covered: number | null;
  /** KL of the predicted class histogram to the real one, nats (null without labels). */
  class_kl: number | null;
  /** The classifier score (null without labels). */
  classifier_score: number | null;
  /** `[classes]` the share of samples predicted as each class (null without labels). */
  histogram: number[] | null;
  /** Samples scored. */
  n: number;
}

/**
 * A whole result as one flat record: {@link qualityRecord} of the generator's row at the top level, with the
 * classifier's accuracy, the real histogram, what was skipped, and the reference rows (flat too) under `reference`.
 *
 * @param r An evaluation's result.
 * @returns The record (JSON-ready).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resultRecord } from "./evaluate.ts";
 * const row = { fid: 1, kid: { mean: 0.5, std: 0.1 }, precision: 1, recall: 1, density: 1, coverage: 1,
 *   classes_covered: null, class_kl: null, classifier_score: null, histogram: null, n: 100 };
 * const r = resultRecord({ ...row, features: "pixels", classifier_accuracy: null, real_histogram: null, skipped: [],
 *   label_accuracy: null });
 * assert.equal(r.fid, 1);
 * assert.equal(r.reference, null);
 * ```
 */
export function resultRecord(r: EvaluateResult): ResultRecord {
  return {
    ...qualityRecord(r),
    features: r.features,
    classifier_accuracy: r.classifier_accuracy,
    real_histogram: r.real_histogram,
    skipped: r.skipped,
    label_accuracy: r.label_accuracy?.mean ?? null,
    label_accuracy_per_label: r.label_accuracy?.per_label ?? null,
    reference: r.reference ? { real: qualityRecord(r.reference.real), noise: qualityRecord(r.reference.noise) } : null,
  };
}

/** {@link EvaluateResult} as a flat record (see {@link resultRecord}). */
export interface ResultRecord extends QualityRecord {
  /** What the metrics ran on: the classifier's features, or the pixels (no labels). */
  features: "classifier" | "pixels";
  /** The classifier's held-out accuracy (null without labels). */
  classifier_accuracy: number | null;
  /** `[classes]` the share of each class among the real images (null without labels). */
  real_histogram: number[] | null;
  /** Metrics that could not run, with why. */
  skipped: string[];
  /** A conditional generator's mean per-label accuracy (null for others; see {@link EvaluateResult.label_accuracy}). */
  label_accuracy: number | null;
  /** Its accuracy per label (null for others). */
  label_accuracy_per_label: (number | null)[] | null;
  /** The reference rows (null when not computed). */
  reference: { real: QualityRecord; noise: QualityRecord } | null;
}
