// The GPU cost of one training step of every model (issue 15): dispatches, barriers and workgroups per step, the CPU
// time spent recording them and inside the queue submits, from the GAN's info after a call of `--steps` steps, each
// model at its default size and `--batch` (random u8 pixels, labels for the conditional ones; a first call warms up).
//
//   deno run --allow-read --allow-ffi --allow-env bench/dispatch_count.ts [--backend gpu] [--batch 64] [--steps 4]

import { parseArgs } from "node:util";
import { GAN_MODELS, isConditional } from "../src/model/models.ts";
import { Context, NativeGan, NativeMlp } from "../src/native/handles.ts";
import { nativeGanConfig, resolveTrainOptions } from "../src/train/trainer.ts";

const { values } = parseArgs({
  options: {
    backend: { type: "string", default: "gpu" },
    batch: { type: "string", default: "64" },
    steps: { type: "string", default: "4" },
  },
});
const batchSize = Number(values.batch), steps = Number(values.steps);
using ctx = new Context({ backend: values.backend as "gpu" });
const info = ctx.info();
console.log(`backend ${info.backend} on ${info.adapter?.name ?? "cpu"}, batch ${batchSize}, ${steps} steps per call`);
console.log(
  "| model | path | dispatches/step | barriers/step | workgroups/step | record us/step | submit us/step | submissions |",
);
for (const model of GAN_MODELS) {
  const r = resolveTrainOptions({ model, batchSize, seed: 1 });
  using g = new NativeMlp(ctx, r.generator);
  using d = new NativeMlp(ctx, r.discriminator);
  using e = r.encoder ? new NativeMlp(ctx, r.encoder) : undefined;
  g.init(1, 0);
  d.init(1, 1);
  e?.init(1, 2);
  using gan = new NativeGan(ctx, g, d, nativeGanConfig(r), e);
  const features = r.imgSize * r.imgSize * r.channels, count = 4 * batchSize;
  let s = 12345;
  const rand = () => (s = (s * 1103515245 + 12345) >>> 0) >>> 24;
  gan.setData(new Uint8Array(count * features).map(rand), count);
  if (isConditional(model)) gan.setLabels(new Uint32Array(count).map(() => rand() % (r.nClasses ?? 10)));
  gan.stepRaw(1); // warm-up: pipelines, bind groups, workspaces
  gan.stepRaw(steps);
  const c = gan.info();
  const fused = model === "gan" && r.optimizer === "adam";
  console.log(
    `| ${model} | ${fused ? "fused" : "general"} | ${c.dispatches_per_step.toFixed(2)} | ${
      c.barriers_per_step.toFixed(2)
    } | ${c.workgroups_per_step?.toFixed(0) ?? "-"} | ${c.record_us_per_step.toFixed(0)} | ${
      c.submit_us_per_step.toFixed(0)
    } | ${c.submissions} |`,
  );
}
