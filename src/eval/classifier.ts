/**
 * The feature extractor of the sample-quality metrics: an MLP classifier trained by this engine on the labelled images
 * of the dataset in use. It is two networks, so that its penultimate features can be read: a body
 * `features -> 512 -> 256` (ReLU) whose output is the feature vector, and a head `256 -> classes` (logits), trained
 * together with softmax cross-entropy (`nativeSoftmaxCrossEntropy`, on the context's backend) and Adam, with random
 * shifts of up to 2 pixels as augmentation. A seeded share of the images (default 15%) is held out to measure its
 * accuracy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainClassifier } from "./classifier.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * const digits = await loadEmbeddedMnist();
 * using c = trainClassifier(ctx, digits, { epochs: 3, limit: 2000 });
 * assert.ok(c.accuracy > 0.7);
 * ```
 *
 * @module
 */

import { type Context, NativeMlp, nativePermutation, nativeSoftmaxCrossEntropy } from "../native/handles.ts";
import type { Dataset } from "../data/dataset.ts";
import type { MlpSpec } from "../model/spec.ts";
import { readSafetensors, writeSafetensors } from "../io/safetensors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { sha256Hex } from "../io/download.ts";
import { nativeCacheRoot } from "../native/fetch.ts";
import { loadStateDict, stateDictEntries } from "../train/checkpoint.ts";

/** Width of the feature vector (the body's output). */
export const FEATURE_DIM = 256;

/** How the classifier is trained; part of its cache key. */
export interface ClassifierOptions {
  /** Epochs over the training share (default: enough to see about 400,000 images, at most 60). */
  epochs?: number;
  /** Images per step (default 128). */
  batchSize?: number;
  /** Adam learning rate (default 1e-3, halved for the last third of the epochs). */
  lr?: number;
  /** Share of the images held out for the accuracy (default 0.15). */
  heldOut?: number;
  /** Largest pixel shift of the augmentation (default 1 when the training share has under 20,000 images, else 0). */
  shift?: number;
  /** Seed of the init, the split, the order and the shifts (default 0). */
  seed?: number;
  /** Use only the first `limit` images of the shuffled order (default all): for quick tests. */
  limit?: number;
}

/**
 * The recipe with every default filled in for a dataset of `count` images.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifierRecipe } from "./classifier.ts";
 * assert.equal(classifierRecipe(60000).epochs, 8); // 51,000 training images: 8 epochs see about 400,000
 * ```
 */
export function classifierRecipe(count: number, options: ClassifierOptions = {}): Required<ClassifierOptions> {
  const heldOut = options.heldOut ?? 0.15;
  const n = Math.min(count, options.limit ?? count), train = n - Math.round(n * heldOut);
  return {
    epochs: options.epochs ?? Math.min(60, Math.ceil(400_000 / Math.max(train, 1))),
    batchSize: options.batchSize ?? 128,
    lr: options.lr ?? 1e-3,
    heldOut,
    shift: options.shift ?? (train < 20_000 ? 1 : 0),
    seed: options.seed ?? 0,
    limit: n,
  };
}

/**
 * The two specs: body `features -> 512 -> 256` (ReLU), head `256 -> classes`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classifierSpecs } from "./classifier.ts";
 * const { body, head } = classifierSpecs(784, 10);
 * assert.deepEqual([body.input, ...body.layers.map((l) => l.out), ...head.layers.map((l) => l.out)], [784, 512, 256, 10]);
 * ```
 */
export function classifierSpecs(features: number, classes: number): { body: MlpSpec; head: MlpSpec } {
  const relu = { kind: "leaky_relu" as const, slope: 0 };
  return {
    body: { input: features, layers: [{ out: 512, bn: null, act: relu }, { out: FEATURE_DIM, bn: null, act: relu }] },
    head: { input: FEATURE_DIM, layers: [{ out: classes, bn: null, act: { kind: "none" } }] },
  };
}

/**
 * A trained classifier: its two networks, what it was trained on, and its held-out accuracy.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { FEATURE_DIM, trainClassifier } from "./classifier.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * using c = trainClassifier(ctx, await loadEmbeddedMnist(), { epochs: 1, limit: 500 });
 * assert.equal(c.features(new Float32Array(784), 1).length, FEATURE_DIM);
 * ```
 */
export class Classifier implements Disposable {
  /** Makes a classifier from its networks (owned from now on). */
  constructor(
    /** The feature network. */
    readonly body: NativeMlp,
    /** The logit network. */
    readonly head: NativeMlp,
    /** Held-out accuracy in [0, 1]. */
    readonly accuracy: number,
    /** The number of classes. */
    readonly classes: number,
  ) {}

  /** Penultimate features of `x [rows, features]` (values in [-1, 1]): `[rows, FEATURE_DIM]`, in chunks. */
  features(x: Float32Array<ArrayBuffer>, rows: number): Float32Array<ArrayBuffer> {
    const d = this.body.spec.input, out = new Float32Array(rows * FEATURE_DIM);
    for (let r = 0; r < rows; r += 1024) {
      const n = Math.min(1024, rows - r);
      out.set(this.body.forward(x.subarray(r * d, (r + n) * d), n, false), r * FEATURE_DIM);
    }
    return out;
  }

  /** Class probabilities of features `[rows, FEATURE_DIM]`: `[rows, classes]` (softmax of the head's logits). */
  probabilities(features: Float32Array<ArrayBuffer>, rows: number): Float32Array<ArrayBuffer> {
    const z = this.head.forward(features, rows, false);
    for (let r = 0; r < rows; r++) softmaxInPlace(z.subarray(r * this.classes, (r + 1) * this.classes));
    return z;
  }

  /** Releases both networks. */
  [Symbol.dispose](): void {
    this.body.close();
    this.head.close();
  }
}

function softmaxInPlace(row: Float32Array): void {
  let m = -Infinity, s = 0;
  for (const v of row) m = Math.max(m, v);
  for (let k = 0; k < row.length; k++) s += row[k] = Math.exp(row[k] - m);
  for (let k = 0; k < row.length; k++) row[k] /= s;
}

/** Image `i` of `ds` into `dst` in [-1, 1], shifted by `(dx, dy)` pixels (zeros, i.e. -1, shifted in). */
function putImage(dst: Float32Array, ds: Dataset, i: number, dx: number, dy: number): void {
  const { width: w, height: h } = ds, hw = w * h, base = i * ds.channels * hw;
  dst.fill(-1);
  for (let c = 0; c < ds.channels; c++) {
    for (let y = Math.max(0, dy); y < Math.min(h, h + dy); y++) {
      for (let x = Math.max(0, dx); x < Math.min(w, w + dx); x++) {
        dst[c * hw + y * w + x] = ds.pixels[base + c * hw + (y - dy) * w + (x - dx)] / 127.5 - 1;
      }
    }
  }
}

/** The shuffled split: training indices and held-out indices. */
function split(ds: Dataset, o: Required<ClassifierOptions>) {
  const order = nativePermutation(o.seed, 0, ds.count);
  const n = o.limit;
  const held = Math.max(1, Math.round(n * o.heldOut));
  return { train: order.subarray(held, n), test: order.subarray(0, held) };
}

/** One training step on images `idx` of `ds`: forward, cross-entropy, backward, Adam on both networks. */
function trainStep(
  ctx: Context,
  c: Classifier,
  ds: Dataset,
  idx: Uint32Array,
  shifts: () => number,
  lr: number,
): number {
  const d = c.body.spec.input, rows = idx.length;
  const x = new Float32Array(rows * d); // [rows, features]
  for (let r = 0; r < rows; r++) putImage(x.subarray(r * d, (r + 1) * d), ds, idx[r], shifts(), shifts());
  const labels = Uint32Array.from(idx, (i) => ds.labels![i]);
  const logits = c.head.forward(c.body.forward(x, rows, true), rows, true); // [rows, classes]
  const { loss, grad } = nativeSoftmaxCrossEntropy(ctx, logits, labels, c.classes);
  c.body.backward(c.head.backward(grad!));
  const adam = { lr, b1: 0.9, b2: 0.999, eps: 1e-8 };
  c.head.adam(adam);
  c.body.adam(adam);
  return loss;
}

/**
 * Accuracy of `c` on images `idx` of `ds` (no augmentation).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { accuracyOn, trainClassifier } from "./classifier.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * const digits = await loadEmbeddedMnist();
 * using c = trainClassifier(ctx, digits, { epochs: 1, limit: 500 });
 * assert.ok(accuracyOn(c, digits, Uint32Array.of(0, 5000, 9999)) >= 0);
 * ```
 */
export function accuracyOn(c: Classifier, ds: Dataset, idx: Uint32Array): number {
  const d = c.body.spec.input;
  let right = 0;
  for (let s = 0; s < idx.length; s += 1024) {
    const part = idx.subarray(s, s + 1024), x = new Float32Array(part.length * d);
    part.forEach((i, r) => putImage(x.subarray(r * d, (r + 1) * d), ds, i, 0, 0));
    const p = c.probabilities(c.features(x, part.length), part.length);
    part.forEach((i, r) => {
      const row = p.subarray(r * c.classes, (r + 1) * c.classes);
      if (row.indexOf(Math.max(...row)) === ds.labels![i]) right++;
    });
  }
  return right / idx.length;
}

/**
 * Trains a classifier on the labelled images of `ds` (its labels required) and measures its held-out accuracy.
 *
 * @param ctx The context to train in (either backend).
 * @param ds The dataset (with labels).
 * @param options The recipe.
 * @returns The trained classifier (close it, or `using`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { trainClassifier } from "./classifier.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * using c = trainClassifier(ctx, await loadEmbeddedMnist(), { epochs: 2, limit: 2000 });
 * assert.ok(c.accuracy > 0.7);
 * ```
 */
export function trainClassifier(ctx: Context, ds: Dataset, options: ClassifierOptions = {}): Classifier {
  if (!ds.labels) throw new Error(`Cannot train a classifier on dataset "${ds.name}": it has no labels`);
  const o = classifierRecipe(ds.count, options);
  const classes = Math.max(...ds.labels) + 1;
  const specs = classifierSpecs(ds.channels * ds.height * ds.width, classes);
  const c = new Classifier(new NativeMlp(ctx, specs.body), new NativeMlp(ctx, specs.head), NaN, classes);
  c.body.init(o.seed, 0);
  c.head.init(o.seed, 1);
  const { train, test } = split(ds, o);
  let state = (o.seed * 2654435761 + 1) >>> 0;
  const shifts = () => (state = (Math.imul(state, 1664525) + 1013904223) >>> 0, (state % (2 * o.shift + 1)) - o.shift);
  for (let e = 0; e < o.epochs; e++) {
    const order = nativePermutation(o.seed + 1, e, train.length);
    const lr = e >= Math.ceil((2 * o.epochs) / 3) ? o.lr / 2 : o.lr;
    for (let s = 0; s < order.length; s += o.batchSize) {
      const idx = Uint32Array.from(order.subarray(s, s + o.batchSize), (k) => train[k]);
      trainStep(ctx, c, ds, idx, shifts, lr);
    }
  }
  return new Classifier(c.body, c.head, accuracyOn(c, ds, test), classes);
}

/** Options of {@link loadOrTrainClassifier}. */
export interface CachedClassifierOptions extends ClassifierOptions {
  /** The cache folder (default `<deno-gan cache>/classifiers`, see `nativeCacheRoot`). */
  cacheDir?: string;
  /** Called before training (not when the classifier comes from the cache). */
  onTrain?: (recipe: Required<ClassifierOptions>) => void;
}

/** A classifier and where it came from. */
export interface CachedClassifier {
  /** The classifier (close it). */
  classifier: Classifier;
  /** `cache` when a verified cached file was loaded, `trained` when it was trained now (and cached). */
  source: "cache" | "trained";
  /** The cached file. */
  path: string;
  /** Its SHA-256, recorded beside it and checked on every load. */
  sha256: string;
}

/** The cache key: the SHA-256 of the dataset's pixels and labels, the specs and the recipe. */
async function cacheKey(ds: Dataset, recipe: Required<ClassifierOptions>): Promise<string> {
  const specs = classifierSpecs(ds.channels * ds.height * ds.width, Math.max(...ds.labels!) + 1);
  const meta = new TextEncoder().encode(JSON.stringify({ format: "deno-gan-classifier/1", specs, recipe }));
  const all = new Uint8Array(ds.pixels.length + ds.labels!.length + meta.length);
  all.set(ds.pixels);
  all.set(ds.labels!, ds.pixels.length);
  all.set(meta, ds.pixels.length + ds.labels!.length);
  return await sha256Hex(all);
}

/**
 * The classifier of `ds`, from the cache when one with the same data, specs and recipe was trained before (its file's
 * SHA-256, recorded beside it, is checked before it is used; a mismatch is retrained), else trained now and cached.
 *
 * @param ctx The context.
 * @param ds The dataset (with labels).
 * @param options The recipe and the cache folder.
 * @returns The classifier and where it came from.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadOrTrainClassifier } from "./classifier.ts";
 * import { loadEmbeddedMnist } from "../data/dataset.ts";
 * import { Context } from "../native/handles.ts";
 * using ctx = new Context({ backend: "cpu" });
 * const cacheDir = await Deno.makeTempDir();
 * const got = await loadOrTrainClassifier(ctx, await loadEmbeddedMnist(), { epochs: 1, limit: 500, cacheDir });
 * assert.equal(got.source, "trained");
 * got.classifier[Symbol.dispose]();
 * await Deno.remove(cacheDir, { recursive: true });
 * ```
 */
export async function loadOrTrainClassifier(
  ctx: Context,
  ds: Dataset,
  options: CachedClassifierOptions = {},
): Promise<CachedClassifier> {
  if (!ds.labels) throw new Error(`Cannot train a classifier on dataset "${ds.name}": it has no labels`);
  const recipe = classifierRecipe(ds.count, options);
  const dir = options.cacheDir ?? `${nativeCacheRoot()}/classifiers`;
  const key = await cacheKey(ds, recipe);
  const path = `${dir}/${key}.safetensors`;
  const cached = await loadCached(ctx, ds, path);
  if (cached) return cached;
  options.onTrain?.(recipe);
  const c = trainClassifier(ctx, ds, recipe);
  const bytes = writeSafetensors([...stateDictEntries(c.body, "body."), ...stateDictEntries(c.head, "head.")], {
    format: "deno-gan-classifier/1",
    accuracy: String(c.accuracy),
    classes: String(c.classes),
    dataset: ds.name,
    recipe: JSON.stringify(recipe),
  });
  const sha256 = await sha256Hex(bytes);
  await Deno.mkdir(dir, { recursive: true });
  await writeFileAtomic(path, bytes);
  await writeFileAtomic(`${path}.sha256`, new TextEncoder().encode(`${sha256}\n`));
  return { classifier: c, source: "trained", path, sha256 };
}

async function loadCached(ctx: Context, ds: Dataset, path: string): Promise<CachedClassifier | null> {
  let bytes: Uint8Array, recorded: string;
  try {
    [bytes, recorded] = [await Deno.readFile(path), (await Deno.readTextFile(`${path}.sha256`)).trim()];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
  const sha256 = await sha256Hex(bytes);
  if (sha256 !== recorded) return null; // damaged or replaced: train again (and overwrite)
  const map = readSafetensors(bytes, path);
  const classes = Number(map.metadata?.classes);
  const specs = classifierSpecs(ds.channels * ds.height * ds.width, classes);
  const body = new NativeMlp(ctx, specs.body), head = new NativeMlp(ctx, specs.head);
  loadStateDict(map, path, body, "body.");
  loadStateDict(map, path, head, "head.");
  return {
    classifier: new Classifier(body, head, Number(map.metadata?.accuracy), classes),
    source: "cache",
    path,
    sha256,
  };
}
