// The report (deno task report): the page built from a synthesized run folder (the data inside, nothing from the
// network, downsampling, grid thinning, torn and bad lines, links and missing files refused with clear messages);
// the CLI end to end on a short real run; and the page in a real browser (Debian's chromium, driven by
// puppeteer-core over a pipe): charts drawn, the timeline's slider and animation, no errors, no requests, a
// screenshot that is not blank. Chromium missing is a failure, not a skip (CI installs it).
//
// UPDATE_SCREENSHOT=1 makes the browser test's real run that of `deno task train` with the defaults (the seed's GAN,
// 50 epochs of the embedded digits) and writes its screenshot to docs/images/report.png, the README's picture.

/// <reference lib="dom" /> -- the types of the callbacks that run in the page

import assert from "node:assert/strict";
import { oneErrorLine } from "./cli_output.ts";
import type { Browser, Page } from "./browser.ts";
import { launchChromium, requireChromium, screenshotStats, watchedPage } from "./browser.ts";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { saveGrid } from "../src/io/png.ts";
import { buildReportHtml } from "../src/report/report.ts";
import { evenlySpaced, readRunFolder } from "../src/report/run_files.ts";
import { loadChartAssets, writeReport } from "../src/report/write.ts";
import { GanTrainer } from "../src/train/trainer.ts";
import { trainClassifier } from "../src/eval/classifier.ts";
import { Context } from "../src/native/handles.ts";
import { smallRunOptions, syntheticImages } from "./small_gan.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** Options of {@link makeRun}. */
interface FakeRun {
  steps: number;
  evalEvery?: number;
  sampleInterval?: number;
  finalEval?: boolean;
  tail?: string;
}

const HIST = [0.12, 0.08, 0.11, 0.09, 0.1, 0.1, 0.13, 0.07, 0.1, 0.1];
const REAL_HIST = [0.1, 0.11, 0.1, 0.1, 0.1, 0.09, 0.1, 0.1, 0.1, 0.1];

function qualityRow(fid: number, n: number) {
  return {
    fid,
    kid: { mean: fid / 1000, std: fid / 20_000 },
    precision: 0.7,
    recall: 0.4,
    density: 0.9,
    coverage: 0.6,
    classes_covered: 9,
    class_kl: 0.02,
    classifier_score: 8.1,
    n,
  };
}

/** A run folder as the trainer (and the eval teammate's rows) write it, with tiny 4x4 grids. */
async function makeRun(dir: string, o: FakeRun): Promise<void> {
  await Deno.mkdir(`${dir}/images`, { recursive: true });
  const run: Record<string, unknown> = {
    config: { n_epochs: 5, batch_size: 64, lr: 0.0002, latent_dim: 8, img_size: 4, sample_interval: 10, seed: 3 },
    resumed_from: null,
    dataset: { name: "toy", count: 640, channels: 1, height: 4, width: 4, sha256: "ab".repeat(32) },
    backend: { backend: "cpu", adapter: null, threads: 2 },
    versions: { deno: Deno.version.deno },
    started: "2026-01-02T03:04:05.000Z",
  };
  if (o.finalEval) {
    run.final_eval = {
      ...qualityRow(12.5, 1000),
      features: "classifier",
      classifier_accuracy: 0.97,
      skipped: [],
      reference: { real: qualityRow(1.5, 500), noise: qualityRow(400, 1000) },
      histogram: HIST,
      real_histogram: REAL_HIST,
    };
    run.finished = "2026-01-02T04:00:00.000Z";
  }
  await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(run, null, 2));
  const lines: string[] = [];
  for (let s = 0; s < o.steps; s++) {
    lines.push(JSON.stringify({
      step: s,
      epoch: Math.floor(s / 10),
      batch: s % 10,
      d_loss: 0.5 + (s % 2) * 0.2,
      g_loss: 1 + s / o.steps,
      d_real: 0.7,
      d_fake: 0.3,
      time: s * 0.01,
    }));
    const done = s + 1;
    if (o.evalEvery && done % o.evalEvery === 0) {
      lines.push(JSON.stringify({
        kind: "eval",
        step: done,
        epoch: Math.floor(s / 10),
        fid: 100 / done,
        kid: 0.1 / done,
        kid_std: 0.001,
        precision: 0.5,
        recall: done / o.steps,
        density: 0.8,
        coverage: 0.5,
        classes_covered: 7,
        class_kl: 0.1,
        classifier_score: 6,
        histogram: HIST,
        n: 1000,
        seconds: 1.2,
      }));
    }
  }
  await Deno.writeTextFile(`${dir}/metrics.jsonl`, lines.join("\n") + "\n" + (o.tail ?? ""));
  const every = o.sampleInterval ?? 0;
  for (let s = 0; every > 0 && s < o.steps; s += every) {
    const img = Float32Array.from({ length: 4 * 16 }, (_, i) => Math.sin(i * 0.7 + s));
    await saveGrid(`${dir}/images/fixed_${s}.png`, img, 4, 1, 4, 4, { nrow: 2, normalize: true });
    await saveGrid(`${dir}/images/${s}.png`, img.map((v) => -v), 4, 1, 4, 4, { nrow: 2, normalize: true });
  }
}

/** The JSON data island of a report page. */
function dataOf(html: string) {
  const m = /<script type="application\/json" id="report-data">(.*?)<\/script>/s.exec(html);
  assert.ok(m, "the page has its data");
  return JSON.parse(m[1]) as {
    steps: { x: number[]; d_loss: (number | null)[]; g_loss: (number | null)[] };
    evals: Record<string, number[]> | null;
    histogram: { generated: number[]; real: number[] | null; step: number | null } | null;
    grids: { step: number; src: string }[];
    batchesPerEpoch: number | null;
  };
}

/** Nothing that would load from the network: no remote src/href/url(), no script or link by reference. */
function assertSelfContained(html: string) {
  assert.doesNotMatch(html, /\b(src|href)\s*=\s*["']?\s*(https?:)?\/\//i, "no remote src or href");
  assert.doesNotMatch(html, /url\(\s*["']?\s*(https?:)?\/\//i, "no remote url() in CSS");
  assert.doesNotMatch(html, /<script[^>]*\bsrc=/i, "every script inline");
  assert.doesNotMatch(html, /<link\b/i, "no linked stylesheet or icon");
  assert.match(html, /<meta http-equiv="Content-Security-Policy" content="default-src 'none';/);
}

async function withTempDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = await Deno.makeTempDir({ prefix: "gan-report-" });
  try {
    return await f(dir);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

Deno.test("report: the page holds the run's data and grids, inlines uPlot, and loads nothing", async () => {
  await withTempDir(async (dir) => {
    const run = `${dir}/toy-run`;
    await makeRun(run, { steps: 60, evalEvery: 20, sampleInterval: 10, finalEval: true });
    const r = await writeReport(run);
    assert.equal(r.path, `${run}/report.html`);
    const html = await Deno.readTextFile(r.path);
    assert.equal(r.bytes, new TextEncoder().encode(html).length);
    assertSelfContained(html);
    assert.match(html, /<meta name="generator" content="deno-gan">/);
    assert.match(html, /<title>deno-gan report: toy-run<\/title>/);
    for (
      const id of ["loss-chart", "dx-chart", "metrics-chart", "timeline", "timeline-slider", "histogram", "settings"]
    ) {
      assert.match(html, new RegExp(`id="${id}"`), `#${id}`);
    }
    const { uplotJs, uplotCss } = await loadChartAssets();
    assert.ok(html.includes(uplotJs) && html.includes(uplotCss), "uPlot's build and CSS inlined as they are");
    const data = dataOf(html);
    assert.deepEqual(data.steps.x, Array.from({ length: 60 }, (_, i) => i));
    assert.equal(data.steps.d_loss[1], 0.7);
    assert.equal(data.batchesPerEpoch, 10);
    assert.deepEqual(data.evals!.step, [20, 40, 60]);
    assert.deepEqual(data.evals!.fid, [5, 2.5, 1.66667]);
    assert.deepEqual(data.evals!.recall, [0.333333, 0.666667, 1]);
    // The latest eval's histogram is the final one (run.json), beside the real one.
    assert.deepEqual(data.histogram, { step: 60, generated: HIST, real: REAL_HIST });
    // Every fixed grid, in step order, each its file as a data: URI; the last batch grid too.
    assert.deepEqual(data.grids.map((g) => g.step), [0, 10, 20, 30, 40, 50]);
    const png = await Deno.readFile(`${run}/images/fixed_30.png`);
    assert.equal(data.grids[3].src, `data:image/png;base64,${png.toBase64()}`);
    assert.ok(html.includes((await Deno.readFile(`${run}/images/50.png`)).toBase64()), "the last batch grid");
    // The settings, the dataset and the final scores with their reference rows.
    assert.match(html, /<th>lr<\/th><td>0.0002<\/td>/);
    assert.match(html, /<th>sha256<\/th><td>(ab){32}<\/td>/);
    assert.match(html, /id="final-metrics"/);
    assert.match(html, /<th>real \(two halves\)<\/th><td>1.5<\/td>/);
    assert.match(html, /<th>uniform noise<\/th><td>400<\/td>/);
    assert.match(html, /classifier accuracy \(held out\): 97%/);
    assert.match(html, /finished 2026-01-02T04:00:00.000Z/);
    assert.doesNotMatch(html, /no --eval_every/);
  });
});

Deno.test("report: without eval rows, a plain note; without a final eval, no histogram or final table", async () => {
  await withTempDir(async (dir) => {
    await makeRun(dir, { steps: 5, sampleInterval: 2 });
    const html = buildReportHtml(readRunFolder(dir), { uplotJs: "", uplotCss: "" });
    assert.match(html, /this run had no --eval_every/);
    assert.doesNotMatch(html, /id="histogram"/);
    assert.doesNotMatch(html, /id="final-metrics"/);
    assert.equal(dataOf(html).evals, null);
    assert.equal(dataOf(html).histogram, null);
    // Text from run.json is escaped, and the data island cannot be closed by it.
    const run = JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
    run.dataset.name = "</script><img src=x onerror=alert(1)>";
    await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(run));
    const evil = buildReportHtml(readRunFolder(dir), { uplotJs: "", uplotCss: "" });
    assert.doesNotMatch(evil, /<img src=x/);
    assert.match(evil, /&#60;\/script&#62;&#60;img src=x/);
    // aae's encoder is shown as the other networks are, its heads named (and escaped).
    run.config.encoder = {
      input: 16,
      layers: [{ out: 4, bn: null, act: { kind: "none" }, heads: [{ name: "mu", out: 2 }, { name: "<b>", out: 2 }] }],
    };
    await Deno.writeTextFile(`${dir}/run.json`, JSON.stringify(run));
    const aae = buildReportHtml(readRunFolder(dir), { uplotJs: "", uplotCss: "" });
    assert.match(
      aae,
      /<tr><th>encoder<\/th><td>16 → 4 <span class="muted">\(none, heads mu 2, &#60;b&#62; 2\)<\/span>/,
    );
  });
});

Deno.test("report: eval rows without a final eval: the last eval row's histogram, no real one", async () => {
  await withTempDir(async (dir) => {
    await makeRun(dir, { steps: 30, evalEvery: 10 });
    const f = readRunFolder(dir);
    assert.equal(f.evals.length, 3);
    assert.deepEqual(f.evalHistogram, { step: 30, histogram: HIST });
    const data = dataOf(buildReportHtml(f, { uplotJs: "", uplotCss: "" }));
    assert.deepEqual(data.histogram, { step: 30, generated: HIST, real: null });
  });
});

Deno.test("report: 47,000 step rows are drawn as at most 2,000 means, and the page stays small", async () => {
  await withTempDir(async (dir) => {
    await makeRun(dir, { steps: 47_000, evalEvery: 4700, sampleInterval: 400 });
    const r = await writeReport(dir);
    const data = dataOf(await Deno.readTextFile(r.path));
    assert.equal(r.run.steps.rows, 47_000);
    assert.equal(r.run.steps.rowsPerPoint, 32);
    assert.equal(data.steps.x.length, Math.ceil(47_000 / 32));
    assert.equal(data.steps.x[0], 15.5); // the mean step of rows 0..31
    assert.equal(data.steps.d_loss[0], 0.6); // the mean of 0.5 and 0.7, alternating
    assert.equal(data.steps.x.at(-1), (46_976 + 46_999) / 2); // the last bucket has 24 rows
    assert.equal(data.evals!.step.length, 10);
    assert.equal(data.grids.length, 118);
    assert.ok(r.bytes < 1.5 * 2 ** 20, `${r.bytes} bytes`);
    assert.match(await Deno.readTextFile(r.path), /47,000 steps, drawn as 1,469 points: each the mean of 32/);
  });
});

Deno.test("report: a torn last line is skipped; other bad lines are skipped and counted", async () => {
  await withTempDir(async (dir) => {
    await makeRun(dir, { steps: 4, tail: '{"step":4,"epoch":0,"d_lo' });
    let f = readRunFolder(dir);
    assert.equal(f.steps.rows, 4);
    assert.equal(f.lastStep?.step, 3);
    assert.deepEqual(f.notes, ["metrics.jsonl: a torn last line (25 bytes without a newline) was skipped"]);
    const good = await Deno.readTextFile(`${dir}/metrics.jsonl`);
    const lines = good.split("\n").slice(0, 4);
    await Deno.writeTextFile(
      `${dir}/metrics.jsonl`,
      [lines[0], "not json", lines[1], "", '{"no_step":1}', "[1,2]", lines[2], lines[3]].join("\n") + "\n",
    );
    f = readRunFolder(dir);
    assert.equal(f.steps.rows, 4);
    assert.match(
      f.notes[0],
      /^metrics.jsonl: 3 lines that are not a JSON object with a numeric "step" were skipped \(the first at line 2\)$/,
    );
    // Rows of another kind (a later version's) are left out quietly.
    await Deno.writeTextFile(`${dir}/metrics.jsonl`, lines.join("\n") + '\n{"kind":"future","step":4}\n');
    f = readRunFolder(dir);
    assert.equal(f.steps.rows, 4);
    assert.equal(f.evals.length, 0);
  });
});

Deno.test("report: a missing folder, run.json or metrics.jsonl, links inside the folder and absurd files are refused", async () => {
  await withTempDir(async (dir) => {
    assert.throws(() => readRunFolder(`${dir}/nope`), {
      message: `Cannot read run folder "${dir}/nope": it does not exist`,
    });
    await Deno.writeTextFile(`${dir}/file`, "x");
    assert.throws(() => readRunFolder(`${dir}/file`), /Cannot read run folder ".*\/file": it is not a folder/);
    const run = `${dir}/run`;
    await makeRun(run, { steps: 3, sampleInterval: 1 });
    await Deno.rename(`${run}/run.json`, `${dir}/run.json`);
    assert.throws(() => readRunFolder(run), {
      message: `Cannot read run folder "${run}": it has no run.json (is it the --out folder of a training run?)`,
    });
    await Deno.symlink(`${dir}/run.json`, `${run}/run.json`);
    assert.throws(() => readRunFolder(run), /Cannot read run file ".*\/run.json": it is a symbolic link \(to ".*"\)/);
    await Deno.remove(`${run}/run.json`);
    await Deno.rename(`${dir}/run.json`, `${run}/run.json`);
    const runJson = await Deno.readTextFile(`${run}/run.json`);
    await Deno.writeTextFile(`${run}/run.json`, "[1]");
    assert.throws(() => readRunFolder(run), /Cannot read run file ".*run.json": it holds \[1\], not an object/);
    await Deno.writeTextFile(`${run}/run.json`, "{");
    assert.throws(() => readRunFolder(run), /Cannot read run file ".*run.json": .*JSON/);
    await Deno.writeTextFile(`${run}/run.json`, runJson);

    // metrics.jsonl: missing, a link, a FIFO, too big, a line too long.
    await Deno.rename(`${run}/metrics.jsonl`, `${dir}/metrics.jsonl`);
    assert.throws(() => readRunFolder(run), /it has no metrics.jsonl/);
    await Deno.symlink(`${dir}/metrics.jsonl`, `${run}/metrics.jsonl`);
    assert.throws(
      () => readRunFolder(run),
      new RegExp(
        `Cannot read metrics log "${run}/metrics.jsonl": it is a symbolic link \\(to "${dir}/metrics.jsonl"\\)`,
      ),
    );
    await Deno.remove(`${run}/metrics.jsonl`);
    const mkfifo = await new Deno.Command("mkfifo", { args: [`${run}/metrics.jsonl`] }).output();
    assert.equal(mkfifo.code, 0);
    assert.throws(() => readRunFolder(run), /metrics.jsonl": it is a FIFO \(named pipe\), not a regular file/);
    await Deno.remove(`${run}/metrics.jsonl`);
    await Deno.rename(`${dir}/metrics.jsonl`, `${run}/metrics.jsonl`);
    assert.throws(
      () => readRunFolder(run, { maxMetricsBytes: 100 }),
      /metrics.jsonl": the file has \d+ bytes, above the limit of 100 bytes \(a report reads at most this much\)/,
    );
    await Deno.writeTextFile(`${run}/metrics.jsonl`, '{"step":0}\n{"step":1,"pad":"' + "x".repeat(2 ** 20) + '"}\n');
    assert.throws(() => readRunFolder(run), /metrics.jsonl": line 2 is longer than 1 MiB/);
    await Deno.writeTextFile(`${run}/metrics.jsonl`, '{"step":0}\n' + "y".repeat(2 ** 20 + 5)); // torn, but absurd
    assert.throws(() => readRunFolder(run), /line 2 is longer than 1 MiB/);
    await Deno.writeTextFile(`${run}/metrics.jsonl`, '{"step":0}\n');

    // images/ or a grid a link; a file named like a grid that is no PNG.
    await Deno.symlink(`${run}/images/fixed_0.png`, `${run}/images/fixed_7.png`);
    assert.throws(() => readRunFolder(run), /"images\/fixed_7.png" is a symbolic link \(to ".*fixed_0.png"\)/);
    await Deno.remove(`${run}/images/fixed_7.png`);
    await Deno.rename(`${run}/images`, `${dir}/images`);
    await Deno.symlink(`${dir}/images`, `${run}/images`);
    assert.throws(
      () => readRunFolder(run),
      /"images" is a symbolic link \(to ".*images"\); the report follows no links/,
    );
    await Deno.remove(`${run}/images`);
    await Deno.rename(`${dir}/images`, `${run}/images`);
    await Deno.writeTextFile(`${run}/images/fixed_9.png`, "not a png");
    const f = readRunFolder(run);
    assert.deepEqual(f.grids.map((g) => g.step), [0, 1, 2]);
    assert.ok(f.notes.includes("images/fixed_9.png is not a PNG file; left out"), f.notes.join("\n"));
    // A link to the run folder itself is fine.
    await Deno.symlink(run, `${dir}/link-to-run`);
    assert.equal(readRunFolder(`${dir}/link-to-run`).name, "link-to-run");
  });
});

Deno.test("report: many grids are thinned evenly to at most 200 and a byte budget, the last always kept", async () => {
  assert.deepEqual(evenlySpaced(5, 10), [0, 1, 2, 3, 4]);
  assert.deepEqual(evenlySpaced(10, 4), [0, 3, 6, 9]);
  assert.deepEqual(evenlySpaced(10, 1), [9]);
  assert.deepEqual(evenlySpaced(0, 3), []);
  await withTempDir(async (dir) => {
    await makeRun(dir, { steps: 1000, sampleInterval: 2 }); // 500 grids
    let f = readRunFolder(dir);
    assert.equal(f.gridsFound, 500);
    assert.equal(f.grids.length, 200);
    assert.equal(f.grids[0].step, 0);
    assert.equal(f.grids.at(-1)!.step, 998);
    const gaps = new Set(f.grids.slice(1).map((g, i) => g.step - f.grids[i].step));
    assert.deepEqual([...gaps].sort(), [4, 6], "evenly spaced");
    assert.match(f.notes.join("\n"), /the timeline shows 200 of the 500 fixed-noise grids/);
    assert.equal(f.batchGrid?.step, 998);
    const size = (await Deno.stat(`${dir}/images/fixed_0.png`)).size;
    f = readRunFolder(dir, { maxImageBytes: size * 10.5 });
    assert.ok(f.grids.length <= 10 && f.grids.length >= 8, `${f.grids.length} grids`);
    assert.equal(f.grids.at(-1)!.step, 998);
    f = readRunFolder(dir, { maxImageBytes: 1 });
    assert.deepEqual(f.grids.map((g) => g.step), [998]);
  });
});

/** Runs the report command as the task does (its permissions), returning the exit code and stderr. */
async function reportCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--no-prompt",
      "--allow-read",
      "--allow-write",
      "--allow-env=DENO_GAN_DEBUG",
      "src/cli/report.ts",
      ...args,
    ],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("report CLI: a short real run end to end; usage errors exit 2, a bad folder exits 1", async () => {
  await withTempDir(async (dir) => {
    const run = `${dir}/small`;
    {
      using t = await GanTrainer.create(
        syntheticImages(240),
        smallRunOptions({ maxSteps: 30, sampleInterval: 10, outDir: run, checkpointEvery: 0 }),
      );
      await t.run();
    }
    const r = await reportCli(["--run", run]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stderr, new RegExp(`wrote ${run}/report.html \\([\\d.]+ KiB\\): 30 steps, 0 evals, 3 of 3 grids`));
    const html = await Deno.readTextFile(`${run}/report.html`);
    assertSelfContained(html);
    const data = dataOf(html);
    assert.deepEqual(data.steps.x, Array.from({ length: 30 }, (_, i) => i));
    const rows = (await Deno.readTextFile(`${run}/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l));
    assert.deepEqual(data.steps.g_loss, rows.map((row) => Number(row.g_loss.toPrecision(6))));
    assert.deepEqual(data.grids.map((g) => g.step), [0, 10, 20]);
    assert.equal(data.batchesPerEpoch, 20); // 240 images, batch 12
    assert.match(html, /<title>deno-gan report: small<\/title>/);
    assert.match(html, /<th>backend<\/th><td>cpu<\/td>/);

    const other = await reportCli(["--run", run, "--out", `${dir}/elsewhere.html`]);
    assert.equal(other.code, 0, other.stderr);
    assert.ok((await Deno.stat(`${dir}/elsewhere.html`)).size > 50_000);
    assert.deepEqual([...Deno.readDirSync(run)].map((e) => e.name).filter((n) => n.endsWith(".tmp")), []);

    const help = await reportCli(["--help"]);
    assert.equal(help.code, 0);
    assert.match(help.stdout, /Usage: deno task report --run DIR \[--out FILE\]/);
    for (
      const [args, message] of [
        [[], /^error: --run DIR is required$/],
        [["--run", run, "--run", run], /^error: --run is given twice/],
        [["--run"], /^error: Option '--run <value>' argument missing/],
        [["--bogus", "1"], /^error: Unknown option '--bogus'/],
      ] as [string[], RegExp][]
    ) {
      const bad = await reportCli(args);
      assert.equal(bad.code, 2, `${args.join(" ")}:\n${bad.stderr}`);
      oneErrorLine(bad.stderr, message);
      assert.match(bad.stderr, /deno task report --help/);
    }
    const missing = await reportCli(["--run", `${dir}/nope`]);
    assert.equal(missing.code, 1);
    oneErrorLine(missing.stderr, new RegExp(`^error: Cannot read run folder "${dir}/nope": it does not exist$`));
    await Deno.remove(`${run}/metrics.jsonl`);
    await Deno.symlink(`${dir}/elsewhere.html`, `${run}/metrics.jsonl`);
    const linked = await reportCli(["--run", run]);
    assert.equal(linked.code, 1);
    oneErrorLine(linked.stderr, /^error: Cannot read metrics log ".*metrics.jsonl": it is a symbolic link/);
  });
});

// ---- in a real browser ----

/** Opens a page and records what would make it fail: console errors, page errors, requests beyond file: and data:. */
async function openReport(browser: Browser, file: string) {
  const { page, problems } = await watchedPage(browser, (u) => /^(file|data):/.test(u));
  await page.goto(new URL(`file://${file}`).href, { waitUntil: "load" });
  await page.evaluate(() => new Promise((ok) => requestAnimationFrame(() => requestAnimationFrame(ok))));
  return { page, problems };
}

/** The canvases uPlot drew under `selector`: their count and smallest size. */
function canvasesUnder(page: Page, selector: string) {
  return page.evaluate((sel: string) => {
    const root = document.querySelector(sel);
    const plots = root ? root.querySelectorAll(".uplot") : [];
    const canvases = root ? [...root.querySelectorAll(".uplot canvas")] as HTMLCanvasElement[] : [];
    return {
      plots: plots.length,
      canvases: canvases.length,
      minWidth: Math.min(...canvases.map((c) => c.getBoundingClientRect().width)),
      minHeight: Math.min(...canvases.map((c) => c.getBoundingClientRect().height)),
    };
  }, selector);
}

Deno.test({
  name: "report in chromium: charts drawn, timeline slider and animation work, no errors, no requests, not blank",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const update = Deno.env.get("UPDATE_SCREENSHOT") === "1";
    requireChromium(); // before the training run, to fail at once
    await withTempDir(async (dir) => {
      // A real run of the seed's GAN on the embedded digits (longer for the README's picture).
      const run = `${dir}/mnist`;
      // The README's picture: `deno task train` with the defaults (50 epochs, 7,850 steps, a grid every 400).
      // It evaluates too (for the picture every 5 epochs with the digits' cached classifier; here a quick classifier).
      const [steps, interval, evalEvery] = update ? [7850, 400, 785] : [400, 20, 200];
      const digits = await loadEmbeddedMnist();
      {
        using ctx = new Context({ backend: "cpu" });
        using quick = update ? null : trainClassifier(ctx, digits, { epochs: 1, limit: 1000 });
        using t = await GanTrainer.create(digits, {
          backend: "cpu",
          seed: 0,
          maxSteps: steps,
          sampleInterval: interval,
          checkpointEvery: 0,
          outDir: run,
          evalEvery,
          evalN: update ? 10000 : 300,
          evalClassifier: quick ?? undefined,
        });
        await t.run();
      }
      const lastGrid = Math.floor((steps - 1) / interval) * interval;
      await writeReport(run);
      // A synthesized run with eval rows and a final eval: the score charts and the histogram.
      const toy = `${dir}/toy`;
      await makeRun(toy, { steps: 200, evalEvery: 40, sampleInterval: 20, finalEval: true });
      await writeReport(toy);

      const browser = await launchChromium();
      try {
        const { page, problems } = await openReport(browser, `${run}/report.html`);
        for (const sel of ["#loss-chart", "#dx-chart"]) {
          const c = await canvasesUnder(page, sel);
          assert.equal(c.plots, 1, `${sel}: one uPlot chart`);
          assert.ok(c.canvases >= 1 && c.minWidth > 200 && c.minHeight > 100, `${sel}: ${JSON.stringify(c)}`);
        }
        const scores = await canvasesUnder(page, "#metrics-chart");
        assert.equal(scores.plots, 3, `the real run's eval rows: ${JSON.stringify(scores)}`);
        assert.equal(await page.$$eval("#final-metrics tbody tr", (rows) => rows.length), 3);
        // The timeline: the last grid shown, decoded; the slider shows another; play advances, pause stops.
        const shown = () =>
          page.$eval("#timeline-image", (e) => {
            const img = e as HTMLImageElement;
            return { src: img.src, w: img.naturalWidth, label: document.getElementById("timeline-label")!.textContent };
          });
        const first = await shown();
        assert.ok(
          first.src.startsWith("data:image/png;base64,") && first.w === 152,
          JSON.stringify(first).slice(0, 200),
        );
        assert.equal(first.label, `step ${lastGrid} (epoch ${Math.floor(lastGrid / 157) + 1})`); // 157 batches an epoch
        await page.$eval("#timeline-slider", (e) => {
          const s = e as HTMLInputElement;
          s.value = "0";
          s.dispatchEvent(new Event("input", { bubbles: true }));
        });
        const moved = await shown();
        assert.notEqual(moved.src, first.src);
        assert.equal(moved.label, "step 0 (epoch 1)");
        await page.click("#timeline-play");
        await page.waitForFunction(() =>
          Number((document.getElementById("timeline-slider") as HTMLInputElement).value) >= 2
        );
        assert.equal(await page.$eval("#timeline-play", (e) => e.textContent), "Pause");
        await page.click("#timeline-play");
        const paused = await page.$eval("#timeline-slider", (e) => (e as HTMLInputElement).value);
        await new Promise((ok) => setTimeout(ok, 600));
        assert.equal(await page.$eval("#timeline-slider", (e) => (e as HTMLInputElement).value), paused, "paused");
        // Back to the last grid for the picture.
        await page.$eval("#timeline-slider", (e) => {
          const s = e as HTMLInputElement;
          s.value = s.max;
          s.dispatchEvent(new Event("input", { bubbles: true }));
        });
        const shot = await page.screenshot({ type: "png", fullPage: true });
        const stats = screenshotStats(shot);
        assert.equal(stats.width, 1200);
        assert.ok(stats.distinct > 500 && stats.top < 0.9, `a blank-looking screenshot: ${JSON.stringify(stats)}`);
        if (update) {
          await Deno.mkdir(`${ROOT}docs/images`, { recursive: true });
          await Deno.writeFile(`${ROOT}docs/images/report.png`, shot);
        }
        assert.deepEqual(problems, []);

        const toyPage = await openReport(browser, `${toy}/report.html`);
        const m = await canvasesUnder(toyPage.page, "#metrics-chart");
        assert.equal(m.plots, 3, `FID/KID, PRDC, classes: ${JSON.stringify(m)}`);
        assert.ok(m.minWidth > 200 && m.minHeight > 100, JSON.stringify(m));
        const h = await canvasesUnder(toyPage.page, "#histogram");
        assert.equal(h.plots, 1);
        assert.ok(h.minWidth > 200 && h.minHeight > 100, JSON.stringify(h));
        const legend = await toyPage.page.$eval("#histogram", (e) => e.textContent ?? "");
        assert.match(legend, /generated/);
        assert.match(legend, /real/);
        assert.equal(await toyPage.page.$$eval("#final-metrics tbody tr", (rows) => rows.length), 3);
        assert.deepEqual(toyPage.problems, []);
      } finally {
        await browser.close();
      }
    });
  },
});
