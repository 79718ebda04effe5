// A training process for the crash tests: a small GAN on synthetic 8x8 images, a checkpoint every 3 steps,
// resuming from the latest checkpoint when there is one. Usage: crash_worker.ts OUT_DIR TOTAL_STEPS SLEEP_MS

import { GanTrainer } from "../../src/train/trainer.ts";
import { smallRunOptions, syntheticImages } from "../small_gan.ts";

const [out, total, sleep] = [Deno.args[0], Number(Deno.args[1]), Number(Deno.args[2] ?? 0)];
const data = syntheticImages(96);
const latest = `${out}/checkpoints/latest.safetensors`;
let resume: string | undefined;
try {
  Deno.statSync(latest);
  resume = latest;
} catch { /* a fresh start */ }
using t = await GanTrainer.create(
  data,
  smallRunOptions({
    nEpochs: 1000,
    maxSteps: total,
    sampleInterval: 1_000_000,
    checkpointEvery: 3,
    stepsPerCall: 1,
    outDir: out,
    resume,
  }),
);
// Slowed down (when asked) so that kills land at many different moments, including inside checkpoint writes; the
// pause changes nothing in the arithmetic.
await t.run({ onStep: sleep > 0 ? () => new Promise((r) => setTimeout(r, sleep)) : undefined });
console.log(JSON.stringify({ step: t.step, params: Array.from(t.g.get("params")) }));
