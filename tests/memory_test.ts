// Sizes that cannot fit are refused before anything is allocated, with the estimate in the message: a run whose
// networks, batch and data need more than the limit (80% of the machine's memory by default), `sample(n)` for a huge
// n, and `--steps_per_call 1e12` (which used to end in an uncaught RangeError). Before these checks,
// `--img_size 1024` and `--latent_dim 1048576` passed 3 GB of RSS and `trainer.sample(4194304)` likewise.

import assert from "node:assert/strict";
import { GanTrainer } from "../src/train/trainer.ts";
import { estimateRunBytes, memoryLimit } from "../src/train/memory.ts";
import { seedDiscriminator, seedGenerator } from "../src/model/spec.ts";
import { smallGan, syntheticImages } from "./small_gan.ts";

const GIB = 2 ** 30;
const SMALL = { backend: "cpu" as const, imgSize: 8, latentDim: 8, batchSize: 8, ...smallGan(8, 16, 16) };

function rssGrowth<T>(f: () => T): { value: T; grew: number } {
  const before = Deno.memoryUsage().rss;
  const value = f();
  return { value, grew: Deno.memoryUsage().rss - before };
}

Deno.test("memory: the estimate of the seed's run is sane, and img_size 1024 exceeds any 24 GiB machine", () => {
  const seed = estimateRunBytes(seedGenerator(), seedDiscriminator(), 64, { count: 10000, features: 784 });
  assert.ok(seed > 32e6 && seed < 512e6, `seed run estimated at ${seed} bytes`);
  const big = estimateRunBytes(seedGenerator(100, 1024), seedDiscriminator(1024), 64, {
    count: 10000,
    features: 1 << 20,
  });
  assert.ok(big > 24 * GIB, `img_size 1024 estimated at ${(big / GIB).toFixed(1)} GiB`);
  const wide = estimateRunBytes(seedGenerator(1 << 20), seedDiscriminator(), 64, { count: 10000, features: 784 });
  assert.ok(wide > 4 * GIB, `latent_dim 2^20 estimated at ${(wide / GIB).toFixed(1)} GiB`);
  assert.ok(memoryLimit().bytes > 0);
});

Deno.test("memory: a run above the limit is refused before the library allocates, naming the estimate", async () => {
  // latent_dim 2^20: 134 M generator parameters (2 GiB of native buffers) if it were built.
  const data = syntheticImages(64);
  const spec = { ...SMALL, latentDim: 1 << 20, ...smallGan(1 << 20, 128, 16) };
  const { grew } = await (async () => {
    const before = Deno.memoryUsage().rss;
    await assert.rejects(
      GanTrainer.create(data, { ...spec, memoryLimit: GIB }),
      /this run \(64 images of 64 values, batch 8\) needs about \d+\.\d GiB of memory, more than the limit of 1\.0 GiB \(the memoryLimit option\)/,
    );
    return { grew: Deno.memoryUsage().rss - before };
  })();
  assert.ok(grew < 256 * 2 ** 20, `RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB before the refusal`);
});

Deno.test("memory: sample(n) for a huge n is refused before allocating; a small n works", async () => {
  using t = await GanTrainer.create(syntheticImages(64), SMALL);
  const { grew } = rssGrowth(() =>
    assert.throws(() => t.sample(4194304 * 64), /sample\(268435456\) needs about \d+\.\d GiB of memory, more than/)
  );
  assert.ok(grew < 64 * 2 ** 20, `RSS grew by ${(grew / 2 ** 20).toFixed(0)} MiB`);
  assert.throws(() => t.sample(0), /n must be a positive integer/);
  assert.equal(t.sample(3).length, 3 * 64);
});

Deno.test("memory: steps per call are bounded (--steps_per_call 1e12 is a usage error, not a RangeError crash)", async () => {
  await assert.rejects(
    GanTrainer.create(syntheticImages(64), { ...SMALL, stepsPerCall: 1e12 }),
    /stepsPerCall must be an integer in \[1, 65536\], got 1000000000000/,
  );
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "src/cli/train.ts", "--steps_per_call", "1e12"],
    cwd: new URL("../", import.meta.url),
    stderr: "piped",
  }).output();
  assert.equal(out.code, 2);
  assert.match(
    new TextDecoder().decode(out.stderr),
    /^error: --steps_per_call must be at most 65536, got 1000000000000/m,
  );
});
