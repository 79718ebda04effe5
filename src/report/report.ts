/**
 * The training report as one self-contained HTML page: the charts (uPlot, inlined with its CSS), the data as JSON
 * and the fixed-noise grids as `data:` URIs all live in the page, and its Content-Security-Policy forbids loading
 * anything else, so it opens offline and reaches no network. This module is pure: it turns a {@linkcode RunFolder}
 * (see `run_files.ts`) and the chart library's text into the page's text.
 *
 * The page (with stable ids for tests and scripts): a header with the run's name and its facts; the losses of D and G
 * (`#loss-chart`); mean D(x) and D(G(z)) (`#dx-chart`); the scores over time from the eval rows (`#metrics-chart`:
 * FID and KID, precision/recall/density/coverage, classes covered), or a note that the run had no `--eval_every`;
 * the fixed-noise grids as a timeline with a slider and play/pause (`#timeline`, `#timeline-slider`,
 * `#timeline-image`) beside the latest batch grid (`#batch-grid`); the class histogram of the latest eval beside the
 * real one (`#histogram`); the final scores with the reference rows (`#final-metrics`); the run's settings, data,
 * backend and versions (`#settings`); and notes on anything left out (`#notes`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildReportHtml } from "./report.ts";
 * import { Downsampler } from "./series.ts";
 *
 * const steps = new Downsampler(["d_loss", "g_loss", "d_real", "d_fake"]);
 * for (let s = 0; s < 100; s++) steps.add(s, [0.6, 0.8, 0.55, 0.45]);
 * const html = buildReportHtml({
 *   dir: "runs/demo",
 *   name: "demo",
 *   run: { config: { batch_size: 64, lr: 0.0002 }, started: "2026-01-01T00:00:00.000Z" },
 *   steps: steps.result(),
 *   lastStep: { step: 99, epoch: 0, time: 1.5 },
 *   evals: [],
 *   evalHistogram: null,
 *   grids: [],
 *   gridsFound: 0,
 *   batchGrid: null,
 *   notes: [],
 * }, { uplotJs: "var uPlot;", uplotCss: "" });
 * assert.match(html, /<meta name="generator" content="deno-gan">/);
 * assert.match(html, /<title>deno-gan report: demo<\/title>/);
 * assert.match(html, /id="loss-chart"/);
 * assert.match(html, /no --eval_every/);
 * assert.doesNotMatch(html, /(src|href)="https?:/);
 * ```
 *
 * @module
 */

import type { GridImage, RunFolder } from "./run_files.ts";
import { EVAL_FIELDS } from "./run_files.ts";
import { esc, inlineSafe, pageHead } from "../io/html.ts";

/** The chart library's text, inlined into the page (see `loadChartAssets` in `write.ts`). */
export interface ChartAssets {
  /** uPlot's minified IIFE build (`dist/uPlot.iife.min.js`), which defines the global `uPlot`. */
  uplotJs: string;
  /** uPlot's stylesheet (`dist/uPlot.min.css`). */
  uplotCss: string;
}

/** Options of {@linkcode buildReportHtml}. */
export interface BuildReportOptions {
  /** When the report was made, shown in the footer (default: now, as an ISO string). */
  generatedAt?: string;
}

/** A finite number, or null. */
function num(v: unknown): number | null {
  return typeof v === "number" && Number.isFinite(v) ? v : null;
}

/** A plain object, or null. */
function obj(v: unknown): Record<string, unknown> | null {
  return v !== null && typeof v === "object" && !Array.isArray(v) ? v as Record<string, unknown> : null;
}

/** Six significant digits: enough for a chart, a third of the bytes of a double's seventeen. */
function r6(v: number | null): number | null {
  return v === null ? null : Number(v.toPrecision(6));
}

/** A number for a table: up to 4 significant digits, integers as they are. */
function fmt(v: unknown): string {
  if (typeof v !== "number") return v === null || v === undefined ? "–" : esc(v);
  if (!Number.isFinite(v)) return String(v);
  if (Number.isInteger(v) && Math.abs(v) < 1e9) return v.toLocaleString("en-US");
  const a = Math.abs(v);
  if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
  return String(Number(v.toPrecision(4)));
}

/** Seconds as "1 h 2 min", "3 min 4 s", "5.6 s". */
function duration(s: number): string {
  if (s < 60) return `${Number(s.toPrecision(3))} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

/** A layer spec as "256 (BN 0.8, leaky_relu 0.2)". */
function layerText(l: unknown): string {
  const layer = obj(l);
  if (layer === null) return esc(JSON.stringify(l));
  const act = obj(layer.act), bn = obj(layer.bn);
  const parts: string[] = [];
  if (bn !== null) parts.push(`BN eps ${fmt(bn.eps)}`);
  if (act !== null) parts.push(`${esc(act.kind)}${act.slope !== undefined ? ` ${fmt(act.slope)}` : ""}`);
  if (Array.isArray(layer.heads)) {
    parts.push(`heads ${layer.heads.map((h) => `${esc(obj(h)?.name ?? "?")} ${fmt(obj(h)?.out)}`).join(", ")}`);
  }
  return `${fmt(layer.out)}${parts.length ? ` <span class="muted">(${parts.join(", ")})</span>` : ""}`;
}

/** An MLP spec as "100 → 128 (leaky_relu 0.2) → ...". */
function specText(v: unknown): string {
  const spec = obj(v);
  if (spec === null || !Array.isArray(spec.layers)) return `<code>${esc(JSON.stringify(v))}</code>`;
  return [fmt(spec.input), ...spec.layers.map(layerText)].join(" → ");
}

/** A value for the settings tables. */
function valueText(v: unknown): string {
  if (v === null || v === undefined) return `<span class="muted">–</span>`;
  if (typeof v === "number") return Number.isInteger(v) ? fmt(v) : esc(v); // settings as given: 0.0002, not 2e-4
  if (typeof v === "string" || typeof v === "boolean") return esc(v);
  if (Array.isArray(v) && v.every((x) => typeof x !== "object" || x === null)) return esc(v.join(", "));
  return `<code>${esc(JSON.stringify(v))}</code>`;
}

/** A two-column table of an object's fields. */
function fieldTable(title: string, rows: [string, string][]): string {
  if (rows.length === 0) return "";
  return `<div class="card"><h3>${esc(title)}</h3><table class="kv">${
    rows.map(([k, v]) => `<tr><th>${esc(k)}</th><td>${v}</td></tr>`).join("")
  }</table></div>`;
}

function objectRows(o: Record<string, unknown> | null, skip: string[] = []): [string, string][] {
  if (o === null) return [];
  return Object.entries(o).filter(([k]) => !skip.includes(k)).map(([k, v]) => [k, valueText(v)]);
}

/** The settings section: config, dataset, backend, versions, times. */
function settingsSection(run: Record<string, unknown>): string {
  const config = obj(run.config);
  const nets = ["generator", "discriminator", "encoder"];
  const configRows = objectRows(config, nets);
  for (const net of nets) if (config?.[net] !== undefined) configRows.push([net, specText(config[net])]);
  const backend = obj(run.backend);
  const backendRows = objectRows(backend, ["library"]);
  const lib = obj(backend?.library);
  if (lib !== null) backendRows.push(["library", valueText(`${lib.path ?? "?"} (${lib.source ?? "?"})`)]);
  const runRows: [string, string][] = [
    ["started", valueText(run.started)],
    ["finished", valueText(run.finished)],
    ["resumed from", valueText(run.resumed_from)],
  ];
  const known = ["config", "dataset", "backend", "versions", "started", "finished", "resumed_from", "final_eval"];
  for (const [k, v] of Object.entries(run)) if (!known.includes(k)) runRows.push([k, valueText(v)]);
  return `<section id="settings"><h2>Settings</h2><div class="grid2">${fieldTable("Training", configRows)}<div>${
    fieldTable("Run", runRows)
  }${fieldTable("Dataset", objectRows(obj(run.dataset)))}${
    fieldTable("Versions", objectRows(obj(run.versions)))
  }</div>${fieldTable("Backend", backendRows)}</div></section>`;
}

/** The final scores with the reference rows, from run.json's `final_eval`. */
function finalSection(run: Record<string, unknown>): string {
  const fe = obj(run.final_eval);
  if (fe === null) return "";
  const ref = obj(fe.reference);
  const rows: [string, Record<string, unknown> | null][] = [
    ["generated", fe],
    ["real (two halves)", obj(ref?.real)],
    ["uniform noise", obj(ref?.noise)],
  ];
  const cols: [string, string][] = [
    ["fid", "FID ↓"],
    ["kid", "KID ↓"],
    ["precision", "precision"],
    ["recall", "recall"],
    ["density", "density"],
    ["coverage", "coverage"],
    ["classes_covered", "classes"],
    ["class_kl", "class KL ↓"],
    ["classifier_score", "classifier score"],
    ["n", "N"],
  ];
  const cell = (r: Record<string, unknown>, k: string) => {
    if (k !== "kid") return fmt(r[k]);
    const kid = obj(r.kid);
    return kid === null ? fmt(r.kid) : `${fmt(kid.mean)} <span class="muted">± ${fmt(kid.std)}</span>`;
  };
  const body = rows.filter(([, r]) => r !== null).map(([label, r]) =>
    `<tr><th>${esc(label)}</th>${cols.map(([k]) => `<td>${cell(r!, k)}</td>`).join("")}</tr>`
  ).join("");
  const facts: string[] = [];
  if (fe.features !== undefined) facts.push(`features: ${esc(fe.features)}`);
  if (num(fe.classifier_accuracy) !== null) {
    facts.push(`classifier accuracy (held out): ${fmt(num(fe.classifier_accuracy)! * 100)}%`);
  }
  if (num(fe.label_accuracy) !== null) {
    const per = Array.isArray(fe.label_accuracy_per_label) ? fe.label_accuracy_per_label : [];
    const each = per.map((v, k) => `${k}: ${num(v) === null ? "-" : fmt(num(v))}`).join(", ");
    facts.push(
      `<span id="label-accuracy">label accuracy (how often the classifier names the label asked for): mean ` +
        `${fmt(num(fe.label_accuracy))}${each ? ` (${esc(each)})` : ""}</span>`,
    );
  }
  if (Array.isArray(fe.skipped) && fe.skipped.length > 0) facts.push(`skipped: ${esc(fe.skipped.join("; "))}`);
  return `<section id="final-metrics"><h2>Final scores</h2><div class="card scroll"><table class="metrics"><thead><tr>` +
    `<th></th>${cols.map(([, h]) => `<th>${esc(h)}</th>`).join("")}</tr></thead><tbody>${body}</tbody></table>` +
    `${facts.length ? `<p class="muted">${facts.join(" · ")}</p>` : ""}<p class="muted">The reference rows bound ` +
    `the scale: two halves of the real images (about the best a generator can score at that size) and uniform ` +
    `noise (about the worst).</p></div></section>`;
}

function dataUri(g: GridImage): string {
  return `data:image/png;base64,${g.bytes.toBase64()}`;
}

/** Integer upscaling of a small grid to about 360 px. */
function scale(g: GridImage): number {
  return Math.max(1, Math.min(12, Math.floor(360 / Math.max(g.width, 1))));
}

/** The timeline of fixed-noise grids, and the latest batch grid. */
function samplesSection(f: RunFolder): string {
  const { grids, batchGrid } = f;
  let timeline: string;
  if (grids.length === 0) {
    timeline = `<div id="timeline" class="card"><p class="note">No fixed-noise grids in images/ ` +
      `(they are written every --sample_interval steps).</p></div>`;
  } else {
    const last = grids[grids.length - 1], k = scale(last);
    timeline = `<div id="timeline" class="card"><h3>Fixed noise, eval mode</h3>` +
      `<img id="timeline-image" class="grid-img" alt="fixed-noise grid" src="${dataUri(last)}" ` +
      `width="${last.width * k}" height="${last.height * k}">` +
      `<div class="controls"><button id="timeline-play" type="button">Play</button>` +
      `<input id="timeline-slider" type="range" min="0" max="${grids.length - 1}" value="${grids.length - 1}" ` +
      `step="1" aria-label="grid"><span id="timeline-label" class="label"></span></div>` +
      `<p class="muted">${grids.length} of ${f.gridsFound} grids, steps ${grids[0].step}–${last.step}.</p></div>`;
  }
  let batch = "";
  if (batchGrid !== null) {
    const k = scale(batchGrid);
    batch = `<div id="batch-grid" class="card"><h3>Last training batch (step ${batchGrid.step})</h3>` +
      `<img class="grid-img" alt="batch grid at step ${batchGrid.step}" src="${dataUri(batchGrid)}" ` +
      `width="${batchGrid.width * k}" height="${batchGrid.height * k}"></div>`;
  }
  return `<section id="samples"><h2>Samples</h2><div class="row">${timeline}${batch}</div></section>`;
}

/** The histogram of the latest eval (run.json's final_eval, else the last eval row with one) and the real one. */
function histogramOf(f: RunFolder): { step: number | null; generated: number[]; real: number[] | null } | null {
  const fe = obj(f.run.final_eval);
  const list = (v: unknown) =>
    Array.isArray(v) && v.length > 0 && v.length <= 10_000 && v.every((x) => num(x) !== null) ? v as number[] : null;
  const real = list(fe?.real_histogram);
  const finalGen = list(fe?.histogram);
  if (finalGen !== null) {
    return { step: num(f.lastStep?.step) === null ? null : num(f.lastStep!.step)! + 1, generated: finalGen, real };
  }
  if (f.evalHistogram !== null) return { step: f.evalHistogram.step, generated: f.evalHistogram.histogram, real };
  return null;
}

/** The report's stylesheet (the live view's page shares it). */
export const REPORT_CSS = `
:root { --fg: #1f2328; --muted: #656d76; --line: #d0d7de; --bg: #f6f8fa; --card: #fff; --accent: #0969da; }
* { box-sizing: border-box; }
body { margin: 0; font: 15px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", sans-serif;
  color: var(--fg); background: var(--bg); }
header { background: #fff; border-bottom: 1px solid var(--line); padding: 18px 28px 14px; }
header h1 { margin: 0; font-size: 24px; font-weight: 650; }
header h1 .tool { color: var(--muted); font-weight: 400; }
.facts { display: flex; flex-wrap: wrap; gap: 6px 22px; margin-top: 8px; color: var(--muted); font-size: 14px; }
.facts b { color: var(--fg); font-weight: 600; }
main { max-width: 1240px; margin: 0 auto; padding: 8px 28px 32px; }
h2 { font-size: 18px; margin: 26px 0 10px; font-weight: 650; }
h3 { font-size: 14px; margin: 0 0 8px; color: var(--muted); font-weight: 600; text-transform: uppercase;
  letter-spacing: .03em; }
.card { background: var(--card); border: 1px solid var(--line); border-radius: 8px; padding: 14px 16px; min-width: 0; }
.grid2 { display: grid; grid-template-columns: repeat(auto-fit, minmax(340px, 1fr)); gap: 14px; align-items: start; }
.grid2 > div:not(.card) { display: grid; gap: 14px; }
.row { display: flex; flex-wrap: wrap; gap: 14px; align-items: flex-start; }
.chart { min-height: 40px; }
.charts { display: grid; gap: 14px; }
#metrics-chart { display: grid; gap: 22px; }
.note { color: var(--muted); font-style: italic; margin: 4px 0; }
.muted { color: var(--muted); }
.grid-img { image-rendering: pixelated; display: block; background: #000; border-radius: 4px; max-width: 100%;
  height: auto; }
.controls { display: flex; align-items: center; gap: 12px; margin-top: 10px; }
.controls input[type=range] { flex: 1; min-width: 160px; }
.controls .label { font-variant-numeric: tabular-nums; min-width: 12ch; color: var(--muted); font-size: 14px; }
button { font: inherit; font-size: 14px; padding: 3px 14px; border: 1px solid var(--line); border-radius: 6px;
  background: #f6f8fa; cursor: pointer; }
button:hover { background: #eef1f4; }
table { border-collapse: collapse; font-size: 14px; }
table.kv { width: 100%; }
table.kv th { text-align: left; font-weight: 500; color: var(--muted); padding: 3px 14px 3px 0; white-space: nowrap;
  vertical-align: top; width: 1%; }
table.kv td { padding: 3px 0; word-break: break-word; }
table.metrics th, table.metrics td { padding: 5px 10px; text-align: right; border-bottom: 1px solid var(--line);
  white-space: nowrap; font-variant-numeric: tabular-nums; }
table.metrics tbody th { text-align: left; font-weight: 600; }
table.metrics thead th { color: var(--muted); font-weight: 600; }
.scroll { overflow-x: auto; }
code { font-size: 12px; word-break: break-all; }
footer { color: var(--muted); font-size: 13px; max-width: 1240px; margin: 0 auto; padding: 0 28px 28px; }
.uplot .u-title { font-size: 14px; font-weight: 600; }
.uplot .u-legend { font-size: 13px; }
`;

/** The page's script: charts from #report-data, the timeline's slider and animation. Plain ES2020, no modules. */
const SCRIPT = String.raw`
(function () {
  "use strict";
  var data = JSON.parse(document.getElementById("report-data").textContent);
  var charts = [];
  var C = { d: "#cf222e", g: "#0969da", real: "#1a7f37", fake: "#8250df", a: "#bc4c00", b: "#0550ae",
    c: "#1a7f37", e: "#8250df", f: "#bf3989", h: "#57606a" };
  function fmt(v) {
    if (v == null || !isFinite(v)) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }
  function epochOf(step) {
    return data.batchesPerEpoch ? " (epoch " + (Math.floor(step / data.batchesPerEpoch) + 1) + ")" : "";
  }
  function widthOf(el) { return Math.max(280, Math.floor(el.getBoundingClientRect().width)); }
  function chart(el, title, x, series, o) {
    o = o || {};
    var opts = {
      title: title, width: widthOf(el), height: o.height || 240,
      scales: Object.assign({ x: { time: false } }, o.scales || {}),
      axes: o.axes || [{ label: o.xLabel || "step" }, { label: o.yLabel || "", size: 60 }],
      legend: { live: true },
      cursor: { drag: { x: true, y: false } },
      series: [{ label: o.xLabel || "step", value: function (u, v) { return v == null ? "–" : Math.round(v) + (o.xLabel ? "" : epochOf(v)); } }]
        .concat(series.map(function (s) {
          return Object.assign({ label: s.label, stroke: s.color, width: 1.6,
            value: function (u, v) { return fmt(v); } }, s.extra || {});
        })),
    };
    if (o.right) opts.axes.push({ side: 1, scale: o.right, label: o.rightLabel || "", grid: { show: false }, size: 60 });
    var u = new uPlot(opts, [x].concat(series.map(function (s) { return s.data; })), el);
    charts.push([u, el]);
    return u;
  }
  function sub(parent, id) {
    var el = document.createElement("div");
    el.className = "chart"; if (id) el.id = id;
    parent.appendChild(el);
    return el;
  }
  var s = data.steps;
  if (s.x.length > 0) {
    chart(document.getElementById("loss-chart"), "Losses", s.x, [
      { label: "D loss", color: C.d, data: s.d_loss },
      { label: "G loss", color: C.g, data: s.g_loss },
    ], { yLabel: "BCE" });
    chart(document.getElementById("dx-chart"), "Discriminator outputs", s.x, [
      { label: "mean D(x)", color: C.real, data: s.d_real },
      { label: "mean D(G(z))", color: C.fake, data: s.d_fake },
    ], { yLabel: "probability", scales: { y: { range: [0, 1] } } });
  }
  var e = data.evals;
  if (e && e.step.length > 0) {
    var m = document.getElementById("metrics-chart");
    var pts = { points: { show: true, size: 6 } };
    chart(sub(m, "fid-chart"), "FID and KID (lower is better)", e.step, [
      { label: "FID", color: C.a, data: e.fid, extra: pts },
      { label: "KID", color: C.b, data: e.kid, extra: Object.assign({ scale: "kid" }, pts) },
    ], { yLabel: "FID", right: "kid", rightLabel: "KID" });
    chart(sub(m, "prdc-chart"), "Precision, recall, density, coverage", e.step, [
      { label: "precision", color: C.a, data: e.precision, extra: pts },
      { label: "recall", color: C.b, data: e.recall, extra: pts },
      { label: "density", color: C.c, data: e.density, extra: pts },
      { label: "coverage", color: C.e, data: e.coverage, extra: pts },
    ], { yLabel: "share", scales: { y: { range: function (u, lo, hi) { return [0, Math.max(1, hi || 0)]; } } } });
    if (e.classes_covered.some(function (v) { return v != null; })) {
      chart(sub(m, "classes-chart"), "Classes covered (at least 2% of the samples)", e.step, [
        { label: "classes covered", color: C.f, data: e.classes_covered, extra: pts },
        { label: "class KL", color: C.h, data: e.class_kl, extra: Object.assign({ scale: "kl" }, pts) },
      ], { yLabel: "classes", right: "kl", rightLabel: "KL (nats)",
        scales: { y: { range: function (u, lo, hi) { return [0, Math.max(1, hi || 0)]; } } } });
    }
  }
  var h = data.histogram;
  if (h) {
    var idx = h.generated.map(function (_, i) { return i; });
    var bars = uPlot.paths.bars;
    var top = Math.max.apply(null, h.generated.concat(h.real || [])) || 1;
    var ser = [{ label: "generated", color: C.g, data: h.generated,
      extra: { fill: "rgba(9,105,218,0.75)", paths: bars({ size: [h.real ? 0.42 : 0.7, 80], align: h.real ? -1 : 0 }), points: { show: false } } }];
    if (h.real) ser.push({ label: "real", color: C.real, data: h.real,
      extra: { fill: "rgba(26,127,55,0.6)", paths: bars({ size: [0.42, 80], align: 1 }), points: { show: false } } });
    chart(document.getElementById("histogram-chart"), "Predicted classes" + (h.step != null ? " at step " + h.step : ""), idx, ser, {
      xLabel: "class", height: 220,
      scales: { x: { time: false, range: [-0.6, idx.length - 0.4] }, y: { range: [0, top * 1.12] } },
      axes: [{ label: "class", splits: function () { return idx; }, values: function (u, v) { return v.map(String); }, grid: { show: false } },
        { label: "fraction of samples", size: 60 }],
    });
  }
  window.addEventListener("resize", function () {
    charts.forEach(function (c) { c[0].setSize({ width: widthOf(c[1]), height: c[0].height }); });
  });

  var grids = data.grids;
  var slider = document.getElementById("timeline-slider");
  if (slider && grids.length > 0) {
    var img = document.getElementById("timeline-image");
    var label = document.getElementById("timeline-label");
    var play = document.getElementById("timeline-play");
    var timer = null;
    var show = function (i) {
      img.src = grids[i].src;
      img.alt = "fixed-noise grid at step " + grids[i].step;
      label.textContent = "step " + grids[i].step + epochOf(grids[i].step);
    };
    var stop = function () { if (timer) clearInterval(timer); timer = null; play.textContent = "Play"; };
    slider.addEventListener("input", function () { show(Number(slider.value)); });
    play.addEventListener("click", function () {
      if (timer) return stop();
      if (Number(slider.value) >= grids.length - 1) slider.value = "0";
      show(Number(slider.value));
      play.textContent = "Pause";
      timer = setInterval(function () {
        var i = Number(slider.value) + 1;
        if (i >= grids.length) return stop();
        slider.value = String(i);
        show(i);
      }, Math.max(60, Math.min(400, 8000 / grids.length)));
    });
    show(grids.length - 1);
  }
})();
`;

/**
 * Builds the report page of a run (see the module docs).
 *
 * @param f The run folder, as read by `readRunFolder`.
 * @param assets The chart library's JavaScript and CSS, inlined as they are.
 * @param options The time shown as the report's making.
 * @returns The page's HTML.
 */
export function buildReportHtml(f: RunFolder, assets: ChartAssets, options: BuildReportOptions = {}): string {
  const run = f.run, config = obj(run.config), dataset = obj(run.dataset), backend = obj(run.backend);
  const batchSize = num(config?.batch_size), count = num(dataset?.count);
  const batchesPerEpoch = batchSize !== null && count !== null && batchSize > 0 ? Math.ceil(count / batchSize) : null;
  const steps = f.steps;
  const evalCols: Record<string, (number | null)[]> = { step: f.evals.map((e) => e.step) };
  for (const k of EVAL_FIELDS) evalCols[k] = f.evals.map((e) => r6(e.values[k]));
  const data = {
    batchesPerEpoch,
    steps: {
      x: steps.x.map(r6),
      ...Object.fromEntries(Object.entries(steps.values).map(([k, v]) => [k, v.map(r6)])),
    },
    evals: f.evals.length > 0 ? evalCols : null,
    histogram: histogramOf(f),
    grids: f.grids.map((g) => ({ step: g.step, src: dataUri(g) })),
  };

  const last = f.lastStep;
  const lastStep = num(last?.step);
  const facts: string[] = [];
  if (dataset !== null) {
    facts.push(
      `data <b>${esc(dataset.name ?? "?")}</b> (${fmt(dataset.count)} images of ${fmt(dataset.channels)}×` +
        `${fmt(dataset.height)}×${fmt(dataset.width)})`,
    );
  }
  if (lastStep !== null) {
    const epochs = batchesPerEpoch !== null
      ? `, ${fmt(Number(((lastStep + 1) / batchesPerEpoch).toFixed(2)))} epochs`
      : "";
    facts.push(`<b>${fmt(lastStep + 1)}</b> steps${epochs}`);
  }
  if (num(last?.time) !== null) facts.push(`trained for <b>${duration(num(last!.time)!)}</b>`);
  if (backend !== null) {
    const adapter = obj(backend.adapter);
    facts.push(`backend <b>${esc(backend.backend ?? "?")}</b>${adapter?.name ? ` (${esc(adapter.name)})` : ""}`);
  }
  if (typeof run.started === "string") facts.push(`started ${esc(run.started)}`);
  if (typeof run.finished === "string") facts.push(`finished ${esc(run.finished)}`);
  const fe = obj(run.final_eval);
  if (fe !== null && num(fe.fid) !== null) facts.push(`final FID <b>${fmt(fe.fid)}</b>`);

  const emptySteps = `<p class="note">metrics.jsonl has no step rows yet.</p>`;
  const lossSection = `<section id="training"><h2>Training</h2><div class="charts">` +
    `<div class="card"><div id="loss-chart" class="chart">${steps.rows === 0 ? emptySteps : ""}</div></div>` +
    `<div class="card"><div id="dx-chart" class="chart">${steps.rows === 0 ? emptySteps : ""}</div></div></div>` +
    (steps.rowsPerPoint > 1
      ? `<p class="muted">${fmt(steps.rows)} steps, drawn as ${fmt(steps.x.length)} points: each the mean of ` +
        `${fmt(steps.rowsPerPoint)} consecutive steps.</p>`
      : "") +
    `</section>`;
  const metricsSection = `<section id="quality"><h2>Sample quality</h2><div class="card"><div id="metrics-chart">` +
    (f.evals.length === 0
      ? `<p class="note">No scores over time: this run had no --eval_every (metrics.jsonl has no eval rows).</p>`
      : "") +
    `</div></div>` +
    (data.histogram !== null
      ? `<div id="histogram" class="card" style="margin-top:14px"><div id="histogram-chart" class="chart"></div>` +
        `<p class="muted">The share of generated samples that the classifier puts in each class` +
        `${data.histogram.real ? ", beside the real images' share" : ""}.</p></div>`
      : "") +
    `</section>`;
  const notes = f.notes.length > 0
    ? `<section id="notes"><h2>Notes</h2><div class="card"><ul>${
      f.notes.map((n) => `<li>${esc(n)}</li>`).join("")
    }</ul></div></section>`
    : "";
  const json = JSON.stringify(data).replace(/</g, "\\u003c");
  const csp = "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:";
  return `${pageHead(`deno-gan report: ${f.name}`, csp)}
<style>${inlineSafe(assets.uplotCss, "style", "the chart library")}</style>
<style>${REPORT_CSS}</style>
</head>
<body>
<header><h1><span class="tool">deno-gan ·</span> ${esc(f.name)}</h1><div class="facts">${
    facts.map((x) => `<span>${x}</span>`).join("")
  }</div></header>
<main>
${lossSection}
${metricsSection}
${samplesSection(f)}
${finalSection(run)}
${settingsSection(run)}
${notes}
</main>
<footer>Made by deno-gan from <code>${esc(f.dir)}</code> at ${
    esc(options.generatedAt ?? new Date().toISOString())
  }. Charts: uPlot (MIT), inlined; the page loads nothing from the network.</footer>
<script type="application/json" id="report-data">${json}</script>
<script>${inlineSafe(assets.uplotJs, "script", "the chart library")}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
