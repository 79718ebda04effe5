/**
 * `deno task sample --checkpoint PATH [--n 64] [--out FILE.png] [--seed N] [--backend cpu]`: a grid of images from a
 * trained generator (a full checkpoint or a generator.safetensors), in eval mode.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { Context, NativeMlp } from "../backend/native.ts";
import { DOMAIN_SAMPLE, normal } from "../backend/rng.ts";
import { saveGrid } from "../io/png.ts";
import { type MlpSpec, seedGenerator } from "../model/spec.ts";
import { loadStateDict, readCheckpoint } from "../train/checkpoint.ts";

const USAGE =
  `Usage: deno task sample --checkpoint PATH [--n 64] [--out samples.png] [--seed 0] [--backend auto|cpu|gpu]

Writes a grid of n images (normalized as torchvision's save_image(normalize=True), ceil(sqrt(n)) per row) from the
generator of a checkpoint (a full one from checkpoints/latest.safetensors, or generator.safetensors).`;

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  let v;
  try {
    ({ values: v } = parseArgs({
      args,
      strict: true,
      options: {
        checkpoint: { type: "string" },
        n: { type: "string", default: "64" },
        out: { type: "string", default: "samples.png" },
        seed: { type: "string", default: "0" },
        backend: { type: "string", default: "auto" },
        help: { type: "boolean" },
      },
    }));
  } catch (e) {
    console.error(`deno task sample: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  const n = Number(v.n), seed = Number(v.seed);
  const fail = (msg: string) => (console.error(`deno task sample: ${msg}\n${USAGE}`), 2);
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
  loadStateDict(map, v.checkpoint, spec, g, map.has("generator.model.0.weight") ? "generator." : "");
  const images = g.forward(normal(seed, 0, n * spec.input, DOMAIN_SAMPLE), n, false);
  await saveGrid(v.out!, images, n, ch, side, side, { nrow: Math.ceil(Math.sqrt(n)), normalize: true });
  console.error(`wrote ${v.out}: ${n} samples of ${ch}x${side}x${side} from "${v.checkpoint}" (step ${info.step})`);
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
