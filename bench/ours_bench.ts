// One measurement of our trainer's step, for bench/compare.ts (one process per measurement, so that each has its own
// peak RSS): the seed GAN (or its generator made wider) on a native backend, the dataset read from the same IDX files
// as the PyTorch reference (bench/.data, written by bench/write_idx.ts) and uploaded once, `--per_call` steps per FFI
// call, warm-up steps excluded. Prints one JSON line with --json, a short summary otherwise.
//
//   deno run --allow-all bench/ours_bench.ts \
//     [--backend cpu|gpu] [--threads 2] [--batch_size 64] [--steps 300] [--warmup 20] [--per_call 1] \
//     [--width_mult 1] [--idx_dir bench/.data] [--model gan] [--loss bce] [--json]
//
// --model picks one of the library's models (gan, bgan, softmax_gan, wgan, wgan_gp, wgan_div, cgan, aae) with upstream's
// defaults (wgan: RMSprop lr 5e-5, n_critic 5, clip 0.01; wgan_gp: Adam 2e-4, lambda 10, n_critic 5; wgan_div: Adam
// 2e-4, k 2, p 6, n_critic 5; the others Adam 2e-4); D ends in a sigmoid for gan (loss bce) and bgan, else in a linear
// layer. One step is one batch of upstream's loop: the Wasserstein models update G at every n_critic-th batch of an
// epoch. cgan is the trainer's (`resolveTrainOptions({ model: "cgan" })`: its networks with the label embeddings and
// D's dropout, its GanConfig), on the digits resized to its 32x32 (`resizeBilinear`, as the trainer's CLI does) with
// their labels uploaded beside them (`setLabels`); --loss does not apply to it. aae is the trainer's too
// (`resolveTrainOptions({ model: "aae" })`: the decoder as the generator, D on the latent code, the encoder as a third
// network inited on stream 2 and given to NativeGan, latent 10), on the digits resized to its 32x32; every step trains
// all three (the eps and the prior z drawn by the library).
//
// --allow-all lets it read its true peak RSS (VmHWM); with --allow-read --allow-ffi --allow-env --allow-run it reports
// the largest sampled RSS instead (see peakRss).
//
// Timing: each FFI call (per_call steps) is one sample; ms/step median and p10 are over the samples made of full batches
// only (per_call divides each sample), steps/s is all timed steps (short last batches included) over their wall time. Each call returns the per-step losses, so on the gpu backend
// every call ends with a read-back (a sync): use --per_call 10 or more there, as PyTorch's cuda run samples every 10.

import { parseArgs } from "node:util";
import { Context, type GanConfig, NativeGan, NativeMlp } from "../src/native/handles.ts";
import { loadIdxDataset, resizeBilinear } from "../src/data/dataset.ts";
import { type GanLoss, type MlpSpec, seedDiscriminator, seedGenerator } from "../src/model/spec.ts";
import { nativeGanConfig, resolveTrainOptions } from "../src/train/trainer.ts";

/** The seed generator with every hidden width multiplied by `mult` (the output layer keeps its size). */
export function widerGenerator(mult: number): MlpSpec {
  const g = seedGenerator();
  return { ...g, layers: g.layers.map((l, i) => (i < g.layers.length - 1 ? { ...l, out: l.out * mult } : l)) };
}

let sampledRss = 0;
/** Records the current resident set size (the fallback when the true peak cannot be read). */
function sampleRss(): void {
  sampledRss = Math.max(sampledRss, Deno.memoryUsage().rss);
}

/**
 * The peak resident set size of this process in MiB and where it came from: Linux's `VmHWM` (Deno reads /proc/self only
 * with --allow-all), else the largest `Deno.memoryUsage().rss` sampled after loading, uploading, warming up and
 * timing (a lower bound of the peak).
 */
export function peakRss(): { mb: number; source: "VmHWM" | "sampled rss" } {
  sampleRss();
  try {
    const m = /^VmHWM:\s+(\d+)\s+kB/m.exec(Deno.readTextFileSync("/proc/self/status"));
    if (m) return { mb: Number(m[1]) / 1024, source: "VmHWM" };
  } catch {
    // not Linux, or no --allow-all
  }
  return { mb: sampledRss / 2 ** 20, source: "sampled rss" };
}

const int = (v: string | undefined, name: string): number => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return n;
};

/** CPU time (user + system) of this process so far in seconds, from /proc/self/stat (needs --allow-all), or null. */
export function cpuSeconds(): number | null {
  try {
    const stat = Deno.readTextFileSync("/proc/self/stat");
    const f = stat.slice(stat.lastIndexOf(")") + 2).split(" "); // fields from 3 (state) on
    return (Number(f[11]) + Number(f[12])) / 100; // utime, stime in USER_HZ (100 on Linux)
  } catch {
    return null;
  }
}

/** Busy CPU seconds of the whole machine so far (/proc/stat: all but idle and iowait; needs --allow-all), or null. */
export function machineBusySeconds(): number | null {
  try {
    const f = Deno.readTextFileSync("/proc/stat").split("\n")[0].trim().split(/\s+/).slice(1).map(Number);
    return (f[0] + f[1] + f[2] + f[5] + f[6] + (f[7] ?? 0)) / 100;
  } catch {
    return null;
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: {
      backend: { type: "string", default: "cpu" },
      threads: { type: "string", default: "2" },
      batch_size: { type: "string", default: "64" },
      steps: { type: "string", default: "300" },
      warmup: { type: "string", default: "20" },
      per_call: { type: "string", default: "1" },
      width_mult: { type: "string", default: "1" },
      idx_dir: { type: "string", default: "bench/.data" },
      seed: { type: "string", default: "1" },
      model: { type: "string", default: "gan" },
      loss: { type: "string", default: "bce" },
      json: { type: "boolean", default: false },
    },
  });
  const perCall = Math.max(1, int(values.per_call, "per_call"));
  const batch = int(values.batch_size, "batch_size");
  const steps = Math.ceil(int(values.steps, "steps") / perCall) * perCall; // whole calls
  const warmup = Math.ceil(int(values.warmup, "warmup") / perCall) * perCall; // whole calls
  const mult = Math.max(1, int(values.width_mult, "width_mult")), seed = int(values.seed, "seed");

  const model = values.model!, loss = values.loss as GanLoss;
  const conditional = model === "cgan";
  const trainers = model === "cgan" || model === "aae"; // the trainer's resolved networks and config
  if (trainers && mult !== 1) throw new Error(`--width_mult applies to the seed's generator, not to ${model}`);
  if (trainers && loss !== "bce") throw new Error(`--loss does not apply to ${model} (its loss is upstream's)`);
  // cgan: the trainer's resolved networks and step settings (upstream's defaults: img 32, 10 classes, mse, dropout);
  // aae: likewise (latent 10, img 32, the decoder as G, D on the code, the encoder)
  const cgan = trainers ? resolveTrainOptions({ model: model as "cgan" | "aae", batchSize: batch, seed }) : null;
  let ds = await loadIdxDataset(values.idx_dir!, "mnist");
  if (cgan && ds.height !== cgan.imgSize) ds = resizeBilinear(ds, cgan.imgSize);
  sampleRss();
  using ctx = new Context({ backend: values.backend as "cpu" | "gpu", threads: int(values.threads, "threads") });
  const sigmoid = (model === "gan" && loss === "bce") || model === "bgan";
  const gSpec = cgan ? cgan.generator : mult === 1 ? seedGenerator() : widerGenerator(mult);
  const dSpec = cgan
    ? cgan.discriminator
    : sigmoid
    ? seedDiscriminator()
    : seedDiscriminator(28, 1, loss === "bce" ? "mse" : loss);
  using g = new NativeMlp(ctx, gSpec);
  using d = new NativeMlp(ctx, dSpec);
  using e = cgan?.encoder ? new NativeMlp(ctx, cgan.encoder) : undefined;
  g.init(seed, 0);
  d.init(seed, 1);
  e?.init(seed, 2);
  const config: GanConfig = cgan ? nativeGanConfig(cgan) : {
    batch_size: batch,
    seed,
    lr: model === "wgan" ? 5e-5 : 2e-4, // upstream's defaults; the rest (n_critic, clip, lambda, k, p) the library's
    b1: 0.5,
    b2: 0.999,
    eps: 1e-8,
    ...(model === "gan" ? { loss } : { model }),
  };
  using gan = new NativeGan(ctx, g, d, config, e);
  gan.setData(new Uint8Array(ds.pixels), ds.count);
  if (conditional) gan.setLabels(Uint32Array.from(ds.labels!)); // after setData, which forgets them
  sampleRss();

  const out = new Float32Array(4 * perCall);
  for (let done = 0; done < warmup; done += perCall) gan.stepRaw(perCall, out);
  sampleRss();
  // Per-step statistics over full batches only: the short last batch of each epoch (10000 % 64 = 16 rows) is timed in
  // steps/s but would otherwise be the "fastest step". Step s of the run is batch s % batchesPerEpoch of its epoch.
  const batchesPerEpoch = Math.ceil(ds.count / batch);
  const fullBatch = (s: number) => ds.count - (s % batchesPerEpoch) * batch >= batch;
  const samples: number[] = [];
  let timed = 0;
  const busy0 = machineBusySeconds(), cpu0 = cpuSeconds();
  const tStart = performance.now();
  while (timed < steps) {
    const first = warmup + timed;
    let full = true;
    for (let s = first; s < first + perCall; s++) full &&= fullBatch(s);
    const t0 = performance.now();
    gan.stepRaw(perCall, out);
    const ms = (performance.now() - t0) / perCall;
    if (full) samples.push(ms);
    timed += perCall;
  }
  const elapsed = (performance.now() - tStart) / 1e3;
  const busy1 = machineBusySeconds(), cpu1 = cpuSeconds();
  // CPU that other processes used during the timed steps, in cores (a shared machine's noise)
  const otherCores = busy0 === null || busy1 === null || cpu0 === null || cpu1 === null
    ? null
    : Math.max(0, (busy1 - busy0 - (cpu1 - cpu0)) / elapsed);
  samples.sort((a, b) => a - b);
  if (samples.length === 0) throw new Error("no full-batch step was timed: raise --steps");
  const info = ctx.info();
  const stepsPerS = steps / elapsed;
  const rss = peakRss();
  const result = {
    impl: "ours",
    mode: "native",
    model,
    loss: model === "gan" ? loss : conditional ? "mse" : undefined,
    img_size: ds.height,
    latent_dim: g.spec.input,
    device: info.backend,
    device_name: info.adapter?.name ?? `cpu (${info.simd.join("/")})`,
    library: info.library.path,
    version: info.version,
    threads: info.threads,
    batch_size: batch,
    width_mult: mult,
    dataset_count: ds.count,
    batches_per_epoch: batchesPerEpoch,
    warmup,
    steps,
    chunk: perCall,
    steps_per_s: stepsPerS,
    ms_per_step_median: samples.length % 2
      ? samples[(samples.length - 1) / 2]
      : (samples[samples.length / 2 - 1] + samples[samples.length / 2]) / 2,
    ms_per_step_p10: samples[Math.max(0, Math.ceil(0.1 * samples.length) - 1)],
    ms_per_step_min: samples[0],
    ms_per_step_mean: elapsed * 1e3 / steps,
    epoch_s: batchesPerEpoch / stepsPerS,
    peak_rss_mb: rss.mb,
    rss_source: rss.source,
    cpu_s: cpuSeconds(),
    other_cores: otherCores,
    d_loss: out[4 * (perCall - 1)],
    g_loss: out[4 * (perCall - 1) + 1],
  };
  if (values.json) {
    console.log(JSON.stringify(result));
  } else {
    console.log(
      `ours ${result.device} (${result.device_name}, ${result.threads} threads), batch ${batch}, width x${mult}: ` +
        `${stepsPerS.toFixed(1)} steps/s, median ${result.ms_per_step_median.toFixed(3)} ms/step, epoch of ` +
        `${ds.count} images ${result.epoch_s.toFixed(2)} s, peak RSS ${rss.mb.toFixed(0)} MB (${rss.source}), ` +
        `last losses D ${result.d_loss.toFixed(4)} G ${result.g_loss.toFixed(4)}`,
    );
  }
}
