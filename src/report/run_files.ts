/**
 * Reads a training run's folder (as `GanTrainer` writes it) for the report, with bounded reads and no link followed
 * inside the folder: `run.json` (at most 16 MiB), `metrics.jsonl` streamed 1 MiB at a time (at most 4 GiB, lines of
 * at most 1 MiB; the step rows downsampled as they come, see {@linkcode Downsampler}; a torn last line skipped), and
 * the fixed-noise grids `images/fixed_<step>.png` (at most ~200 of them, evenly spaced and always the last, within a
 * byte budget) with the latest batch grid `images/<step>.png`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readRunFolder } from "./run_files.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify({ config: { batch_size: 64 } }));
 * const rows = [0, 1, 2].map((s) => JSON.stringify({ step: s, epoch: 0, batch: s, d_loss: 0.7, g_loss: 0.7 }));
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, rows.join("\n") + '\n{"step":3,"ep'); // a torn last line
 * const run = readRunFolder(dir);
 * assert.equal(run.steps.rows, 3);
 * assert.deepEqual(run.steps.x, [0, 1, 2]);
 * assert.equal(run.grids.length, 0);
 * assert.match(run.notes[0], /torn last line/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { formatBytes, RegularFile } from "../io/regular_file.ts";
import { type DownsampledSeries, Downsampler } from "./series.ts";

/** The step-row fields charted, in this order. */
export const STEP_FIELDS = ["d_loss", "g_loss", "d_real", "d_fake"] as const;

/** The scalar fields of an eval row charted, in this order (`kid_std` is KID's spread over its subsets). */
export const EVAL_FIELDS = [
  "fid",
  "kid",
  "kid_std",
  "precision",
  "recall",
  "density",
  "coverage",
  "classes_covered",
  "class_kl",
  "classifier_score",
] as const;

/** One eval row of `metrics.jsonl` (`"kind": "eval"`): the scores after `step` steps; missing values are null. */
export interface EvalPoint {
  /** Steps done when the samples were scored. */
  step: number;
  /** The epoch (as the row gives it), or null. */
  epoch: number | null;
  /** The scores, by {@linkcode EVAL_FIELDS} name. */
  values: Record<(typeof EVAL_FIELDS)[number], number | null>;
  /** Samples scored, or null. */
  n: number | null;
}

/** A PNG grid, as read. */
export interface GridImage {
  /** The step in its file name. */
  step: number;
  /** The file's name under `images/`. */
  file: string;
  /** The PNG file. */
  bytes: Uint8Array;
  /** Width in pixels (from the PNG header). */
  width: number;
  /** Height in pixels (from the PNG header). */
  height: number;
}

/** A run folder, read for the report (see {@linkcode readRunFolder}). */
export interface RunFolder {
  /** The folder, as given. */
  dir: string;
  /** The run's name: the folder's own name. */
  name: string;
  /** `run.json` as parsed (an object; its fields are the trainer's, every one optional here). */
  run: Record<string, unknown>;
  /** The step rows, downsampled: x is the step; the fields are {@linkcode STEP_FIELDS}. */
  steps: DownsampledSeries;
  /** The last step row (all of its fields), or null for none. */
  lastStep: Record<string, unknown> | null;
  /** The eval rows, in the file's order. */
  evals: EvalPoint[];
  /** The histogram of the last eval row that has one (fraction of samples per predicted class), with its step. */
  evalHistogram: { step: number; histogram: number[] } | null;
  /** The fixed-noise grids chosen for the timeline, by step. */
  grids: GridImage[];
  /** How many fixed-noise grids the folder has (of which {@linkcode RunFolder.grids} were kept). */
  gridsFound: number;
  /** The batch grid of the latest sampled step, or null. */
  batchGrid: GridImage | null;
  /** Things left out or worth knowing (a torn last line, unreadable lines, grids thinned), one line each. */
  notes: string[];
}

/** Limits of {@linkcode readRunFolder}. */
export interface ReadRunOptions {
  /** The most chart points of the step rows (default 2,000; an even number). */
  maxPoints?: number;
  /** The most fixed-noise grids kept for the timeline (default 200). */
  maxGrids?: number;
  /** The most bytes of PNG kept for the timeline, all grids together (default 4 MiB). */
  maxImageBytes?: number;
  /** The largest `metrics.jsonl` read (default 4 GiB). */
  maxMetricsBytes?: number;
}

const RUN_JSON_LIMIT = 16 * 2 ** 20;
const LINE_LIMIT = 2 ** 20;
const CHUNK = 2 ** 20;
const PNG_LIMIT = 16 * 2 ** 20;
const MAX_EVAL_ROWS = 100_000;
const MAX_CLASSES = 10_000;
const MAX_IMAGE_ENTRIES = 1_000_000;
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

function lstatOrNull(path: string): Deno.FileInfo | null {
  try {
    return Deno.lstatSync(path);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) return null;
    throw e;
  }
}

function baseName(dir: string): string {
  const trimmed = dir.replace(/\/+$/, "");
  const own = trimmed.slice(trimmed.lastIndexOf("/") + 1);
  if (own !== "" && own !== "." && own !== "..") return own;
  try {
    const real = Deno.realPathSync(dir);
    return real.slice(real.lastIndexOf("/") + 1) || real;
  } catch {
    return trimmed || dir;
  }
}

/** A finite number, or null. */
function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** An array of finite numbers (at most MAX_CLASSES), or null. */
function numbers(v: unknown): number[] | null {
  if (!Array.isArray(v) || v.length === 0 || v.length > MAX_CLASSES) return null;
  return v.every((x) => typeof x === "number" && Number.isFinite(x)) ? v as number[] : null;
}

/** Width and height from a PNG's IHDR, or null when the bytes are not a PNG. */
function pngSize(bytes: Uint8Array): { width: number; height: number } | null {
  if (bytes.length < 24 || PNG_SIGNATURE.some((b, i) => bytes[i] !== b)) return null;
  if (String.fromCharCode(...bytes.subarray(12, 16)) !== "IHDR") return null;
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { width: v.getUint32(16), height: v.getUint32(20) };
}

/** Indices of `k` of `n` items, evenly spaced, always the first and the last. */
export function evenlySpaced(n: number, k: number): number[] {
  if (k >= n) return Array.from({ length: n }, (_, i) => i);
  if (k <= 1) return n > 0 ? [n - 1] : [];
  return Array.from({ length: k }, (_, i) => Math.round(i * (n - 1) / (k - 1)));
}

/** Reads `run.json`: a regular file (not a link), at most 16 MiB, a JSON object. */
function readRunJson(dir: string): Record<string, unknown> {
  const path = `${dir}/run.json`;
  if (lstatOrNull(path) === null) {
    throw new Error(`Cannot read run folder "${dir}": it has no run.json (is it the --out folder of a training run?)`);
  }
  using f = RegularFile.open(path, { what: "run file", maxBytes: RUN_JSON_LIMIT, noFollow: true });
  let run: unknown;
  try {
    run = JSON.parse(new TextDecoder().decode(f.readAll()));
  } catch (e) {
    throw new Error(`Cannot read run file "${path}": ${(e as Error).message}`);
  }
  if (run === null || typeof run !== "object" || Array.isArray(run)) {
    throw new Error(`Cannot read run file "${path}": it holds ${JSON.stringify(run)?.slice(0, 40)}, not an object`);
  }
  return run as Record<string, unknown>;
}

/** What reading metrics.jsonl gives. */
interface MetricsRead {
  steps: DownsampledSeries;
  lastStep: Record<string, unknown> | null;
  evals: EvalPoint[];
  evalHistogram: { step: number; histogram: number[] } | null;
  notes: string[];
}

/** Streams `metrics.jsonl` line by line (see the module docs). */
function readMetrics(dir: string, maxPoints: number, maxBytes: number): MetricsRead {
  const path = `${dir}/metrics.jsonl`;
  if (lstatOrNull(path) === null) {
    throw new Error(
      `Cannot read run folder "${dir}": it has no metrics.jsonl (is it the --out folder of a training run?)`,
    );
  }
  using f = RegularFile.open(path, {
    what: "metrics log",
    maxBytes,
    limitNote: "a report reads at most this much",
    noFollow: true,
  });
  const decoder = new TextDecoder();
  const down = new Downsampler(STEP_FIELDS, maxPoints);
  const evals: EvalPoint[] = [];
  let evalHistogram: MetricsRead["evalHistogram"] = null;
  let lastStep: Record<string, unknown> | null = null;
  let bad = 0, firstBad = 0, line = 0;

  const take = (bytes: Uint8Array) => {
    line++;
    let row: unknown;
    try {
      row = JSON.parse(decoder.decode(bytes));
    } catch {
      row = undefined;
    }
    const r = row as Record<string, unknown> | null;
    const step = num(r?.step);
    if (r === null || typeof r !== "object" || Array.isArray(r) || step === null) {
      if (bytes.every((b) => b === 0x20 || b === 0x09 || b === 0x0d)) return; // a blank line
      if (bad++ === 0) firstBad = line;
      return;
    }
    if (r.kind === undefined) {
      down.add(step, STEP_FIELDS.map((k) => r[k]));
      lastStep = r;
    } else if (r.kind === "eval") {
      if (evals.length === MAX_EVAL_ROWS) {
        throw new Error(`Cannot read metrics log "${path}": more than ${MAX_EVAL_ROWS} eval rows`);
      }
      const values = Object.fromEntries(EVAL_FIELDS.map((k) => [k, num(r[k])])) as EvalPoint["values"];
      evals.push({ step, epoch: num(r.epoch), values, n: num(r.n) });
      const h = numbers(r.histogram);
      if (h !== null) evalHistogram = { step, histogram: h };
    } // other kinds: rows of a later version, not charted here
  };

  let pending = new Uint8Array(0); // the bytes after the last newline seen
  for (let at = 0; at < f.size; at += CHUNK) {
    const chunk = f.readAt(at, Math.min(CHUNK, f.size - at));
    let start = 0;
    for (let nl = chunk.indexOf(0x0a); nl >= 0; nl = chunk.indexOf(0x0a, start)) {
      if (pending.length + nl - start > LINE_LIMIT) {
        throw new Error(
          `Cannot read metrics log "${path}": line ${line + 1} is longer than ${formatBytes(LINE_LIMIT)}`,
        );
      }
      if (pending.length > 0) {
        const joined = new Uint8Array(pending.length + nl - start);
        joined.set(pending);
        joined.set(chunk.subarray(start, nl), pending.length);
        take(joined);
        pending = new Uint8Array(0);
      } else take(chunk.subarray(start, nl));
      start = nl + 1;
    }
    if (pending.length + chunk.length - start > LINE_LIMIT) {
      throw new Error(`Cannot read metrics log "${path}": line ${line + 1} is longer than ${formatBytes(LINE_LIMIT)}`);
    }
    const rest = new Uint8Array(pending.length + chunk.length - start);
    rest.set(pending);
    rest.set(chunk.subarray(start), pending.length);
    pending = rest;
  }
  const notes: string[] = [];
  if (pending.some((b) => b !== 0x20 && b !== 0x09 && b !== 0x0d)) {
    notes.push(`metrics.jsonl: a torn last line (${pending.length} bytes without a newline) was skipped`);
  }
  if (bad > 0) {
    notes.push(
      `metrics.jsonl: ${bad} line${bad === 1 ? "" : "s"} that ${bad === 1 ? "is" : "are"} not a JSON object with a ` +
        `numeric "step" ${bad === 1 ? "was" : "were"} skipped (the first at line ${firstBad})`,
    );
  }
  return { steps: down.result(), lastStep, evals, evalHistogram, notes };
}

/** Reads one grid; null (with a note) when it is not a PNG. */
function readGrid(dir: string, file: string, step: number, notes: string[]): GridImage | null {
  using f = RegularFile.open(`${dir}/images/${file}`, { what: "grid", maxBytes: PNG_LIMIT, noFollow: true });
  const bytes = f.readAll();
  const size = pngSize(bytes);
  if (size === null) {
    notes.push(`images/${file} is not a PNG file; left out`);
    return null;
  }
  return { step, file, bytes, ...size };
}

/** The grids: the fixed-noise ones for the timeline (thinned), the latest batch grid. */
function readGrids(dir: string, maxGrids: number, maxBytes: number) {
  const notes: string[] = [];
  const folder = `${dir}/images`;
  const info = lstatOrNull(folder);
  if (info === null) {
    return { grids: [], gridsFound: 0, batchGrid: null, notes: ["the run folder has no images/ folder"] };
  }
  if (info.isSymlink) {
    throw new Error(
      `Cannot read run folder "${dir}": "images" is a symbolic link (to "${Deno.readLinkSync(folder)}"); the report ` +
        `follows no links inside a run folder`,
    );
  }
  if (!info.isDirectory) throw new Error(`Cannot read run folder "${dir}": "images" is not a folder`);
  const fixed: { step: number; file: string; size: number }[] = [];
  let batch: { step: number; file: string } | null = null;
  let entries = 0;
  for (const e of Deno.readDirSync(folder)) {
    if (++entries > MAX_IMAGE_ENTRIES) {
      throw new Error(`Cannot read run folder "${dir}": images/ has more than ${MAX_IMAGE_ENTRIES} entries`);
    }
    const m = /^(fixed_)?(\d{1,15})\.png$/.exec(e.name);
    if (m === null) continue;
    if (e.isSymlink) {
      throw new Error(
        `Cannot read run folder "${dir}": "images/${e.name}" is a symbolic link (to ` +
          `"${Deno.readLinkSync(`${folder}/${e.name}`)}"); the report follows no links inside a run folder`,
      );
    }
    if (!e.isFile) continue;
    const step = Number(m[2]);
    if (m[1] !== undefined) fixed.push({ step, file: e.name, size: lstatOrNull(`${folder}/${e.name}`)?.size ?? 0 });
    else if (batch === null || step > batch.step) batch = { step, file: e.name };
  }
  fixed.sort((a, b) => a.step - b.step);
  // Evenly spaced, the last always kept; fewer while the bytes pass the budget (one, the last, at least).
  let chosen = evenlySpaced(fixed.length, maxGrids).map((i) => fixed[i]);
  const bytesOf = (g: typeof chosen) => g.reduce((s, x) => s + x.size, 0);
  while (chosen.length > 1 && bytesOf(chosen) > maxBytes) {
    const k = Math.max(1, Math.floor(chosen.length * Math.min(0.9, maxBytes / bytesOf(chosen))));
    chosen = evenlySpaced(fixed.length, k).map((i) => fixed[i]);
  }
  if (chosen.length < fixed.length) {
    notes.push(
      `the timeline shows ${chosen.length} of the ${fixed.length} fixed-noise grids, evenly spaced (the last included)`,
    );
  }
  const grids = chosen.map((g) => readGrid(dir, g.file, g.step, notes)).filter((g) => g !== null);
  const batchGrid = batch === null ? null : readGrid(dir, batch.file, batch.step, notes);
  return { grids, gridsFound: fixed.length, batchGrid, notes };
}

/**
 * Reads a run folder for the report (see the module docs). A link to the folder itself is fine; a link inside it
 * (`run.json`, `metrics.jsonl`, `images/` or a grid) is refused, naming its target.
 *
 * @param dir The run's folder (the trainer's `--out`).
 * @param options Limits: chart points, grids, bytes.
 * @returns What the report shows.
 *
 * @example A missing folder is named
 * ```ts
 * import assert from "node:assert/strict";
 * import { readRunFolder } from "./run_files.ts";
 *
 * assert.throws(() => readRunFolder("/nonexistent/run"), /Cannot read run folder "\/nonexistent\/run": it does not exist/);
 * ```
 */
export function readRunFolder(dir: string, options: ReadRunOptions = {}): RunFolder {
  let info: Deno.FileInfo;
  try {
    info = Deno.statSync(dir);
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) throw new Error(`Cannot read run folder "${dir}": it does not exist`);
    throw new Error(`Cannot read run folder "${dir}": ${(e as Error).message}`);
  }
  if (!info.isDirectory) throw new Error(`Cannot read run folder "${dir}": it is not a folder`);
  const run = readRunJson(dir);
  const metrics = readMetrics(dir, options.maxPoints ?? 2000, options.maxMetricsBytes ?? 4 * 2 ** 30);
  const images = readGrids(dir, options.maxGrids ?? 200, options.maxImageBytes ?? 4 * 2 ** 20);
  return {
    dir,
    name: baseName(dir),
    run,
    steps: metrics.steps,
    lastStep: metrics.lastStep,
    evals: metrics.evals,
    evalHistogram: metrics.evalHistogram,
    grids: images.grids,
    gridsFound: images.gridsFound,
    batchGrid: images.batchGrid,
    notes: [...metrics.notes, ...images.notes],
  };
}
