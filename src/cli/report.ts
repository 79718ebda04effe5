/**
 * `deno task report --run DIR [--out FILE]`: one self-contained HTML page (`DIR/report.html` by default) showing a
 * training run: losses, D's outputs, the scores over time, the fixed-noise grids as a timeline, the class histogram,
 * the final scores and the settings. The page needs no network when opened.
 *
 * @module
 */

import { formatBytes } from "../io/regular_file.ts";
import { writeReport } from "../report/write.ts";
import { parseFlags, runCommand, UsageError } from "./run.ts";

const USAGE = `Usage: deno task report --run DIR [--out FILE]

Writes one self-contained HTML page (default DIR/report.html) for the training run in DIR (the --out folder of
deno task train): loss curves of D and G, mean D(x) and D(G(z)), the scores over time (from the eval rows of
metrics.jsonl), the fixed-noise grids as a timeline with a slider, the class histogram of the latest eval, the final
scores with the reference rows, and the run's settings. Everything (data, charts, images) is inside the page.

  --run DIR    the run folder (holds run.json, metrics.jsonl, images/)
  --out FILE   the page to write (default DIR/report.html; its folder must exist)`;

/** Runs the command; returns the exit code. */
export async function main(args: string[]): Promise<number> {
  const v = parseFlags(args, { run: "string", out: "string", help: "boolean" }) as {
    run?: string;
    out?: string;
    help?: boolean;
  };
  if (v.help) {
    console.log(USAGE);
    return 0;
  }
  if (v.run === undefined || v.run === "") throw new UsageError("--run DIR is required");
  if (v.out === "") throw new UsageError(`--out must name a file, got ""`);
  const r = await writeReport(v.run, { out: v.out });
  for (const note of r.run.notes) console.error(`note: ${note}`);
  console.error(
    `wrote ${r.path} (${formatBytes(r.bytes)}): ${r.run.steps.rows} steps, ${r.run.evals.length} evals, ` +
      `${r.run.grids.length} of ${r.run.gridsFound} grids`,
  );
  return 0;
}

if (import.meta.main) Deno.exit(await runCommand("report", main));
