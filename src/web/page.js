/**
 * The exported page's script: three views of a trained generator (a grid from a seed, an interpolation between two
 * latent points, sliders over a few latent dimensions), a label picker for conditional models, the compute path
 * (WebGPU or JavaScript) and a PNG download of each view. `index.html` inlines it as a module next to the runtime;
 * the page's data (model.json, the weights, the kernels) sits in non-executable `<script>` islands.
 *
 * For tests and the curious, `globalThis.denoGan` holds the model, the generator, the render count and `render()`.
 *
 * @module
 */

import { Generator, makeGrid, normals, readSafetensors } from "./runtime.js";

const $ = (id) => document.getElementById(id);
const model = JSON.parse($("model-json").textContent);
const kernels = {
  common: $("wgsl-common").textContent,
  columns: $("wgsl-columns").textContent,
  linear: $("wgsl-linear").textContent,
};
const { channels, side } = model.image;
const latent = model.latent, classes = model.classes;

/** The weights, decoded from the base64 island. */
function weightBytes() {
  const s = atob($("weights").textContent.trim());
  const b = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) b[i] = s.charCodeAt(i);
  return b;
}
const tensors = readSafetensors(weightBytes());

const state = { generator: null, renders: 0, lastGrid: null, busy: Promise.resolve() };
globalThis.denoGan = { model, state, render: renderAll };

/** Draws a grid of `n` images (torchvision's normalization over the grid) onto `canvas`. */
function draw(canvas, images, n, nrow) {
  const g = makeGrid(images, n, channels, side, side, { nrow, normalize: true });
  canvas.width = g.width;
  canvas.height = g.height;
  const rgba = new Uint8ClampedArray(g.width * g.height * 4);
  for (let p = 0, q = 0; p < g.width * g.height; p++) {
    for (let c = 0; c < 3; c++) rgba[4 * p + c] = g.data[q + c];
    rgba[4 * p + 3] = g.channels === 4 ? g.data[q + 3] : 255;
    q += g.channels;
  }
  canvas.getContext("2d", { willReadFrequently: true }).putImageData(new ImageData(rgba, g.width, g.height), 0, 0);
}

/** A non-negative integer from an input, or its fallback. */
function intOf(input, fallback) {
  const v = Number(input.value);
  return Number.isSafeInteger(v) && v >= 0 ? v : fallback;
}

/** The label picker's choice: a class, or -1 for "every class". */
function label() {
  return classes ? Number($("label").value) : -1;
}

/** The labels of `n` rows: upstream's cycle through the classes for "every class", else one class. */
function labelsOf(n) {
  if (!classes) return undefined;
  const k = label();
  return Array.from({ length: n }, (_, i) => (k < 0 ? i % classes : k));
}

/** The grid view: `n` samples of the seed, as `deno task sample --seed S --n N` draws them. */
async function renderGrid() {
  const seed = intOf($("seed"), 0);
  const every = classes && label() < 0;
  const n = every ? classes * classes : Number($("count").value);
  $("count").disabled = Boolean(every); // upstream's class grid has n_classes^2 images
  const t0 = performance.now();
  const images = await state.generator.generate(normals(seed, 0, n * latent, model.sampleDomain), n, labelsOf(n));
  const ms = performance.now() - t0;
  draw($("grid"), images, n, every ? classes : Math.ceil(Math.sqrt(n)));
  state.lastGrid = { seed, n, images };
  return `${n} samples in ${ms.toFixed(0)} ms`;
}

/** The first noise row of a seed's sample. */
function zOf(seed) {
  return normals(seed, 0, latent, model.sampleDomain);
}

/** Spherical interpolation between two noise vectors (the path stays at a typical norm for Gaussian noise). */
function slerp(a, b, t) {
  let dot = 0, na = 0, nb = 0;
  for (let i = 0; i < a.length; i++) {
    dot += a[i] * b[i];
    na += a[i] * a[i];
    nb += b[i] * b[i];
  }
  const omega = Math.acos(Math.min(1, Math.max(-1, dot / Math.sqrt(na * nb))));
  const s = Math.sin(omega);
  const [wa, wb] = s < 1e-6 ? [1 - t, t] : [Math.sin((1 - t) * omega) / s, Math.sin(t * omega) / s];
  return a.map((v, i) => wa * v + wb * b[i]);
}

/** The interpolation view: a strip of 9 steps from A to B, and the image at the slider's position. */
async function renderInterp() {
  const a = zOf(intOf($("seed-a"), 1)), b = zOf(intOf($("seed-b"), 2));
  const t = Number($("t").value);
  $("t-value").textContent = t.toFixed(2);
  const steps = 9, z = new Float32Array((steps + 1) * latent);
  for (let i = 0; i < steps; i++) z.set(slerp(a, b, i / (steps - 1)), i * latent);
  z.set(slerp(a, b, t), steps * latent);
  const images = await state.generator.generate(z, steps + 1, labelsOf(steps + 1));
  draw($("strip"), images, steps, steps);
  draw($("interp"), images.subarray(steps * channels * side * side), 1, 1);
}

const DIMS = 6;

/** Sets the dimension sliders to the sample's own values (when its seed or the first dimension changes). */
function resetDims() {
  const z = zOf(intOf($("dims-seed"), 3)), first = Math.min(intOf($("dim0"), 0), latent - 1);
  for (let j = 0; j < DIMS; j++) {
    const s = $(`dim-${j}`), d = first + j;
    s.disabled = d >= latent;
    $(`dim-${j}-label`).textContent = d < latent ? `z[${d}]` : "–";
    s.value = d < latent ? String(Math.max(-3, Math.min(3, z[d]))) : "0";
  }
}

/** The dimensions view: one sample with the sliders' values in place of a few of its noise entries. */
async function renderDims() {
  const z = zOf(intOf($("dims-seed"), 3)), first = Math.min(intOf($("dim0"), 0), latent - 1);
  for (let j = 0; j < DIMS && first + j < latent; j++) {
    z[first + j] = Number($(`dim-${j}`).value);
    $(`dim-${j}-value`).textContent = Number($(`dim-${j}`).value).toFixed(2);
  }
  const images = await state.generator.generate(z, 1, labelsOf(1));
  draw($("dims"), images, 1, 1);
}

/** Renders the views (all, or the one named), one at a time, and counts the renders. */
function renderAll(which = "all") {
  const run = async () => {
    const status = [];
    if (which === "all" || which === "grid") status.push(await renderGrid());
    if (which === "all" || which === "interp") await renderInterp();
    if (which === "all" || which === "dims") await renderDims();
    state.renders++;
    document.body.dataset.renders = String(state.renders);
    if (status.length) $("timing").textContent = status.join("; ");
  };
  state.busy = state.busy.then(run).catch((e) => {
    $("error").textContent = `error: ${e.message}`;
    console.error(e);
  });
  return state.busy;
}

/** Starts (or restarts) the generator on the path the picker names. */
async function start() {
  state.generator?.destroy();
  const backend = $("backend").value;
  $("path").textContent = "starting…";
  state.generator = await Generator.create(model, tensors, { backend, kernels });
  $("path").textContent = state.generator.reason;
  document.body.dataset.backend = state.generator.backend;
  await renderAll();
}

/** A PNG of a canvas, downloaded as `name`. */
function download(canvas, name) {
  canvas.toBlob((blob) => {
    const a = document.createElement("a");
    a.href = URL.createObjectURL(blob);
    a.download = name;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  }, "image/png");
}

/** Wires the controls. */
function wire() {
  const on = (id, ev, f) => $(id).addEventListener(ev, f);
  on("seed", "change", () => renderAll("grid"));
  on("count", "change", () => renderAll("grid"));
  on("new-seed", "click", () => {
    $("seed").value = String(Math.floor(Math.random() * 1e6));
    renderAll("grid");
  });
  for (const id of ["seed-a", "seed-b"]) on(id, "change", () => renderAll("interp"));
  on("t", "input", () => renderAll("interp"));
  for (const id of ["dims-seed", "dim0"]) {
    on(id, "change", () => {
      resetDims();
      renderAll("dims");
    });
  }
  for (let j = 0; j < DIMS; j++) on(`dim-${j}`, "input", () => renderAll("dims"));
  if (classes) on("label", "change", () => renderAll());
  on("backend", "change", () => start());
  on("save-grid", "click", () => download($("grid"), `samples_seed${intOf($("seed"), 0)}.png`));
  on("save-interp", "click", () => download($("interp"), "interpolation.png"));
  on("save-dims", "click", () => download($("dims"), "dimensions.png"));
}

const asked = new URLSearchParams(location.search).get("backend");
if (asked === "js" || asked === "webgpu") $("backend").value = asked;
$("dim0").max = String(latent - 1);
wire();
resetDims();
globalThis.denoGan.ready = start().catch((e) => {
  $("error").textContent = `error: ${e.message}`;
  console.error(e);
});
