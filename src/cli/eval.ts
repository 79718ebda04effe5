/**
 * `deno task eval --checkpoint PATH [--n 10000] [--json FILE] [--dataset mnist] [--data DIR] [--seed 0]`: the sample
 * quality of a trained generator (a full checkpoint or a generator.safetensors): FID, KID, precision and recall,
 * density and coverage on the dataset's classifier features, the class histogram, and two reference rows.
 *
 * @module
 */

import { Context, NativeMlp } from "../native/handles.ts";
import { type MlpSpec, seedGenerator } from "../model/spec.ts";
import { loadStateDict, readCheckpoint } from "../train/checkpoint.ts";
import type { Dataset } from "../data/dataset.ts";
import { datasetDifference, type DatasetIdentity, datasetIdentity, describeDatasetIdentity } from "../data/identity.ts";
import { Evaluator, resultRecord } from "../eval/evaluate.ts";
import { formatTable } from "../eval/table.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { parseTrainFlags } from "./flags.ts";
import { loadDataset } from "./train.ts";
import { parseFlags, runCommand, UsageError } from "./run.ts";

const USAGE = `Usage: deno task eval --checkpoint PATH [--n 10000] [--json FILE] [--seed 0]
                      [--dataset mnist|embedded|idx|fashion-mnist] [--data DIR] [--backend auto|cpu|gpu]

Scores n samples of the generator of a checkpoint (checkpoints/latest.safetensors or generator.safetensors) against
the real images of the dataset (--dataset and --data as in "deno task train"; default: the one the checkpoint was
trained on when it was the embedded digits or Fashion-MNIST, else mnist). The features come from the dataset's
classifier, trained by deno-gan on first use and cached; a dataset without labels is scored on its pixels (the class
metrics are then skipped, and say so). Two reference rows come with every result: two halves of the real images
(about the best possible) and uniform noise (about the worst). --json writes the same as one JSON object.`;

/** The parsed command line. */
interface EvalFlags {
  checkpoint: string;
  n: number;
  json: string | undefined;
  seed: number;
  dataset: string | undefined;
  data: string | undefined;
  backend: "auto" | "cpu" | "gpu";
}

function parseEvalFlags(args: string[]): EvalFlags | "help" {
  const v = parseFlags(args, {
    checkpoint: "string",
    n: "string",
    json: "string",
    seed: "string",
    dataset: "string",
    data: "string",
    backend: "string",
    help: "boolean",
  }) as Record<string, string | undefined> & { help?: boolean };
  if (v.help) return "help";
  const int = (name: string, raw: string, min: number, max: number) => {
    const x = Number(raw);
    if (raw.trim() === "" || !Number.isSafeInteger(x) || x < min || x > max) {
      throw new UsageError(`--${name} must be an integer in [${min}, ${max}], got ${JSON.stringify(raw)}`);
    }
    return x;
  };
  if (!v.checkpoint) throw new UsageError("--checkpoint PATH is required");
  const backend = v.backend ?? "auto";
  if (!["auto", "cpu", "gpu"].includes(backend)) {
    throw new UsageError(`--backend must be auto, cpu or gpu, got ${JSON.stringify(backend)}`);
  }
  if (v.json === "") throw new UsageError(`--json must be a file name, got ""`);
  return {
    checkpoint: v.checkpoint,
    n: int("n", v.n ?? "10000", 4, 2 ** 31 - 1),
    json: v.json,
    seed: int("seed", v.seed ?? "0", 0, 2 ** 32 - 1),
    dataset: v.dataset,
    data: v.data,
    backend: backend as EvalFlags["backend"],
  };
}

/** The dataset to score against: the flags', or the one the checkpoint records when it is a known one. */
async function datasetFor(f: EvalFlags, recorded: DatasetIdentity | undefined, side: number): Promise<Dataset> {
  const known: Record<string, string> = { "mnist-embedded": "embedded", "fashion-mnist": "fashion-mnist" };
  const name = f.dataset ?? (f.data === undefined && recorded ? known[recorded.name] : undefined) ?? "mnist";
  const args = ["--dataset", name, "--img_size", String(side)];
  if (f.data !== undefined) args.push("--data", f.data);
  return await loadDataset(parseTrainFlags(args));
}

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const f = parseEvalFlags(args);
  if (f === "help") {
    console.log(USAGE);
    return 0;
  }
  const t0 = performance.now();
  const { map, info } = await readCheckpoint(f.checkpoint);
  const c = info.config as { generator?: MlpSpec; latent_dim?: number; img_size?: number; channels?: number };
  const spec = c.generator ?? seedGenerator(c.latent_dim, c.img_size, c.channels);
  const side = c.img_size ?? 28, ch = c.channels ?? 1;
  const ds = await datasetFor(f, info.dataset, side);
  if (ds.channels !== ch || ds.height !== side || ds.width !== side) {
    throw new Error(
      `the checkpoint makes ${ch}x${side}x${side} images, the dataset "${ds.name}" has ` +
        `${ds.channels}x${ds.height}x${ds.width} images: score it against data of its shape`,
    );
  }
  if (info.dataset && datasetDifference(info.dataset, await datasetIdentity(ds)) !== null) {
    console.error(
      `note: the checkpoint was trained on ${describeDatasetIdentity(info.dataset)}; scoring against "${ds.name}"`,
    );
  }
  using ctx = new Context({ backend: f.backend });
  using g = new NativeMlp(ctx, spec);
  loadStateDict(map, f.checkpoint, g, map.has("generator.model.0.weight") ? "generator." : "");
  const say = (s: string) => console.error(s);
  using ev = await Evaluator.create(ds, { context: ctx, n: f.n, seed: f.seed, onClassifierTraining: say });
  const r = await ev.score(g);
  const seconds = (performance.now() - t0) / 1000;
  console.log(
    `${ds.name}: ${f.n} samples of "${f.checkpoint}" (step ${info.step}), ${r.features} features` +
      (r.classifier_accuracy === null
        ? ""
        : ` (classifier held-out accuracy ${(100 * r.classifier_accuracy).toFixed(2)}%)`),
  );
  console.log(formatTable(`generator (step ${info.step})`, r));
  for (const s of r.skipped) console.log(`skipped: ${s}`);
  if (f.json !== undefined) {
    const record = { checkpoint: f.checkpoint, step: info.step, dataset: ds.name, seed: f.seed, ...resultRecord(r) };
    const text = JSON.stringify({ ...record, seconds: Number(seconds.toFixed(2)) }, null, 2) + "\n";
    await writeFileAtomic(f.json, new TextEncoder().encode(text));
    console.error(`wrote ${f.json}`);
  }
  return 0;
}

if (import.meta.main) Deno.exit(await runCommand("eval", main));
