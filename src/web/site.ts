/**
 * The exported site of a trained generator (`deno task export`): a static folder whose `index.html` runs the
 * generator in any browser, on WebGPU with the native library's WGSL kernels or in plain JavaScript.
 *
 * The folder holds:
 * - `index.html`: the page, self-contained (the runtime, the page script, the kernels, the model and the weights
 *   inlined), so it works from `file://` and from any static server, and loads nothing (its Content-Security-Policy
 *   says so to the browser);
 * - `runtime.js`: the same runtime as an ES module, for a page of one's own (src/web/runtime.js, unchanged);
 * - `generator.safetensors`: the generator's tensors under their PyTorch names (F32, or F16 with `f16`);
 * - `model.json`: the spec, the tensor layout, the image shape, the labels, and the F16 error where it applies;
 * - `kernels/common.wgsl`, `kernels/columns.wgsl`, `kernels/linear.wgsl`: the kernels the page runs, the files the
 *   library compiles (in that order, one module).
 *
 * @example
 * ```ts ignore
 * import { exportSite } from "./site.ts";
 * const r = await exportSite("out/checkpoints/latest.safetensors", "site");
 * console.log(r.files.map((f) => f.path));
 * ```
 *
 * @module
 */

import { Context, NativeMlp } from "../native/handles.ts";
import { nativeContract } from "../native/ffi.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { type TensorEntry, writeSafetensors } from "../io/safetensors.ts";
import { checkpointGenerator, loadStateDict, readCheckpoint } from "../train/checkpoint.ts";
import type { MlpSpec, TensorLayout } from "../model/spec.ts";
import { Generator, makeGrid, normals, readSafetensors, SITE_FORMAT } from "./runtime.js";
import { siteHtml, type WebAssets } from "./page_html.ts";

export { SITE_FORMAT };

/** Options of {@link buildSite} and {@link exportSite}. */
export interface SiteOptions {
  /** Store the weights as float16 (half the bytes; the error this costs is measured and stated). */
  f16?: boolean;
}

/** The error of float16 weights against float32 ones, on 64 samples of seed 0 (the page's first grid). */
export interface F16Error {
  /** The largest difference of a generator output. */
  maxAbsOutput: number;
  /** The largest difference of a grid pixel (0..255 levels). */
  maxPixel: number;
  /** How many of the grid's values moved at all. */
  pixelsChanged: number;
  /** Values in the grid. */
  pixels: number;
}

/** `model.json`: what the page needs besides the weights. */
export interface SiteModel {
  /** {@link SITE_FORMAT}. */
  format: typeof SITE_FORMAT;
  /** The model (gan, cgan, aae, ...). */
  model: string;
  /** Training steps of the checkpoint. */
  step: number;
  /** The generator's spec. */
  spec: MlpSpec;
  /** Its tensors: names, shapes and offsets in the library's flat order. */
  layout: Pick<TensorLayout, "params" | "buffers">;
  /** The images it makes. */
  image: { channels: number; side: number };
  /** Noise width. */
  latent: number;
  /** Label classes (0: none). */
  classes: number;
  /** The weights file: its dtype and size, and for F16 the error it costs. */
  weights: { file: "generator.safetensors"; dtype: "F32" | "F16"; bytes: number; f16Error?: F16Error };
  /** The rng domain of `sample` (the page's noise is `deno task sample`'s for the same seed). */
  sampleDomain: number;
}

/** One file of the site. */
export interface SiteFile {
  /** Its path inside the site. */
  path: string;
  /** Its bytes. */
  bytes: Uint8Array<ArrayBuffer>;
}

let assets: Promise<WebAssets> | null = null;

/** The runtime, the page script and the kernels, as text (the files themselves, imported as text). */
export function loadWebAssets(): Promise<WebAssets> {
  assets ??= (async () => {
    const text = async (p: Promise<{ default: string }>) => (await p).default;
    return {
      runtime: await text(import("./runtime.js", { with: { type: "text" } })),
      page: await text(import("./page.js", { with: { type: "text" } })),
      common: await text(import("../../native/src/gpu/shaders/common.wgsl", { with: { type: "text" } })),
      columns: await text(import("../../native/src/gpu/shaders/columns.wgsl", { with: { type: "text" } })),
      linear: await text(import("../../native/src/gpu/shaders/linear.wgsl", { with: { type: "text" } })),
    };
  })();
  return assets;
}

/** Float32 to float16 bits, rounded to nearest even (overflow to infinity, which the caller refuses). */
function toHalf(v: number, f32: Float32Array, u32: Uint32Array): number {
  f32[0] = v;
  const x = u32[0], sign = (x >>> 16) & 0x8000, m = x & 0x7fffff;
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  if (((x >>> 23) & 0xff) === 0xff) return sign | 0x7c00 | (m ? 0x200 : 0);
  if (e >= 0x1f) return sign | 0x7c00;
  const round = (mant: number, shift: number) => {
    const h = mant >>> shift, rem = mant & ((1 << shift) - 1), half = 1 << (shift - 1);
    return rem > half || (rem === half && (h & 1)) ? h + 1 : h;
  };
  if (e <= 0) return e < -10 ? sign : sign | round(m | 0x800000, 14 - e);
  return sign | (round((e << 23) | m, 13) & 0xffff); // a carry rounds into the exponent, as it should
}

/** The tensors in float16 bits; a value beyond float16's range is refused, naming its tensor. */
function halve(entries: TensorEntry[]): TensorEntry[] {
  const f32 = new Float32Array(1), u32 = new Uint32Array(f32.buffer);
  return entries.map((t) => {
    const src = t.data as Float32Array, bits = new Uint16Array(src.length);
    for (let i = 0; i < src.length; i++) {
      bits[i] = toHalf(src[i], f32, u32);
      if ((bits[i] & 0x7c00) === 0x7c00) {
        throw new Error(`Cannot store "${t.name}" as float16: it holds ${src[i]}, beyond float16's range (65504)`);
      }
    }
    return { ...t, dtype: "F16", data: bits };
  });
}

/** The F16 weights' error on the page's first grid (64 samples of seed 0), measured with the JavaScript path. */
async function measureF16(model: SiteModel, f32: Uint8Array, f16: Uint8Array): Promise<F16Error> {
  const n = 64, z = normals(0, 0, n * model.latent);
  const labels = model.classes ? Array.from({ length: n }, (_, i) => i % model.classes) : undefined;
  const run = async (bytes: Uint8Array) => {
    const g = await Generator.create(model, readSafetensors(bytes), { backend: "js" });
    return await g.generate(z, n, labels);
  };
  const [a, b] = [await run(f32), await run(f16)];
  const { channels, side } = model.image;
  const grid = (y: Float32Array) => makeGrid(y, n, channels, side, side, { nrow: 8, normalize: true }).data;
  const [ga, gb] = [grid(a), grid(b)];
  let maxAbsOutput = 0, maxPixel = 0, pixelsChanged = 0;
  for (let i = 0; i < a.length; i++) maxAbsOutput = Math.max(maxAbsOutput, Math.abs(a[i] - b[i]));
  for (let i = 0; i < ga.length; i++) {
    const d = Math.abs(ga[i] - gb[i]);
    maxPixel = Math.max(maxPixel, d);
    if (d) pixelsChanged++;
  }
  return { maxAbsOutput, maxPixel, pixelsChanged, pixels: ga.length };
}

/**
 * The site of the generator in `checkpoint` (a full checkpoint or a generator.safetensors), in memory. The
 * checkpoint is read and checked as `sample` reads it (every tensor's name, dtype, shape; finite values).
 *
 * @param checkpoint The checkpoint file.
 * @param options F16 weights or not.
 * @returns The files and the model.json written among them.
 */
export async function buildSite(
  checkpoint: string,
  options: SiteOptions = {},
): Promise<{ files: SiteFile[]; model: SiteModel }> {
  const { map, info } = await readCheckpoint(checkpoint);
  const g = checkpointGenerator(map, info);
  using ctx = new Context({ backend: "cpu" });
  using net = new NativeMlp(ctx, g.spec);
  loadStateDict(map, checkpoint, net, g.prefix);
  const layout = net.layout(), params = net.get("params"), running = net.get("running");
  const entries: TensorEntry[] = [
    ...layout.params.map((t) => ({ t, data: params })),
    ...layout.buffers.map((t) => ({ t, data: running })),
  ].map(({ t, data }) => ({
    name: t.name,
    dtype: "F32",
    shape: t.shape,
    data: data.slice(t.offset, t.offset + t.size),
  }));
  const meta = { format: SITE_FORMAT };
  const f32 = writeSafetensors(entries, meta);
  const model: SiteModel = {
    format: SITE_FORMAT,
    model: g.model,
    step: info.step,
    spec: g.spec,
    layout: { params: layout.params, buffers: layout.buffers },
    image: { channels: g.channels, side: g.side },
    latent: g.spec.input,
    classes: g.spec.embedding?.classes ?? 0,
    weights: { file: "generator.safetensors", dtype: "F32", bytes: f32.length },
    sampleDomain: nativeContract().rng_domains.sample,
  };
  let weights = f32;
  if (options.f16) {
    weights = writeSafetensors(halve(entries), meta);
    model.weights = {
      ...model.weights,
      dtype: "F16",
      bytes: weights.length,
      f16Error: await measureF16(model, f32, weights),
    };
  }
  const web = await loadWebAssets();
  const enc = (s: string) => new TextEncoder().encode(s);
  const files: SiteFile[] = [
    { path: "index.html", bytes: enc(siteHtml(model, weights, web)) },
    { path: "runtime.js", bytes: enc(web.runtime) },
    { path: "generator.safetensors", bytes: weights },
    { path: "model.json", bytes: enc(JSON.stringify(model, null, 1) + "\n") },
    { path: "kernels/common.wgsl", bytes: enc(web.common) },
    { path: "kernels/columns.wgsl", bytes: enc(web.columns) },
    { path: "kernels/linear.wgsl", bytes: enc(web.linear) },
  ];
  return { files, model };
}

/** The files an export writes: a folder holding only these (or nothing) can be exported into again. */
const SITE_ENTRIES = new Set(["index.html", "runtime.js", "generator.safetensors", "model.json", "kernels"]);

/** Refuses a folder that holds anything but a previous export, so that an export never overwrites other files. */
function checkOutDir(dir: string): void {
  let entries: Deno.DirEntry[];
  try {
    entries = [...Deno.readDirSync(dir)];
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return;
    throw new Error(`Cannot export into "${dir}": ${(e as Error).message}`);
  }
  const other = entries.find((e) => !SITE_ENTRIES.has(e.name));
  if (other) {
    throw new Error(
      `Cannot export into "${dir}": it holds "${other.name}", which is not part of an exported site ` +
        `(choose an empty or new folder)`,
    );
  }
}

/**
 * Writes the site of the generator in `checkpoint` into `outDir` (created if missing; an existing folder must be
 * empty or hold a previous export). Every file is written atomically (a temporary file, then a rename).
 *
 * @param checkpoint The checkpoint file.
 * @param outDir The site's folder.
 * @param options F16 weights or not.
 * @returns The files written (paths inside `outDir`) and the model.
 */
export async function exportSite(
  checkpoint: string,
  outDir: string,
  options: SiteOptions = {},
): Promise<{ files: SiteFile[]; model: SiteModel }> {
  checkOutDir(outDir);
  const site = await buildSite(checkpoint, options);
  await Deno.mkdir(`${outDir}/kernels`, { recursive: true });
  for (const f of site.files) await writeFileAtomic(`${outDir}/${f.path}`, f.bytes);
  return site;
}
