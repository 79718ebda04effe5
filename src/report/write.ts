/**
 * `writeReport(runDir)`: reads a run folder, builds its self-contained HTML report and writes it atomically
 * (default `<runDir>/report.html`). The chart library (npm `uplot`) is loaded on first use as text, through Deno's
 * npm support; importing this module pulls in no npm package until a report is made.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { writeReport } from "./write.ts";
 *
 * const dir = await Deno.makeTempDir();
 * await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify({ config: { batch_size: 2 }, started: "2026-01-01" }));
 * await Deno.writeTextFile(`${dir}/metrics.jsonl`, '{"step":0,"d_loss":0.7,"g_loss":0.7,"d_real":0.5,"d_fake":0.5}\n');
 * const r = await writeReport(dir);
 * assert.equal(r.path, `${dir}/report.html`);
 * const html = await Deno.readTextFile(r.path);
 * assert.match(html, /<meta name="generator" content="deno-gan">/);
 * assert.match(html, /uPlot/);
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import { writeFileAtomic } from "../io/atomic.ts";
import { buildReportHtml, type BuildReportOptions, type ChartAssets } from "./report.ts";
import { readRunFolder, type ReadRunOptions, type RunFolder } from "./run_files.ts";

/** The chart package, pinned (its version is part of what a report holds; the imports below spell it out). */
const UPLOT = "npm:uplot@1.6.32";

let assets: Promise<ChartAssets> | null = null;

/**
 * The chart library's text: uPlot's minified IIFE build and its CSS, imported as text from the npm package (fetched
 * by Deno on first use when it is not cached). The specifiers are templates whose literal head is the package:
 * `deno publish` can analyze them, and Deno does not fetch the package along with this module (as it would for plain
 * string literals).
 *
 * @returns The JavaScript and the CSS.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { loadChartAssets } from "./write.ts";
 *
 * const { uplotJs, uplotCss } = await loadChartAssets();
 * assert.match(uplotJs, /var uPlot/);
 * assert.match(uplotCss, /\.uplot/);
 * ```
 */
export function loadChartAssets(): Promise<ChartAssets> {
  assets ??= (async () => {
    try {
      // The package itself first: a file of it is then found by its path (Deno resolves a package on its first use).
      const [pkgFile, jsFile, cssFile] = ["package.json", "dist/uPlot.iife.min.js", "dist/uPlot.min.css"];
      await import(`npm:uplot@1.6.32/${pkgFile}`, { with: { type: "json" } });
      const js = await import(`npm:uplot@1.6.32/${jsFile}`, { with: { type: "text" } });
      const css = await import(`npm:uplot@1.6.32/${cssFile}`, { with: { type: "text" } });
      return { uplotJs: js.default as string, uplotCss: css.default as string };
    } catch (e) {
      assets = null; // let a later call try again (e.g. once the registry is reachable)
      throw new Error(`Cannot load the chart library (${UPLOT}): ${(e as Error).message}`, { cause: e });
    }
  })();
  return assets;
}

/** Options of {@linkcode writeReport}. */
export interface WriteReportOptions extends ReadRunOptions, BuildReportOptions {
  /** The page to write (default `<runDir>/report.html`); its folder must exist. */
  out?: string;
}

/** What {@linkcode writeReport} wrote. */
export interface WriteReportResult {
  /** The page written. */
  path: string;
  /** Its size in bytes. */
  bytes: number;
  /** The run folder as read (the step rows downsampled, the grids chosen, the notes). */
  run: RunFolder;
}

/**
 * Reads the run folder `runDir` (bounded, no links followed inside it; see `readRunFolder`), builds its report page
 * and writes it atomically.
 *
 * @param runDir The run's folder (the trainer's `--out`).
 * @param options Where to write, and the limits of what is read.
 * @returns The page's path and size, and what was read.
 */
export async function writeReport(runDir: string, options: WriteReportOptions = {}): Promise<WriteReportResult> {
  const run = readRunFolder(runDir, options);
  const html = buildReportHtml(run, await loadChartAssets(), options);
  const bytes = new TextEncoder().encode(html);
  const path = options.out ?? `${runDir.replace(/\/+$/, "") || "/"}/report.html`;
  await writeFileAtomic(path, bytes);
  return { path, bytes: bytes.length, run };
}
