/**
 * deno-gan: train GANs from Deno. TypeScript runs the loop, the data and the files; a Rust library (called through
 * Deno FFI) runs fused forward and backward passes of the MLP layers, the losses and Adam.
 *
 * Train the seed's GAN (PyTorch-GAN's gan.py) on any u8 image set, with a callback per step and per sample grid:
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GanTrainer } from "./mod.ts";
 *
 * const pixels = new Uint8Array(64 * 49).map((_, i) => (i * 37) % 256); // 64 images of 7x7
 * const data = { name: "toy", count: 64, height: 7, width: 7, channels: 1, pixels };
 * using trainer = await GanTrainer.create(data, { backend: "cpu", imgSize: 7, latentDim: 8, batchSize: 16, nEpochs: 2 });
 * const losses: number[] = [];
 * const summary = await trainer.run({ onStep: (e) => void losses.push(e.dLoss) });
 * assert.equal(summary.steps, 8);
 * assert.equal(trainer.sample(4, 1).length, 4 * 49); // 4 images from the generator in eval mode
 * ```
 *
 * The building blocks, for other loops:
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Context, NativeGan, NativeMlp, seedDiscriminator, seedGenerator } from "./mod.ts";
 *
 * using ctx = new Context({ backend: "cpu" });
 * using g = new NativeMlp(ctx, seedGenerator());
 * using d = new NativeMlp(ctx, seedDiscriminator());
 * assert.ok(g.info().params[0].name === "model.0.weight");
 * ```
 *
 * The models of PyTorch-GAN that `GanTrainer` trains (`model`), with upstream's defaults, in one table:
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODELS, resolveModelOptions } from "./mod.ts";
 *
 * assert.deepEqual([MODELS.wgan.optimizer, MODELS.wgan.lr], ["rmsprop", 5e-5]);
 * assert.deepEqual(resolveModelOptions("wgan_gp", { lambdaGp: 5 }), {
 *   n_critic: 5,
 *   lambda_gp: 5,
 *   gp_norm: "sample",
 *   gp_clip: false,
 *   clip_value: 0.01,
 *   channels: 1, // the run's (the pixel norm's channels)
 * });
 * assert.throws(() => resolveModelOptions("gan", { nCritic: 5 }), /nCritic applies to wgan, wgan_gp, wgan_div/);
 * ```
 *
 * A conditional model (cgan, `model: "cgan"`) trains on the dataset's labels, and its samples take labels: one for
 * every image, or a list the images cycle through (upstream's grid order `i % n_classes` by default):
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GanTrainer } from "./mod.ts";
 *
 * const pixels = new Uint8Array(64 * 49).map((_, i) => (i * 37) % 256); // 64 images of 7x7
 * const labels = new Uint8Array(64).map((_, i) => i % 3); // three classes
 * const data = { name: "toy", count: 64, height: 7, width: 7, channels: 1, pixels, labels };
 * using cgan = await GanTrainer.create(data, { model: "cgan", nClasses: 3, backend: "cpu", imgSize: 7, latentDim: 8, batchSize: 16, maxSteps: 2 });
 * await cgan.run();
 * const twos = cgan.sample(4, { labels: 2, seed: 1 }); // 4 images of label 2
 * assert.equal(twos.length, 4 * 49);
 * assert.deepEqual(cgan.sample(2, { labels: [0, 1] }), cgan.sample(2)); // the default order: 0, 1, 2, 0, ...
 * assert.throws(() => cgan.sample(1, { labels: 3 }), /label 3 is not a class of this generator/);
 * ```
 *
 * Sample quality, from features of real and generated samples (e.g. a classifier's penultimate activations) and from
 * the classifier's probabilities:
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { classStats, computeMetrics } from "./mod.ts";
 *
 * const features = (shift: number) => ({ data: Float32Array.from({ length: 800 }, (_, i) => Math.sin(i) + shift), n: 200, d: 4 });
 * const m = await computeMetrics(features(0), features(0.5), { kidSubsets: 10, kidSubsetSize: 100 });
 * assert.ok(Math.abs(m.fid - 4 * 0.5 ** 2) < 1e-4); // the same spread, shifted: FID is |mu1 - mu2|^2
 * assert.ok(m.kid.mean > 0 && m.precision < 1);
 * const certain = { data: new Float32Array([1, 0, 0, 1, 1, 0]), n: 3, d: 2 }; // classes 0, 1, 0
 * assert.equal(classStats(certain, [0, 1, 0, 1]).covered, 2);
 * ```
 *
 * A self-contained HTML report of a run folder (charts, grids, scores and settings inlined; the page loads nothing):
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeReport } from "./mod.ts";
 *
 * const dir = await Deno.makeTempDir(); // a run folder, as GanTrainer writes it with outDir
 * await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify({ config: { batch_size: 64 } }));
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":0,"d_loss":0.69,"g_loss":0.71,"d_real":0.5,"d_fake":0.49}\n');
 * const { path, bytes } = await writeReport(dir); // `${dir}/report.html`
 * assert.ok(path.endsWith("/report.html") && bytes > 50_000); // uPlot is inside
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

export {
  type AdamOptions,
  type BackendInfo,
  type BackendName,
  Context,
  type ContextOptions,
  decodeSteps,
  describeSpec,
  type GanConfig,
  type GanInfo,
  type Handle,
  liveHandles,
  type LossResult,
  MAX_NOISE_VALUES,
  MAX_STEPS_PER_CALL,
  type MlpBuffer,
  type MlpInfo,
  nativeAdam,
  nativeBce,
  NativeGan,
  NativeMlp,
  nativeNormal,
  nativePermutation,
  nativeSigmoidBce,
  nativeSoftmaxCrossEntropy,
  type NativeTensorInfo,
  type NoiseDomain,
  SEED_ADAM,
  stepRecordLength,
  type StepResult,
} from "./src/native/handles.ts";
export {
  type Activation,
  type BatchNormSpec,
  checkEmbedding,
  checkHeads,
  checkSpecFields,
  EMBEDDING_NAME,
  type EmbeddingSpec,
  GAN_LOSSES,
  type GanLoss,
  type HeadSpec,
  type LayerSpec,
  MAX_EMBEDDING_CLASSES,
  type MlpSpec,
  seedDiscriminator,
  seedGenerator,
  specJson,
  type TensorInfo,
  type TensorLayout,
} from "./src/model/spec.ts";
export {
  checkModel,
  conditionalModels,
  encoderModels,
  GAN_MODELS,
  type GanModel,
  type GanModelOptions,
  type GanOptimizer,
  hasEncoder,
  isConditional,
  MAX_CLASSES,
  MODEL_OPTIONS,
  modelDiscriminator,
  modelEncoder,
  modelGenerator,
  type ModelInfo,
  type ModelOptionKind,
  type ModelOptionSpec,
  type ModelOptionValue,
  MODELS,
  modelsWithOption,
  optionValueProblem,
  resolveModelOptions,
  resolveNClasses,
  updatesGenerator,
  whyOptionDoesNotApply,
} from "./src/model/models.ts";
export { checkDatasetLabels, labelProblem, type SampleLabels, sampleLabels } from "./src/model/labels.ts";
export {
  DEFAULT_RELEASE_URL,
  type LibraryLocation,
  type LoadOptions,
  prefetchNativeLibrary,
  type PrefetchOptions,
  type PrefetchResult,
} from "./src/native/loader.ts";
export {
  loadNativeLibrary,
  type NativeContract,
  nativeContract,
  NativeError,
  type NativeModelDefaults,
} from "./src/native/ffi.ts";
export { LIBRARY_ENV_VARS, type ManifestEntry, type ReleaseManifest } from "./src/native/fetch.ts";
export type { FetchImpl } from "./src/io/download.ts";
export {
  type CheckpointInfo,
  loadCheckpoint,
  type LoadCheckpointOptions,
  loadStateDict,
  type NetworkState,
  readCheckpoint,
  saveCheckpoint,
  saveGenerator,
  stateDictEntries,
} from "./src/train/checkpoint.ts";
export {
  DivergenceError,
  type EvalEvent,
  GanTrainer,
  MAX_GRID_CLASSES,
  type ResolvedTrainOptions,
  type RunSummary,
  type SampleEvent,
  type SampleOptions,
  SEED_DEFAULTS,
  type StepEvent,
  type TrainCallbacks,
  type TrainOptions,
} from "./src/train/trainer.ts";
export {
  type Dataset,
  type EmbeddedMnistOptions,
  type IdxSplit,
  loadEmbeddedMnist,
  loadIdxDataset,
  type LoadIdxDatasetOptions,
  pixelsToFloat,
  resizeBilinear,
  type ResizeOptions,
} from "./src/data/dataset.ts";
export type { DatasetIdentity } from "./src/data/identity.ts";
export { DirLockedError, type LockInfo } from "./src/io/lock.ts";
export type {
  Dtype,
  DtypeArray,
  ReadSafetensorsFileOptions,
  Tensor,
  TensorData,
  TensorEntry,
  TensorMap,
} from "./src/io/safetensors.ts";
export type { IdxReadOptions } from "./src/data/idx.ts";
export { computeMetrics, type Metrics, type MetricsOptions, RealSide } from "./src/eval/metrics.ts";
export {
  estimateEvalBytes,
  evaluate,
  type EvaluateOptions,
  type EvaluateResult,
  evaluationLabels,
  Evaluator,
  type QualityRecord,
  qualityRecord,
  type QualityRow,
  type ResultRecord,
  resultRecord,
} from "./src/eval/evaluate.ts";
export { formatTable, labelAccuracyLine } from "./src/eval/table.ts";
export {
  type CachedClassifier,
  type CachedClassifierOptions,
  Classifier,
  type ClassifierOptions,
  FEATURE_DIM,
  loadOrTrainClassifier,
  trainClassifier,
} from "./src/eval/classifier.ts";
export {
  type ClassStats,
  classStats,
  type ClassStatsOptions,
  type LabelAccuracy,
  labelAccuracy,
} from "./src/eval/class_stats.ts";
export type { Features } from "./src/eval/features.ts";
export { loadChartAssets, writeReport, type WriteReportOptions, type WriteReportResult } from "./src/report/write.ts";
export { buildReportHtml, type BuildReportOptions, type ChartAssets } from "./src/report/report.ts";
export {
  EVAL_FIELDS,
  type EvalPoint,
  type GridImage,
  readRunFolder,
  type ReadRunOptions,
  type RunFolder,
  STEP_FIELDS,
} from "./src/report/run_files.ts";
export { type DownsampledSeries, Downsampler } from "./src/report/series.ts";
export {
  buildSite,
  exportSite,
  type F16Error,
  loadWebAssets,
  SITE_FORMAT,
  type SiteFile,
  type SiteModel,
  type SiteOptions,
} from "./src/web/site.ts";
export type { WebAssets } from "./src/web/page_html.ts";
