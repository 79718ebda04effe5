// The exported page in a real browser (Debian's chromium, headless, puppeteer-core over a pipe): a short real run of
// the seed's GAN is exported, and the page's grid for a seed is compared pixel by pixel with `deno task sample` of the
// same checkpoint and seed, on WebGPU (chromium's SwiftShader adapter, running the library's WGSL) and on the
// JavaScript path; a browser without WebGPU falls back by itself and says so; the sliders change their images from
// the keyboard; the PNG download is the canvas; served over HTTP it requests nothing but the page; it fits a phone's
// width; no console errors; the screenshot is not blank. A conditional generator's label picker changes the class of
// the images as the evaluation's classifier judges them.
//
// UPDATE_SCREENSHOT=1 trains the seed's GAN for 30 epochs instead of a few steps and writes the screenshot to
// docs/images/export_page.png (README's picture).

/// <reference lib="dom" /> -- the types of the callbacks that run in the page

import assert from "node:assert/strict";
import { type Browser, launchChromium, type Page, requireChromium, screenshotStats, watchedPage } from "./browser.ts";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { decodePng } from "../src/io/png.ts";
import { Context, NativeMlp } from "../src/native/handles.ts";
import { GanTrainer } from "../src/train/trainer.ts";
import { saveGenerator } from "../src/train/checkpoint.ts";
import { trainClassifier } from "../src/eval/classifier.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { exportSite } from "../src/web/site.ts";
import { main as sampleMain } from "../src/cli/sample.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const WEBGPU = ["--enable-unsafe-webgpu"];

/** Opens the page and records console errors and warnings, page errors and requests beyond file:, data: and blob:. */
async function open(browser: Browser, url: string, allow: RegExp = /^(file|data|blob):/) {
  const { page, problems, requests } = await watchedPage(browser, (u) => allow.test(u), 1000);
  await page.goto(url, { waitUntil: "load" });
  await rendered(page, 0);
  return { page, problems, requests };
}

/** Waits until the page has rendered more than `after` times; returns the count. */
async function rendered(page: Page, after: number): Promise<number> {
  await page.waitForFunction(
    (n: number) => Number(document.body.dataset.renders ?? 0) > n,
    { timeout: 120_000 },
    after,
  );
  const error = await page.$eval("#error", (e) => e.textContent);
  assert.equal(error, "", "the page shows no error");
  return Number(await page.evaluate(() => document.body.dataset.renders));
}

/** Sets an input's value as a user would (then `change`), and waits for the render it starts. */
async function setValue(page: Page, selector: string, value: string): Promise<void> {
  const before = Number(await page.evaluate(() => document.body.dataset.renders));
  await page.$eval(selector, (e, v) => {
    (e as HTMLInputElement).value = v as string;
    e.dispatchEvent(new Event("change"));
  }, value);
  await rendered(page, before);
}

/** A canvas's RGBA pixels. */
function pixels(page: Page, selector: string) {
  return page.$eval(selector, (c) => {
    const canvas = c as HTMLCanvasElement;
    const data = canvas.getContext("2d")!.getImageData(0, 0, canvas.width, canvas.height).data;
    return { width: canvas.width, height: canvas.height, data: Array.from(data) };
  });
}

/** The largest difference between an RGBA canvas and an RGB(A) PNG of the same size, and how many values differ. */
function compare(canvas: { width: number; height: number; data: number[] }, png: Uint8Array) {
  const img = decodePng(png);
  assert.deepEqual([canvas.width, canvas.height], [img.width, img.height]);
  let max = 0, moved = 0;
  for (let p = 0; p < img.width * img.height; p++) {
    for (let c = 0; c < 3; c++) {
      const d = Math.abs(canvas.data[4 * p + c] - img.data[p * img.channels + c]);
      max = Math.max(max, d);
      if (d) moved++;
    }
  }
  return { max, moved, values: img.width * img.height * 3 };
}

/** A short real run of the seed's GAN on the embedded digits (30 epochs with UPDATE_SCREENSHOT=1); its checkpoint. */
async function trainedCheckpoint(dir: string, long: boolean): Promise<string> {
  const out = `${dir}/run`;
  using t = await GanTrainer.create(await loadEmbeddedMnist(), {
    backend: "cpu",
    outDir: out,
    ...(long ? { nEpochs: 30 } : { maxSteps: 40 }),
    sampleInterval: 100_000,
  });
  await t.run();
  return `${out}/checkpoints/latest.safetensors`;
}

/** Pixel equality with `sample` for seed 5 on the page's current path; the figures of the comparison. */
async function gridAgainstSample(page: Page, ckpt: string, dir: string) {
  await setValue(page, "#seed", "5");
  const code = await sampleMain([
    "--checkpoint",
    ckpt,
    "--n",
    "64",
    "--seed",
    "5",
    "--out",
    `${dir}/s5.png`,
    "--backend",
    "cpu",
  ]);
  assert.equal(code, 0);
  return compare(await pixels(page, "#grid"), await Deno.readFile(`${dir}/s5.png`));
}

Deno.test({
  name: "exported page in chromium: the grid is `sample`'s on WebGPU and in JavaScript; controls, download, no errors",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    requireChromium();
    const update = Deno.env.get("UPDATE_SCREENSHOT") === "1";
    const dir = await Deno.makeTempDir({ prefix: "gan-page-" });
    const browser = await launchChromium(WEBGPU, ["--disable-gpu"]);
    try {
      const ckpt = await trainedCheckpoint(dir, update);
      await exportSite(ckpt, `${dir}/site`);
      const url = new URL(`file://${dir}/site/index.html`).href;

      // WebGPU (chosen by itself), then JavaScript (asked for): the grid of seed 5 against `sample --seed 5`.
      const gpu = await open(browser, url);
      assert.equal(await gpu.page.evaluate(() => document.body.dataset.backend), "webgpu");
      assert.match(await gpu.page.$eval("#path", (e) => e.textContent!), /^WebGPU: /);
      const onGpu = await gridAgainstSample(gpu.page, ckpt, dir);
      const js = await open(browser, `${url}?backend=js`);
      assert.equal(await js.page.evaluate(() => document.body.dataset.backend), "js");
      const onJs = await gridAgainstSample(js.page, ckpt, dir);
      console.log(
        `grid of seed 5 against sample: WebGPU max ${onGpu.max} level(s), ${onGpu.moved} of ` +
          `${onGpu.values} values differ; JavaScript max ${onJs.max}, ${onJs.moved} differ`,
      );
      for (const r of [onGpu, onJs]) {
        assert.ok(r.max <= 1 && r.moved <= r.values / 1000, JSON.stringify(r));
      }
      await js.page.close();

      // The controls, from the keyboard: a slider moved changes its image; a new seed changes the grid.
      const page = gpu.page;
      for (const [slider, canvas] of [["#t", "#interp"], ["#dim-0", "#dims"]]) {
        const before = await pixels(page, canvas);
        const n = Number(await page.evaluate(() => document.body.dataset.renders));
        await page.focus(slider);
        await page.keyboard.press("End");
        await rendered(page, n);
        assert.notDeepEqual((await pixels(page, canvas)).data, before.data, `${slider} changes ${canvas}`);
      }
      const seed5 = await pixels(page, "#grid");
      await setValue(page, "#seed", "6");
      assert.notDeepEqual((await pixels(page, "#grid")).data, seed5.data, "another seed, another grid");

      // The PNG download is the canvas, byte for byte in its pixels.
      const downloads = `${dir}/downloads`;
      await Deno.mkdir(downloads);
      const cdp = await page.createCDPSession();
      await cdp.send("Browser.setDownloadBehavior", { behavior: "allow", downloadPath: downloads });
      await page.click("#save-grid");
      const file = `${downloads}/samples_seed6.png`;
      for (let i = 0; i < 100 && !(await exists(file)); i++) await new Promise((r) => setTimeout(r, 100));
      assert.equal(compare(await pixels(page, "#grid"), await Deno.readFile(file)).max, 0);

      // A phone's width: nothing wider than the screen.
      await page.setViewport({ width: 390, height: 844, deviceScaleFactor: 1 });
      const widths = await page.evaluate(() => [document.documentElement.scrollWidth, innerWidth]);
      assert.ok(widths[0] <= widths[1], `page ${widths[0]} px wide on a ${widths[1]} px screen`);
      await page.setViewport({ width: 1200, height: 1000, deviceScaleFactor: 1 });
      await setValue(page, "#seed", "0");
      const shot = await page.screenshot({ type: "png", fullPage: true });
      const stats = screenshotStats(shot);
      assert.ok(stats.distinct > 50 && stats.top < 0.9, `screenshot looks blank: ${JSON.stringify(stats)}`);
      if (update) await Deno.writeFile(`${ROOT}docs/images/export_page.png`, shot);
      assert.deepEqual(gpu.problems, []);
      assert.deepEqual(js.problems, []);

      // Served over HTTP: it works the same and asks the server for the page only.
      const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (req) => {
        const path = new URL(req.url).pathname;
        if (path !== "/" && path !== "/index.html") return new Response("not found", { status: 404 });
        return new Response(await Deno.readFile(`${dir}/site/index.html`), {
          headers: { "content-type": "text/html" },
        });
      });
      try {
        const served = await open(browser, `http://127.0.0.1:${server.addr.port}/`, /^(data|blob):|\/$/);
        assert.deepEqual(served.problems, []);
        assert.equal(served.requests.filter((r) => r.startsWith("http")).length, 1, served.requests.join("\n"));
        assert.equal(await served.page.evaluate(() => document.body.dataset.backend), "webgpu");
        await served.page.close();
      } finally {
        await server.shutdown();
      }
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

async function exists(path: string): Promise<boolean> {
  try {
    return (await Deno.stat(path)).size > 0;
  } catch {
    return false;
  }
}

Deno.test({
  name: "exported page in chromium: without WebGPU it falls back to JavaScript by itself and says so",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "gan-page-" });
    const browser = await launchChromium(); // --disable-gpu: no adapter
    try {
      const ckpt = await trainedCheckpoint(dir, false);
      await exportSite(ckpt, `${dir}/site`);
      const { page, problems } = await open(browser, new URL(`file://${dir}/site/index.html`).href);
      assert.equal(await page.evaluate(() => document.body.dataset.backend), "js");
      const path = await page.$eval("#path", (e) => e.textContent!);
      assert.match(path, /^JavaScript \((WebGPU offers no adapter here|no WebGPU in this browser)\)$/);
      // chromium's own note that it found no adapter is the situation under test, not a problem of the page
      assert.deepEqual(problems.filter((p) => p !== "console.warn: No available adapters."), []);
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/**
 * A conditional generator whose image for label k is the mean digit k (a single tanh layer: the label's table row,
 * the identity, selects a column of atanh(mean digit); the noise moves the pixels a little): a generator whose
 * classes the classifier can judge, without minutes of training.
 */
async function meanDigitGenerator(ctx: Context, path: string): Promise<void> {
  const digits = await loadEmbeddedMnist();
  const spec: MlpSpec = {
    input: 100,
    embedding: { classes: 10, dim: 10, at: "first", name: "label_emb" },
    layers: [{ out: 784, bn: null, act: { kind: "tanh" } }],
  };
  using g = new NativeMlp(ctx, spec);
  const mean = new Float64Array(10 * 784), count = new Float64Array(10);
  for (let i = 0; i < digits.count; i++) {
    const k = digits.labels![i];
    count[k]++;
    for (let p = 0; p < 784; p++) mean[k * 784 + p] += digits.pixels[i * 784 + p] / 127.5 - 1;
  }
  const layout = g.layout(), params = new Float32Array(layout.paramCount);
  const at = (name: string) => layout.params.find((t) => t.name === name)!.offset;
  for (let k = 0; k < 10; k++) params[at("label_emb.weight") + k * 10 + k] = 1;
  const w = at("model.0.weight");
  for (let p = 0; p < 784; p++) {
    for (let k = 0; k < 10; k++) params[w + p * 110 + k] = Math.atanh(0.98 * (mean[k * 784 + p] / count[k]));
    for (let j = 0; j < 100; j++) params[w + p * 110 + 10 + j] = 0.02 * Math.sin(p * 31 + j * 17);
  }
  g.set("params", params);
  await saveGenerator(path, g, { model: "cgan", generator: spec, img_size: 28, channels: 1 });
}

Deno.test({
  name: "exported page in chromium: the label picker changes the class, as the evaluation's classifier judges it",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const dir = await Deno.makeTempDir({ prefix: "gan-page-" });
    const browser = await launchChromium(WEBGPU, ["--disable-gpu"]);
    using ctx = new Context({ backend: "cpu" });
    using classifier = trainClassifier(ctx, await loadEmbeddedMnist(), { epochs: 4, limit: 3000 });
    try {
      await meanDigitGenerator(ctx, `${dir}/cgan.safetensors`);
      await exportSite(`${dir}/cgan.safetensors`, `${dir}/site`);
      const { page, problems } = await open(browser, new URL(`file://${dir}/site/index.html`).href);
      assert.equal(await page.evaluate(() => document.body.dataset.backend), "webgpu");
      /** The classifier's majority class over the grid the page drew last, and its share. */
      const judged = async () => {
        const { n, images } = await page.evaluate(() => {
          const g = (globalThis as unknown as { denoGan: { state: { lastGrid: { n: number; images: Float32Array } } } })
            .denoGan.state.lastGrid;
          return { n: g.n, images: Array.from(g.images) };
        });
        const p = classifier.probabilities(classifier.features(Float32Array.from(images), n), n);
        const votes = new Array(10).fill(0);
        for (let r = 0; r < n; r++) {
          const row = p.subarray(r * 10, r * 10 + 10);
          votes[row.indexOf(Math.max(...row))]++;
        }
        const top = votes.indexOf(Math.max(...votes));
        return { top, share: votes[top] / n };
      };
      for (const label of ["3", "8", "1"]) {
        await setValue(page, "#label", label);
        const j = await judged();
        assert.equal(String(j.top), label, `label ${label}: the classifier says ${j.top} (${j.share})`);
        assert.ok(j.share > 0.9, `label ${label}: ${j.share}`);
      }
      // "every class": column k is label k (upstream's grid), ten rows.
      await setValue(page, "#label", "-1");
      assert.equal(
        await page.evaluate(() =>
          (globalThis as unknown as { denoGan: { state: { lastGrid: { n: number } } } }).denoGan.state.lastGrid.n
        ),
        100,
      );
      assert.deepEqual(problems, []);
    } finally {
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
