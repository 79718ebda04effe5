// The full seed GAN step (G 100-128-256-512-1024-784 with BN, D 784-512-256-1) at batch 64 on a native backend:
// ms/step and GFLOP/s, counting 1.19 GFLOP per step as the design notes do (G forward+backward, D three times), and
// the last call's GPU cost from the GAN's info (dispatches and barriers per step, CPU us recording them and us in
// the queue submits per step, submissions per call; all 0 on the CPU backend).
//
//   deno task bench:step [--backend cpu] [--threads N] [--batch 64] [--steps 300] [--per-call 1] [--json]
//
// --json prints one JSON line instead (ms/step median, p10 and min, and the last step's losses at full precision),
// for bench/ab.ts.

import { parseArgs } from "node:util";
import { Context, NativeGan, NativeMlp } from "../src/native/handles.ts";
import { initParams } from "../tests/reference/reference.ts";
import { seedDiscriminator, seedGenerator } from "../src/model/spec.ts";
import { mulberry32 } from "../tests/check.ts";

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "cpu" },
    threads: { type: "string", default: "0" },
    batch: { type: "string", default: "64" },
    steps: { type: "string", default: "300" },
    "per-call": { type: "string", default: "1" },
    json: { type: "boolean", default: false },
  },
});
const batch = Number(values.batch), steps = Number(values.steps), perCall = Number(values["per-call"]);

using ctx = new Context({ backend: values.backend as "cpu", threads: Number(values.threads) });
using g = new NativeMlp(ctx, seedGenerator());
using d = new NativeMlp(ctx, seedDiscriminator());
const rand = mulberry32(1);
g.set("params", Float32Array.from(initParams(g.spec, rand)));
d.set("params", Float32Array.from(initParams(d.spec, rand)));
using gan = new NativeGan(ctx, g, d, { batch_size: batch, seed: 1, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 });
const count = 10000;
gan.setData(new Uint8Array(count * 784).map(() => Math.floor(rand() * 256)), count);

const gflopPerStep = 1.19 * batch / 64;
const out = new Float32Array(4 * perCall);
// warm-up: workspaces, caches, thread pool, pipelines (about 20 steps, at least one call)
for (let i = 0; i < Math.max(1, Math.ceil(20 / perCall)); i++) gan.stepRaw(perCall, out);
const samples: number[] = [];
for (let done = 0; done < steps; done += perCall) {
  const t0 = performance.now();
  gan.stepRaw(perCall, out);
  samples.push((performance.now() - t0) / perCall);
}
samples.sort((a, b) => a - b);
const median = samples[Math.floor(samples.length / 2)];
const min = samples[0];
// The 10th percentile: on a shared machine the other tenants' load comes in phases of seconds, which move the
// median by up to 2x between runs; the fast tenth of the steps is the figure to compare builds by.
const p10 = samples[Math.floor(samples.length / 10)];
const info = ctx.info();
if (values.json) {
  // The losses are float32 values: a JSON number round-trips their bits exactly.
  const losses = { d: out[0], g: out[1] };
  console.log(JSON.stringify({ backend: info.backend, threads: info.threads, batch, median, p10, min, losses }));
} else {
  const where = info.adapter
    ? `${info.adapter.name} (${info.adapter.api}${info.adapter.software ? ", software" : ""})`
    : `${info.threads} threads, ${info.simd.join("/")}`;
  console.log(`backend ${info.backend} on ${where}, batch ${batch}, ${perCall} step(s) per call`);
  const cost = gan.info(); // the last call's
  console.log(
    `dispatches per step: ${cost.dispatches_per_step} | barriers per step: ${cost.barriers_per_step.toFixed(2)} | ` +
      `workgroups per step: ${cost.workgroups_per_step?.toFixed(0) ?? "-"} | ` + // "-": a library from before the field
      `record us/step: ${cost.record_us_per_step.toFixed(1)} | submit us/step: ${
        cost.submit_us_per_step.toFixed(1)
      } | ` +
      `submissions per call: ${cost.submissions}`,
  );
  console.log(
    `ms/step: median ${median.toFixed(3)}, p10 ${p10.toFixed(3)}, min ${min.toFixed(3)} | GFLOP/s: median ${
      (gflopPerStep / median * 1e3).toFixed(1)
    }, best ${(gflopPerStep / min * 1e3).toFixed(1)} | last losses D ${out[0].toFixed(4)} G ${out[1].toFixed(4)}`,
  );
}
