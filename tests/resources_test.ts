// Resources: memory does not grow over a long run, and closing releases every native handle.

import assert from "node:assert/strict";
import { liveHandles, NativeMlp } from "../src/native/handles.ts";
import { BACKENDS } from "./backends.ts";
import { GanTrainer } from "../src/train/trainer.ts";
import { smallGan, syntheticImages } from "./small_gan.ts";

Deno.test("memory: the RSS of a 10,000-step run stays within 10% after warm-up; closing frees every handle", async () => {
  const handlesBefore = liveHandles();
  const data = syntheticImages(512);
  const rss: number[] = [];
  {
    using t = await GanTrainer.create(data, {
      backend: "cpu",
      threads: 1,
      imgSize: 8,
      latentDim: 8,
      batchSize: 32,
      nEpochs: 1000,
      maxSteps: 10_000,
      sampleInterval: 1000, // the sample path (reading the fake batch) runs too
      stepsPerCall: 50,
      ...smallGan(8, 32, 64),
    });
    assert.equal(liveHandles(), handlesBefore + 4);
    await t.run({
      onStep: (e) => {
        if (e.step % 500 === 499) rss.push(Deno.memoryUsage().rss);
      },
    });
  }
  assert.equal(liveHandles(), handlesBefore, "closing the trainer releases its 4 native handles");
  assert.equal(rss.length, 20, "one RSS sample every 500 steps");
  const after = rss.slice(2); // warm-up: the first 1,000 steps
  const lo = Math.min(...after), hi = Math.max(...after);
  console.log(
    `  RSS over steps 1,500..10,000: ${(lo / 2 ** 20).toFixed(1)}..${(hi / 2 ** 20).toFixed(1)} MiB ` +
      `(+${((hi / lo - 1) * 100).toFixed(1)}%)`,
  );
  assert.ok(hi <= lo * 1.1, `RSS grew from ${lo} to ${hi} bytes`);
});

Deno.test({
  name: "GPU buffers are released on close: 40 create/forward/close cycles of a 2 M-parameter MLP keep RSS flat",
  ignore: BACKENDS[1].ctx === null,
  fn: () => {
    const ctx = BACKENDS[1].ctx!;
    const spec = {
      input: 1024,
      layers: [{ out: 1024, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "tanh" as const } }, {
        out: 1024,
        bn: null,
        act: { kind: "none" as const },
      }],
    };
    const x = new Float32Array(4 * 1024).fill(0.5);
    const cycle = () => {
      using m = new NativeMlp(ctx, spec); // ~2.1 M parameters: 5 flat buffers of 8 MB, plus the work buffer
      m.forward(x, 4, true);
    };
    for (let i = 0; i < 5; i++) cycle(); // warm-up: pipelines, allocator pools
    const before = Deno.memoryUsage().rss;
    for (let i = 0; i < 40; i++) cycle();
    const grown = (Deno.memoryUsage().rss - before) / 2 ** 20;
    console.log(
      `  RSS after 40 more cycles: ${grown >= 0 ? "+" : ""}${
        grown.toFixed(1)
      } MiB (the same cycles without close add about 370 MiB here)`,
    );
    assert.ok(grown < 100, `RSS grew by ${grown.toFixed(1)} MiB`);
  },
});
