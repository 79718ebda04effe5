// Training end to end: flags, a short real run on the embedded digits, sample grids, checkpoints, exact resume.

import assert from "node:assert/strict";
import { parseTrainFlags, UsageError } from "../src/cli/flags.ts";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { decodePng } from "../src/io/png.ts";
import { readSafetensorsFile } from "../src/io/safetensors.ts";
import { GanTrainer, type StepEvent } from "../src/train/trainer.ts";
import { testOnBackends } from "./backends.ts";

const digits = await loadEmbeddedMnist();

Deno.test("flags: the seed's defaults, and every bad value is a UsageError naming the flag and the value", () => {
  const f = parseTrainFlags([]);
  assert.deepEqual(
    [f.n_epochs, f.batch_size, f.lr, f.b1, f.b2, f.n_cpu, f.latent_dim, f.img_size, f.channels, f.sample_interval],
    [50, 64, 0.0002, 0.5, 0.999, 8, 100, 28, 1, 400],
  );
  assert.equal(f.bn_eps, 0.8);
  assert.equal(parseTrainFlags(["--lr=1e-3", "--backend", "cpu"]).lr, 1e-3);
  const bad: [string[], RegExp][] = [
    [["--batch_size", "-3"], /--batch_size must be a positive integer, got "-3"/],
    [["--n_epochs", "0"], /--n_epochs must be a positive integer, got "0"/],
    [["--lr", "NaN"], /--lr must be a positive finite number, got "NaN"/],
    [["--latent_dim", "0"], /--latent_dim must be a positive integer, got "0"/],
    [["--b1", "1"], /--b1 must be a number in \[0, 1\), got "1"/],
    [["--channels", "3"], /--channels must be 1/],
    [["--img_size", "2.5"], /--img_size must be a positive integer, got "2.5"/],
    [["--backend", "tpu"], /--backend must be one of auto, cpu, gpu, got "tpu"/],
    [["--dataset", "idx"], /--dataset idx needs --data DIR/],
    [["--frobnicate", "1"], /Unknown option '--frobnicate'/],
  ];
  for (const [args, re] of bad) {
    assert.throws(
      () => parseTrainFlags(args),
      (e: unknown) => e instanceof UsageError && re.test(e.message),
      args.join(" "),
    );
  }
});

Deno.test("CLI: a bad flag exits with code 2 before any work; --help exits 0", async () => {
  const run = (args: string[]) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-ffi",
        "--allow-env",
        "--allow-run",
        "src/cli/train.ts",
        ...args,
      ],
      stdout: "piped",
      stderr: "piped",
    }).output();
  const bad = await run(["--batch_size", "-3"]);
  assert.equal(bad.code, 2);
  assert.match(new TextDecoder().decode(bad.stderr), /--batch_size must be a positive integer, got "-3"/);
  const help = await run(["--help"]);
  assert.equal(help.code, 0);
  assert.match(new TextDecoder().decode(help.stdout), /--sample_interval \(default 400\)/);
});

/** Mean and standard deviation of a batch of images in [-1, 1]. */
function stats(x: Float32Array) {
  let m = 0, s = 0;
  for (const v of x) m += v / x.length;
  for (const v of x) s += (v - m) ** 2 / x.length;
  return { mean: m, std: Math.sqrt(s) };
}

Deno.test("a real run on the embedded digits: losses move as a GAN's do, samples leave noise, grids and files land", async () => {
  const out = await Deno.makeTempDir();
  const events: StepEvent[] = [];
  const grids: string[] = [];
  using t = await GanTrainer.create(digits, {
    backend: "cpu",
    seed: 1,
    maxSteps: 300,
    sampleInterval: 100,
    outDir: out,
    checkpointEvery: 0,
  });
  const before = stats(t.sample(64, 3));
  const summary = await t.run({ onStep: (e) => void events.push(e), onSample: (e) => void grids.push(...e.paths) });
  const after = stats(t.sample(64, 3));
  assert.equal(summary.steps, 300);
  // At init D knows nothing: both losses start near log 2. Within 300 steps D learns to tell the digits from
  // noise (its loss drops well below log 2) while G's loss rises above it: the usual opening of a GAN.
  assert.ok(Math.abs(events[0].dLoss - Math.LN2) < 0.05, `first D loss ${events[0].dLoss}`);
  const mean = (k: "dLoss" | "gLoss", from: number, to: number) =>
    events.slice(from, to).reduce((s, e) => s + e[k], 0) / (to - from);
  assert.ok(mean("dLoss", 250, 300) < 0.6, `late D loss ${mean("dLoss", 250, 300)}`);
  assert.ok(mean("gLoss", 250, 300) > 0.8, `late G loss ${mean("gLoss", 250, 300)}`);
  // Samples: at init G's tanh outputs sit around 0 (mean near 0); MNIST is mostly black background (mean pixel
  // 33/255, i.e. -0.74 in [-1, 1]). After 300 steps the samples' mean has moved most of the way there.
  console.log(
    `  sample mean/std before ${before.mean.toFixed(3)}/${before.std.toFixed(3)}, ` +
      `after ${after.mean.toFixed(3)}/${after.std.toFixed(3)}; ${summary.stepsPerSecond.toFixed(0)} steps/s`,
  );
  assert.ok(Math.abs(before.mean) < 0.25, `init sample mean ${before.mean}`);
  assert.ok(after.mean < -0.4, `sample mean after 300 steps ${after.mean}`);
  // Grids at batches 0, 100, 200 (the seed's batches_done % sample_interval == 0), each 5x5 28x28 with padding 2.
  assert.deepEqual(grids.map((p) => p.slice(out.length)), [
    "/images/0.png",
    "/images/fixed_0.png",
    "/images/100.png",
    "/images/fixed_100.png",
    "/images/200.png",
    "/images/fixed_200.png",
  ]);
  for (const p of grids) {
    const img = decodePng(await Deno.readFile(p));
    assert.equal(img.width, 152);
    assert.equal(img.height, 152);
  }
  const lines = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trim().split("\n");
  assert.equal(lines.length, 300);
  assert.deepEqual(Object.keys(JSON.parse(lines[0])), [
    "step",
    "epoch",
    "batch",
    "d_loss",
    "g_loss",
    "d_real",
    "d_fake",
    "time",
  ]);
  const run = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
  assert.equal(run.config.batch_size, 64);
  assert.equal(run.backend.backend, "cpu");
  const ckpt = await readSafetensorsFile(`${out}/checkpoints/latest.safetensors`);
  assert.deepEqual(ckpt.get("generator.model.0.weight")!.shape, [128, 100]);
  assert.deepEqual(ckpt.get("generator.model.3.running_var")!.shape, [256]);
  assert.equal(ckpt.get("generator.model.3.num_batches_tracked")!.data[0], 300n);
  assert.equal(ckpt.get("optimizer_D.step")!.data[0], 300n);
  assert.equal(ckpt.get("train.step")!.data[0], 300n);
  const plain = await readSafetensorsFile(`${out}/checkpoints/generator.safetensors`);
  for (const k of ["model.0.weight", "model.0.bias", "model.3.running_mean", "model.11.weight"]) {
    assert.ok(plain.has(k), k);
  }
  assert.ok(![...plain.keys()].some((k) => k.startsWith("generator.")));
  await Deno.remove(out, { recursive: true });
});

/** A smaller problem for the resume tests: the digits at 14x14, a narrow generator. */
const smallCpu = {
  backend: "cpu" as "cpu" | "gpu",
  seed: 5,
  batchSize: 16,
  imgSize: 14,
  latentDim: 16,
  nEpochs: 2,
  sampleInterval: 1000,
  stepsPerCall: 7,
};
const small = smallCpu;
const smallData = { ...digits, count: 200, pixels: new Uint8Array(200 * 196) };
{
  // 14x14 by 2x2 averaging (enough for this test; the real resize is tested in data_test.ts).
  for (let i = 0; i < 200; i++) {
    for (let y = 0; y < 14; y++) {
      for (let x = 0; x < 14; x++) {
        const p = (yy: number, xx: number) => digits.pixels[i * 784 + yy * 28 + xx];
        smallData.pixels[i * 196 + y * 14 + x] = (p(2 * y, 2 * x) + p(2 * y + 1, 2 * x) + p(2 * y, 2 * x + 1) +
          p(2 * y + 1, 2 * x + 1)) >> 2;
      }
    }
  }
  Object.assign(smallData, { height: 14, width: 14 });
}

testOnBackends(
  "resume: a run stopped and resumed gives bitwise the same losses and weights as an uninterrupted one",
  async (_ctx, backend) => {
    const small = { ...smallCpu, backend: backend.name };
    const out = await Deno.makeTempDir();
    const losses = (events: StepEvent[]) => events.flatMap((e) => [e.dLoss, e.gLoss, e.dReal, e.dFake]);
    // Uninterrupted: 2 epochs of 13 batches (the last short: 200 = 12 x 16 + 8).
    const full: StepEvent[] = [];
    let fullParams: Float32Array;
    {
      using t = await GanTrainer.create(smallData, small);
      await t.run({ onStep: (e) => void full.push(e) });
      fullParams = t.g.get("params");
    }
    // Stopped after 17 steps (inside the second epoch), then resumed from its checkpoint in a new trainer.
    const part: StepEvent[] = [];
    {
      using t = await GanTrainer.create(smallData, { ...small, maxSteps: 17, outDir: out, checkpointEvery: 0 });
      await t.run({ onStep: (e) => void part.push(e) });
    }
    let resumedParams: Float32Array;
    {
      using t = await GanTrainer.create(smallData, {
        ...small,
        outDir: out,
        resume: `${out}/checkpoints/latest.safetensors`,
      });
      assert.equal(t.step, 17);
      await t.run({ onStep: (e) => void part.push(e) });
      resumedParams = t.g.get("params");
    }
    assert.equal(full.length, 26);
    assert.deepEqual(part.map((e) => e.step), full.map((e) => e.step));
    const a = losses(full), b = losses(part);
    for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `loss ${i}: ${a[i]} vs ${b[i]}`);
    assert.deepEqual(resumedParams, fullParams);
    await Deno.remove(out, { recursive: true });
  },
);

Deno.test("checkpoints: a mismatched resume and a damaged file are refused with the file and the problem named", async () => {
  const out = await Deno.makeTempDir();
  {
    using t = await GanTrainer.create(smallData, { ...small, maxSteps: 3, outDir: out });
    await t.run();
  }
  const path = `${out}/checkpoints/latest.safetensors`;
  await assert.rejects(
    () => GanTrainer.create(smallData, { ...small, batchSize: 8, resume: path }),
    /Cannot resume from ".*latest.safetensors": it was trained with batch_size = 16, this run has 8/,
  );
  // The settings are compared before any tensor is read: another latent size is named as a setting, not as a shape.
  await assert.rejects(
    () => GanTrainer.create(smallData, { ...small, latentDim: 12, resume: path }),
    /Cannot resume from ".*latest.safetensors": it was trained with latent_dim = 16, this run has 12$/,
  );
  const bytes = await Deno.readFile(path);
  await Deno.writeFile(`${out}/cut.safetensors`, bytes.slice(0, bytes.length - 100));
  await assert.rejects(
    () => GanTrainer.create(smallData, { ...small, resume: `${out}/cut.safetensors` }),
    /cut.safetensors/,
  );
  await Deno.remove(out, { recursive: true });
});

Deno.test("sample CLI: a grid from a checkpoint; the same seed gives the same image", async () => {
  const out = await Deno.makeTempDir();
  {
    using t = await GanTrainer.create(smallData, { ...small, maxSteps: 5, outDir: out });
    await t.run();
  }
  const run = (file: string, extra: string[] = []) =>
    new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "--allow-read",
        "--allow-write",
        "--allow-ffi",
        "--allow-env",
        "--allow-run",
        "src/cli/sample.ts",
        "--checkpoint",
        `${out}/checkpoints/latest.safetensors`,
        "--n",
        "16",
        "--out",
        `${out}/${file}`,
        ...extra,
      ],
      stderr: "piped",
    }).output();
  assert.equal((await run("a.png", ["--seed", "4"])).code, 0);
  assert.equal((await run("b.png", ["--seed", "4"])).code, 0);
  const a = await Deno.readFile(`${out}/a.png`), b = await Deno.readFile(`${out}/b.png`);
  assert.deepEqual(a, b);
  const img = decodePng(a);
  assert.equal(img.width, 4 * 14 + 5 * 2); // 4 per row, padding 2
  const bad = await run("c.png", ["--n", "0"]);
  assert.equal(bad.code, 2);
  await Deno.remove(out, { recursive: true });
});

testOnBackends(
  "divergence: a NaN loss stops training in the step call, naming the last good checkpoint, left untouched",
  async (_ctx, backend) => {
    const out = await Deno.makeTempDir();
    const { DivergenceError } = await import("../src/train/trainer.ts");
    using t = await GanTrainer.create(smallData, {
      ...small,
      backend: backend.name,
      maxSteps: 4,
      outDir: out,
      checkpointEvery: 2,
    });
    await t.run({
      onCheckpoint: () => {
        // Right after the checkpoint at step 2, poison one generator weight: the next forward overflows to Inf/NaN.
        const p = t.g.get("params");
        p[0] = 3e38;
        p[1] = -3e38;
        t.g.set("params", p);
      },
    }).then(
      () => assert.fail("training should have diverged"),
      (e) => {
        assert.ok(e instanceof DivergenceError, String(e));
        assert.match(
          e.message,
          /Training diverged: (step 2: D loss NaN|step 2: a generator parameter became NaN or infinite|after step 3: tensor "generator\.)/,
        );
        assert.match(e.message, /The last good checkpoint is ".*latest.safetensors" \(left untouched\)/);
      },
    );
    const ckpt = await readSafetensorsFile(`${out}/checkpoints/latest.safetensors`);
    assert.equal(ckpt.get("train.step")!.data[0], 2n);
    assert.ok((ckpt.get("generator.model.0.weight")!.data as Float32Array).every(Number.isFinite));
    await Deno.remove(out, { recursive: true });
  },
);

Deno.test("divergence: parameters that Adam drives to Inf are caught in the same step", async () => {
  const { DivergenceError } = await import("../src/train/trainer.ts");
  using t = await GanTrainer.create(smallData, { ...small, lr: 1e38, maxSteps: 5 });
  await assert.rejects(() => t.run(), (e: unknown) => {
    assert.ok(e instanceof DivergenceError, String(e));
    assert.match(e.message, /No checkpoint was written/);
    return true;
  });
});

testOnBackends(
  "divergence: a discriminator driven to NaN stops training within the native call that runs into it",
  async (_ctx, backend) => {
    const { DivergenceError } = await import("../src/train/trainer.ts");
    using t = await GanTrainer.create(smallData, { ...small, backend: backend.name, maxSteps: 6, stepsPerCall: 3 });
    let poisoned = false;
    await t.run({
      onStep: (e) => {
        if (e.step === 2 && !poisoned) {
          // Every first-layer weight of D at 3e38: its pre-activations overflow, and Inf - Inf in the next layer is NaN.
          const p = t.d.get("params");
          p.fill(3e38, 0, 196 * 512);
          t.d.set("params", p);
          poisoned = true;
        }
      },
    }).then(
      () => assert.fail("training should have diverged"),
      (e) => {
        assert.ok(e instanceof DivergenceError, String(e));
        // The poison shows one step later in the losses or the updated parameters; either stops the run there,
        // inside the native call of steps 3..5, before the run's end.
        assert.match(
          e.message,
          /Training diverged: step [34]: (D loss NaN|a (generator|discriminator) parameter became NaN)/,
        );
        assert.ok(e.step === 3 || e.step === 4, `step ${e.step}`);
      },
    );
  },
);
