/**
 * `deno task export --checkpoint PATH --out DIR [--f16]`: the static site of a trained generator (see
 * src/web/site.ts): `index.html` runs the generator in any browser, on WebGPU with the library's WGSL kernels or in
 * plain JavaScript.
 *
 * @module
 */

import { exportSite } from "../web/site.ts";
import { parseFlags, runCommand, UsageError } from "./run.ts";

const USAGE = `Usage: deno task export --checkpoint PATH --out DIR [--f16]

Writes a static site of the generator of a checkpoint (a full one from checkpoints/latest.safetensors, or
generator.safetensors) into DIR (created if missing; an existing folder must be empty or hold a previous export):

  index.html             the page: samples from a seed, interpolation, latent sliders, labels (cgan), PNG downloads;
                         self-contained, so it opens from file:// or any static server and loads nothing
  runtime.js             the generator's forward pass as an ES module (WebGPU with the library's WGSL, or JavaScript)
  generator.safetensors  the weights under their PyTorch names (float32; float16 with --f16)
  model.json             the spec, the tensor layout, the image shape, the labels
  kernels/*.wgsl         the kernels the page runs (the library's own files)

--f16 stores the weights as float16 (half the bytes) and states the error it costs on the page's first grid.
The page's seed gives the images of \`deno task sample --seed\` for the same checkpoint.`;

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const v = parseFlags(args, { checkpoint: "string", out: "string", f16: "boolean", help: "boolean" });
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (!v.checkpoint) throw new UsageError("--checkpoint PATH is required");
  if (!v.out) throw new UsageError("--out DIR is required");
  const { files, model } = await exportSite(v.checkpoint as string, v.out as string, { f16: v.f16 === true });
  const kib = (n: number) => `${(n / 1024).toFixed(0)} KiB`;
  const sizes = files.map((f) => `${f.path} ${kib(f.bytes.length)}`).join(", ");
  const e = model.weights.f16Error;
  const f16 = e
    ? `; float16 weights: outputs within ${e.maxAbsOutput.toExponential(2)}, grid pixels within ${e.maxPixel} ` +
      `level(s) (${e.pixelsChanged} of ${e.pixels} values moved)`
    : "";
  console.error(`wrote ${v.out}/: ${sizes}${f16}`);
  console.error(`open ${v.out}/index.html in a browser (file:// works), or serve the folder with any static server`);
  return 0;
}

if (import.meta.main) Deno.exit(await runCommand("export", main));
