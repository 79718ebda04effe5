// The live view (deno task train --serve [PORT]): its state stays bounded for any run length and coalesces what
// comes between publications; the event stream's first message is the whole state, then updates; a client too far
// behind is closed; the server listens on 127.0.0.1 only and answers only its own Host; the flag's optional value,
// a bad port (exit 2) and a port in use (exit 1); and a real CLI run watched in Debian's chromium (puppeteer-core
// over a pipe): the page updates during the run, shows a grid, ends "finished", no console errors, no failed
// requests, a screenshot that is not blank. Chromium missing is a failure, not a skip.
//
// UPDATE_SCREENSHOT=1 makes the browser test's run longer (with evaluations) and writes its screenshot to
// docs/images/live_view.png, the README's picture.

/// <reference lib="dom" /> -- the types of the callbacks that run in the page

import assert from "node:assert/strict";
import { type Browser, launchChromium, type Page, screenshotStats, watchedPage } from "./browser.ts";
import { parseTrainFlags, trainUsage } from "../src/cli/flags.ts";
import { UsageError } from "../src/cli/run.ts";
import { LiveState, type SeriesMessage, type Snapshot, STEP_STRIDE } from "../src/serve/state.ts";
import { serveLive } from "../src/serve/server.ts";
import { buildLivePage, LIVE_CSP } from "../src/serve/page.ts";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);

/** `count` step rows starting at `from`. */
function rows(from: number, count: number): Float64Array {
  const r = new Float64Array(count * STEP_STRIDE);
  for (let i = 0; i < count; i++) r.set([from + i, 0.6, 0.9, 0.7, 0.3, (from + i) / 100], i * STEP_STRIDE);
  return r;
}

Deno.test("live state: a million steps stay at most 2,000 points, an update at most 256; evals and grids bounded", () => {
  const s = new LiveState();
  for (let from = 0; from < 1_000_000; from += 10_000) s.addSteps(rows(from, 10_000), 10_000);
  const snap = s.snapshot().steps;
  assert.equal(snap.rows, 1_000_000);
  assert.ok(snap.x.length <= 2000 && snap.x.length > 1000, `${snap.x.length} points`);
  assert.equal(snap.n.reduce((a, b) => a + b, 0), 1_000_000);
  assert.equal((snap.g_loss as number[])[0], 0.9);
  assert.deepEqual(snap.last, { step: 999_999, time: 9999.99 });
  // Not tracking (no client): nothing is kept for updates.
  s.setGrid({ step: 1, src: "data:image/png;base64,AA==" });
  assert.deepEqual(s.takeUpdates(), []);

  s.track(true);
  s.addSteps(rows(1_000_000, 100_000), 100_000);
  const [steps, ...rest] = s.takeUpdates();
  const m = steps.data as SeriesMessage;
  assert.equal(steps.event, "steps");
  assert.equal(m.rows, 100_000);
  assert.ok(m.x.length <= 256, `${m.x.length} points`);
  assert.deepEqual(rest, []);

  for (let i = 0; i < 5; i++) s.setGrid({ step: i * 10, src: `data:image/png;base64,${i}` });
  const grids = s.takeUpdates();
  assert.deepEqual(grids.map((u) => u.event), ["grid"], "the grids between publications coalesce into the latest");
  assert.equal((grids[0].data as { step: number }).step, 40);
  assert.equal(s.snapshot().grid!.step, 40);

  const few = new LiveState({ maxEvals: 10 });
  for (let i = 0; i < 1000; i++) few.addEval({ step: i, fid: 100 - i / 10 });
  const evals = few.snapshot().evals;
  assert.ok(evals.length <= 10 && evals.length >= 5, `${evals.length} eval rows`);
  assert.equal(evals.at(-1)!.step, 999, "the last eval row is kept");
  assert.ok(evals.every((r, i) => i === 0 || r.step > evals[i - 1].step));
});

/** Reads server-sent events from a response, one at a time. */
function eventReader(res: Response) {
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  return async (): Promise<{ event: string; data: unknown }> => {
    while (true) {
      const end = buf.indexOf("\n\n");
      if (end >= 0) {
        const block = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (event !== undefined) return { event, data: JSON.parse(data!) };
        continue; // retry: or a comment
      }
      const { value, done } = await reader.read();
      if (done) throw new Error("the stream ended");
      buf += value;
    }
  };
}

Deno.test("live server: the first message is the whole state, then the updates, coalesced per publication", async () => {
  const state = new LiveState();
  state.setSettings({ run: "runs/demo", totalSteps: 5000 });
  state.addSteps(rows(0, 300), 300);
  state.addEval({ step: 200, fid: 321.5, recall: 0.1 });
  state.setGrid({ step: 200, src: "data:image/png;base64,AA==" });
  const server = serveLive({ port: 0, state, page: "<!doctype html>", publishMs: 60_000 }); // publish() by hand
  try {
    const ac = new AbortController();
    const res = await fetch(`${server.url}events`, { signal: ac.signal });
    assert.equal(res.headers.get("content-type"), "text/event-stream");
    const next = eventReader(res);
    const first = await next();
    assert.equal(first.event, "state");
    const snap = first.data as Snapshot;
    assert.deepEqual(snap.settings, { run: "runs/demo", totalSteps: 5000 });
    assert.equal(snap.steps.rows, 300);
    assert.deepEqual(snap.steps.x.slice(0, 3), [0, 1, 2]);
    assert.deepEqual(snap.evals, [{ step: 200, fid: 321.5, recall: 0.1 }]);
    assert.equal(snap.grid!.step, 200);
    assert.equal(snap.finished, null);
    assert.equal(server.clients(), 1);

    for (let i = 0; i < 10; i++) state.addSteps(rows(300 + i * 100, 100), 100); // 1,000 steps between publications
    state.setGrid({ step: 1000, src: "data:image/png;base64,AQ==" });
    state.setGrid({ step: 1200, src: "data:image/png;base64,Ag==" });
    state.finish({ steps: 1300, seconds: 2, stepsPerSecond: 650 });
    server.publish();
    const steps = await next();
    assert.equal(steps.event, "steps");
    const m = steps.data as SeriesMessage;
    assert.equal(m.rows, 1000, "one message for the steps since the last publication");
    assert.ok(m.x.length <= 256 && m.x.length >= 128, `${m.x.length} points`);
    assert.equal(m.x[0], 301.5, "the mean of steps 300..303");
    assert.equal(m.n.reduce((a, b) => a + b, 0), 1000);
    assert.deepEqual(m.last, { step: 1299, time: 12.99 });
    const grid = await next();
    assert.deepEqual([grid.event, (grid.data as { step: number }).step], ["grid", 1200]);
    assert.deepEqual(await next(), { event: "finished", data: { steps: 1300, seconds: 2, stepsPerSecond: 650 } });
    ac.abort();
  } finally {
    await server.close();
  }
});

Deno.test("live server: a client that does not read has its messages dropped and its stream ended past 1 MiB", async () => {
  const state = new LiveState();
  const server = serveLive({ port: 0, state, page: "", publishMs: 60_000 });
  const stuck = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await stuck.write(new TextEncoder().encode(`GET /events HTTP/1.1\r\nHost: 127.0.0.1:${server.port}\r\n\r\n`));
    while (server.clients() === 0) await new Promise((ok) => setTimeout(ok, 10));
    const big = "A".repeat(256 * 1024);
    let published = 0;
    // The kernel's socket buffers take some megabytes first; then the stream's queue passes its limit.
    while (server.dropped() === 0 && published < 400) {
      state.setGrid({ step: published, src: `data:image/png;base64,${big}` });
      server.publish();
      published++;
      await new Promise((ok) => setTimeout(ok, 1));
    }
    assert.equal(server.dropped(), 1, `not closed after ${published} messages of 256 KiB`);
    assert.equal(server.clients(), 0);
    // A new client still gets the whole state.
    const ac = new AbortController();
    const res = await fetch(`${server.url}events`, { signal: ac.signal });
    const first = await eventReader(res)();
    assert.equal(first.event, "state");
    assert.equal((first.data as Snapshot).grid!.step, published - 1);
    ac.abort();
  } finally {
    stuck.close();
    await server.close();
  }
});

/** Sends one raw HTTP/1.1 request to 127.0.0.1:port; returns the status line. */
async function rawRequest(port: number, head: string): Promise<string> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(new TextEncoder().encode(`${head}\r\nConnection: close\r\n\r\n`));
    const buf = new Uint8Array(4096);
    const n = await conn.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0)).split("\r\n")[0];
  } finally {
    conn.close();
  }
}

Deno.test("live server: listens on 127.0.0.1 only, answers only its own Host, serves the page with its CSP", async () => {
  const page = buildLivePage({ uplotJs: "var uPlot;", uplotCss: "" }, "demo");
  const server = serveLive({ port: 0, state: new LiveState(), page });
  try {
    const res = await fetch(server.url);
    assert.equal(res.status, 200);
    assert.equal(res.headers.get("content-security-policy"), LIVE_CSP);
    assert.match(LIVE_CSP, /default-src 'none'.*connect-src 'self'/);
    assert.equal(await res.text(), page);
    assert.equal(await fetch(`${server.url}nope`).then((r) => (r.body?.cancel(), r.status)), 404);
    assert.equal(await fetch(server.url, { method: "POST" }).then((r) => (r.body?.cancel(), r.status)), 405);
    const p = server.port;
    assert.match(await rawRequest(p, `GET / HTTP/1.1\r\nHost: localhost:${p}`), / 200 /);
    assert.match(await rawRequest(p, `GET / HTTP/1.1\r\nHost: evil.example:${p}`), / 403 /, "DNS rebinding");
    assert.match(await rawRequest(p, `GET /events HTTP/1.1\r\nHost: 127.0.0.2:${p}`), / 403 /);
    // Another loopback address reaches a server on 0.0.0.0, not one on 127.0.0.1 (bash's /dev/tcp, to leave
    // this test's net permission at 127.0.0.1).
    const probe = (host: string) =>
      new Deno.Command("bash", { args: ["-c", `exec 3<>/dev/tcp/${host}/${p}`], stderr: "null" }).output();
    assert.equal((await probe("127.0.0.1")).code, 0);
    assert.notEqual((await probe("127.0.0.2")).code, 0, "the server answered on 127.0.0.2");
  } finally {
    await server.close();
  }
});

Deno.test("--serve [PORT]: the value may be left out; a bad port is a usage error naming it", () => {
  assert.match(trainUsage(), /\n {2}--serve \[PORT\] \*\n {6}serve a live view of the run/);
  assert.equal(parseTrainFlags([]).serve, undefined);
  assert.equal(parseTrainFlags(["--serve"]).serve, 0);
  assert.equal(parseTrainFlags(["--serve", "--max_steps", "5"]).serve, 0);
  assert.equal(parseTrainFlags(["--serve", "--max_steps", "5"]).max_steps, 5);
  assert.equal(parseTrainFlags(["--serve", "8080"]).serve, 8080);
  assert.equal(parseTrainFlags(["--serve=8081", "--seed", "3"]).serve, 8081);
  for (const bad of ["abc", "70000", "-1", "80.5"]) {
    assert.throws(
      () => parseTrainFlags(["--serve", bad]),
      (e) => e instanceof UsageError && e.message === `--serve must be an integer in [0, 65535], got "${bad}"`,
    );
  }
});

/** Starts `deno task train`'s command (its permission set) with `args`. */
function trainCli(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", `--config=${ROOT}deno.json`, "-P=train", `${ROOT}src/cli/train.ts`, ...args],
    cwd: ROOT,
    env: { NODEVICE_SELECT: "1", NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function finished(p: Deno.ChildProcess) {
  const [status, out, err] = await Promise.all([
    p.status,
    new Response(p.stdout).text(),
    new Response(p.stderr).text(),
  ]);
  return { code: status.code, stdout: out, stderr: err };
}

function oneErrorLine(stderr: string, message: RegExp) {
  const errors = stderr.split("\n").filter((l) => l.startsWith("error: "));
  assert.equal(errors.length, 1, `one "error: " line expected:\n${stderr}`);
  assert.match(errors[0], message);
  assert.doesNotMatch(stderr, /^\s+at /m, `no stack trace expected:\n${stderr}`);
}

Deno.test("train --serve: a bad port exits 2 naming it, a port in use exits 1 naming it, before any training", async () => {
  const bad = await finished(trainCli(["--serve", "http"]));
  assert.equal(bad.code, 2, bad.stderr);
  oneErrorLine(bad.stderr, /^error: --serve must be an integer in \[0, 65535\], got "http"$/);
  using held = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (held.addr as Deno.NetAddr).port;
  const dir = await Deno.makeTempDir({ prefix: "gan-serve-" });
  try {
    const busy = await finished(trainCli(["--serve", String(port), "--dataset", "embedded", "--out", dir]));
    assert.equal(busy.code, 1, busy.stderr);
    oneErrorLine(
      busy.stderr,
      new RegExp(`^error: Cannot serve the live view on 127\\.0\\.0\\.1:${port}: the port is in use$`),
    );
    assert.doesNotMatch(busy.stderr, /deno-gan: gan on/, "no training started");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---- in a real browser ----

/** Opens the live page and records what would make it fail: console errors, page errors, failed or foreign requests. */
async function openLive(browser: Browser, url: string) {
  const { page, problems } = await watchedPage(browser, (u) => u.startsWith(url) || u.startsWith("data:"));
  await page.goto(url, { waitUntil: "load" });
  return { page, problems };
}

/** The live page's counters. */
function counters(page: Page) {
  return page.evaluate(() => {
    const b = document.body.dataset;
    return { status: b.status!, rows: Number(b.rows), updates: Number(b.updates) };
  });
}

/** Reads a child's stderr lines until one matches; the rest is kept in `seen`. */
async function waitForLine(
  stream: ReadableStream<Uint8Array<ArrayBuffer>>,
  re: RegExp,
  seen: string[],
): Promise<RegExpExecArray> {
  const reader = stream.pipeThrough(new TextDecoderStream()).getReader();
  let buf = "";
  while (true) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`no line matching ${re}:\n${seen.join("\n")}`);
    buf += value;
    const lines = buf.split(/\r|\n/);
    buf = lines.pop()!;
    for (const l of lines) {
      seen.push(l);
      const m = re.exec(l);
      if (m) {
        // Keep draining, so that the child never blocks on a full pipe.
        (async () => {
          for (let r = await reader.read(); !r.done; r = await reader.read()) seen.push(r.value);
        })().catch(() => {});
        return m;
      }
    }
  }
}

Deno.test({
  name: "train --serve in chromium: the page updates during a real run, shows the grid, ends finished, no errors",
  sanitizeOps: false,
  sanitizeResources: false,
  fn: async () => {
    const update = Deno.env.get("UPDATE_SCREENSHOT") === "1";
    const browser = await launchChromium();
    const dir = await Deno.makeTempDir({ prefix: "gan-serve-" });
    const extra = update ? ["--max_steps", "4000", "--eval_every", "1000", "--eval_n", "2000"] : ["--max_steps", "700"];
    const child = trainCli([
      "--serve",
      "--dataset=embedded",
      "--backend=cpu",
      "--sample_interval=50",
      "--checkpoint_every=0",
      `--out=${dir}/run`,
      "--log_format=seed",
      ...extra,
    ]);
    const stderr: string[] = [];
    child.stdout.pipeTo(new WritableStream()).catch(() => {}); // upstream's line per batch, not read
    try {
      const url =
        (await waitForLine(child.stderr, /serving the live view at (http:\/\/127\.0\.0\.1:\d+\/)$/, stderr))[1];
      const { page, problems } = await openLive(browser, url);
      // During the run: the step count grows over several messages while the page says it is live.
      await page.waitForFunction(() => Number(document.body.dataset.rows) > 0, { timeout: 60_000 });
      const a = await counters(page);
      await page.waitForFunction(
        (n: number) => Number(document.body.dataset.rows) > n + 50,
        { timeout: 60_000 },
        a.rows,
      );
      const b = await counters(page);
      assert.equal(a.status, "live", JSON.stringify(a));
      assert.equal(b.status, "live", `the run ended before the page saw it grow: ${JSON.stringify([a, b])}`);
      assert.ok(b.updates > a.updates, JSON.stringify([a, b]));
      assert.match(await page.$eval("#progress", (e) => e.textContent ?? ""), /^step \d+ \/ \d+ · epoch \d+ \/ 50/);
      // A fixed-noise grid arrives (every 50 steps), decoded: 5 x 5 digits of 28 px with 2 px padding.
      await page.waitForFunction(() => (document.getElementById("grid-image") as HTMLImageElement).naturalWidth > 0);
      assert.equal(await page.$eval("#grid-image", (e) => (e as HTMLImageElement).naturalWidth), 152);
      await page.waitForFunction(() => document.body.dataset.status === "finished", { timeout: 600_000 });
      const end = await counters(page);
      assert.equal(end.rows, update ? 4000 : 700, "every step reached the page");
      assert.match(await page.$eval("#status", (e) => e.textContent ?? ""), /^finished: the run ended/);
      for (const sel of ["#loss-chart", "#dx-chart", ...(update ? ["#fid-chart", "#prdc-chart"] : [])]) {
        const size = await page.$eval(
          `${sel} canvas`,
          (c) => [c.getBoundingClientRect().width, c.getBoundingClientRect().height],
        );
        assert.ok(size[0] > 200 && size[1] > 100, `${sel}: ${size}`);
      }
      const shot = await page.screenshot({ type: "png", fullPage: true });
      const stats = screenshotStats(shot);
      assert.equal(stats.width, 1200);
      assert.ok(stats.distinct > 300 && stats.top < 0.9, `a blank-looking screenshot: ${JSON.stringify(stats)}`);
      if (update) await Deno.writeFile(`${ROOT}docs/images/live_view.png`, shot);
      const status = await child.status;
      assert.equal(status.code, 0, stderr.join("\n"));
      assert.deepEqual(problems, []);
    } finally {
      try {
        child.kill();
      } catch { /* ended */ }
      await browser.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
