/**
 * The live view's page: one self-contained HTML document (uPlot and its CSS inlined, the report's stylesheet) whose
 * script reads the server-sent events of `/events` (see `server.ts`) and draws the report's charts as they grow: the
 * losses (`#loss-chart`), mean D(x) and D(G(z)) (`#dx-chart`), the scores of `--eval_every` (`#metrics-chart`), the
 * latest fixed-noise grid (`#grid-image`), the run's settings (`#settings`) and its status (`#status`, `#progress`).
 * The page keeps at most 2,000 points per series: past that it merges neighbours in pairs, weighted by their steps;
 * it redraws the charts at most once a second (the step counter on every message), to leave the CPU to training.
 * `#live` carries `data-status` (connecting, live, reconnecting, finished, failed), `data-rows` (steps seen) and
 * `data-updates` (messages received), for tests.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { buildLivePage, LIVE_CSP } from "./page.ts";
 *
 * const html = buildLivePage({ uplotJs: "var uPlot;", uplotCss: "" }, "runs/mnist");
 * assert.match(html, /<title>deno-gan live: runs\/mnist<\/title>/);
 * assert.ok(html.includes(LIVE_CSP));
 * assert.doesNotMatch(html, /(src|href)="https?:/);
 * ```
 *
 * @module
 */

import { type ChartAssets, REPORT_CSS } from "../report/report.ts";
import { esc, inlineSafe, pageHead } from "../io/html.ts";

/** The page's Content-Security-Policy: nothing but its inline script and style, data:/blob: images, and /events. */
export const LIVE_CSP =
  "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data: blob:; connect-src 'self'";

const LIVE_CSS = `
#status { display: inline-block; padding: 1px 10px; border-radius: 10px; font-size: 13px; font-weight: 600;
  background: #eef1f4; color: var(--muted); }
#live[data-status=live] #status { background: #dafbe1; color: #1a7f37; }
#live[data-status=finished] #status { background: #ddf4ff; color: #0969da; }
#live[data-status=failed] #status, #live[data-status=reconnecting] #status { background: #ffebe9; color: #cf222e; }
#progress { font-variant-numeric: tabular-nums; }
`;

/** The page's script: the event stream, the bounded series, the charts. Plain ES2020, no modules. */
const SCRIPT = String.raw`
(function () {
  "use strict";
  var MAX = 2000, F = ["d_loss", "g_loss", "d_real", "d_fake"];
  var C = { d: "#cf222e", g: "#0969da", real: "#1a7f37", fake: "#8250df", a: "#bc4c00", b: "#0550ae",
    c: "#1a7f37", e: "#8250df" };
  var root = document.getElementById("live");
  var done = false, drawn = -1e9, timer = null, S = null, last = null, first = null, settings = null, evals = [], charts = {}, updates = 0, queued = false;
  function $(id) { return document.getElementById(id); }
  function fmt(v) {
    if (v == null || !isFinite(v)) return "–";
    var a = Math.abs(v);
    if (a !== 0 && (a < 1e-3 || a >= 1e6)) return v.toExponential(3);
    return String(Number(v.toPrecision(4)));
  }
  function bpe() { return settings && settings.batchesPerEpoch; }
  function setStatus(s, text) { root.dataset.status = s; $("status").textContent = text || s; }
  function setSeries(m) { S = { x: m.x.slice(), n: m.n.slice() }; F.forEach(function (f) { S[f] = m[f].slice(); }); }
  function mean(a, wa, b, wb) { return a == null ? b : b == null ? a : (a * wa + b * wb) / (wa + wb); }
  function halve() {
    var h = Math.ceil(S.x.length / 2), out = { x: [], n: [] };
    F.forEach(function (f) { out[f] = []; });
    for (var k = 0; k < h; k++) {
      var i = 2 * k, j = i + 1, wi = S.n[i], wj = j < S.x.length ? S.n[j] : 0;
      out.x.push(wj ? mean(S.x[i], wi, S.x[j], wj) : S.x[i]);
      out.n.push(wi + wj);
      F.forEach(function (f) { out[f].push(wj ? mean(S[f][i], wi, S[f][j], wj) : S[f][i]); });
    }
    S = out;
  }
  function append(m) {
    for (var i = 0; i < m.x.length; i++) {
      S.x.push(m.x[i]); S.n.push(m.n[i]);
      F.forEach(function (f) { S[f].push(m[f][i]); });
    }
    while (S.x.length > MAX) halve();
  }
  function widthOf(el) { return Math.max(280, Math.floor(el.getBoundingClientRect().width)); }
  function chart(el, title, series, o) {
    return new uPlot({
      title: title, width: widthOf(el), height: 240,
      scales: Object.assign({ x: { time: false } }, o.scales || {}),
      axes: [{ label: "step" }, { label: o.yLabel, size: 60 }].concat(o.right ? [{ side: 1, scale: o.right,
        label: o.rightLabel, grid: { show: false }, size: 60 }] : []),
      legend: { live: true },
      series: [{ label: "step", value: function (u, v) { return v == null ? "–" : String(Math.round(v)); } }]
        .concat(series.map(function (s) {
          return Object.assign({ label: s[0], stroke: s[1], width: 1.6, value: function (u, v) { return fmt(v); } },
            s[2] || {});
        })),
    }, o.data, el);
  }
  function drawSteps() {
    if (!S || S.x.length === 0) return;
    var loss = [S.x, S.d_loss, S.g_loss], dx = [S.x, S.d_real, S.d_fake];
    if (!charts.loss) {
      $("loss-chart").textContent = ""; $("dx-chart").textContent = "";
      charts.loss = chart($("loss-chart"), "Losses", [["D loss", C.d], ["G loss", C.g]], { yLabel: "loss", data: loss });
      charts.dx = chart($("dx-chart"), "Discriminator outputs", [["mean D(x)", C.real], ["mean D(G(z))", C.fake]],
        { yLabel: "probability", data: dx });
    } else { charts.loss.setData(loss); charts.dx.setData(dx); }
  }
  function col(k) { return evals.map(function (r) { return r[k]; }); }
  function drawEvals() {
    if (evals.length === 0) return;
    var x = col("step"), pts = { points: { show: true, size: 6 } };
    var fid = [x, col("fid"), col("kid")], prdc = [x, col("precision"), col("recall"), col("density"), col("coverage")];
    if (!charts.fid) {
      var m = $("metrics-chart"); m.textContent = "";
      var a = document.createElement("div"), b = document.createElement("div");
      a.id = "fid-chart"; b.id = "prdc-chart"; m.appendChild(a); m.appendChild(b);
      charts.fid = chart(a, "FID and KID (lower is better)", [["FID", C.a, pts],
        ["KID", C.b, Object.assign({ scale: "kid" }, pts)]], { yLabel: "FID", right: "kid", rightLabel: "KID", data: fid });
      charts.prdc = chart(b, "Precision, recall, density, coverage", [["precision", C.a, pts], ["recall", C.b, pts],
        ["density", C.c, pts], ["coverage", C.e, pts]], { yLabel: "share", data: prdc });
    } else { charts.fid.setData(fid); charts.prdc.setData(prdc); }
  }
  function drawHeader() {
    root.dataset.rows = String(S ? S.n.reduce(function (a, b) { return a + b; }, 0) : 0);
    root.dataset.updates = String(updates);
    if (!last) return;
    var total = settings && settings.totalSteps, e = bpe();
    var rate = first && last.time > first.time ? (last.step - first.step) / (last.time - first.time) : null;
    $("progress").textContent = "step " + (last.step + 1) + (total ? " / " + total : "") +
      (e ? " · epoch " + (Math.floor(last.step / e) + 1) + (settings.nEpochs ? " / " + settings.nEpochs : "") : "") +
      (rate ? " · " + rate.toFixed(1) + " steps/s" : "");
  }
  function draw() {
    queued = false;
    var now = performance.now();
    if (done || now - drawn >= 1000) { drawn = now; drawSteps(); drawEvals(); } // the charts at most once a second
    else if (!timer) timer = setTimeout(function () { timer = null; later(); }, 1000 - (now - drawn));
    drawHeader();
  }
  function later() { if (!queued) { queued = true; requestAnimationFrame(draw); } }
  function grid(g) {
    if (!g) return;
    $("grid-image").src = g.src;
    $("grid-image").alt = "fixed-noise grid at step " + g.step;
    $("grid-label").textContent = "step " + g.step + (bpe() ? " (epoch " + (Math.floor(g.step / bpe()) + 1) + ")" : "");
  }
  function showSettings(s) {
    settings = s;
    if (!s) return;
    var t = $("settings-table"); t.textContent = "";
    Object.keys(s).forEach(function (k) {
      var tr = document.createElement("tr"), th = document.createElement("th"), td = document.createElement("td");
      th.textContent = k; td.textContent = typeof s[k] === "object" ? JSON.stringify(s[k]) : String(s[k]);
      tr.appendChild(th); tr.appendChild(td); t.appendChild(tr);
    });
    if (s.run) $("run-name").textContent = s.run;
  }
  function finished(f) {
    done = true; // the server ends the stream: then no reconnection
    setStatus(f.error ? "failed" : "finished", f.error ? "failed: " + f.error : "finished: the run ended" +
      (f.stepsPerSecond ? " (" + f.steps + " steps, " + f.stepsPerSecond.toFixed(1) + " steps/s)" : "") +
      "; this page is no longer updated");
  }
  function on(name, f) {
    es.addEventListener(name, function (ev) { updates++; f(JSON.parse(ev.data)); later(); });
  }
  var es = new EventSource("/events");
  es.onopen = function () { setStatus("live"); };
  es.onerror = function () { if (done) es.close(); else if (es.readyState !== 2) setStatus("reconnecting"); };
  on("state", function (d) {
    showSettings(d.settings); setSeries(d.steps); last = d.steps.last; first = last; evals = d.evals; grid(d.grid);
    if (d.finished) finished(d.finished);
  });
  on("settings", showSettings);
  on("steps", function (m) { if (!first) first = m.last; append(m); last = m.last; });
  on("eval", function (r) { evals.push(r); });
  on("grid", grid);
  on("finished", finished);
  window.addEventListener("resize", function () {
    Object.keys(charts).forEach(function (k) {
      charts[k].setSize({ width: widthOf(charts[k].root.parentNode), height: charts[k].height });
    });
  });
})();
`;

/**
 * Builds the live view's page (see the module docs).
 *
 * @param assets uPlot's JavaScript and CSS (see `loadChartAssets`).
 * @param name The run's name shown until the settings arrive (e.g. its output folder).
 * @returns The page's HTML.
 */
export function buildLivePage(assets: ChartAssets, name: string): string {
  const wait = `<p class="note">waiting for the first steps…</p>`;
  return `${pageHead(`deno-gan live: ${name}`, LIVE_CSP)}
<link rel="icon" href="data:,">
<style>${inlineSafe(assets.uplotCss, "style", "the chart library")}</style>
<style>${REPORT_CSS}${LIVE_CSS}</style>
</head>
<body id="live" data-status="connecting" data-rows="0" data-updates="0">
<header><h1><span class="tool">deno-gan live ·</span> <span id="run-name">${esc(name)}</span></h1>
<div class="facts"><span id="status">connecting</span><span id="progress"></span></div></header>
<main>
<section id="training"><h2>Training</h2><div class="grid2"><div>
<div class="card"><div id="loss-chart" class="chart">${wait}</div></div>
<div class="card"><div id="dx-chart" class="chart">${wait}</div></div></div>
<div class="card" id="samples"><h3>Latest fixed-noise grid</h3>
<img id="grid-image" class="grid-img" width="360" height="360" alt="no grid yet">
<div class="controls"><span id="grid-label" class="label">no grid yet</span></div></div></div></section>
<section id="quality"><h2>Sample quality</h2><div class="card"><div id="metrics-chart">
<p class="note">No scores yet: they come every --eval_every steps (and at the end) when it is set.</p></div></div></section>
<section id="settings"><h2>Settings</h2><div class="card"><table class="kv"><tbody id="settings-table"></tbody></table>
</div></section>
</main>
<footer>Served by deno-gan on 127.0.0.1 while the run trains. Charts: uPlot (MIT), inlined.</footer>
<script>${inlineSafe(assets.uplotJs, "script", "the chart library")}</script>
<script>${SCRIPT}</script>
</body>
</html>
`;
}
