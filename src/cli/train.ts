/**
 * `deno task train`: trains the seed's GAN, or another PyTorch-GAN model (`--model`), with upstream's flags (see
 * `--help`).
 *
 * @module
 */

import { type EvalEvent, GanTrainer, type TrainCallbacks } from "../train/trainer.ts";
import { formatTable } from "../eval/table.ts";
import { ProgressBar } from "../train/progress.ts";
import { type Dataset, loadEmbeddedMnist, loadIdxDataset, resizeBilinear } from "../data/dataset.ts";
import { parseTrainFlags, type TrainFlags, trainUsage } from "./flags.ts";
import { runCommand } from "./run.ts";
import { updatesGenerator } from "../model/models.ts";
import { LiveView } from "../serve/live.ts";

/** Loads the dataset the flags name, resized to `img_size`; says where it came from. */
export async function loadDataset(f: TrainFlags, say: (s: string) => void = console.error): Promise<Dataset> {
  let ds: Dataset;
  const idx = { imgSize: f.img_size }; // resized while loading, the shapes checked from the headers first
  if (f.dataset === "embedded") {
    ds = await loadEmbeddedMnist();
  } else if (f.dataset === "idx") {
    ds = await loadIdxDataset(f.data!, "idx", idx);
  } else if (f.dataset === "fashion-mnist") {
    ds = await loadIdxDataset(f.data ?? "/usr/share/datasets/fashion-mnist", "fashion-mnist", idx);
  } else {
    const dir = f.data ?? "data/mnist";
    let found = false;
    try {
      found = [...Deno.readDirSync(dir)].some((e) => e.name.startsWith("train-images"));
    } catch { /* no such folder */ }
    if (found || f.data !== undefined) {
      ds = await loadIdxDataset(dir, "mnist", idx);
    } else {
      ds = await loadEmbeddedMnist();
      say(
        `data: no MNIST IDX files in ${dir}/ (deno task fetch-mnist gets them); using the ${ds.count} embedded digits`,
      );
    }
  }
  if (ds.height !== f.img_size || ds.width !== f.img_size) ds = resizeBilinear(ds, f.img_size);
  return ds;
}

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const f = parseTrainFlags(args);
  if (f.help) {
    console.log(trainUsage());
    return 0;
  }
  const cores = navigator.hardwareConcurrency ?? 1;
  using live = f.serve === undefined ? undefined : await startLive(f); // before the data: a port in use fails at once
  const ds = await loadDataset(f);
  using t = await GanTrainer.create(ds, {
    model: f.model,
    optimizer: f.optimizer,
    nEpochs: f.n_epochs,
    batchSize: f.batch_size,
    lr: f.lr,
    b1: f.b1,
    b2: f.b2,
    latentDim: f.latent_dim,
    imgSize: f.img_size,
    nClasses: f.n_classes,
    channels: f.channels,
    sampleInterval: f.sample_interval,
    seed: f.seed,
    backend: f.backend,
    threads: Math.min(f.n_cpu, cores),
    bnEps: f.bn_eps,
    outDir: f.out,
    checkpointEvery: f.checkpoint_every,
    resume: f.resume,
    allowOtherDataset: f.allow_other_dataset,
    maxSteps: f.max_steps,
    stepsPerCall: f.steps_per_call,
    evalEvery: f.eval_every,
    evalN: f.eval_n,
    loss: f.loss,
    nCritic: f.n_critic,
    clipValue: f.clip_value,
    lambdaGp: f.lambda_gp,
    gpNorm: f.gp_norm,
    gpClip: f.gp_clip,
    divK: f.div_k,
    divP: f.div_p,
    softmaxFreshD: f.softmax_fresh_d,
    softmaxGLossOnly: f.softmax_g_loss_only,
  });
  const b = t.backendInfo();
  const where = b.adapter
    ? `${b.adapter.name} (${b.adapter.api}${b.adapter.software ? ", software" : ""})`
    : `${b.threads} threads, ${b.cpu_kernels} kernels`;
  console.error(
    `deno-gan: ${f.model} on ${ds.name}, ${ds.count} images; ${b.backend} backend on ${where}; ${t.totalSteps} steps` +
      (f.resume ? ` (resuming at step ${t.step})` : "") + `; output in ${f.out}/`,
  );
  live?.setSettings(liveSettings(f, ds, t, `${b.backend} on ${where}`));
  const bar = f.log_format === "bar" ? new ProgressBar() : undefined;
  const enc = new TextEncoder();
  const say = (line: string) => bar ? bar.log(line) : console.error(line);
  let fid: number | undefined;
  let last: EvalEvent | undefined;
  try {
    const callbacks: TrainCallbacks = {
      onNote: say,
      onEval: (e) => {
        fid = e.result.fid;
        last = e;
        say(evalLine(e));
      },
      onStep: (e) => {
        if (bar) {
          bar.update({
            step: e.step + 1,
            total: e.totalSteps,
            epoch: e.epoch + 1,
            nEpochs: e.nEpochs,
            dLoss: e.dLoss,
            gLoss: e.gLoss,
            fid,
          });
        } else if (updatesGenerator(t.options.modelOptions, e.batch)) {
          // Upstream's line, as Python's "%d" and "%f" print it; the Wasserstein scripts print it on G's steps only.
          Deno.stdout.writeSync(enc.encode(
            `[Epoch ${e.epoch}/${e.nEpochs}] [Batch ${e.batch}/${e.batchesPerEpoch}] ` +
              `[D loss: ${e.dLoss.toFixed(6)}] [G loss: ${e.gLoss.toFixed(6)}]\n`,
          ));
        }
      },
    };
    const s = await t.run(live ? live.callbacks(callbacks) : callbacks);
    bar?.finish();
    await live?.finish({ steps: s.steps, seconds: s.seconds, stepsPerSecond: s.stepsPerSecond });
    console.error(
      `done: ${s.steps} steps in ${s.seconds.toFixed(1)} s (${s.stepsPerSecond.toFixed(1)} steps/s); ` +
        `checkpoint ${s.lastCheckpoint ?? "none"}`,
    );
    if (last) console.error(formatTable(`generator (step ${last.step})`, last.result));
    return 0;
  } catch (e) {
    bar?.finish();
    await live?.finish({ error: (e as Error).message });
    throw e;
  }
}

/** Starts the live view of `--serve` and says where it is. */
async function startLive(f: TrainFlags): Promise<LiveView> {
  const live = await LiveView.start(f.serve!, f.out);
  console.error(`serving the live view at ${live.url}`);
  return live;
}

/** The settings the live view shows. */
function liveSettings(f: TrainFlags, ds: Dataset, t: GanTrainer, backend: string): Record<string, unknown> {
  return {
    run: f.out,
    model: f.model,
    dataset: `${ds.name} (${ds.count} images of ${ds.channels}×${ds.height}×${ds.width})`,
    backend,
    totalSteps: t.totalSteps,
    batchesPerEpoch: t.gan.info().batches_per_epoch,
    nEpochs: f.n_epochs,
    batch_size: f.batch_size,
    lr: f.lr,
    seed: f.seed,
    sample_interval: f.sample_interval,
    eval_every: f.eval_every,
    started: new Date().toISOString(),
  };
}

/** One line per evaluation: the step, FID, precision and recall, classes covered, and its time. */
function evalLine(e: EvalEvent): string {
  const r = e.result;
  return `eval at step ${e.step}: FID ${r.fid.toFixed(2)}, precision ${r.precision.toFixed(3)}, recall ` +
    `${r.recall.toFixed(3)}` + (r.classes_covered === null ? "" : `, ${r.classes_covered} classes covered`) +
    (r.label_accuracy === null ? "" : `, label accuracy ${r.label_accuracy.mean.toFixed(3)}`) +
    ` (${e.seconds.toFixed(1)} s)`;
}

if (import.meta.main) Deno.exit(await runCommand("train", main));
