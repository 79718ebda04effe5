/**
 * `deno task sample --checkpoint PATH [--n 64] [--out FILE.png] [--seed N] [--backend cpu] [--label 7 | 1,4,7]`: a
 * grid of images from a trained generator (a full checkpoint or a generator.safetensors), in eval mode; a conditional
 * model's (cgan's) of the labels asked for, or upstream's grid of every class.
 *
 * @module
 */

import { Context, NativeMlp, nativeNormal } from "../native/handles.ts";
import { saveGrid } from "../io/png.ts";
import { labelProblem, sampleLabels } from "../model/labels.ts";
import { checkpointGenerator, loadStateDict, readCheckpoint } from "../train/checkpoint.ts";
import { parseFlags, runCommand, UsageError } from "./run.ts";

const USAGE =
  `Usage: deno task sample --checkpoint PATH [--n 64] [--out samples.png] [--seed 0] [--backend auto|cpu|gpu]
                        [--label K | --label K1,K2,...]

Writes a grid of n images (normalized as torchvision's save_image(normalize=True), ceil(sqrt(n)) per row) from the
generator of a checkpoint (a full one from checkpoints/latest.safetensors, or generator.safetensors). For an
adversarial autoencoder (aae) the generator is its decoder: the images are the decoder on prior noise z ~ N(0, 1) of
its latent size (10).

A conditional model (cgan) makes images of the labels asked for: --label 7 makes every image a 7, --label 1,4,7 cycles
the images through the list. Without --label it writes upstream's grid (cgan.py's sample_image): n_classes rows of
n_classes images (n defaults to n_classes^2) whose labels are 0..n_classes-1 within each row, so column k is label k.
--label is refused for a model without labels.`;

/** Parses `--label`: one label or a comma-separated list of them (each checked against the classes later). */
function parseLabels(raw: string): number[] {
  const parts = raw.split(",").map((p) => p.trim());
  const bad = parts.find((p) => p === "" || !/^[+-]?(\d+\.?\d*|\.\d+)(e[+-]?\d+)?$/i.test(p));
  if (bad !== undefined) {
    throw new UsageError(
      `--label must be a label or a comma-separated list of labels (integers), got ${JSON.stringify(raw)}`,
    );
  }
  return parts.map(Number);
}

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const given = parseFlags(args, {
    checkpoint: "string",
    n: "string",
    out: "string",
    seed: "string",
    backend: "string",
    label: "string",
    help: "boolean",
  });
  const v = { n: "64", out: "samples.png", seed: "0", backend: "auto", ...given } as
    & Record<string, string | undefined>
    & { help?: boolean };
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const fail = (msg: string): never => {
    throw new UsageError(msg);
  };
  const asked = v.label === undefined ? undefined : parseLabels(v.label);
  const n = Number(v.n), seed = Number(v.seed);
  if (!v.checkpoint) return fail("--checkpoint PATH is required");
  if (!Number.isSafeInteger(n) || n < 1 || n > 4096) return fail(`--n must be an integer in [1, 4096], got "${v.n}"`);
  if (!Number.isSafeInteger(seed) || seed < 0) return fail(`--seed must be a non-negative integer, got "${v.seed}"`);
  if (!["auto", "cpu", "gpu"].includes(v.backend!)) {
    return fail(`--backend must be auto, cpu or gpu, got "${v.backend}"`);
  }

  const { map, info } = await readCheckpoint(v.checkpoint);
  const { spec, side, channels: ch, model, prefix } = checkpointGenerator(map, info);
  const classes = spec.embedding?.classes;
  if (asked !== undefined && classes === undefined) {
    return fail(
      `--label applies to a conditional model (cgan); the generator of "${v.checkpoint}" (model ` +
        `${model}) takes no labels`,
    );
  }
  const badLabel = classes === undefined ? undefined : asked?.map((k) => labelProblem(k, classes)).find((p) => p);
  if (badLabel) return fail(`--label: ${badLabel}`);
  // A conditional model without --label: upstream's grid, n_classes per row (each column one class).
  const grid = classes !== undefined && asked === undefined;
  const count = grid && given.n === undefined ? Math.min(classes * classes, 4096) : n;
  const labels = classes === undefined ? undefined : sampleLabels(count, classes, asked);
  using ctx = new Context({ backend: v.backend as "auto" });
  using g = new NativeMlp(ctx, spec);
  loadStateDict(map, v.checkpoint, g, prefix);
  const images = g.forward(nativeNormal(seed, 0, count * spec.input, "sample"), count, false, labels);
  const nrow = grid ? classes : Math.ceil(Math.sqrt(count));
  await saveGrid(v.out!, images, count, ch, side, side, { nrow, normalize: true });
  const what = classes === undefined
    ? ""
    : grid
    ? `; upstream's grid, ${nrow} per row (column k: label k)`
    : asked!.length === 1
    ? `; label ${asked![0]}`
    : `; labels ${asked!.join(",")} (cycled)`;
  console.error(
    `wrote ${v.out}: ${count} samples of ${ch}x${side}x${side} from "${v.checkpoint}" (step ${info.step})${what}`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await runCommand("sample", main));
