/**
 * The models `train --model` knows: PyTorch-GAN's MLP models (eriklindernoren/PyTorch-GAN, `implementations/<name>`)
 * whose step the native library runs, each with upstream's defaults, and the one table of their options. The library
 * states the same table in its contract (`nativeContract().models`; a test ties the two). The step of each model is in
 * bench/reference/FAMILY.md.
 *
 * @example Usage
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODELS, modelDiscriminator, resolveModelOptions } from "./models.ts";
 *
 * assert.equal(MODELS.wgan.lr, 5e-5); // RMSprop, as wgan.py
 * assert.equal(modelDiscriminator("wgan").layers.at(-1)!.act.kind, "none"); // a critic: a raw score
 * assert.deepEqual(resolveModelOptions("wgan", { nCritic: 2 }), { n_critic: 2, clip_value: 0.01 });
 * assert.equal(resolveModelOptions("wgan_gp", { channels: 1 }).channels, 1); // the run's, sent to the library
 * ```
 *
 * @module
 */

import { type Activation, GAN_LOSSES, type GanLoss, type MlpSpec, seedDiscriminator, seedGenerator } from "./spec.ts";

/**
 * The model names, in the order `--help` and the README list them.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GAN_MODELS } from "./models.ts";
 * assert.equal(GAN_MODELS[0], "gan"); // the seed's, the default
 * ```
 */
export const GAN_MODELS = ["gan", "bgan", "softmax_gan", "wgan", "wgan_gp", "wgan_div", "cgan", "aae"] as const;

/** One of {@link GAN_MODELS}. */
export type GanModel = typeof GAN_MODELS[number];

/** The optimizer of both networks: PyTorch's Adam, or its RMSprop (alpha 0.99, no momentum; wgan's). */
export type GanOptimizer = "adam" | "rmsprop";

/** A model option's value, as the native GAN config and the checkpoints hold it. */
export type ModelOptionValue = number | string | boolean;

/** The kinds of model option values. */
export type ModelOptionKind = "int" | "number" | "bool" | "choice";

/**
 * One model option: its name in {@link GanModelOptions} (and `TrainOptions`), its kind, and its help line. Its key in
 * {@link MODEL_OPTIONS} is its name in the native GAN config, in checkpoints and on the command line (`--n_critic`).
 */
export interface ModelOptionSpec {
  /** The option's name in `TrainOptions`. */
  readonly option: keyof GanModelOptions | "channels";
  /**
   * Whether its value is a setting of the whole run (wgan_gp's `channels`: `TrainOptions.channels`), not an option of
   * its own: never refused for another model, and no flag of its own.
   */
  readonly fromRun?: boolean;
  /** Its values: an integer or a finite number (from `min` to `max`), a boolean, or one of `choices`. */
  readonly kind: ModelOptionKind;
  /** The least value of a number (or the bound it must exceed, with `above`). */
  readonly min?: number;
  /** Whether a number must be above `min` rather than at least `min`. */
  readonly above?: boolean;
  /** The largest value of an integer. */
  readonly max?: number;
  /** The values of a `choice`. */
  readonly choices?: readonly string[];
  /** The help line of its flag. */
  readonly help: string;
}

/** The per-model options of a run (see {@link MODEL_OPTIONS} for what each is and {@link MODELS} for who takes it). */
export interface GanModelOptions {
  /** gan and cgan: the adversarial loss (default gan's `bce`, the seed's, cgan's `mse`; see `GAN_LOSSES`). */
  loss?: GanLoss;
  /** wgan, wgan_gp, wgan_div: the generator updates at batch indices (within the epoch) divisible by it (default 5). */
  nCritic?: number;
  /** wgan (and wgan_gp with `gpClip`): the critic's parameters are clamped to [-clipValue, clipValue] (default 0.01). */
  clipValue?: number;
  /** wgan_gp: the weight of the gradient penalty (default 10). */
  lambdaGp?: number;
  /** wgan_gp: the penalty's norm, `sample` (per image, upstream's HEAD; default) or `pixel` (upstream's issue 20). */
  gpNorm?: "sample" | "pixel";
  /** wgan_gp: clamp the critic as wgan does too (upstream's dead `--clip_value`, issue 196; default false). */
  gpClip?: boolean;
  /** wgan_div: the penalty's k (default 2). */
  divK?: number;
  /** wgan_div: the penalty's power p (default 6). */
  divP?: number;
  /** softmax_gan: G's gradient through D's weights before its update (default false: upstream's late weights). */
  softmaxFreshD?: boolean;
  /** softmax_gan: G follows grad(g_loss) alone (default false: upstream's grad(d_loss) + grad(g_loss)). */
  softmaxGLossOnly?: boolean;
}

/**
 * Every model option by its native key: its `TrainOptions` name, its kind and its help line.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODEL_OPTIONS } from "./models.ts";
 * assert.equal(MODEL_OPTIONS.n_critic.option, "nCritic");
 * assert.deepEqual(MODEL_OPTIONS.gp_norm.choices, ["sample", "pixel"]);
 * ```
 */
export const MODEL_OPTIONS: Readonly<Record<string, ModelOptionSpec>> = {
  loss: {
    option: "loss",
    kind: "choice",
    choices: GAN_LOSSES,
    help: "adversarial loss: bce (the seed's), mse (LSGAN; cgan's default), hinge, relativistic (RSGAN), " +
      "relativistic_avg (RaGAN); all but bce train a D that ends in a linear layer",
  },
  n_critic: {
    option: "nCritic",
    kind: "int",
    min: 1,
    max: 2 ** 20,
    help: "the generator updates at batch indices (within the epoch) divisible by it; the critic every batch",
  },
  clip_value: {
    option: "clipValue",
    kind: "number",
    min: 0,
    above: true,
    help: "the critic's parameters are clamped to [-clip_value, clip_value] after each update",
  },
  lambda_gp: { option: "lambdaGp", kind: "number", min: 0, help: "the weight of the gradient penalty" },
  gp_norm: {
    option: "gpNorm",
    kind: "choice",
    choices: ["sample", "pixel"],
    help: "the penalty's gradient norm: per image (upstream's HEAD) or per pixel (upstream before its fix, issue 20)",
  },
  gp_clip: {
    option: "gpClip",
    kind: "bool",
    help: "also clamp the critic to [-clip_value, clip_value], as wgan does (upstream parses the flag, unused)",
  },
  channels: {
    option: "channels",
    kind: "int",
    min: 1,
    fromRun: true,
    help: "the images' channels (wgan_gp's pixel norm takes each pixel's gradient over them)",
  },
  div_k: { option: "divK", kind: "number", min: 0, help: "the k of the divergence penalty k/2 mean(|grad D|^p)" },
  div_p: { option: "divP", kind: "number", min: 1, help: "the p of the divergence penalty" },
  softmax_fresh_d: {
    option: "softmaxFreshD",
    kind: "bool",
    help: "G's g_loss gradient through D's weights before their update (upstream, for PyTorch 0.4: after it)",
  },
  softmax_g_loss_only: {
    option: "softmaxGLossOnly",
    kind: "bool",
    help: "G follows the gradient of g_loss alone (upstream: of d_loss + g_loss)",
  },
};

/**
 * What a value of an option must be, in words, or null when `v` is one.
 *
 * @param spec The option.
 * @param v The value (from a caller: anything).
 * @returns The rule it breaks (`an integer in [1, 1048576]`), or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODEL_OPTIONS, optionValueProblem } from "./models.ts";
 * assert.equal(optionValueProblem(MODEL_OPTIONS.n_critic, 2.5), "an integer in [1, 1048576]");
 * assert.equal(optionValueProblem(MODEL_OPTIONS.lambda_gp, 0), null);
 * ```
 */
export function optionValueProblem(spec: ModelOptionSpec, v: unknown): string | null {
  const min = spec.min ?? -Infinity, max = spec.max ?? Infinity;
  switch (spec.kind) {
    case "int": {
      const ok = Number.isSafeInteger(v) && (v as number) >= min && (v as number) <= max;
      return ok ? null : spec.max === undefined ? `an integer >= ${min}` : `an integer in [${min}, ${max}]`;
    }
    case "number": {
      const ok = typeof v === "number" && Number.isFinite(v) && (spec.above ? v > min : v >= min);
      return ok ? null : `a finite number ${spec.above ? ">" : ">="} ${min}`;
    }
    case "bool":
      return typeof v === "boolean" ? null : "true or false";
    case "choice":
      return spec.choices!.includes(v as string) ? null : `one of ${spec.choices!.join(", ")}`;
  }
}

/** What one model is: upstream's defaults, its discriminator's output and its options with their defaults. */
export interface ModelInfo {
  /** One line on what it is. */
  readonly description: string;
  /** Upstream's script. */
  readonly upstream: string;
  /** The optimizer of both networks. */
  readonly optimizer: GanOptimizer;
  /** The learning rate of both networks. */
  readonly lr: number;
  /** Adam's beta1 (upstream's 0.5 for every model; unused by RMSprop). */
  readonly b1: number;
  /** Adam's beta2 (upstream's 0.999 for every model; unused by RMSprop). */
  readonly b2: number;
  /** How the discriminator (critic) ends: a Sigmoid (a probability) or a linear layer (a score). */
  readonly dOutput: "sigmoid" | "linear";
  /** The model's options (keys of {@link MODEL_OPTIONS}) and their defaults; no other option applies to it. */
  readonly options: Readonly<Record<string, ModelOptionValue>>;
  /** Upstream's default image side (`--img_size`): 28, cgan's and aae's 32 (their transforms resize the digits). */
  readonly imgSize: number;
  /** Upstream's default noise size (`--latent_dim`): 100, aae's 10 (the size of its code). */
  readonly latentDim: number;
  /**
   * The generator's BatchNorm eps (`--bn_eps`): the generators' `BatchNorm1d(out, 0.8)` sets it to 0.8 (upstream's
   * quirk); aae's `BatchNorm1d(512)` keeps PyTorch's 1e-5, in its decoder and its encoder.
   */
  readonly bnEps: number;
  /**
   * Whether the model trains a third network, an encoder of the images (aae: an adversarial autoencoder, whose
   * generator is the decoder and whose discriminator judges codes, not images). Absent for the others.
   */
  readonly encoder?: boolean;
  /**
   * A conditional model's default number of classes (`--n_classes`, upstream's 10): its networks embed a label per
   * image, its training reads the dataset's labels and its samples take labels. Absent for the others.
   */
  readonly nClasses?: number;
}

const BETAS = { b1: 0.5, b2: 0.999 } as const;
const ADAM = { optimizer: "adam", lr: 2e-4, ...BETAS } as const;
const IMG28 = { imgSize: 28, latentDim: 100, bnEps: 0.8 } as const;

/**
 * The models and their upstream defaults (Adam's betas are 0.5 and 0.999 for all of them that use Adam).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { MODELS } from "./models.ts";
 * assert.equal(MODELS.wgan.optimizer, "rmsprop");
 * assert.deepEqual(MODELS.wgan_div.options, { n_critic: 5, div_k: 2, div_p: 6 });
 * ```
 */
export const MODELS: Readonly<Record<GanModel, ModelInfo>> = {
  gan: {
    description: "the vanilla GAN (Goodfellow et al., 2014), the seed; other adversarial losses with --loss",
    upstream: "implementations/gan/gan.py",
    ...ADAM,
    dOutput: "sigmoid",
    options: { loss: "bce" },
    ...IMG28,
  },
  bgan: {
    description: "boundary-seeking GAN (Hjelm et al., 2017): G minimizes 0.5 mean(log D - log(1 - D))^2",
    upstream: "implementations/bgan/bgan.py",
    ...ADAM,
    dOutput: "sigmoid",
    options: {},
    ...IMG28,
  },
  softmax_gan: {
    description: "Softmax GAN (Lin, 2017): the softmax over the batch's real and fake scores",
    upstream: "implementations/softmax_gan/softmax_gan.py",
    ...ADAM,
    dOutput: "linear",
    options: { softmax_fresh_d: false, softmax_g_loss_only: false },
    ...IMG28,
  },
  wgan: {
    description: "Wasserstein GAN (Arjovsky et al., 2017): a weight-clipped critic, RMSprop",
    upstream: "implementations/wgan/wgan.py",
    optimizer: "rmsprop",
    lr: 5e-5,
    ...BETAS,
    dOutput: "linear",
    options: { n_critic: 5, clip_value: 0.01 },
    ...IMG28,
  },
  wgan_gp: {
    description: "WGAN with gradient penalty (Gulrajani et al., 2017)",
    upstream: "implementations/wgan_gp/wgan_gp.py",
    ...ADAM,
    dOutput: "linear",
    options: { n_critic: 5, lambda_gp: 10, gp_norm: "sample", gp_clip: false, clip_value: 0.01, channels: 1 },
    ...IMG28,
  },
  wgan_div: {
    description: "Wasserstein divergence GAN (Wu et al., 2018): the penalty k/2 mean(|grad D|^p) on reals and fakes",
    upstream: "implementations/wgan_div/wgan_div.py",
    ...ADAM,
    dOutput: "linear",
    options: { n_critic: 5, div_k: 2, div_p: 6 },
    ...IMG28,
  },
  cgan: {
    description: "conditional GAN (Mirza and Osindero, 2014): G and D see a label embedding; LSGAN's loss",
    upstream: "implementations/cgan/cgan.py",
    ...ADAM,
    dOutput: "linear",
    options: { loss: "mse" },
    imgSize: 32,
    latentDim: 100,
    bnEps: 0.8,
    nClasses: 10,
  },
  aae: {
    description: "adversarial autoencoder (Makhzani et al., 2015): an encoder, a decoder and a D on the latent code",
    upstream: "implementations/aae/aae.py",
    ...ADAM,
    dOutput: "sigmoid",
    options: {},
    imgSize: 32,
    latentDim: 10,
    bnEps: 1e-5,
    encoder: true,
  },
};

/**
 * Whether a model trains an encoder (see {@link ModelInfo.encoder}): a third network, built by {@link modelEncoder}.
 *
 * @param model The model.
 * @returns True for aae.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { hasEncoder } from "./models.ts";
 * assert.deepEqual([hasEncoder("aae"), hasEncoder("gan")], [true, false]);
 * ```
 */
export function hasEncoder(model: GanModel): boolean {
  return MODELS[model].encoder === true;
}

/** The models with an encoder, for messages (`aae`). */
export function encoderModels(): GanModel[] {
  return GAN_MODELS.filter(hasEncoder);
}

/**
 * Whether a model is conditional (its networks embed a label per image; see {@link ModelInfo.nClasses}).
 *
 * @param model The model.
 * @returns True for cgan.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { isConditional } from "./models.ts";
 * assert.deepEqual([isConditional("cgan"), isConditional("gan")], [true, false]);
 * ```
 */
export function isConditional(model: GanModel): boolean {
  return MODELS[model].nClasses !== undefined;
}

/** The conditional models, for messages (`cgan`). */
export function conditionalModels(): GanModel[] {
  return GAN_MODELS.filter(isConditional);
}

/**
 * Checks a conditional model's number of classes (`nClasses`, `--n_classes`): an integer in [1, 256] (the labels of
 * every dataset are bytes). Refused for a model that is not conditional.
 *
 * @param model The model.
 * @param nClasses The value given (undefined: the model's default).
 * @param name How the caller names it (default `nClasses`), for the message.
 * @returns The model's number of classes, or undefined for a model that is not conditional.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveNClasses } from "./models.ts";
 * assert.equal(resolveNClasses("cgan", undefined), 10);
 * assert.throws(() => resolveNClasses("gan", 10), /^RangeError: nClasses applies to cgan, not to model gan$/);
 * assert.throws(() => resolveNClasses("cgan", 0), /nClasses must be an integer in \[1, 256\], got 0/);
 * ```
 */
export function resolveNClasses(model: GanModel, nClasses: unknown, name = "nClasses"): number | undefined {
  const def = MODELS[model].nClasses;
  if (def === undefined) {
    if (nClasses !== undefined) {
      throw new RangeError(`${name} applies to ${conditionalModels().join(", ")}, not to model ${model}`);
    }
    return undefined;
  }
  const v = nClasses ?? def;
  if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > MAX_CLASSES) {
    throw new RangeError(
      `${name} must be an integer in [1, ${MAX_CLASSES}], got ${typeof v === "number" ? v : JSON.stringify(v)}`,
    );
  }
  return v as number;
}

/** The most classes of a conditional model: every dataset's labels are bytes. */
export const MAX_CLASSES = 256;

/**
 * Checks a model name.
 *
 * @param model The name (from a caller: anything).
 * @returns It, typed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkModel } from "./models.ts";
 * assert.throws(() => checkModel("dcgan"), /model must be one of gan, bgan, softmax_gan, wgan, wgan_gp, wgan_div, cgan, aae, got "dcgan"/);
 * ```
 */
export function checkModel(model: unknown): GanModel {
  if (!(GAN_MODELS as readonly unknown[]).includes(model)) {
    throw new RangeError(`model must be one of ${GAN_MODELS.join(", ")}, got ${JSON.stringify(model)}`);
  }
  return model as GanModel;
}

/**
 * The models an option applies to.
 *
 * @param key The option's native key (`n_critic`).
 * @returns The models whose {@link ModelInfo.options} have it.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelsWithOption } from "./models.ts";
 * assert.deepEqual(modelsWithOption("n_critic"), ["wgan", "wgan_gp", "wgan_div"]);
 * ```
 */
export function modelsWithOption(key: string): GanModel[] {
  return GAN_MODELS.filter((m) => key in MODELS[m].options);
}

/**
 * Why an option given for a model does not apply, or null when it does: it is not one of the model's options, or
 * (wgan_gp's `clip_value`) it has no effect without `gp_clip`.
 *
 * @param model The model.
 * @param key The option's native key.
 * @param gpClip Whether wgan_gp's `gp_clip` is on.
 * @param name How the caller names an option (default: its native key), for the reason.
 * @returns The reason, in words that follow the option's name, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { whyOptionDoesNotApply } from "./models.ts";
 * assert.equal(whyOptionDoesNotApply("gan", "n_critic", false), "applies to wgan, wgan_gp, wgan_div, not to model gan");
 * assert.equal(whyOptionDoesNotApply("wgan_gp", "clip_value", true), null);
 * ```
 */
export function whyOptionDoesNotApply(
  model: GanModel,
  key: string,
  gpClip: boolean,
  name: (key: string) => string = (k) => k,
): string | null {
  if (!(key in MODELS[model].options)) {
    const who = modelsWithOption(key);
    return `applies to ${who.join(", ")}, not to model ${model}`;
  }
  if (model === "wgan_gp" && key === "clip_value" && !gpClip) return `applies to wgan_gp only with ${name("gp_clip")}`;
  return null;
}

/**
 * A model's options with their defaults filled in and every value checked, by native key: what the native GAN config
 * and the checkpoints hold. An option given that does not apply to the model is refused (an undefined one is not
 * given).
 *
 * @param model The model.
 * @param given The options as `TrainOptions` names them (with the run's `channels`, which wgan_gp takes).
 * @returns The model's options, by native key, in the order of {@link ModelInfo.options}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { resolveModelOptions } from "./models.ts";
 * assert.deepEqual(resolveModelOptions("gan", {}), { loss: "bce" });
 * assert.throws(() => resolveModelOptions("wgan", { lambdaGp: 5 }), /lambdaGp applies to wgan_gp, not to model wgan/);
 * assert.throws(() => resolveModelOptions("wgan", { nCritic: 0 }), /nCritic must be an integer in \[1, 1048576\], got 0/);
 * ```
 */
export function resolveModelOptions(
  model: GanModel,
  given: GanModelOptions & { channels?: number },
): Record<string, ModelOptionValue> {
  const values = given as Record<string, unknown>;
  const gpClip = values.gpClip === true;
  for (const [key, spec] of Object.entries(MODEL_OPTIONS)) {
    if (values[spec.option] === undefined || spec.fromRun) continue;
    const why = whyOptionDoesNotApply(model, key, gpClip, (k) => MODEL_OPTIONS[k].option);
    if (why) throw new RangeError(`${spec.option} ${why}`);
  }
  const out: Record<string, ModelOptionValue> = {};
  for (const [key, def] of Object.entries(MODELS[model].options)) {
    const spec = MODEL_OPTIONS[key];
    const v = values[spec.option] ?? def;
    const problem = optionValueProblem(spec, v);
    const shown = typeof v === "number" ? String(v) : JSON.stringify(v);
    if (problem) throw new RangeError(`${spec.option} must be ${problem}, got ${shown}`);
    out[key] = v as ModelOptionValue;
  }
  return out;
}

/**
 * Whether the generator updates at batch `batch` of an epoch: always, except in the Wasserstein models, where it
 * updates at the batches divisible by `n_critic` (the critic updates at every batch).
 *
 * @param options A model's resolved options ({@link resolveModelOptions}): `n_critic` is the Wasserstein models'.
 * @param batch The batch index within its epoch (upstream's `i`).
 * @returns Whether that step updates G.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { updatesGenerator } from "./models.ts";
 * assert.deepEqual([0, 1, 5].map((i) => updatesGenerator({ n_critic: 5 }, i)), [true, false, true]);
 * ```
 */
export function updatesGenerator(options: Readonly<Record<string, ModelOptionValue>>, batch: number): boolean {
  const n = options.n_critic;
  return typeof n !== "number" || batch % n === 0;
}

/**
 * A model's generator: the seed's for all of them (see `seedGenerator`) but aae; cgan's has upstream's label embedding
 * `label_emb = Embedding(n_classes, n_classes)` in front, its row before the noise (`cat(label_emb(labels), z)`).
 * aae's is upstream's decoder: `latent -> 512 (LeakyReLU 0.2) -> 512 (BatchNorm1d(512), LeakyReLU 0.2) -> C*H*W
 * (Tanh)`, named `model.0`, `model.2`, `model.3` (BN), `model.5` as upstream's `Decoder`. The defaults are the
 * model's (upstream's): latent 100 (aae 10), img 28 (cgan and aae 32), BatchNorm eps 0.8 (aae 1e-5).
 *
 * @param model The model.
 * @param latentDim Noise size (aae: the code's size).
 * @param imgSize Image side.
 * @param channels Image channels.
 * @param bnEps BatchNorm eps (0.8, upstream's quirk; aae's 1e-5).
 * @param nClasses cgan: the classes (default 10); refused for the other models.
 * @returns The generator's spec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelGenerator } from "./models.ts";
 * assert.equal(modelGenerator("wgan_gp").layers.at(-1)!.out, 784);
 * assert.deepEqual(modelGenerator("cgan", 100, 32).embedding, { classes: 10, dim: 10, at: "first", name: "label_emb" });
 * assert.deepEqual(modelGenerator("aae").layers.map((l) => l.out), [512, 512, 1024]); // the decoder, from 10
 * ```
 */
export function modelGenerator(
  model: GanModel,
  latentDim: number = MODELS[checkModel(model)].latentDim,
  imgSize: number = MODELS[model].imgSize,
  channels = 1,
  bnEps: number = MODELS[model].bnEps,
  nClasses?: number,
): MlpSpec {
  checkModel(model);
  const classes = resolveNClasses(model, nClasses);
  if (hasEncoder(model)) {
    checkSizes({ latentDim, imgSize, channels }, bnEps);
    return {
      input: latentDim,
      layers: [
        { out: 512, bn: null, act: lrelu() },
        { out: 512, bn: { eps: bnEps, momentum: 0.1 }, act: lrelu() },
        { out: channels * imgSize * imgSize, bn: null, act: { kind: "tanh" } },
      ],
    };
  }
  const spec = seedGenerator(latentDim, imgSize, channels, bnEps);
  if (classes === undefined) return spec;
  return {
    input: spec.input,
    embedding: { classes, dim: classes, at: "first", name: "label_emb" },
    layers: spec.layers,
  };
}

/**
 * A model's discriminator: the seed's `C*H*W -> 512 -> 256 -> 1`, ending in a Sigmoid or a linear layer as the model
 * (for gan: its loss) needs. softmax_gan's takes `img_size ** 2` inputs as upstream's does, so it is refused for
 * images of more than one channel. cgan's is upstream's: the image then `label_embedding = Embedding(n_classes,
 * n_classes)` (`cat(img, label_embedding(labels))`), `-> 512 -> 512 (Dropout 0.4) -> 512 (Dropout 0.4) -> 1`, every
 * hidden block LeakyReLU(0.2), linear at the end (a Sigmoid with `loss: "bce"`). aae's judges codes, not images:
 * `latent -> 512 -> 256 -> 1 (Sigmoid)`, LeakyReLU(0.2) between (`imgSize` and `channels` are then unused). The
 * image side defaults to the model's (28, cgan and aae 32).
 *
 * @param model The model.
 * @param imgSize Image side.
 * @param channels Image channels.
 * @param loss gan's and cgan's loss (default the model's: `bce`, cgan `mse`); no other model takes one.
 * @param nClasses cgan: the classes (default 10); refused for the other models.
 * @param latentDim aae: the code's size, its input (default 10); unused by the other models.
 * @returns The discriminator's spec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelDiscriminator } from "./models.ts";
 * assert.equal(modelDiscriminator("bgan").layers.at(-1)!.act.kind, "sigmoid");
 * assert.equal(modelDiscriminator("gan", 28, 1, "hinge").layers.at(-1)!.act.kind, "none");
 * assert.throws(() => modelDiscriminator("softmax_gan", 28, 3), /softmax_gan.*of 1 channel only/);
 * assert.deepEqual(modelDiscriminator("cgan", 32).layers.map((l) => l.dropout ?? 0), [0, 0.4, 0.4, 0]);
 * assert.equal(modelDiscriminator("aae").input, 10); // the latent code
 * ```
 */
export function modelDiscriminator(
  model: GanModel,
  imgSize: number = MODELS[checkModel(model)].imgSize,
  channels = 1,
  loss?: GanLoss,
  nClasses?: number,
  latentDim: number = MODELS[model].latentDim,
): MlpSpec {
  checkModel(model);
  if (loss !== undefined && !("loss" in MODELS[model].options)) {
    throw new RangeError(`loss applies to ${modelsWithOption("loss").join(", ")}, not to model ${model}`);
  }
  const classes = resolveNClasses(model, nClasses);
  if (hasEncoder(model)) {
    checkSizes({ latentDim });
    return { ...seedDiscriminator(imgSize, channels, "bce"), input: latentDim };
  }
  if (classes !== undefined) {
    const l = loss ?? MODELS[model].options.loss as GanLoss;
    const seed = seedDiscriminator(imgSize, channels, l); // checks the sizes and the loss
    return {
      input: seed.input,
      embedding: { classes, dim: classes, at: "last", name: "label_embedding" },
      layers: [
        { out: 512, bn: null, act: lrelu() },
        { out: 512, bn: null, act: lrelu(), dropout: 0.4 },
        { out: 512, bn: null, act: lrelu(), dropout: 0.4 },
        { out: 1, bn: null, act: { ...seed.layers[2].act } },
      ],
    };
  }
  if (model === "softmax_gan" && channels !== 1) {
    throw new RangeError(
      `softmax_gan's discriminator takes img_size ** 2 inputs as upstream's does, which fits images of 1 channel ` +
        `only, got ${channels} channels`,
    );
  }
  if (model === "gan") return seedDiscriminator(imgSize, channels, loss ?? "bce");
  return seedDiscriminator(imgSize, channels, MODELS[model].dOutput === "sigmoid" ? "bce" : "mse");
}

/**
 * A model's encoder (aae, the one model with one; see {@link hasEncoder}): upstream's `Encoder`, `C*H*W -> 512
 * (LeakyReLU 0.2) -> 512 (BatchNorm1d(512), LeakyReLU 0.2)`, then its two heads `mu = Linear(512, latent)` and
 * `logvar = Linear(512, latent)` as one Linear to `2 * latent` with no activation whose `heads` name its rows
 * `[mu, logvar]`: the tensors `model.0`, `model.2`, `model.3` (BN), `mu` and `logvar`, upstream's `state_dict`. The
 * code is `eps * exp(logvar / 2) + mu` (in the library's step). Refused for the other models.
 *
 * @param model The model.
 * @param imgSize Image side (default the model's: 32).
 * @param channels Image channels.
 * @param latentDim The code's size (default the model's: 10).
 * @param bnEps BatchNorm eps (default the model's: PyTorch's 1e-5).
 * @returns The encoder's spec.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { modelEncoder } from "./models.ts";
 * const e = modelEncoder("aae");
 * assert.equal(e.input, 1024);
 * assert.deepEqual(e.layers.at(-1)!.heads, [{ name: "mu", out: 10 }, { name: "logvar", out: 10 }]);
 * assert.throws(() => modelEncoder("gan"), /^RangeError: model gan has no encoder \(aae has one\)$/);
 * ```
 */
export function modelEncoder(
  model: GanModel,
  imgSize: number = MODELS[checkModel(model)].imgSize,
  channels = 1,
  latentDim: number = MODELS[model].latentDim,
  bnEps: number = MODELS[model].bnEps,
): MlpSpec {
  checkModel(model);
  if (!hasEncoder(model)) {
    throw new RangeError(`model ${model} has no encoder (${encoderModels().join(", ")} has one)`);
  }
  checkSizes({ latentDim, imgSize, channels }, bnEps);
  return {
    input: channels * imgSize * imgSize,
    layers: [
      { out: 512, bn: null, act: lrelu() },
      { out: 512, bn: { eps: bnEps, momentum: 0.1 }, act: lrelu() },
      {
        out: 2 * latentDim,
        bn: null,
        act: { kind: "none" },
        heads: [{ name: "mu", out: latentDim }, { name: "logvar", out: latentDim }],
      },
    ],
  };
}

/** LeakyReLU(0.2), upstream's activation of every hidden layer. */
function lrelu(): Activation {
  return { kind: "leaky_relu", slope: 0.2 };
}

/** Checks a builder's sizes (positive integers) and BatchNorm eps (positive and finite), naming the argument. */
function checkSizes(sizes: Record<string, number>, bnEps?: number): void {
  for (const [what, v] of Object.entries(sizes)) {
    if (!Number.isSafeInteger(v) || v < 1) throw new RangeError(`${what} must be a positive integer, got ${v}`);
  }
  if (bnEps !== undefined && !(typeof bnEps === "number" && Number.isFinite(bnEps) && bnEps > 0)) {
    throw new RangeError(`bnEps must be a positive finite number, got ${bnEps}`);
  }
}
