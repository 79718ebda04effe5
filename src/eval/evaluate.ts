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
import { type Classifier, loadOrTrainClassifier } from "./classifier.ts";
import { type Metrics, type MetricsOptions, RealSide } from "./metrics.ts";
import { classStats } from "./class_stats.ts";
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
  /** Compute the reference rows (default true). */
  reference?: boolean;
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

/** `n` samples of `g` in eval mode, 1,000 at a time, from the sample noise of `seed` (stream = chunk). */
function generate(g: NativeMlp, n: number, seed: number): Float32Array<ArrayBuffer> {
  const { input, output } = g.info(), out = new Float32Array(n * output);
  for (let r = 0, chunk = 0; r < n; r += 1000, chunk++) {
    const rows = Math.min(1000, n - r);
    out.set(g.forward(nativeNormal(seed, chunk, rows * input, "sample"), rows, false), r * output);
  }
  return out;
}

/** Features of images: the classifier's when there is one, else the pixels themselves. */
function featuresOf(images: Float32Array<ArrayBuffer>, f: number, c: Classifier | null): Features {
  const n = images.length / f;
  return c ? { data: c.features(images, n), n, d: 256 } : { data: images, n, d: f };
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
    const ctx = options.context ?? new Context({ backend: "cpu" });
    let c = options.classifier ?? null, ownsClassifier = false;
    try {
      if (!c && dataset.labels) {
        c = (await loadOrTrainClassifier(ctx, dataset, { cacheDir: options.cacheDir })).classifier;
        ownsClassifier = true;
      }
      const f = dataset.channels * dataset.height * dataset.width, count = Math.min(n, dataset.count);
      const idx = nativePermutation(seed, 1, count > 0 ? dataset.count : 1).subarray(0, count);
      const labels = dataset.labels ? Uint8Array.from(idx, (i) => dataset.labels![i]) : null;
      const features = featuresOf(realImages(dataset, idx), f, c);
      const side = await RealSide.prepare(features, metricsOptions(ctx, count));
      const histogram = labels && c ? classHistogram(labels, c.classes) : null;
      const reference = (options.reference ?? true)
        ? await referenceRows(dataset, features, side, labels, n, seed, c, ctx)
        : undefined;
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
   * in [-1, 1], at least KID's subset size of them) against the prepared real side.
   */
  async score(source: NativeMlp | Float32Array<ArrayBuffer>): Promise<EvaluateResult> {
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
    const row = await scoreRow(this.#real, featuresOf(samples, f, c), this.#labels, c);
    const skipped = c ? [] : ["classes_covered, class_kl, classifier_score: the dataset has no labels (no classifier)"];
    const out: EvaluateResult = {
      ...row,
      features: c ? "classifier" : "pixels",
      classifier_accuracy: c?.accuracy ?? null,
      real_histogram: this.realHistogram,
      skipped,
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
