// The cost of `--serve` to the training loop (`deno task bench:serve`): the same short CLI run of the seed's GAN
// (the embedded digits, cpu backend, --max_steps STEPS, a grid every 50 steps so that the page gets grids too)
// without and with `--serve 0`, the latter with one headless chromium showing the live page for the whole run;
// alternating which goes first, ROUNDS rounds; the steps/s of each from the run's "done:" line. Prints each round
// and the median ratio (serve / plain); `--json FILE` writes the raw numbers. `--no-browser`: served, no page open.
//
//   deno task bench:serve [--rounds 7] [--steps 1000] [--no-browser] [--threads N] [--pin] [--json FILE]
//
// `--threads 1` leaves the second core of a 2-core machine to the browser, so that what is measured is the server's
// cost and not chromium's rendering competing with the training threads for the cores. `--pin` (Linux, `taskset`)
// makes that split exact: the training process (its training thread, the live view's worker and the HTTP server
// alike) runs on the first core only, in both runs, and chromium on the others; so the live view's own work is
// charged to the training core in full, and the browser's rendering to none of it. Each run also reports the CPU
// time of its threads by name (/proc/PID/task/TID/comm), so that what the live view adds can be read per thread.

/// <reference lib="dom" /> -- the types of the callbacks that run in the page

// deno-lint-ignore no-import-prefix -- a benchmark-only package, pinned as the tests pin it
import puppeteer, { type Browser } from "npm:puppeteer-core@25.16.0";
import { parseArgs } from "node:util";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "7" },
    steps: { type: "string", default: "1000" },
    json: { type: "string" },
    "no-browser": { type: "boolean", default: false },
    threads: { type: "string" },
    pin: { type: "boolean", default: false },
  },
});
const rounds = Number(values.rounds), steps = Number(values.steps), watch = !values["no-browser"];

interface Run {
  stepsPerSecond: number;
  seconds: number;
  /** CPU seconds of the training process (all threads) and of its main thread (the training loop), from /proc. */
  cpuSeconds?: number;
  mainCpuSeconds?: number;
  /** CPU seconds per thread name (/proc/PID/task/TID/comm), threads of one name summed. */
  threadCpuSeconds?: Record<string, number>;
  /** Messages the page received (serve only). */
  updates?: number;
  rows?: number;
}

/** One CLI training run; with `browser`, served and watched by a page for the whole run. */
async function trainOnce(dir: string, browser: Browser | null, serve: boolean): Promise<Run> {
  const args = [
    "run",
    `--config=${ROOT}deno.json`,
    "-P=train",
    `${ROOT}src/cli/train.ts`,
    "--dataset=embedded",
    "--backend=cpu",
    `--max_steps=${steps}`,
    "--sample_interval=50",
    "--checkpoint_every=0",
    "--log_format=seed",
    `--out=${dir}`,
    ...(serve ? ["--serve", "0"] : []),
    ...(values.threads ? [`--n_cpu=${values.threads}`] : []),
  ];
  const cmd = values.pin ? ["taskset", "-c", "0", Deno.execPath(), ...args] : [Deno.execPath(), ...args];
  const child = new Deno.Command(cmd[0], {
    args: cmd.slice(1),
    cwd: ROOT,
    env: { NODEVICE_SELECT: "1", NO_COLOR: "1" },
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const cpu = cpuWatcher(child.pid);
  const reader = child.stderr.pipeThrough(new TextDecoderStream()).getReader();
  let text = "", page = null;
  for (let r = await reader.read(); !r.done; r = await reader.read()) {
    text += r.value;
    const url = /serving the live view at (\S+)/.exec(text)?.[1];
    if (browser && url && !page) {
      page = await browser.newPage();
      await page.setViewport({ width: 1200, height: 900 });
      await page.goto(url, { waitUntil: "load" });
    }
  }
  const status = await child.status;
  const used = cpu.stop();
  if (status.code !== 0) throw new Error(`the run failed (exit ${status.code}):\n${text}`);
  const done = /done: \d+ steps in ([\d.]+) s \(([\d.]+) steps\/s\)/.exec(text);
  if (!done) throw new Error(`no "done:" line:\n${text}`);
  const run: Run = { seconds: Number(done[1]), stepsPerSecond: Number(done[2]), ...used };
  if (page) {
    const d = await page.evaluate(() => ({ ...document.body.dataset }));
    run.updates = Number(d.updates);
    run.rows = Number(d.rows);
    if (run.rows !== steps) throw new Error(`the page saw ${run.rows} of ${steps} steps`);
    await page.close();
  } else if (browser) throw new Error("the served run printed no URL");
  if (serve && !/serving the live view at/.test(text)) throw new Error(`the served run printed no URL:\n${text}`);
  return run;
}

/** Clock ticks per second of /proc's utime and stime (USER_HZ; 100 on Linux). */
const TICKS = 100;

/**
 * Polls the CPU time of a process's threads (utime + stime of /proc/PID/task/TID/stat) every 50 ms, keeping the last
 * value seen per thread: at the end, the process's CPU seconds and its main thread's (TID = PID), short of at most
 * the last 50 ms.
 */
function cpuWatcher(pid: number) {
  const last = new Map<number, number>(), names = new Map<number, string>();
  const poll = () => {
    try {
      for (const e of Deno.readDirSync(`/proc/${pid}/task`)) {
        const stat = Deno.readTextFileSync(`/proc/${pid}/task/${e.name}/stat`);
        const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from 3 on: utime is 14, stime 15
        last.set(Number(e.name), Number(f[11]) + Number(f[12]));
        names.set(Number(e.name), stat.slice(stat.indexOf("(") + 1, stat.lastIndexOf(")")));
      }
    } catch (e) {
      if (Deno.env.get("DEBUG_CPU")) console.error(e);
    }
  };
  const timer = setInterval(poll, 50);
  return {
    stop(): { cpuSeconds: number; mainCpuSeconds: number; threadCpuSeconds: Record<string, number> } {
      clearInterval(timer);
      const all = [...last.values()].reduce((a, b) => a + b, 0);
      const threadCpuSeconds: Record<string, number> = {};
      for (const [tid, ticks] of last) {
        const name = tid === pid ? "main" : names.get(tid)!;
        threadCpuSeconds[name] = (threadCpuSeconds[name] ?? 0) + ticks / TICKS;
      }
      return { cpuSeconds: all / TICKS, mainCpuSeconds: (last.get(pid) ?? 0) / TICKS, threadCpuSeconds };
    },
  };
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
}

/** With --pin, chromium through a wrapper that puts it (and every process it starts) on the cores after the first. */
async function chromiumPath(): Promise<string> {
  if (!values.pin) return "/usr/bin/chromium";
  const cores = navigator.hardwareConcurrency;
  if (cores < 2) throw new Error("--pin needs 2 cores at least");
  const path = await Deno.makeTempFile({ prefix: "chromium-pinned-", suffix: ".sh" });
  await Deno.writeTextFile(path, `#!/bin/sh\nexec taskset -c 1-${cores - 1} /usr/bin/chromium "$@"\n`);
  await Deno.chmod(path, 0o755);
  return path;
}

const browser = await puppeteer.launch({
  executablePath: await chromiumPath(),
  pipe: true,
  headless: true,
  args: ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"],
});
const dir = await Deno.makeTempDir({ prefix: "gan-serve-bench-" });
const results: { plain: Run; serve: Run; ratio: number }[] = [];
try {
  for (let i = 0; i < rounds; i++) {
    const order = i % 2 === 0 ? [false, true] : [true, false];
    const out: Record<string, Run> = {};
    for (const serve of order) {
      out[serve ? "serve" : "plain"] = await trainOnce(
        `${dir}/r${i}${serve ? "s" : "p"}`,
        serve && watch ? browser : null,
        serve,
      );
    }
    const ratio = out.serve.stepsPerSecond / out.plain.stepsPerSecond;
    results.push({ plain: out.plain, serve: out.serve, ratio });
    console.log(
      `round ${i + 1}/${rounds} (${i % 2 === 0 ? "plain first" : "serve first"}): plain ${out.plain.stepsPerSecond} ` +
        `steps/s, serve ${out.serve.stepsPerSecond} steps/s (page: ${out.serve.updates} messages), ratio ${
          ratio.toFixed(4)
        }; CPU s main/all: plain ${out.plain.mainCpuSeconds}/${out.plain.cpuSeconds}, serve ` +
        `${out.serve.mainCpuSeconds}/${out.serve.cpuSeconds}`,
    );
    const threads = (r: Run) =>
      Object.entries(r.threadCpuSeconds!).sort((a, b) => b[1] - a[1]).map(([k, v]) => `${k} ${v.toFixed(2)}`).join(
        ", ",
      );
    console.log(`  CPU s by thread: plain ${threads(out.plain)}; serve ${threads(out.serve)}`);
  }
} finally {
  await browser.close();
  await Deno.remove(dir, { recursive: true });
}
const ratios = results.map((r) => r.ratio);
const summary = {
  watched: watch,
  pinned: values.pin,
  threads: values.threads ?? null,
  steps,
  rounds,
  median_ratio: median(ratios),
  min_ratio: Math.min(...ratios),
  max_ratio: Math.max(...ratios),
  median_plain: median(results.map((r) => r.plain.stepsPerSecond)),
  median_serve: median(results.map((r) => r.serve.stepsPerSecond)),
  // CPU time: the training process's main thread (the loop and its hooks) and all its threads, serve / plain
  median_main_cpu_ratio: median(results.map((r) => r.serve.mainCpuSeconds! / r.plain.mainCpuSeconds!)),
  median_process_cpu_ratio: median(results.map((r) => r.serve.cpuSeconds! / r.plain.cpuSeconds!)),
  // CPU seconds the served run's threads spent beyond the plain run's, per thread name (medians over the rounds)
  median_thread_cpu_extra: Object.fromEntries(
    [
      ...new Set(
        results.flatMap((r) => [...Object.keys(r.serve.threadCpuSeconds!), ...Object.keys(r.plain.threadCpuSeconds!)]),
      ),
    ]
      .map((name) => [
        name,
        Number(
          median(results.map((r) => (r.serve.threadCpuSeconds![name] ?? 0) - (r.plain.threadCpuSeconds![name] ?? 0)))
            .toFixed(3),
        ),
      ]),
  ),
};
console.log(
  `median ratio serve/plain ${summary.median_ratio.toFixed(4)} (cost ${
    ((1 - summary.median_ratio) * 100).toFixed(2)
  }%; ` +
    `range ${summary.min_ratio.toFixed(4)}-${summary.max_ratio.toFixed(4)}); median steps/s plain ` +
    `${summary.median_plain}, serve ${summary.median_serve}`,
);
console.log(
  `CPU time serve/plain: the main thread (the training loop) ${summary.median_main_cpu_ratio.toFixed(4)}, the ` +
    `whole training process ${summary.median_process_cpu_ratio.toFixed(4)} (medians)`,
);
console.log(`CPU s the served run added, by thread (medians): ${JSON.stringify(summary.median_thread_cpu_extra)}`);
if (values.json) await Deno.writeTextFile(values.json, JSON.stringify({ summary, results }, null, 2) + "\n");
