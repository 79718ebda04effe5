// Debian's chromium for the browser tests (the report, the exported page), driven by puppeteer-core over a pipe: a
// missing or broken browser fails the test clearly (never skips it).

/// <reference lib="dom" /> -- the types of the callbacks that run in the page

// deno-lint-ignore no-import-prefix -- a test-only package, pinned here
import puppeteer, { type Browser, type Page } from "npm:puppeteer-core@25.16.0";
import { decodePng } from "../src/io/png.ts";

export type { Browser, Page };

/** Where Debian puts chromium. */
export const CHROMIUM = "/usr/bin/chromium";

export const CHROMIUM_ARGS = [
  "--headless=new",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-dev-shm-usage",
  "--disable-background-networking",
  "--no-first-run",
];

/** Fails (never skips) when Debian's chromium is not at CHROMIUM, saying how to get it. */
export function requireChromium(): void {
  try {
    if (!Deno.statSync(CHROMIUM).isFile) throw new Error("not a file");
  } catch (e) {
    throw new Error(
      `The browser test needs Debian's chromium at ${CHROMIUM} (${(e as Error).message}): install it with ` +
        `"apt-get install chromium" (.ci/run does)`,
    );
  }
}

/**
 * Debian's chromium through puppeteer-core, over a pipe (no port); a missing or broken browser fails clearly.
 * `extraArgs` are added to CHROMIUM_ARGS and `dropArgs` taken out of them (the exported page's WebGPU test drops
 * `--disable-gpu`).
 */
export async function launchChromium(extraArgs: string[] = [], dropArgs: string[] = []): Promise<Browser> {
  requireChromium();
  try {
    return await puppeteer.launch({
      executablePath: CHROMIUM,
      pipe: true,
      headless: true,
      args: [...CHROMIUM_ARGS.filter((a) => !dropArgs.includes(a)), ...extraArgs],
      timeout: 60_000,
    });
  } catch (e) {
    throw new Error(`Cannot start ${CHROMIUM} through puppeteer-core: ${(e as Error).message}`, { cause: e });
  }
}

/** Distinct grey levels (of 256) and the share of the most common pixel in a screenshot. */
export function screenshotStats(png: Uint8Array) {
  const img = decodePng(png);
  const counts = new Map<number, number>();
  const c = img.channels;
  for (let i = 0; i < img.width * img.height; i++) {
    const p = i * c;
    const rgb = (img.data[p] << 16) | (img.data[p + 1] << 8) | img.data[p + 2];
    counts.set(rgb, (counts.get(rgb) ?? 0) + 1);
  }
  return {
    width: img.width,
    height: img.height,
    distinct: counts.size,
    top: Math.max(...counts.values()) / (img.width * img.height),
  };
}

/**
 * A new page of `browser` (1200 px wide, `height` high) that records what would make a browser test fail: console
 * errors and warnings, page errors, failed requests, and requests whose URL `allowed` refuses; `requests` lists every
 * URL asked for (cut to 100 characters).
 */
export async function watchedPage(browser: Browser, allowed: (url: string) => boolean, height = 900) {
  const page = await browser.newPage();
  await page.setViewport({ width: 1200, height, deviceScaleFactor: 1 });
  const problems: string[] = [], requests: string[] = [];
  page.on("console", (m) => {
    if (m.type() === "error" || m.type() === "warn") problems.push(`console.${m.type()}: ${m.text()}`);
  });
  page.on("pageerror", (e) => problems.push(`page error: ${(e as Error).message ?? e}`));
  page.on("request", (r) => {
    requests.push(r.url().slice(0, 100));
    if (!allowed(r.url())) problems.push(`request: ${r.url().slice(0, 100)}`);
  });
  page.on("requestfailed", (r) => problems.push(`request failed: ${r.url().slice(0, 80)}`));
  return { page, problems, requests };
}
