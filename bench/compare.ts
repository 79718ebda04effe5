// Side-by-side benchmark: our trainer against the PyTorch reference (bench/reference/gan_torch.py), same model, same
// data files (bench/.data, the 10,000 embedded MNIST digits as IDX), same batch size, same thread count. Every
// measurement is its own process (so each has its own peak RSS); PyTorch and ours alternate within each round and the
// order flips every round, so slow drifts of a shared machine hit both sides alike.
//
//   deno run --allow-read --allow-write --allow-run --allow-sys=loadavg bench/compare.ts \
//     [--rounds 3] [--threads 2] [--no-scaling] [--gpu auto|on|off] [--omp-passive] [--json results.json] \
//     [--max-minutes 10] [--no-cpu] [--python bench/.venv/bin/python] [--max-other 0.25] [--retries 2]
//     [--models gan,bgan,softmax_gan,wgan,wgan_gp,wgan_div,cgan,aae] [--jsonl bench/results/family_speed.jsonl]
//
// With --models (or --model) it times the PyTorch-GAN family instead (CPU, batch 64 only): per model, ours
// (NativeGan.stepRaw(1) with `model` set; one step = one batch of upstream's loop) against PyTorch preloaded running
// that model's loop body from bench/reference/family.py (gan_torch.py --model), alternating as above. A model may be
// written gan:hinge (the gan model with a loss option). cgan runs at its 32x32 on both sides, with the digits' labels
// (ours: the trainer's networks and config, the digits resized by resizeBilinear; PyTorch: upstream's Resize(32) once,
// gen_labels from np.random.randint, nn.Dropout's own masks). aae runs at its 32x32 and latent 10 on both sides, with
// its three networks (ours: the trainer's encoder, decoder and latent D; PyTorch: family.py's step_aae, eps then the
// prior z from np.random.normal). --jsonl appends one summary line per model.
//
// Tables (markdown, on stdout):
// 1. batch 64: PyTorch's seed data path (torchvision MNIST + DataLoader), PyTorch with the data preloaded as one
//    tensor, ours on the CPU (and the same three on the GPU when one is found): steps/s, ms/step (median and 10th
//    percentile, over full batches), epoch time for the 10,000 images, peak RSS; then ours / PyTorch steps/s as
//    min / median / max over the rounds (each ratio taken within one round), and the ratio of p10 step times.
// 2. scaling: batch 64, 256, 1024 and the generator twice as wide (256..2048 hidden, batch 64), ours against
//    PyTorch preloaded.
//
// Needs bench/.venv (PyTorch): python3 -m venv bench/.venv && bench/.venv/bin/pip install torch torchvision \
// safetensors numpy. Writes bench/.data first when it is missing (bench/write_idx.ts).

import { parseArgs } from "node:util";

const ROOT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
const IDX = `${ROOT}/bench/.data/MNIST/raw/train-images-idx3-ubyte`;

const { values: opt } = parseArgs({
  options: {
    rounds: { type: "string", default: "3" },
    threads: { type: "string", default: "2" },
    "no-scaling": { type: "boolean", default: false },
    "no-cpu": { type: "boolean", default: false },
    gpu: { type: "string", default: "auto" },
    "omp-passive": { type: "boolean", default: false },
    json: { type: "string" },
    "max-minutes": { type: "string", default: "10" },
    "max-other": { type: "string", default: "0.25" }, // cores used by other processes before a retry
    retries: { type: "string", default: "2" },
    timeout: { type: "string", default: "180" }, // seconds per measurement
    python: { type: "string", default: `${ROOT}/bench/.venv/bin/python` }, // a python with PyTorch
    models: { type: "string" }, // comma-separated: the family mode (see the header)
    model: { type: "string" },
    jsonl: { type: "string" }, // family mode: one summary line per model appended here
  },
});
const PYTHON = opt.python!;
const rounds = Number(opt.rounds), threads = Number(opt.threads);
const deadline = Date.now() + Number(opt["max-minutes"]) * 60e3;

/** One measurement's result, as gan_torch.py and ours_bench.ts print it (one JSON line). */
interface Result {
  impl: "pytorch" | "ours";
  mode: string;
  device: string;
  device_name: string;
  threads: number;
  batch_size: number;
  width_mult: number;
  dataset_count: number;
  batches_per_epoch: number;
  steps: number;
  steps_per_s: number;
  ms_per_step_median: number;
  ms_per_step_min: number;
  ms_per_step_p10: number;
  epoch_s: number;
  peak_rss_mb: number | null;
  peak_gpu_mb?: number | null;
  d_loss: number;
  g_loss: number;
  torch?: string;
  rss_source?: string;
  /** CPU seconds of the measuring process (user + system). */
  cpu_s?: number | null;
  /**
   * The CPU that other processes used meanwhile, in cores (machine busy time from /proc/stat minus the process's own,
   * over the wall time): reported by the child over its timed steps, else computed here over its whole life. Added
   * here: the 1-minute load average just before the measurement, its round and its try.
   */
  loadavg?: number;
  round?: number;
  attempt?: number;
  other_cores?: number | null;
}

/** What to run: a side, its mode and device, and a workload. */
interface Config {
  key: string;
  label: string;
  side: "pytorch" | "ours";
  mode: "seed" | "preloaded" | "native";
  device: "cpu" | "cuda" | "gpu";
  batch: number;
  width: number;
  /** The family mode's model ("gan", "wgan_gp", or "gan:hinge" for a loss option); undefined: the seed's run. */
  model?: string;
}

function stepsFor(c: Config): { steps: number; warmup: number } {
  // About 2-4 s of timed work per PyTorch measurement on this 2-core machine when it is quiet; ours runs 3x the
  // steps for steadier statistics (it is faster). Warm-up steps are excluded from the timing.
  const base = c.width > 1 ? 100 : Math.max(20, Math.round(200 * 64 / c.batch));
  const steps = c.side === "ours" ? 3 * base : base;
  const warmup = Math.max(3, Math.round(20 * 64 / c.batch));
  return { steps: c.device === "cpu" ? steps : 5 * steps, warmup };
}

function command(c: Config): string[] {
  const { steps, warmup } = stepsFor(c);
  const common = [`--batch_size=${c.batch}`, `--steps=${steps}`, `--warmup=${warmup}`, `--width_mult=${c.width}`];
  if (c.model !== undefined) {
    const [model, loss = "bce"] = c.model.split(":");
    common.push(`--model=${model}`, `--loss=${loss}`);
  }
  if (c.side === "pytorch") {
    return [
      PYTHON,
      `${ROOT}/bench/reference/gan_torch.py`,
      `--mode=${c.mode}`,
      `--device=${c.device}`,
      `--threads=${threads}`,
      `--idx_dir=${ROOT}/bench/.data`,
      "--json",
      ...common,
    ];
  }
  // --allow-all lets the child read its own VmHWM (Deno refuses /proc/self otherwise).
  return [
    Deno.execPath(),
    "run",
    "--allow-all",
    `${ROOT}/bench/ours_bench.ts`,
    `--backend=${c.device === "gpu" ? "gpu" : "cpu"}`,
    `--threads=${threads}`,
    `--per_call=${c.device === "gpu" ? 10 : 1}`,
    `--idx_dir=${ROOT}/bench/.data`,
    "--json",
    ...common,
  ];
}

async function run(argv: string[], env: Record<string, string> = {}, timeoutS = Number(opt.timeout)) {
  const out = await new Deno.Command(argv[0], {
    args: argv.slice(1),
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
    signal: AbortSignal.timeout(timeoutS * 1e3),
  }).output();
  return { code: out.code, stdout: new TextDecoder().decode(out.stdout), stderr: new TextDecoder().decode(out.stderr) };
}

/** Busy CPU seconds of the whole machine so far (all CPUs; /proc/stat, USER_HZ = 100), or null off Linux. */
async function machineBusy(): Promise<number | null> {
  try {
    const r = await run(["cat", "/proc/stat"], {}, 10);
    const f = r.stdout.split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal ...: everything but idle and iowait
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / 100;
  } catch {
    return null;
  }
}

/**
 * Runs one measurement; when other processes used more than --max-other cores meanwhile (a shared machine), waits and
 * tries again, up to --retries more times, and keeps the least disturbed try.
 */
async function measure(c: Config, round: number): Promise<Result | null> {
  let best: Result | null = null;
  for (let attempt = 0; attempt <= Number(opt.retries); attempt++) {
    if (attempt > 0) await new Promise((ok) => setTimeout(ok, 5000));
    const r = await measureOnce(c, round, attempt);
    if (r === null) return best;
    if (best === null || (r.other_cores ?? 0) < (best.other_cores ?? 0)) best = r;
    if ((r.other_cores ?? 0) <= Number(opt["max-other"])) break;
  }
  return best;
}

async function measureOnce(c: Config, round: number, attempt: number): Promise<Result | null> {
  const loadavg = Deno.loadavg()[0];
  const busy0 = await machineBusy(), t0 = performance.now();
  const env: Record<string, string> = c.side === "ours"
    ? oursEnv
    : opt["omp-passive"]
    ? { OMP_WAIT_POLICY: "PASSIVE" }
    : {};
  let r;
  try {
    r = await run(command(c), env);
  } catch (e) {
    console.error(`  ${c.label}: ${(e as Error).message}`);
    return null;
  }
  const busy1 = await machineBusy(), wall = (performance.now() - t0) / 1e3;
  const line = r.stdout.trim().split("\n").at(-1) ?? "";
  if (r.code !== 0 || !line.startsWith("{")) {
    console.error(`  ${c.label}: exit ${r.code}\n${r.stderr.trim().split("\n").slice(-8).join("\n")}`);
    return null;
  }
  const res = { ...JSON.parse(line), loadavg, round, attempt } as Result;
  // Prefer the child's own account over its timed steps; else the machine's over the child's whole life.
  if (typeof res.other_cores !== "number") {
    res.other_cores = busy0 !== null && busy1 !== null && typeof res.cpu_s === "number"
      ? Math.max(0, (busy1 - busy0 - res.cpu_s) / wall)
      : null;
  }
  console.error(
    `  round ${round + 1} ${c.label.padEnd(34)} ${res.steps_per_s.toFixed(1).padStart(7)} steps/s, median ${
      res.ms_per_step_median.toFixed(2)
    } ms/step, p10 ${res.ms_per_step_p10.toFixed(2)}, RSS ${res.peak_rss_mb?.toFixed(0)} MB, other load ${
      res.other_cores?.toFixed(2)
    } cores${attempt ? ` (try ${attempt + 1})` : ""}`,
  );
  return res;
}

// ---------------------------------------------------------------------------------------------------------------
// Preflight: PyTorch present, data written, both sides start (this also builds the native library when stale).
// ---------------------------------------------------------------------------------------------------------------

try {
  Deno.statSync(PYTHON);
} catch {
  console.error(
    `bench/compare.ts needs PyTorch in bench/.venv (${PYTHON} not found). Create it with:\n\n` +
      `  python3 -m venv bench/.venv && bench/.venv/bin/pip install torch torchvision safetensors numpy\n`,
  );
  Deno.exit(2);
}
try {
  Deno.statSync(IDX);
} catch {
  console.error("bench/.data missing: writing the embedded MNIST digits as IDX files (bench/write_idx.ts)");
  const w = await run([Deno.execPath(), "run", "--allow-read", "--allow-write", `${ROOT}/bench/write_idx.ts`]);
  if (w.code !== 0) {
    console.error(w.stderr);
    Deno.exit(1);
  }
}

let gpu = opt.gpu === "on";
if (opt.gpu === "auto") {
  try {
    gpu = (await run(["nvidia-smi", "-L"], {}, 20)).code === 0;
  } catch {
    gpu = false;
  }
}

const cfg = (
  side: Config["side"],
  mode: Config["mode"],
  device: Config["device"],
  batch: number,
  width = 1,
): Config => {
  const where = device === "cpu" ? "CPU" : "GPU";
  const label = side === "ours"
    ? `ours, ${where}`
    : mode === "seed"
    ? `PyTorch ${where}, seed data path`
    : `PyTorch ${where}, preloaded`;
  const what = width > 1 ? `, G x${width} wide` : "";
  return {
    key: `${side}/${mode}/${device}/${batch}/${width}`,
    label: `${label} (batch ${batch}${what})`,
    side,
    mode,
    device,
    batch,
    width,
  };
};

/** Which devices get rows: [PyTorch's device, ours, the targets of the issue for ours / PyTorch seed, preloaded]. */
const familyModels = (opt.models ?? opt.model)?.split(",").map((m) => m.trim()).filter((m) => m !== "") ?? [];
const familyMode = familyModels.length > 0;
const devs: ["cpu" | "cuda", "cpu" | "gpu", string, string][] = [];
if (familyMode) gpu = false; // the family mode is CPU only
if (familyMode) {
  // no seed rows: the family table below
} else if (!opt["no-cpu"]) devs.push(["cpu", "cpu", ">= 2.0", ">= 1.3"]);
if (gpu) devs.push(["cuda", "gpu", "-", "-"]);
if (devs.length === 0 && !familyMode) {
  console.error("nothing to run: --no-cpu and no GPU (--gpu on to insist)");
  Deno.exit(2);
}
/** Per device: PyTorch seed data path, ours, PyTorch preloaded (batch 64). */
const groups = devs.map(([td, od, t1, t2]) => ({
  seed: cfg("pytorch", "seed", td, 64),
  ours: cfg("ours", "native", od, 64),
  pre: cfg("pytorch", "preloaded", td, 64),
  targets: [t1, t2],
}));
const main: Config[] = groups.flatMap((g) => [g.seed, g.ours, g.pre]);
const scaling: [string, Config, Config][] = [];
if (!opt["no-scaling"] && !familyMode) {
  for (const [td, od] of devs) {
    const where = td === "cpu" ? "CPU" : "GPU";
    for (const [batch, width] of [[64, 1], [256, 1], [1024, 1], [64, 2]]) {
      const name = `${where}, batch ${batch}${width > 1 ? ", G twice as wide (256-512-1024-2048)" : ""}`;
      scaling.push([name, cfg("pytorch", "preloaded", td, batch, width), cfg("ours", "native", od, batch, width)]);
    }
  }
}
/** The family mode: per model, [model, PyTorch preloaded (family.py's step), ours]. */
const family: [string, Config, Config][] = familyModels.map((m) => {
  const t = cfg("pytorch", "preloaded", "cpu", 64), o = cfg("ours", "native", "cpu", 64);
  return [m, { ...t, key: `${t.key}/${m}`, label: `${t.label}, ${m}`, model: m }, {
    ...o,
    key: `${o.key}/${m}`,
    label: `${o.label}, ${m}`,
    model: m,
  }];
});
const all = new Map<string, Config>();
for (const c of [...main, ...scaling.flatMap(([, a, b]) => [a, b]), ...family.flatMap(([, a, b]) => [a, b])]) {
  all.set(c.key, c);
}
const order = [...all.values()];

console.error(
  `preflight: ${order.length} configurations, ${rounds} rounds, ${threads} threads, gpu ${gpu ? "on" : "off"}`,
);
/** Environment of our measurements: the native library pinned to a private copy (set after the preflight). */
const oursEnv: Record<string, string> = {};
let pinned = "";
for (const c of [...groups.flatMap((g) => [g.ours, g.pre]), ...family.flatMap(([, t, o]) => [o, t])]) {
  const r = await run(command({ ...c }).map((a) => (a.startsWith("--steps=") ? "--steps=2" : a)), oursEnv, 900);
  if (r.code !== 0) {
    console.error(`preflight of ${c.label} failed (exit ${r.code}):\n${r.stderr}`);
    Deno.exit(1);
  }
  if (c.side === "ours" && !oursEnv.GAN_NATIVE_LIB) {
    // Copy the library the preflight loaded (built by then) and point every measurement at the copy, so that a
    // rebuild of native/ during the run (sources edited meanwhile) can neither fail nor change a measurement.
    const lib = JSON.parse(r.stdout.trim().split("\n").at(-1)!).library as string;
    const dir = await Deno.makeTempDir({ prefix: "deno-gan-bench-" });
    oursEnv.GAN_NATIVE_LIB = `${dir}/${lib.split("/").at(-1)}`;
    await Deno.copyFile(lib, oursEnv.GAN_NATIVE_LIB);
    pinned = lib;
    globalThis.addEventListener("unload", () => Deno.removeSync(dir, { recursive: true }));
  }
}
console.error(`ours: native library ${pinned} (a private copy for this run)`);

// ---------------------------------------------------------------------------------------------------------------
// The rounds
// ---------------------------------------------------------------------------------------------------------------

const results = new Map<string, (Result | null)[]>([...all.keys()].map((k) => [k, []]));
const started = Date.now();
let done = 0;
for (let r = 0; r < rounds; r++) {
  if (Date.now() > deadline) {
    console.error(`stopping after ${r} rounds: --max-minutes ${opt["max-minutes"]} reached`);
    break;
  }
  const seq = r % 2 === 0 ? order : [...order].reverse();
  for (const c of seq) results.get(c.key)![r] = await measure(c, r);
  done = r + 1;
}
const minutes = (Date.now() - started) / 60e3;

// ---------------------------------------------------------------------------------------------------------------
// Tables
// ---------------------------------------------------------------------------------------------------------------

const ok = (k: string) => (results.get(k) ?? []).filter((x): x is Result => x !== null);
const median = (xs: number[]) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const f = (x: number, d = 1) => (Number.isFinite(x) ? x.toFixed(d) : "n/a");
const med = (k: string, field: keyof Result) => median(ok(k).map((x) => x[field] as number));
/** ours / PyTorch within each round: [min, median, max] of steps/s ratios, and the median ratio of p10 step times. */
function ratios(ours: string, torch: string): number[] {
  const a = results.get(ours)!, b = results.get(torch)!;
  const rs: number[] = [], best: number[] = [];
  for (let r = 0; r < done; r++) {
    if (!a[r] || !b[r]) continue;
    rs.push(a[r]!.steps_per_s / b[r]!.steps_per_s);
    best.push(b[r]!.ms_per_step_p10 / a[r]!.ms_per_step_p10);
  }
  return rs.length ? [Math.min(...rs), median(rs), Math.max(...rs), median(best)] : [NaN, NaN, NaN, NaN];
}

const sample = [...groups.map((g) => g.ours), ...family.map(([, , o]) => o)].map((c) => ok(c.key)[0]).find((x) =>
  x !== undefined
);
const count = sample?.dataset_count ?? 10000;
const lines: string[] = [];
if (familyMode) familyTables();
else {
  lines.push(
    `Batch 64, ${threads} threads, ${count.toLocaleString("en-US")} images (epoch = ${Math.ceil(count / 64)} steps), ` +
      `${done} rounds; each cell is the median over the rounds.`,
    "",
    "| Run | steps/s | ms/step (median) | ms/step (p10) | epoch time (s) | peak RSS (MB) |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const c of main) {
    const rss = med(c.key, "peak_rss_mb");
    lines.push(
      `| ${c.label} | ${f(med(c.key, "steps_per_s"))} | ${f(med(c.key, "ms_per_step_median"), 2)} | ${
        f(med(c.key, "ms_per_step_p10"), 2)
      } | ${f(med(c.key, "epoch_s"), 2)} | ${f(rss, 0)} |`,
    );
  }
  lines.push(
    "",
    "| ours / PyTorch, steps/s | min | median | max | target | p10 step ratio |",
    "| --- | ---: | ---: | ---: | ---: | ---: |",
  );
  const pairs: [Config, Config, string][] = groups.flatMap((
    g,
  ) => [[g.ours, g.seed, g.targets[0]], [g.ours, g.pre, g.targets[1]]] as [Config, Config, string][]);
  for (const [o, t, target] of pairs) {
    const [lo, mid, hi, best] = ratios(o.key, t.key);
    const name = `${o.label.replace(/ \(batch 64\)/, "")} vs ${t.label.replace(/ \(batch 64\)/, "")}`;
    lines.push(`| ${name} | ${f(lo, 2)} | ${f(mid, 2)} | ${f(hi, 2)} | ${target} | ${f(best, 2)} |`);
  }
  if (scaling.length) {
    lines.push(
      "",
      "Scaling, ours against PyTorch preloaded (medians over the rounds; ratio min / median / max):",
      "",
      "| Workload | PyTorch steps/s | ours steps/s | PyTorch ms/step | ours ms/step | ours images/s | ours / PyTorch " +
        "| p10 step ratio |",
      "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    );
    for (const [name, t, o] of scaling) {
      const [lo, mid, hi, best] = ratios(o.key, t.key);
      lines.push(
        `| ${name} | ${f(med(t.key, "steps_per_s"))} | ${f(med(o.key, "steps_per_s"))} | ${
          f(med(t.key, "ms_per_step_median"), 2)
        } | ${f(med(o.key, "ms_per_step_median"), 2)} | ${f(med(o.key, "steps_per_s") * o.batch, 0)} | ${f(lo, 2)} / ${
          f(mid, 2)
        } / ${f(hi, 2)} | ${f(best, 2)} |`,
      );
    }
  }
}
const torchVersion =
  [...main, ...family.map(([, t]) => t)].map((c) => ok(c.key)[0]?.torch).find((v) => v !== undefined) ?? "?";
const kept = [...results.values()].flat().filter((x): x is Result => x !== null);
const loads = kept.map((x) => x.loadavg ?? NaN);
const other = kept.map((x) => x.other_cores ?? NaN).filter(Number.isFinite);
const retried = kept.filter((x) => (x.attempt ?? 0) > 0).length;
lines.push(
  "",
  `${done} rounds in ${minutes.toFixed(1)} min. Other processes on the machine used min ${f(Math.min(...other), 2)}, ` +
    `median ${f(median(other), 2)}, max ${f(Math.max(...other), 2)} cores during the kept measurements ` +
    `(${retried} kept from a retry; a measurement is retried when others used more than ${opt["max-other"]} cores); ` +
    `1-minute load average before them: median ${f(median(loads), 2)}. ` +
    `"p10 step ratio": PyTorch's 10th-percentile step time over ours (full batches), median over the rounds. ` +
    `PyTorch ${torchVersion}` + (opt["omp-passive"] ? ", OMP_WAIT_POLICY=PASSIVE." : "."),
);
console.log(lines.join("\n"));

/** The family table: per model, PyTorch and ours steps/s, ms/step, ratio per round, peak RSS. */
function familyTables(): void {
  lines.push(
    `Batch 64, ${threads} threads, CPU, ${count.toLocaleString("en-US")} images (epoch = ${
      Math.ceil(count / 64)
    } steps), ${done} rounds; each cell is the median over the rounds; ours / PyTorch is steps/s, min / median / max ` +
      `over the rounds (each ratio within one round).`,
    "",
    "| model | PyTorch steps/s | ours steps/s | ours / PyTorch | PyTorch ms/step (median) | ours ms/step (median) " +
      "| PyTorch peak RSS (MB) | ours peak RSS (MB) |",
    "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const [m, t, o] of family) {
    const [lo, mid, hi] = ratios(o.key, t.key);
    lines.push(
      `| ${m} | ${f(med(t.key, "steps_per_s"))} | ${f(med(o.key, "steps_per_s"))} | ${f(lo, 2)} / ${f(mid, 2)} / ${
        f(hi, 2)
      } | ${f(med(t.key, "ms_per_step_median"), 2)} | ${f(med(o.key, "ms_per_step_median"), 2)} | ${
        f(med(t.key, "peak_rss_mb"), 0)
      } | ${f(med(o.key, "peak_rss_mb"), 0)} |`,
    );
  }
}

if (opt.jsonl && familyMode) {
  const date = new Date().toISOString();
  const rows = family.map(([m, t, o]) => {
    const [lo, mid, hi] = ratios(o.key, t.key);
    const side = (c: Config) => ({
      rounds: ok(c.key).length,
      steps_per_s: med(c.key, "steps_per_s"),
      ms_per_step_median: med(c.key, "ms_per_step_median"),
      ms_per_step_p10: med(c.key, "ms_per_step_p10"),
      peak_rss_mb: med(c.key, "peak_rss_mb"),
      steps: ok(c.key)[0]?.steps,
      loadavg: ok(c.key).map((x) => x.loadavg),
      other_cores: ok(c.key).map((x) => x.other_cores),
    });
    return {
      kind: "family_speed",
      date,
      model: m,
      batch_size: 64,
      threads,
      omp_passive: opt["omp-passive"],
      pytorch: side(t),
      ours: side(o),
      ratio_min: lo,
      ratio_median: mid,
      ratio_max: hi,
      torch: ok(t.key)[0]?.torch,
    };
  });
  await Deno.writeTextFile(opt.jsonl, rows.map((r) => JSON.stringify(r)).join("\n") + "\n", { append: true });
}

if (opt.json) {
  const raw = [...results.entries()].flatMap(([key, rs]) => rs.map((r) => ({ key, ...r })));
  await Deno.writeTextFile(opt.json, JSON.stringify(raw, null, 2) + "\n");
}
const failed = [...results.values()].flat().filter((x) => x === null).length;
if (failed) {
  console.error(`${failed} measurement(s) failed`);
  Deno.exit(1);
}
