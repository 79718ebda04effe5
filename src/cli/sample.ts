/**
 * `deno task sample --checkpoint PATH [--n 64] [--out FILE.png] [--seed N] [--backend cpu]`: a grid of images from a
 * trained generator (a full checkpoint or a generator.safetensors), in eval mode.
 *
 * @module
 */

import { Context, NativeMlp, nativeNormal } from "../native/handles.ts";
import { saveGrid } from "../io/png.ts";
import { type MlpSpec, seedGenerator } from "../model/spec.ts";
import { loadStateDict, readCheckpoint } from "../train/checkpoint.ts";
import { parseFlags, runCommand, UsageError } from "./run.ts";

const USAGE =
  `Usage: deno task sample --checkpoint PATH [--n 64] [--out samples.png] [--seed 0] [--backend auto|cpu|gpu]

Writes a grid of n images (normalized as torchvision's save_image(normalize=True), ceil(sqrt(n)) per row) from the
generator of a checkpoint (a full one from checkpoints/latest.safetensors, or generator.safetensors).`;

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const v = {
    n: "64",
    out: "samples.png",
    seed: "0",
    backend: "auto",
    ...parseFlags(args, {
      checkpoint: "string",
      n: "string",
      out: "string",
      seed: "string",
      backend: "string",
      help: "boolean",
    }),
  } as Record<string, string | undefined> & { help?: boolean };
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const n = Number(v.n), seed = Number(v.seed);
  const fail = (msg: string): never => {
    throw new UsageError(msg);
  };
  if (!v.checkpoint) return fail("--checkpoint PATH is required");
  if (!Number.isSafeInteger(n) || n < 1 || n > 4096) return fail(`--n must be an integer in [1, 4096], got "${v.n}"`);
  if (!Number.isSafeInteger(seed) || seed < 0) return fail(`--seed must be a non-negative integer, got "${v.seed}"`);
  if (!["auto", "cpu", "gpu"].includes(v.backend!)) {
    return fail(`--backend must be auto, cpu or gpu, got "${v.backend}"`);
  }

  const { map, info } = await readCheckpoint(v.checkpoint);
  const c = info.config as { generator?: MlpSpec; latent_dim?: number; img_size?: number; channels?: number };
  const spec = c.generator ?? seedGenerator(c.latent_dim, c.img_size, c.channels);
  const side = c.img_size ?? 28, ch = c.channels ?? 1;
  using ctx = new Context({ backend: v.backend as "auto" });
  using g = new NativeMlp(ctx, spec);
  loadStateDict(map, v.checkpoint, g, map.has("generator.model.0.weight") ? "generator." : "");
  const images = g.forward(nativeNormal(seed, 0, n * spec.input, "sample"), n, false);
  await saveGrid(v.out!, images, n, ch, side, side, { nrow: Math.ceil(Math.sqrt(n)), normalize: true });
  console.error(`wrote ${v.out}: ${n} samples of ${ch}x${side}x${side} from "${v.checkpoint}" (step ${info.step})`);
  return 0;
}

if (import.meta.main) Deno.exit(await runCommand("sample", main));
