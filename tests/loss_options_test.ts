// The loss options where a user meets them: `GanTrainer({ loss })` / `train --loss` trains with a D that ends in a
// linear layer, records the loss in its checkpoints, and a resume with another loss is refused with one clear line.

import assert from "node:assert/strict";
import { GanTrainer } from "../src/train/trainer.ts";
import { GAN_LOSSES } from "../src/model/spec.ts";
import { parseTrainFlags } from "../src/cli/flags.ts";
import { readCheckpoint } from "../src/train/checkpoint.ts";
import { smallRunOptions, syntheticImages } from "./small_gan.ts";

Deno.test("GanTrainer: every loss trains (finite losses), and the checkpoint records it", async () => {
  const data = syntheticImages(96);
  for (const loss of GAN_LOSSES) {
    const out = await Deno.makeTempDir();
    const { generator } = smallRunOptions();
    // The default D of the run follows the loss: its own spec here, as smallRunOptions gives one ending in a sigmoid.
    const discriminator = {
      input: 64,
      layers: [
        { out: 32, bn: null, act: { kind: "leaky_relu" as const, slope: 0.2 } },
        { out: 1, bn: null, act: loss === "bce" ? { kind: "sigmoid" as const } : { kind: "none" as const } },
      ],
    };
    using t = await GanTrainer.create(data, {
      ...smallRunOptions({ generator, discriminator }),
      loss,
      maxSteps: 12,
      outDir: out,
      checkpointEvery: 0,
    });
    const losses: number[] = [];
    await t.run({ onStep: (e) => void losses.push(e.dLoss, e.gLoss) });
    assert.equal(losses.length, 24);
    assert.ok(losses.every(Number.isFinite), `${loss}: ${losses}`);
    const { info } = await readCheckpoint(`${out}/checkpoints/latest.safetensors`);
    assert.equal(info.config.loss, loss);
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("GanTrainer: the default D follows the loss; a D that does not suit it, a bad loss and another loss on resume are refused", async () => {
  const data = { name: "d", count: 40, height: 28, width: 28, channels: 1, pixels: new Uint8Array(40 * 784) };
  {
    using t = await GanTrainer.create(data, { backend: "cpu", loss: "hinge", maxSteps: 1 });
    assert.equal(t.options.discriminator.layers.at(-1)!.act.kind, "none");
  }
  await assert.rejects(
    GanTrainer.create(data, { backend: "cpu", loss: "wasserstein" as "bce" }),
    /loss must be one of bce, mse, hinge, relativistic, relativistic_avg, got "wasserstein"/,
  );
  const sigmoidD = smallRunOptions().discriminator!;
  await assert.rejects(
    GanTrainer.create(syntheticImages(40), smallRunOptions({ loss: "mse", discriminator: sigmoidD })),
    /must end in a linear layer \(activation none\) for the mse loss/,
  );
  const out = await Deno.makeTempDir();
  const small = syntheticImages(48);
  {
    using t = await GanTrainer.create(small, smallRunOptions({ maxSteps: 4, outDir: out, checkpointEvery: 4 }));
    await t.run();
  }
  const linearD = {
    ...sigmoidD,
    layers: sigmoidD.layers.map((l, i, a) => i === a.length - 1 ? { ...l, act: { kind: "none" as const } } : l),
  };
  await assert.rejects(
    GanTrainer.create(
      small,
      smallRunOptions({ loss: "hinge", discriminator: linearD, resume: `${out}/checkpoints/latest.safetensors` }),
    ),
    /Cannot resume from ".*": it was trained with loss = "bce", this run has "hinge"/,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("train --loss: parsed and checked", () => {
  assert.equal(parseTrainFlags([]).loss, "bce");
  assert.equal(parseTrainFlags(["--loss", "relativistic_avg"]).loss, "relativistic_avg");
  assert.throws(
    () => parseTrainFlags(["--loss", "l1"]),
    /--loss must be one of bce, mse, hinge, relativistic, relativistic_avg, got "l1"/,
  );
});
