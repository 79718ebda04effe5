/**
 * The training loop of the seed's GAN (or any G/D pair of MLPs): native steps in chunks, the seed's per-batch log,
 * image grids every `sampleInterval` batches, metrics, atomic checkpoints, and exact resume.
 *
 * @module
 */

import type { Classifier } from "../eval/classifier.ts";
import { estimateEvalBytes, type EvaluateResult, Evaluator, resultRecord } from "../eval/evaluate.ts";
import {
  type BackendInfo,
  type BackendName,
  Context,
  decodeSteps,
  describeSpec,
  type GanConfig,
  NativeGan,
  NativeMlp,
  nativeNormal,
  stepRecordLength,
  type StepResult,
} from "../native/handles.ts";
import type { Dataset } from "../data/dataset.ts";
import type { MetricsLog } from "../io/metrics.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { OutDir } from "../io/out_dir.ts";
import { checkpointSizeLimit, checkResume } from "../io/checkpoint_checks.ts";
import { type DatasetIdentity, datasetIdentity } from "../data/identity.ts";
import type { GanLoss, MlpSpec } from "../model/spec.ts";
import { checkDatasetLabels, type SampleLabels, sampleLabels } from "../model/labels.ts";
import {
  checkModel,
  encoderModels,
  type GanModel,
  type GanModelOptions,
  type GanOptimizer,
  hasEncoder,
  isConditional,
  MODEL_OPTIONS,
  modelDiscriminator,
  modelEncoder,
  modelGenerator,
  type ModelOptionValue,
  MODELS,
  resolveModelOptions,
  resolveNClasses,
} from "../model/models.ts";
import { loadCheckpoint, NonFiniteStateError, saveCheckpoint, saveGenerator, syncGeneratorFile } from "./checkpoint.ts";
import { checkMemory, estimateRunBytes, memoryLimit } from "./memory.ts";

/** The run's memory limit: its own, or the machine's default. */
function limitOf(r: ResolvedTrainOptions): { bytes: number; what: string } {
  return r.memoryLimit === undefined ? memoryLimit() : { bytes: r.memoryLimit, what: "the memoryLimit option" };
}
import { type NativeContract, nativeContract, NativeError } from "../native/ffi.ts";

/**
 * The PNG encoder's module, loaded when the first grid is written, by a template with a relative head: `deno publish`
 * can analyze it, and Deno neither loads it with this module (as it would a string literal) nor searches the folder
 * for it (as it does for a template that starts with "./").
 */
const PNG_FILE = "png.ts";

/**
 * Settings of a run. The defaults are the seed's (PyTorch-GAN gan.py), and for another `model` upstream's script's
 * (see `MODELS`); the per-model options ({@link GanModelOptions}) apply to their models only, and one given for another
 * model is refused.
 */
export interface TrainOptions extends GanModelOptions {
  /** The model (default `gan`, the seed's): one of `GAN_MODELS`; its step runs in the native library. */
  model?: GanModel;
  /** The optimizer of both networks (default the model's: `rmsprop` for wgan, else `adam`). */
  optimizer?: GanOptimizer;
  /** Epochs (default 50). */
  nEpochs?: number;
  /** Images per batch (default 64). */
  batchSize?: number;
  /** Learning rate (default the model's: 0.0002, wgan 0.00005). */
  lr?: number;
  /** Adam beta1 (default 0.5); Adam only. */
  b1?: number;
  /** Adam beta2 (default 0.999); Adam only. */
  b2?: number;
  /** Noise size (default the model's: 100, aae 10, the size of its code). */
  latentDim?: number;
  /** Image side (default the model's: 28, cgan and aae 32): it must match the dataset. */
  imgSize?: number;
  /**
   * cgan: the classes of its label embeddings (default 10, upstream's `--n_classes`); the dataset's labels must be
   * below it. Refused for the other models.
   */
  nClasses?: number;
  /** Image channels (default 1): they must match the dataset. */
  channels?: number;
  /** Save a grid every this many batches (default 400). */
  sampleInterval?: number;
  /** Seed of the initial weights, the noise and the shuffles (default 0). */
  seed?: number;
  /** Backend (default auto: a hardware GPU when there is one, else the CPU). */
  backend?: BackendName;
  /** CPU threads (default 0: the cores available). */
  threads?: number;
  /** BatchNorm eps of the generator (default the model's: 0.8, the seed's quirk; aae 1e-5, its decoder's and encoder's). */
  bnEps?: number;
  /** Where images/, checkpoints/, metrics.jsonl and run.json go; nothing is written when absent. */
  outDir?: string;
  /** Write a checkpoint every this many steps (default 1000) and at the end. 0: only at the end. */
  checkpointEvery?: number;
  /** Resume from this checkpoint. */
  resume?: string;
  /** Resume even when the checkpoint was trained on other data (another count, shape or pixel hash). */
  allowOtherDataset?: boolean;
  /** Stop after this many steps in total (default: all epochs). */
  maxSteps?: number;
  /** Steps per native call (default 16, at most 65536): larger amortizes the call and GPU submission. */
  stepsPerCall?: number;
  /**
   * The most memory the run may plan to use, in bytes (default: 80% of the machine's memory); a run or a `sample(n)`
   * estimated above it is refused before anything is allocated.
   */
  memoryLimit?: number;
  /**
   * Score the generator every this many steps and at the end of the run (default 0: never): FID, KID, precision and
   * recall, density and coverage and the class statistics of `evalN` samples against the training images (see
   * `Evaluator`), as eval rows of metrics.jsonl and, at the end, `final_eval` in run.json.
   */
  evalEvery?: number;
  /** Samples per evaluation (default 10,000). */
  evalN?: number;
  /** The classifier cache folder of the evaluations (default `<deno-gan cache>/classifiers`). */
  evalCacheDir?: string;
  /** The evaluations' classifier (default: the dataset's, from the cache or trained at the first evaluation). */
  evalClassifier?: Classifier;
  /** Generator spec (default: the seed's, from latentDim, imgSize, channels and bnEps). */
  generator?: MlpSpec;
  /**
   * Discriminator spec (default: the seed's, from imgSize and channels, ending as the model needs: a Sigmoid for gan
   * with `bce` and bgan, a linear layer for the others; aae's judges the latent code); it must not use BatchNorm.
   */
  discriminator?: MlpSpec;
  /**
   * aae: the encoder's spec (default upstream's, `modelEncoder`: the images to `mu` and `logvar` heads of `latentDim`
   * each). Refused for the other models, which have no encoder.
   */
  encoder?: MlpSpec;
}

/** One training step's results, with its place in the run. */
export interface StepEvent {
  /** The seed's `batches_done` (0-based global step). */
  step: number;
  /** 0-based epoch. */
  epoch: number;
  /** 0-based batch in the epoch. */
  batch: number;
  /** Batches per epoch. */
  batchesPerEpoch: number;
  /** Epochs of the run. */
  nEpochs: number;
  /** Steps of the whole run. */
  totalSteps: number;
  /** D's loss: the seed's (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2; a critic's includes its penalty. */
  dLoss: number;
  /** G's loss: the seed's BCE(D(G(z)), 1); on a critic-only step -mean(D(G(z))) with the critic before its update. */
  gLoss: number;
  /** Mean D(x) over the real batch (a critic's mean score). */
  dReal: number;
  /** Mean D(G(z)) over the generated batch. */
  dFake: number;
  /** Seconds since the run (or the resume) started. */
  time: number;
}

/** A sample grid was written (or would be, without an outDir). */
export interface SampleEvent {
  /** The step whose generated batch this is (the seed's `batches_done`). */
  step: number;
  /**
   * The first 25 images of that step's generated batch (aae: the decoder's reconstructions of the step's real batch),
   * `[n, channels * imgSize^2]` in [-1, 1].
   */
  images: Float32Array;
  /** Paths written (the batch grid and the fixed-noise grid), empty without an outDir. */
  paths: string[];
}

/** An evaluation of the generator during a run (see `evalEvery`). */
export interface EvalEvent {
  /** Steps done when it was scored. */
  step: number;
  /** The scores, with the reference rows. */
  result: EvaluateResult;
  /** Seconds it took (the first one includes preparing the real side, and training the classifier if needed). */
  seconds: number;
}

/** Callbacks of {@link GanTrainer.run}; each may be async. */
export interface TrainCallbacks {
  /** After every evaluation (every `evalEvery` steps and at the end). */
  onEval?: (e: EvalEvent) => void | Promise<void>;
  /** Told (one line) when something slow happens once, e.g. the classifier of the evaluations is trained. */
  onNote?: (message: string) => void;
  /** After every step, in order. */
  onStep?: (e: StepEvent) => void | Promise<void>;
  /** Every `sampleInterval` steps, after the grids are written. */
  onSample?: (e: SampleEvent) => void | Promise<void>;
  /** After every checkpoint is written (`step` = steps done). */
  onCheckpoint?: (e: { step: number; path: string }) => void | Promise<void>;
}

/** What a finished run reports. */
export interface RunSummary {
  /** Steps run by this call. */
  steps: number;
  /** Wall-clock seconds of this call. */
  seconds: number;
  /** steps / seconds. */
  stepsPerSecond: number;
  /** The last checkpoint written (or resumed from), if any. */
  lastCheckpoint: string | null;
  /** The last step's event. */
  final: StepEvent | null;
}

/** Training stopped because a loss became NaN or infinite. */
export class DivergenceError extends Error {
  /** Makes the error for a divergence at `step`, naming the last good checkpoint. */
  constructor(
    /** The step that diverged. */
    readonly step: number,
    /** The last checkpoint written before it (left untouched), or null. */
    readonly lastCheckpoint: string | null,
    detail: string,
  ) {
    super(
      `Training diverged: ${detail}. ` +
        (lastCheckpoint
          ? `The last good checkpoint is "${lastCheckpoint}" (left untouched).`
          : "No checkpoint was written."),
    );
    this.name = "DivergenceError";
  }
}

/** {@link TrainOptions} with every default filled in. */
export type ResolvedTrainOptions =
  & Required<
    Omit<
      TrainOptions,
      | "outDir"
      | "resume"
      | "allowOtherDataset"
      | "maxSteps"
      | "generator"
      | "discriminator"
      | "encoder"
      | "memoryLimit"
      | "evalCacheDir"
      | "evalClassifier"
      | "model"
      | "optimizer"
      | "nClasses"
      | keyof GanModelOptions
    >
  >
  & GanModelOptions
  & {
    /** The model. */
    model: GanModel;
    /** The optimizer of both networks. */
    optimizer: GanOptimizer;
    /** The model's options by native key, defaults filled in (the GAN config's and the checkpoints' keys). */
    modelOptions: Readonly<Record<string, ModelOptionValue>>;
    /** A conditional model's classes (cgan: default 10); undefined for the others. */
    nClasses?: number;
    evalCacheDir?: string;
    evalClassifier?: Classifier;
    memoryLimit?: number;
    outDir?: string;
    resume?: string;
    allowOtherDataset?: boolean;
    maxSteps?: number;
    generator: MlpSpec;
    discriminator: MlpSpec;
    /** aae's encoder (present exactly for a model with one). */
    encoder?: MlpSpec;
  };

/** The most classes a conditional model's fixed-noise grid shows (a grid of 32 x 32 images). */
export const MAX_GRID_CLASSES = 32;

/** The rows (and columns) of aae's fixed-noise grid: upstream's `sample_image(n_row=10)`. */
const AAE_GRID_ROWS = 10;

/** The seed's defaults. */
export const SEED_DEFAULTS = {
  nEpochs: 50,
  batchSize: 64,
  lr: 0.0002,
  b1: 0.5,
  b2: 0.999,
  latentDim: 100,
  imgSize: 28,
  channels: 1,
  sampleInterval: 400,
  seed: 0,
  backend: "auto" as BackendName,
  threads: 0,
  bnEps: 0.8,
  checkpointEvery: 1000,
  stepsPerCall: 16,
  evalEvery: 0,
  evalN: 10000,
  loss: "bce" as GanLoss,
};

/** The model, its optimizer and options, checked: an option of another model, or a beta without Adam, is refused. */
function resolveModel(
  o: TrainOptions,
): Pick<ResolvedTrainOptions, "model" | "optimizer" | "lr" | "b1" | "b2" | "modelOptions"> {
  const model = checkModel(o.model ?? "gan");
  const optimizer = o.optimizer ?? MODELS[model].optimizer;
  if (optimizer !== "adam" && optimizer !== "rmsprop") {
    throw new RangeError(`optimizer must be adam or rmsprop, got ${JSON.stringify(optimizer)}`);
  }
  for (const beta of ["b1", "b2"] as const) {
    if (optimizer === "rmsprop" && o[beta] !== undefined) {
      throw new RangeError(
        `${beta} applies to the adam optimizer only, and this run (model ${model}) trains with rmsprop`,
      );
    }
  }
  const { lr, b1, b2 } = MODELS[model];
  return {
    model,
    optimizer,
    lr: o.lr ?? lr,
    b1: o.b1 ?? b1,
    b2: o.b2 ?? b2,
    modelOptions: resolveModelOptions(model, o),
  };
}

/**
 * A run's settings with every default filled in and checked (the model's lr, optimizer and options; both specs
 * validated by the library), as `GanTrainer.create` uses them.
 *
 * @param o The settings.
 * @returns They, resolved.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveTrainOptions } from "./trainer.ts";
 * const r = resolveTrainOptions({ model: "wgan", nCritic: 3 });
 * assert.ok(r.lr === 5e-5 && r.optimizer === "rmsprop" && r.nCritic === 3 && r.clipValue === 0.01);
 * assert.throws(() => resolveTrainOptions({ model: "wgan", b1: 0.9 }), /b1 applies to the adam optimizer only/);
 * ```
 */
export function resolveTrainOptions(o: TrainOptions): ResolvedTrainOptions {
  const { loss: _loss, lr: _lr, b1: _b1, b2: _b2, ...seed } = SEED_DEFAULTS; // the loss is gan's, the rest the model's
  const m = resolveModel(o);
  const { imgSize, latentDim, bnEps } = MODELS[m.model];
  const r = {
    ...seed,
    imgSize,
    latentDim,
    bnEps,
    ...Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)),
    ...m,
  } as ResolvedTrainOptions;
  for (const [key, v] of Object.entries(m.modelOptions)) Object.assign(r, { [MODEL_OPTIONS[key].option]: v });
  r.nClasses = resolveNClasses(r.model, o.nClasses);
  if (r.nClasses === undefined) delete r.nClasses;
  r.generator ??= modelGenerator(r.model, r.latentDim, r.imgSize, r.channels, r.bnEps, r.nClasses);
  r.discriminator ??= modelDiscriminator(r.model, r.imgSize, r.channels, r.loss, r.nClasses, r.latentDim);
  if (hasEncoder(r.model)) {
    r.encoder ??= modelEncoder(r.model, r.imgSize, r.channels, r.latentDim, r.bnEps);
  } else if (r.encoder !== undefined) {
    throw new RangeError(`encoder applies to ${encoderModels().join(", ")}, not to model ${r.model}`);
  }
  if (!Number.isSafeInteger(r.stepsPerCall) || r.stepsPerCall < 1 || r.stepsPerCall > 65536) {
    throw new RangeError(`stepsPerCall must be an integer in [1, 65536], got ${r.stepsPerCall}`);
  }
  for (const [name, v, min] of [["evalEvery", r.evalEvery, 0], ["evalN", r.evalN, 4]] as const) {
    if (!Number.isSafeInteger(v) || v < min) throw new RangeError(`${name} must be an integer >= ${min}, got ${v}`);
  }
  describeSpec(r.generator); // the library validates every spec before anything is built
  describeSpec(r.discriminator);
  if (r.encoder) describeSpec(r.encoder);
  return r;
}

/** The settings recorded in checkpoints and run.json (what resume must agree on, and more). */
function configRecord(r: ResolvedTrainOptions): Record<string, unknown> {
  return {
    n_epochs: r.nEpochs,
    batch_size: r.batchSize,
    lr: r.lr,
    b1: r.b1,
    b2: r.b2,
    latent_dim: r.latentDim,
    img_size: r.imgSize,
    channels: r.channels,
    sample_interval: r.sampleInterval,
    seed: r.seed,
    bn_eps: r.bnEps,
    model: r.model,
    optimizer: r.optimizer,
    ...r.modelOptions,
    ...(r.nClasses !== undefined ? { n_classes: r.generator.embedding?.classes ?? r.nClasses } : {}),
    generator: r.generator,
    discriminator: r.discriminator,
    ...(r.encoder ? { encoder: r.encoder } : {}),
  };
}

/** The classes of a run's generator (its label embedding's), or undefined for a model without labels. */
function classesOf(r: ResolvedTrainOptions): number | undefined {
  return r.generator.embedding?.classes;
}

/**
 * The labels a conditional run trains on: the dataset's, checked against the model's classes. A dataset without
 * labels is refused, naming it.
 */
function trainingLabels(r: ResolvedTrainOptions, dataset: Dataset): Uint32Array<ArrayBuffer> | null {
  if (!isConditional(r.model)) return null;
  const classes = classesOf(r) ?? r.nClasses!;
  if (!dataset.labels) {
    throw new RangeError(
      `dataset "${dataset.name}" has no labels, and model ${r.model} trains on each image's label ` +
        `(give an IDX folder with its train-labels-idx1-ubyte file, or the embedded digits)`,
    );
  }
  if (dataset.labels.length !== dataset.count) {
    throw new RangeError(
      `dataset "${dataset.name}" has ${dataset.labels.length} labels for ${dataset.count} images`,
    );
  }
  checkDatasetLabels(dataset.labels, classes, dataset.name);
  return Uint32Array.from(dataset.labels);
}

/** Options of {@link GanTrainer.sample}. */
export interface SampleOptions {
  /** Seed of the noise (default 0): the same seed gives the same images. */
  seed?: number;
  /**
   * A conditional model's labels (cgan): one label for every image, or a list the images cycle through (default:
   * upstream's grid order, image `i` of label `i % n_classes`). Refused for a model without labels.
   */
  labels?: SampleLabels;
}

/**
 * The native GAN config of a run: the optimizer's settings, the model and only the model's own options (the library
 * refuses an option of another model).
 *
 * @param r The run's resolved settings.
 * @returns The config for `new NativeGan(ctx, g, d, config)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeGanConfig, resolveTrainOptions } from "./trainer.ts";
 * const c = nativeGanConfig(resolveTrainOptions({ model: "wgan" })) as unknown as Record<string, unknown>;
 * assert.deepEqual(Object.keys(c), ["batch_size", "seed", "lr", "b1", "b2", "eps", "model", "optimizer", "n_critic", "clip_value"]);
 * ```
 */
export function nativeGanConfig(r: ResolvedTrainOptions): GanConfig {
  const adam = { batch_size: r.batchSize, seed: r.seed, lr: r.lr, b1: r.b1, b2: r.b2, eps: 1e-8 };
  return { ...adam, model: r.model, optimizer: r.optimizer, ...r.modelOptions } as GanConfig;
}

/**
 * Refuses a model the loaded library does not implement (a library older than the models would ignore the keys it
 * does not know and train gan).
 */
function checkNativeModel(r: ResolvedTrainOptions): void {
  if (r.model === "gan" && r.optimizer === "adam") return; // what every library does
  const models = nativeContract().models as NativeContract["models"] | undefined; // an older library has none
  if (models?.[r.model] !== undefined) return;
  throw new Error(
    `the native library does not implement model ${r.model} (its contract lists ` +
      `${models ? Object.keys(models).join(", ") : "no models"}); rebuild it (deno task build) or update it`,
  );
}

/**
 * A GAN and its training loop.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GanTrainer } from "./trainer.ts";
 * const pixels = new Uint8Array(40 * 16).map((_, i) => (i * 7) % 256);
 * const data = { name: "toy", count: 40, height: 4, width: 4, channels: 1, pixels };
 * using t = await GanTrainer.create(data, { backend: "cpu", imgSize: 4, latentDim: 8, batchSize: 8, maxSteps: 10 });
 * const summary = await t.run();
 * assert.ok(summary.steps === 10);
 * ```
 */
export class GanTrainer implements Disposable {
  /** The run's settings, defaults filled in. */
  readonly options: ResolvedTrainOptions;
  /** The native context (backend and threads). */
  readonly ctx: Context;
  /** The generator. */
  readonly g: NativeMlp;
  /** The discriminator. */
  readonly d: NativeMlp;
  /** aae's encoder (the images to their codes), trained by every step with the decoder `g`; null for the others. */
  readonly e: NativeMlp | null;
  /** The native trainer holding the dataset, the random streams and the step. */
  readonly gan: NativeGan;
  /** The training images. */
  readonly dataset: Dataset;
  #lastCheckpoint: string | null = null;
  #running = false;
  /** The training data's identity, computed once (recorded in run.json and every checkpoint, checked on resume). */
  #dataId: DatasetIdentity | null = null;
  /** The evaluations' prepared real side, made at the first evaluation and kept for the run. */
  #evaluator: Evaluator | null = null;
  /** What run.json holds (rewritten with `final_eval` and `finished` at the end of a run). */
  #runRecord: Record<string, unknown> | null = null;

  private constructor(
    r: ResolvedTrainOptions,
    dataset: Dataset,
    ctx: Context,
    g: NativeMlp,
    d: NativeMlp,
    e: NativeMlp | null,
    gan: NativeGan,
  ) {
    this.options = r;
    this.dataset = dataset;
    this.ctx = ctx;
    this.g = g;
    this.d = d;
    this.e = e;
    this.gan = gan;
  }

  /** Builds the networks (PyTorch-style init from the seed, or the state of `resume`) and uploads the dataset. */
  static async create(dataset: Dataset, options: TrainOptions = {}): Promise<GanTrainer> {
    const r = resolveTrainOptions(options);
    checkNativeModel(r);
    const features = dataset.channels * dataset.height * dataset.width;
    const gOut = r.generator.layers[r.generator.layers.length - 1].out;
    if (dataset.height !== r.imgSize || dataset.width !== r.imgSize || dataset.channels !== r.channels) {
      throw new RangeError(
        `dataset "${dataset.name}" has ${dataset.channels}x${dataset.height}x${dataset.width} images, the model expects ` +
          `${r.channels}x${r.imgSize}x${r.imgSize} (resize the dataset or change img_size/channels)`,
      );
    }
    if (gOut !== features) throw new RangeError(`generator outputs ${gOut} values, the images have ${features}`);
    if (r.encoder && r.encoder.input !== features) {
      throw new RangeError(`encoder takes ${r.encoder.input} values, the images have ${features}`);
    }
    const labels = trainingLabels(r, dataset);
    const data = { count: dataset.count, features };
    const need = estimateRunBytes(r.generator, r.discriminator, r.batchSize, data, r.encoder);
    const evalNeed = r.evalEvery > 0 ? estimateEvalBytes(dataset, r.evalN, true) : 0;
    checkMemory(
      need + evalNeed,
      `this run (${dataset.count} images of ${features} values, batch ${r.batchSize}` +
        (r.evalEvery > 0 ? `, evaluations of ${r.evalN} samples)` : ")"),
      limitOf(r),
    );
    const ctx = new Context({ backend: r.backend, threads: r.threads });
    const closeAll: Disposable[] = [ctx];
    try {
      const g = new NativeMlp(ctx, r.generator);
      closeAll.push(g);
      const d = new NativeMlp(ctx, r.discriminator);
      closeAll.push(d);
      const e = r.encoder ? new NativeMlp(ctx, r.encoder) : null;
      if (e) closeAll.push(e);
      g.init(r.seed, 0);
      d.init(r.seed, 1);
      e?.init(r.seed, 2);
      const gan = new NativeGan(ctx, g, d, nativeGanConfig(r), e ?? undefined);
      closeAll.push(gan);
      gan.setData(dataset.pixels as Uint8Array<ArrayBuffer>, dataset.count);
      if (labels) gan.setLabels(labels); // after setData, which forgets them
      const t = new GanTrainer(r, dataset, ctx, g, d, e, gan);
      t.#dataId = await datasetIdentity(dataset);
      if (r.resume) await t.#resume(r.resume);
      return t;
    } catch (e) {
      for (const c of closeAll.reverse()) c[Symbol.dispose]();
      throw e;
    }
  }

  async #resume(path: string): Promise<void> {
    const r = this.options;
    // The settings are compared before any tensor is read: another model's checkpoint is refused by its config.
    const info = await loadCheckpoint(
      path,
      { spec: r.generator, net: this.g },
      { spec: r.discriminator, net: this.d },
      {
        encoder: r.encoder && this.e ? { spec: r.encoder, net: this.e } : undefined,
        check: (info) =>
          checkResume(path, info, { config: configRecord(r), dataset: this.#dataId! }, {
            allowOtherDataset: r.allowOtherDataset,
          }),
      },
    );
    this.gan.setStep(info.step);
    this.#lastCheckpoint = path;
  }

  /** What the context runs on. */
  backendInfo(): BackendInfo {
    return this.ctx.info();
  }

  /** Steps done so far. */
  get step(): number {
    return this.gan.info().step;
  }

  /** Steps in the whole run. */
  get totalSteps(): number {
    const nb = this.gan.info().batches_per_epoch;
    return Math.min(this.options.nEpochs * nb, this.options.maxSteps ?? Infinity);
  }

  /**
   * `n` samples of the generator in eval mode (BN running statistics), `[n, features]` in [-1, 1], from noise
   * drawn with `seed` (the same seed gives the same images). A conditional model (cgan) takes `labels`: one for
   * every image, or a list they cycle through (default: upstream's grid order, image `i` of label `i % n_classes`).
   *
   * @param n Images.
   * @param options The seed (a number, as before) or {@link SampleOptions}.
   * @returns The images.
   */
  sample(n: number, options: number | SampleOptions = 0): Float32Array<ArrayBuffer> {
    if (!Number.isSafeInteger(n) || n < 1) throw new RangeError(`sample: n must be a positive integer, got ${n}`);
    const o = typeof options === "number" ? { seed: options } : options;
    const classes = classesOf(this.options);
    if (o.labels !== undefined && classes === undefined) {
      throw new RangeError(`sample: labels apply to a conditional model (cgan); model ${this.options.model} has none`);
    }
    const labels = classes === undefined ? undefined : sampleLabels(n, classes, o.labels);
    const { input } = this.options.generator, features = this.g.info().output;
    checkMemory(4 * n * (input + 2 * features + 1), `sample(${n})`, limitOf(this.options));
    const z = nativeNormal(o.seed ?? 0, 0, n * input, "sample");
    return this.g.forward(z, n, false, labels);
  }

  /** Writes a full checkpoint (and generator.safetensors beside it) atomically. */
  async saveCheckpoint(path: string): Promise<void> {
    const step = this.step;
    const config = configRecord(this.options);
    const r = this.options;
    await saveCheckpoint(
      path,
      { spec: r.generator, net: this.g },
      { spec: r.discriminator, net: this.d },
      { step, seed: r.seed, config, dataset: this.#dataId ?? undefined },
      { encoder: r.encoder && this.e ? { spec: r.encoder, net: this.e } : undefined },
    );
    const dir = path.includes("/") ? path.slice(0, path.lastIndexOf("/")) : ".";
    await saveGenerator(`${dir}/generator.safetensors`, this.g, config);
    this.#lastCheckpoint = path;
  }

  /**
   * Runs the loop to the end (or `maxSteps`), calling back per step, per sample grid and per checkpoint. One run at a
   * time: a second `run()` while one is in progress (from `Promise.all` or from inside a callback) is refused.
   */
  async run(cb: TrainCallbacks = {}): Promise<RunSummary> {
    if (this.#running) {
      throw new Error(
        "GanTrainer.run: a run is already in progress on this trainer (await it before starting another)",
      );
    }
    this.#running = true;
    try {
      return await this.#run(cb);
    } finally {
      this.#running = false;
    }
  }

  async #run(cb: TrainCallbacks): Promise<RunSummary> {
    const r = this.options;
    const start = this.step, total = this.totalSteps;
    const outDir = await this.#openOutputs();
    const metrics = outDir?.metrics;
    const fixedZ = nativeNormal(r.seed, 0, this.#fixedGrid().n * r.generator.input, "fixed"); // [n, latent]
    const clock = { t0: performance.now(), total, nb: this.gan.info().batches_per_epoch };
    const buf = new Float32Array(stepRecordLength() * r.stepsPerCall); // [stepsPerCall, record]
    let step = start;
    let final: StepEvent | null = null;
    try {
      while (step < total) {
        const n = this.#chunkLength(step, total);
        const results = this.#stepChunk(n, buf, step);
        final = await this.#emitSteps(results, step, clock, metrics, cb) ?? final;
        step += n;
        if ((step - 1) % r.sampleInterval === 0) await this.#writeGrids(step - 1, fixedZ, cb);
        await this.#evalIfDue(step, total, metrics, cb);
        await this.#checkpointIfDue(step, total, cb);
      }
      if (outDir && step === total) await this.#writeRunRecord({ finished: new Date().toISOString() });
    } finally {
      outDir?.close();
    }
    const seconds = (performance.now() - clock.t0) / 1000;
    return {
      steps: step - start,
      seconds,
      stepsPerSecond: (step - start) / Math.max(seconds, 1e-9),
      lastCheckpoint: this.#lastCheckpoint,
      final,
    };
  }

  /**
   * Opens the output folder for this run (nothing without an outDir): locked (released by the run's end), no links
   * followed, an interrupted run's leftovers removed, metrics cut back to a resumed step, the generator file in step
   * with the latest checkpoint; then writes run.json.
   */
  async #openOutputs(): Promise<OutDir | undefined> {
    const r = this.options, out = r.outDir;
    if (!out) return undefined;
    const step = this.step;
    const outDir = OutDir.open(out, { resumeStep: step > 0 ? step : undefined });
    try {
      await syncGeneratorFile(`${out}/checkpoints`, checkpointSizeLimit(r.generator, r.discriminator, r.encoder));
      this.#runRecord = {
        config: configRecord(r),
        eval: r.evalEvery > 0 ? { every: r.evalEvery, n: r.evalN } : null,
        resumed_from: r.resume ?? null,
        dataset: this.#dataId,
        backend: this.backendInfo(),
        versions: { deno: Deno.version.deno, v8: Deno.version.v8, typescript: Deno.version.typescript },
        started: new Date().toISOString(),
      };
      await this.#writeRunRecord({});
      return outDir;
    } catch (e) {
      outDir.close();
      throw e;
    }
  }

  /** Steps of the next native call: at most stepsPerCall, ending right after a sampled step or at a checkpoint. */
  #chunkLength(step: number, total: number): number {
    const r = this.options;
    let n = Math.min(total - step, r.stepsPerCall);
    // End the call right after a sampled step, so that its generated batch can be read.
    const nextSample = Math.ceil(step / r.sampleInterval) * r.sampleInterval;
    n = Math.min(n, nextSample - step + 1);
    for (const every of [r.checkpointEvery, r.evalEvery]) {
      if (every > 0) n = Math.min(n, (Math.floor(step / every) + 1) * every - step);
    }
    return n;
  }

  /** Runs `n` native steps; a step the library reports as diverged becomes a {@link DivergenceError}. */
  #stepChunk(n: number, buf: Float32Array<ArrayBuffer>, step: number): StepResult[] {
    try {
      return decodeSteps(this.gan.stepRaw(n, buf.subarray(0, stepRecordLength() * n)));
    } catch (e) {
      // The library stops a call at the first step whose loss or updated parameters are NaN or infinite.
      if (e instanceof NativeError && e.status === "Diverged") {
        const at = this.gan.info().diverged_step ?? step;
        throw new DivergenceError(at, this.#lastCheckpoint, e.nativeMessage);
      }
      throw e;
    }
  }

  /** Logs and reports each step of a chunk; returns the last event (null for none). */
  async #emitSteps(
    results: StepResult[],
    first: number,
    clock: { t0: number; total: number; nb: number },
    metrics: MetricsLog | undefined,
    cb: TrainCallbacks,
  ): Promise<StepEvent | null> {
    let last: StepEvent | null = null;
    for (const [i, res] of results.entries()) {
      const s = first + i;
      const e: StepEvent = {
        step: s,
        epoch: Math.floor(s / clock.nb),
        batch: s % clock.nb,
        batchesPerEpoch: clock.nb,
        nEpochs: this.options.nEpochs,
        totalSteps: clock.total,
        ...res,
        time: (performance.now() - clock.t0) / 1000,
      };
      if (![e.dLoss, e.gLoss].every(Number.isFinite)) {
        throw new DivergenceError(s, this.#lastCheckpoint, `step ${s}: D loss ${e.dLoss}, G loss ${e.gLoss}`);
      }
      metrics?.append({
        step: s,
        epoch: e.epoch,
        batch: e.batch,
        d_loss: e.dLoss,
        g_loss: e.gLoss,
        d_real: e.dReal,
        d_fake: e.dFake,
        time: Number(e.time.toFixed(4)),
      });
      last = e;
      await cb.onStep?.(e);
    }
    return last;
  }

  /**
   * The fixed-noise grid: 25 images, 5 per row; for aae upstream's `sample_image(n_row=10)`, 10 rows of 10 images of
   * the decoder; for a conditional model upstream's `sample_image` grid, `n_row = n_classes` rows of `n_row` images
   * whose labels are 0..n_row-1 within each row (each column one class), at most 32 x 32.
   */
  #fixedGrid(): { n: number; nrow: number; labels?: Uint32Array<ArrayBuffer> } {
    const classes = classesOf(this.options);
    if (hasEncoder(this.options.model)) return { n: AAE_GRID_ROWS ** 2, nrow: AAE_GRID_ROWS };
    if (classes === undefined) return { n: 25, nrow: 5 };
    const side = Math.min(classes, MAX_GRID_CLASSES);
    return { n: side * side, nrow: side, labels: sampleLabels(side * side, side) };
  }

  /** The grids of a sampled step: the first 25 images of its batch and the fixed-noise grid (eval mode). */
  async #writeGrids(step: number, fixedZ: Float32Array<ArrayBuffer>, cb: TrainCallbacks): Promise<void> {
    const { imgSize: side, channels: ch, outDir: out } = this.options;
    const fake = this.g.lastOutput(); // [rows, ch * side * side]
    const k = Math.min(25, fake.length / (ch * side * side));
    const images = fake.slice(0, k * ch * side * side);
    const paths: string[] = [];
    if (out) {
      // Loaded on first use, and not by a literal specifier (Deno fetches those with the module): importing the
      // library pulls in no PNG encoder (an npm package) until a grid is written.
      const { saveGrid } = await import(`../io/${PNG_FILE}`) as typeof import("../io/png.ts");
      const grid = { nrow: 5, normalize: true };
      paths.push(`${out}/images/${step}.png`);
      await saveGrid(paths[0], images, k, ch, side, side, grid);
      const f = this.#fixedGrid();
      const fixed = this.g.forward(fixedZ, f.n, false, f.labels); // [n, ch * side * side]
      paths.push(`${out}/images/fixed_${step}.png`);
      await saveGrid(paths[1], fixed, f.n, ch, side, side, { nrow: f.nrow, normalize: true });
    }
    await cb.onSample?.({ step, images, paths });
  }

  /** Adds `fields` to the run's record and writes it to run.json (atomically). */
  async #writeRunRecord(fields: Record<string, unknown>): Promise<void> {
    const out = this.options.outDir;
    if (!out || !this.#runRecord) return;
    Object.assign(this.#runRecord, fields);
    const text = JSON.stringify(this.#runRecord, null, 2) + "\n";
    await writeFileAtomic(`${out}/run.json`, new TextEncoder().encode(text));
  }

  /**
   * Scores the generator every evalEvery steps and at the end of the run: an eval row in metrics.jsonl, `onEval`,
   * and at the end `final_eval` in run.json. The real side is prepared at the first evaluation and kept.
   */
  async #evalIfDue(step: number, total: number, metrics: MetricsLog | undefined, cb: TrainCallbacks): Promise<void> {
    const every = this.options.evalEvery;
    if (every === 0 || (step % every !== 0 && step !== total)) return;
    const t0 = performance.now();
    this.#evaluator ??= await Evaluator.create(this.dataset, {
      context: this.ctx,
      n: this.options.evalN,
      cacheDir: this.options.evalCacheDir,
      classifier: this.options.evalClassifier,
      memoryLimit: this.options.memoryLimit,
      onClassifierTraining: cb.onNote,
    });
    const result = await this.#evaluator.score(this.g);
    const seconds = (performance.now() - t0) / 1000;
    const epoch = Math.floor((step - 1) / this.gan.info().batches_per_epoch);
    const record = resultRecord(result);
    const { reference: _, ...row } = record;
    metrics?.append({ kind: "eval", step, epoch, ...row, seconds: Number(seconds.toFixed(3)) });
    if (step === total) await this.#writeRunRecord({ final_eval: { step, ...record } });
    await cb.onEval?.({ step, result, seconds });
  }

  /** Writes latest.safetensors every checkpointEvery steps and at the end of the run. */
  async #checkpointIfDue(step: number, total: number, cb: TrainCallbacks): Promise<void> {
    const { outDir: out, checkpointEvery } = this.options;
    const due = checkpointEvery > 0 && step % checkpointEvery === 0;
    if (!out || !(due || step === total)) return;
    const path = `${out}/checkpoints/latest.safetensors`;
    try {
      await this.saveCheckpoint(path);
    } catch (e) {
      // The GPU backend sees divergence in the losses only; a NaN that never reached them is caught here.
      if (e instanceof NonFiniteStateError) {
        throw new DivergenceError(step, this.#lastCheckpoint, `after step ${step - 1}: ${e.message}`);
      }
      throw e;
    }
    await cb.onCheckpoint?.({ step, path });
  }

  /** Releases the native objects. */
  close(): void {
    this.#evaluator?.close();
    this.#evaluator = null;
    this.gan.close();
    this.e?.close();
    this.d.close();
    this.g.close();
    this.ctx.close();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
