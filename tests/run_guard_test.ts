// One run at a time per trainer: `Promise.all([t.run(), t.run()])` and a `run()` nested inside `onStep` used to run
// on together (step 59 and 51 of a 30-step run); now the second call is refused and the first ends where it should.

import assert from "node:assert/strict";
import { GanTrainer } from "../src/train/trainer.ts";
import { smallGan, syntheticImages } from "./small_gan.ts";

const OPTIONS = {
  backend: "cpu" as const,
  imgSize: 8,
  latentDim: 8,
  batchSize: 8,
  maxSteps: 30,
  ...smallGan(8, 16, 16),
};
const REFUSED = /a run is already in progress on this trainer/;

Deno.test("run guard: two concurrent run() calls: the second is refused, the first runs its 30 steps", async () => {
  using t = await GanTrainer.create(syntheticImages(64), OPTIONS);
  const [a, b] = await Promise.allSettled([t.run(), t.run()]);
  assert.equal(a.status, "fulfilled");
  assert.equal(b.status, "rejected");
  assert.match(String((b as PromiseRejectedResult).reason), REFUSED);
  assert.equal(t.step, 30);
  assert.equal((a as PromiseFulfilledResult<{ steps: number }>).value.steps, 30);
});

Deno.test("run guard: run() from inside onStep is refused; a later run() after the first ended is allowed", async () => {
  using t = await GanTrainer.create(syntheticImages(64), OPTIONS);
  let nested: unknown = null;
  await t.run({
    onStep: async (e) => {
      if (e.step === 5) nested = await t.run().catch((err) => err);
    },
  });
  assert.match(String(nested), REFUSED);
  assert.equal(t.step, 30);
  const again = await t.run(); // the run is over: nothing left to do, but it is not refused
  assert.equal(again.steps, 0);
});
