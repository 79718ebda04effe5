// Two or more builds of the native library side by side: per round, one process of bench/step_bench.ts per library
// (GAN_NATIVE_LIB), in turn, so that the shared machine's phases of seconds fall on every library alike; then each
// round's p10 and median ms/step, the ratios to the first library (above 1: faster than the first), and whether the
// last step's losses agree bit for bit (builds that only move work around must not change a bit).
//
//   deno task bench:ab --lib old.so --lib new.so [--threads 1,2] [--batch 64] [--steps 300] [--rounds 3]
//                      [--backend cpu|gpu] [--per-call 1]
//
// `--backend gpu` compares the GPU step (with `--per-call` steps per call, so per submission group; `--threads` is
// then the CPU threads of the library, which the GPU step does not use).
//
// Copy the libraries out of native/target first (a rebuild overwrites them). The figure to compare builds by is the
// per-round p10 ratio: medians move with the other tenants' load (bench/RESULTS.md, "Noise").

import { parseArgs } from "node:util";

const USAGE =
  "usage: deno task bench:ab --lib A.so --lib B.so [--threads 1,2] [--batch 64] [--steps 300] [--rounds 3] " +
  "[--backend cpu|gpu] [--per-call 1]";

/** One process's figures, as `bench/step_bench.ts --json` prints them. */
interface Run {
  median: number;
  p10: number;
  losses: { d: number; g: number };
}

/** The parsed command line, or the usage error. */
function parse(args: string[]) {
  const { values } = parseArgs({
    args,
    options: {
      lib: { type: "string", multiple: true, default: [] },
      threads: { type: "string", default: "2" },
      batch: { type: "string", default: "64" },
      steps: { type: "string", default: "300" },
      rounds: { type: "string", default: "3" },
      backend: { type: "string", default: "cpu" },
      "per-call": { type: "string", default: "1" },
    },
  });
  const count = (name: string, v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new Error(`--${name} must be a positive integer, not ${v}`);
    return n;
  };
  if (values.lib.length < 2) throw new Error(`give at least two libraries (--lib), not ${values.lib.length}`);
  if (values.backend !== "cpu" && values.backend !== "gpu") {
    throw new Error(`--backend must be cpu or gpu, not ${values.backend}`);
  }
  return {
    libs: values.lib,
    threads: values.threads.split(",").map((t) => count("threads", t)),
    run: {
      backend: values.backend,
      batch: count("batch", values.batch),
      steps: count("steps", values.steps),
      perCall: count("per-call", values["per-call"]),
    },
    rounds: count("rounds", values.rounds),
  };
}

/** What every process of a comparison runs: the backend, the batch, the steps and the steps per call. */
interface Bench {
  backend: string;
  batch: number;
  steps: number;
  perCall: number;
}

/** One step benchmark of `lib` in a process of its own. */
async function measure(lib: string, threads: number, b: Bench): Promise<Run> {
  const script = new URL("./step_bench.ts", import.meta.url).pathname;
  const args = ["run", "--allow-read", "--allow-ffi", "--allow-env", script, "--json"];
  args.push(`--threads=${threads}`, `--batch=${b.batch}`, `--steps=${b.steps}`);
  args.push(`--backend=${b.backend}`, `--per-call=${b.perCall}`);
  const env = { GAN_NATIVE_LIB: lib, NODEVICE_SELECT: "1" };
  const out = await new Deno.Command(Deno.execPath(), { args, env, stdout: "piped", stderr: "piped" }).output();
  const text = new TextDecoder().decode(out.stdout).trim();
  if (!out.success) {
    const why = new TextDecoder().decode(out.stderr).trim().split("\n").at(-1);
    throw new Error(`${lib}: the step benchmark failed: ${why}`);
  }
  return JSON.parse(text.split("\n").at(-1)!) as Run;
}

const name = (lib: string) => lib.split("/").at(-1)!;

/** The rounds for one thread count, as a markdown table, and the line about the losses. */
async function compare(libs: string[], threads: number, b: Bench, rounds: number) {
  const rows: string[] = [];
  const losses = new Map<string, string>(); // what each run ended with -> the libraries that ended so
  for (let r = 1; r <= rounds; r++) {
    const runs: Run[] = [];
    for (const lib of libs) runs.push(await measure(lib, threads, b));
    runs.forEach((x, i) => {
      const key = `D ${x.losses.d}, G ${x.losses.g}`;
      const seen = losses.get(key);
      if (!seen?.split(", ").includes(name(libs[i]))) {
        losses.set(key, seen ? `${seen}, ${name(libs[i])}` : name(libs[i]));
      }
    });
    const cells = runs.map((x) => `${x.p10.toFixed(2)} / ${x.median.toFixed(2)}`);
    const ratios = runs.slice(1).map((x) => (runs[0].p10 / x.p10).toFixed(3));
    rows.push(`| ${r} | ${cells.join(" | ")} | ${ratios.join(" | ")} |`);
  }
  const others = libs.slice(1).map((l) => `${name(libs[0])} / ${name(l)}`);
  const head = `| round | ${libs.map((l) => `${name(l)} p10 / median`).join(" | ")} | ${others.join(" | ")} |`;
  const rule = `| ${["---", ...libs.map(() => "---:"), ...others.map(() => "---:")].join(" | ")} |`;
  const same = losses.size === 1
    ? `losses: the same bits in every run (${[...losses.keys()][0]})`
    : `losses differ: ${[...losses].map(([l, who]) => `${who}: ${l}`).join("; ")}`;
  const title = `${b.backend}, ${threads} thread(s), batch ${b.batch}, ${b.steps} steps (${b.perCall} per call), ` +
    "ms/step; ratios: the first library's p10 over each one's (above 1: faster than the first):";
  return [title, "", head, rule, ...rows, "", same].join("\n");
}

/** Runs the comparison; returns the exit code (2 for a usage error). */
export async function main(args: string[]): Promise<number> {
  let opt;
  try {
    opt = parse(args);
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  for (const lib of opt.libs) {
    if (!(await Deno.stat(lib).catch(() => null))?.isFile) {
      console.error(`error: no library at ${lib}`);
      return 1;
    }
  }
  try {
    for (const t of opt.threads) console.log(await compare(opt.libs, t, opt.run, opt.rounds) + "\n");
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
  return 0;
}

if (import.meta.main) Deno.exit(await main(Deno.args));
