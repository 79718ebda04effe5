/**
 * The exported site's `index.html`: the page's markup and style, with everything it runs inlined, so that it works
 * from `file://` as from a server and loads nothing. The runtime is mapped to a `data:` URL by an import map (the
 * page script imports `./runtime.js` as it would beside the file); model.json, the weights (base64) and the WGSL
 * kernels sit in `<script>` islands of non-executable types. The Content-Security-Policy allows inline and `data:`
 * scripts, inline style and `data:`/`blob:` images, and nothing else: no request leaves the page.
 *
 * @module
 */

import type { SiteModel } from "./site.ts";
import { esc, inlineSafe, pageHead } from "../io/html.ts";

/** The text the page inlines. */
export interface WebAssets {
  /** src/web/runtime.js. */
  runtime: string;
  /** src/web/page.js. */
  page: string;
  /** native/src/gpu/shaders/common.wgsl. */
  common: string;
  /** native/src/gpu/shaders/columns.wgsl. */
  columns: string;
  /** native/src/gpu/shaders/linear.wgsl. */
  linear: string;
}

/** Base64 of bytes (in chunks whose length is a multiple of 3, so the pieces join). */
function base64(bytes: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += 3 * 8192) {
    parts.push(btoa(String.fromCharCode(...bytes.subarray(i, i + 3 * 8192))));
  }
  return parts.join("");
}

/** What float16 weights cost, as the export measured it. */
function f16Note(e: SiteModel["weights"]["f16Error"]): string {
  return e
    ? ` (outputs within ${e.maxAbsOutput.toExponential(1)} of float32, grid pixels within ${e.maxPixel} level(s))`
    : "";
}

/** The label picker, for a conditional model. */
function labelPicker(classes: number): string {
  if (!classes) return "";
  const options = Array.from({ length: classes }, (_, k) => `<option value="${k}">${k}</option>`).join("");
  return `<label for="label">Label</label>
      <select id="label"><option value="-1" selected>every class (a column each)</option>${options}</select>`;
}

/** The dimension sliders. */
function dimSliders(n: number): string {
  return Array.from(
    { length: n },
    (_, j) =>
      `<div class="slider"><label for="dim-${j}" id="dim-${j}-label">z[${j}]</label>
        <input type="range" id="dim-${j}" min="-3" max="3" step="0.01" value="0">
        <output id="dim-${j}-value" for="dim-${j}">0.00</output></div>`,
  ).join("\n      ");
}

/** The page's Content-Security-Policy: inline and `data:` scripts (the runtime's import map), inline style, images. */
const SITE_CSP = "default-src 'none'; script-src 'unsafe-inline' data:; style-src 'unsafe-inline'; img-src data: blob:";

const STYLE = `
  :root { color-scheme: light dark; --fg: #1b1b1f; --bg: #fafafa; --card: #fff; --muted: #5d5d66; --accent: #2456c7; }
  @media (prefers-color-scheme: dark) { :root { --fg: #e8e8ec; --bg: #16161a; --card: #202026; --muted: #a4a4ad; --accent: #7ea2ff; } }
  * { box-sizing: border-box; }
  body { margin: 0; font: 16px/1.45 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
  header, main { max-width: 1100px; margin: 0 auto; padding: 0.75rem 1rem; }
  h1 { font-size: 1.4rem; margin: 0.2rem 0; } h2 { font-size: 1.1rem; margin: 0 0 0.5rem; }
  .meta, #timing { color: var(--muted); font-size: 0.9rem; }
  main { display: grid; grid-template-columns: repeat(auto-fit, minmax(min(100%, 330px), 1fr)); gap: 1rem; }
  section { background: var(--card); border-radius: 8px; padding: 0.8rem; box-shadow: 0 1px 3px #0002; min-width: 0; }
  section.wide { grid-column: 1 / -1; }
  .controls { display: flex; flex-wrap: wrap; gap: 0.4rem 0.8rem; align-items: center; margin-bottom: 0.6rem; }
  input[type=number] { width: 7em; } input, select, button { font: inherit; }
  button { padding: 0.25rem 0.7rem; border-radius: 6px; border: 1px solid var(--muted); background: var(--card); color: var(--fg); cursor: pointer; }
  :focus-visible { outline: 3px solid var(--accent); outline-offset: 2px; }
  canvas { display: block; width: 100%; height: auto; image-rendering: pixelated; background: #000; border-radius: 4px; }
  #grid { max-width: 640px; } #interp, #dims { max-width: 280px; }
  .slider { display: grid; grid-template-columns: 3.5em 1fr 3em; gap: 0.5rem; align-items: center; }
  .slider input { width: 100%; }
  #error { color: #c62828; font-weight: 600; }
`;

/**
 * The page of a site.
 *
 * @param model The site's model.json.
 * @param weights The weights file (inlined as base64).
 * @param assets The runtime, page script and kernels.
 * @returns The HTML.
 */
export function siteHtml(model: SiteModel, weights: Uint8Array, assets: WebAssets): string {
  const runtimeUrl = `data:text/javascript;base64,${base64(new TextEncoder().encode(assets.runtime))}`;
  const json = JSON.stringify(model).replace(/</g, "\\u003c");
  const title = `deno-gan: ${model.model} generator`;
  const what = `${model.model}, ${model.step} steps, ${model.image.channels}x${model.image.side}x${model.image.side}` +
    `, latent ${model.latent}${model.classes ? `, ${model.classes} classes` : ""}, weights ${model.weights.dtype}` +
    f16Note(model.weights.f16Error);
  return `${pageHead(title, SITE_CSP)}
<style>${STYLE}</style>
</head>
<body>
<header>
  <h1>${esc(title)}</h1>
  <p class="meta">${esc(what)}</p>
  <div class="controls">
    <label for="backend">Compute</label>
    <select id="backend"><option value="auto">auto</option><option value="webgpu">WebGPU</option><option value="js">JavaScript</option></select>
    <span id="path" role="status" aria-live="polite">starting…</span>
    ${labelPicker(model.classes)}
  </div>
  <p id="error" role="alert"></p>
</header>
<main>
  <section class="wide" aria-labelledby="grid-h">
    <h2 id="grid-h">Samples</h2>
    <div class="controls">
      <label for="seed">Seed</label><input type="number" id="seed" min="0" step="1" value="0">
      <button id="new-seed" type="button">New seed</button>
      <label for="count">Images</label>
      <select id="count"><option>16</option><option>36</option><option selected>64</option><option>100</option></select>
      <button id="save-grid" type="button">Download PNG</button>
      <span id="timing" aria-live="polite"></span>
    </div>
    <canvas id="grid" role="img" aria-label="a grid of generated samples"></canvas>
  </section>
  <section aria-labelledby="interp-h">
    <h2 id="interp-h">Interpolation</h2>
    <div class="controls">
      <label for="seed-a">From seed</label><input type="number" id="seed-a" min="0" step="1" value="1">
      <label for="seed-b">to seed</label><input type="number" id="seed-b" min="0" step="1" value="2">
    </div>
    <canvas id="strip" role="img" aria-label="nine steps from the first point to the second"></canvas>
    <div class="slider"><label for="t">t</label><input type="range" id="t" min="0" max="1" step="0.01" value="0.5">
      <output id="t-value" for="t">0.50</output></div>
    <canvas id="interp" role="img" aria-label="the sample at t"></canvas>
    <div class="controls"><button id="save-interp" type="button">Download PNG</button></div>
  </section>
  <section aria-labelledby="dims-h">
    <h2 id="dims-h">Latent dimensions</h2>
    <div class="controls">
      <label for="dims-seed">Seed</label><input type="number" id="dims-seed" min="0" step="1" value="3">
      <label for="dim0">First dimension</label><input type="number" id="dim0" min="0" step="1" value="0">
    </div>
    <canvas id="dims" role="img" aria-label="one sample with the chosen noise values"></canvas>
      ${dimSliders(6)}
    <div class="controls"><button id="save-dims" type="button">Download PNG</button></div>
  </section>
</main>
<script type="application/json" id="model-json">${json}</script>
<script type="text/plain" id="weights">${base64(weights)}</script>
<script type="text/plain" id="wgsl-common">${inlineSafe(assets.common, "script", "common.wgsl")}</script>
<script type="text/plain" id="wgsl-columns">${inlineSafe(assets.columns, "script", "columns.wgsl")}</script>
<script type="text/plain" id="wgsl-linear">${inlineSafe(assets.linear, "script", "linear.wgsl")}</script>
<script type="importmap">{"imports": {"./runtime.js": "${runtimeUrl}"}}</script>
<script type="module">
${inlineSafe(assets.page, "script", "page.js")}
</script>
</body>
</html>
`;
}
