// The models where a user meets them: the one table (src/model/models.ts) against the library's contract,
// `train --model` and the model flags (defaults, refusals), TrainOptions' checks and the native GAN config, a short run
// of every model (finite losses, the checkpoint records the model, a resume with another model or other options is
// refused; it resumes; sample reads it), exact resume of the Wasserstein models, and the CLI end to end (train, sample,
// eval) on a wgan checkpoint.

import assert from "node:assert/strict";
import { parseTrainFlags, trainUsage, UsageError } from "../src/cli/flags.ts";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { writeIdx } from "../src/data/idx.ts";
import { checkResume } from "../src/io/checkpoint_checks.ts";
import {
  GAN_MODELS,
  type GanModel,
  hasEncoder,
  isConditional,
  MODEL_OPTIONS,
  modelEncoder,
  MODELS,
} from "../src/model/models.ts";
import { Context, NativeGan, NativeMlp } from "../src/native/handles.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { nativeContract } from "../src/native/ffi.ts";
import { readCheckpoint } from "../src/train/checkpoint.ts";
import {
  GanTrainer,
  nativeGanConfig,
  resolveTrainOptions,
  type StepEvent,
  type TrainOptions,
} from "../src/train/trainer.ts";
import { main as sampleMain } from "../src/cli/sample.ts";
import { smallGan, SUBPROCESS_PERMS, syntheticImages } from "./small_gan.ts";
import { testOnBackends } from "./backends.ts";

Deno.test("MODELS is the library's table: nativeContract().models, model by model", () => {
  const models = nativeContract().models;
  assert.ok(models, "the library's gan_contract has no models (the native side of issue 13)");
  assert.deepEqual(Object.keys(models).sort(), [...GAN_MODELS].sort());
  for (const m of GAN_MODELS) {
    const { optimizer, lr, b1, b2, dOutput, options } = MODELS[m];
    assert.deepEqual(models[m], { optimizer, lr, b1, b2, d_output: dOutput, options }, m);
  }
});

Deno.test("MODELS' encoder is the library's: aae needs one (gan_gan_new_with_encoder), every other model refuses one", () => {
  using ctx = new Context({ backend: "cpu", threads: 1 });
  const tiny = { imgSize: 4, latentDim: 2, batchSize: 8 };
  using e = new NativeMlp(ctx, modelEncoder("aae", 4, 1, 2));
  for (const model of GAN_MODELS) {
    const r = resolveTrainOptions({ model, ...tiny });
    using g = new NativeMlp(ctx, r.generator);
    using d = new NativeMlp(ctx, r.discriminator);
    const config = nativeGanConfig(r);
    if (hasEncoder(model)) {
      assert.deepEqual(r.encoder, modelEncoder("aae", 4, 1, 2));
      assert.throws(() => new NativeGan(ctx, g, d, config), /model aae needs an encoder \(gan_gan_new_with_encoder\)/);
      using gan = new NativeGan(ctx, g, d, config, e);
      assert.equal(gan.info().step, 0);
    } else {
      assert.equal(r.encoder, undefined, model);
      assert.throws(() => new NativeGan(ctx, g, d, config, e), new RegExp(`model ${model} takes no encoder`), model);
      using gan = new NativeGan(ctx, g, d, config);
      assert.equal(gan.info().step, 0, model);
    }
  }
});

const usage = (args: string[], re: RegExp) =>
  assert.throws(
    () => parseTrainFlags(args),
    (e: unknown) => e instanceof UsageError && re.test(e.message),
    args.join(" "),
  );

Deno.test("train --model: each model's defaults (upstream's), and only its own flags", () => {
  const gan = parseTrainFlags([]);
  assert.deepEqual([gan.model, gan.optimizer, gan.lr, gan.b1, gan.b2, gan.loss], [
    "gan",
    "adam",
    2e-4,
    0.5,
    0.999,
    "bce",
  ]);
  assert.equal(gan.n_critic, undefined);
  const wgan = parseTrainFlags(["--model", "wgan"]);
  assert.deepEqual(
    [wgan.optimizer, wgan.lr, wgan.b1, wgan.b2, wgan.n_critic, wgan.clip_value, wgan.loss],
    ["rmsprop", 5e-5, undefined, undefined, 5, 0.01, undefined],
  );
  assert.equal(parseTrainFlags(["--model=wgan", "--lr", "1e-4"]).lr, 1e-4); // the model's lr unless --lr is given
  const gp = parseTrainFlags(["--model", "wgan_gp"]);
  assert.deepEqual(
    [gp.optimizer, gp.lr, gp.b1, gp.n_critic, gp.lambda_gp, gp.gp_norm, gp.gp_clip, gp.clip_value, gp.div_k],
    ["adam", 2e-4, 0.5, 5, 10, "sample", false, undefined, undefined],
  );
  const clip = parseTrainFlags(["--model", "wgan_gp", "--gp_clip", "--clip_value", "0.05", "--gp_norm", "pixel"]);
  assert.deepEqual([clip.gp_clip, clip.clip_value, clip.gp_norm], [true, 0.05, "pixel"]);
  const div = parseTrainFlags(["--model", "wgan_div", "--div_k", "0", "--div_p", "2.5", "--n_critic", "1"]);
  assert.deepEqual([div.div_k, div.div_p, div.n_critic, div.lambda_gp], [0, 2.5, 1, undefined]);
  const soft = parseTrainFlags(["--model", "softmax_gan", "--softmax_fresh_d"]);
  assert.deepEqual([soft.softmax_fresh_d, soft.softmax_g_loss_only, soft.lr], [true, false, 2e-4]);
  assert.deepEqual(parseTrainFlags(["--model", "bgan"]).softmax_fresh_d, undefined);
  const adam = parseTrainFlags(["--model", "wgan", "--optimizer", "adam", "--b1", "0.3"]);
  assert.deepEqual([adam.optimizer, adam.b1, adam.b2, adam.lr], ["adam", 0.3, 0.999, 5e-5]);
});

Deno.test("train --model: a flag of another model, a bad value or a beta without Adam is a usage error naming it", () => {
  const bad: [string[], RegExp][] = [
    [
      ["--model", "dcgan"],
      /--model must be one of gan, bgan, softmax_gan, wgan, wgan_gp, wgan_div, cgan, aae, got "dcgan"/,
    ],
    [["--n_critic", "3"], /^--n_critic applies to wgan, wgan_gp, wgan_div, not to model gan$/],
    [["--model", "wgan", "--loss", "hinge"], /^--loss applies to gan, cgan, not to model wgan$/],
    [["--model", "bgan", "--clip_value", "0.1"], /^--clip_value applies to wgan, wgan_gp, not to model bgan$/],
    [["--model", "wgan_gp", "--clip_value", "0.1"], /^--clip_value applies to wgan_gp only with --gp_clip$/],
    [["--model", "wgan_div", "--clip_value", "0.1"], /--clip_value applies to wgan, wgan_gp, not to model wgan_div/],
    [["--model", "wgan", "--lambda_gp", "5"], /--lambda_gp applies to wgan_gp, not to model wgan/],
    [["--model", "wgan", "--gp_clip"], /--gp_clip applies to wgan_gp, not to model wgan/],
    [["--model", "wgan_gp", "--div_k", "1"], /--div_k applies to wgan_div, not to model wgan_gp/],
    [["--model", "gan", "--softmax_g_loss_only"], /--softmax_g_loss_only applies to softmax_gan, not to model gan/],
    [
      ["--model", "wgan", "--b1", "0.5"],
      /^--b1 applies to the adam optimizer only, and this run trains with rmsprop \(the default of model wgan\)$/,
    ],
    [
      ["--optimizer", "rmsprop", "--b2", "0.9"],
      /--b2 applies to the adam optimizer only, and this run trains with rmsprop \(--optimizer\)/,
    ],
    [["--optimizer", "sgd"], /--optimizer must be one of adam, rmsprop, got "sgd"/],
    [["--model", "wgan", "--n_critic", "0"], /--n_critic must be an integer in \[1, 1048576\], got "0"/],
    [["--model", "wgan", "--clip_value", "-1"], /--clip_value must be a finite number > 0, got "-1"/],
    [["--model", "wgan_gp", "--lambda_gp", "-1"], /--lambda_gp must be a finite number >= 0, got "-1"/],
    [["--model", "wgan_gp", "--gp_norm", "l1"], /--gp_norm must be one of sample, pixel, got "l1"/],
    [["--model", "wgan_div", "--div_p", "0"], /--div_p must be a finite number >= 1, got "0"/],
    [["--model", "wgan", "--n_critic", "2097152"], /--n_critic must be an integer in \[1, 1048576\], got "2097152"/],
    [["--model", "wgan", "--n_critic", ""], /--n_critic must be an integer in \[1, 1048576\], got ""/],
    [["--model", "wgan_div", "--div_p", "0.5"], /--div_p must be a finite number >= 1, got "0.5"/],
    [["--model", "wgan_div", "--div_k", "Infinity"], /--div_k must be a finite number >= 0, got "Infinity"/],
  ];
  for (const [args, re] of bad) usage(args, re);
});

Deno.test("train --help lists the model and every model option with its models", () => {
  const help = trainUsage();
  assert.match(help, /--model \[gan\|bgan\|softmax_gan\|wgan\|wgan_gp\|wgan_div\|cgan\|aae\] \(default gan\) \*/);
  assert.match(help, /--n_critic \(default 5\) \{wgan, wgan_gp, wgan_div\}\n/); // upstream's flag: no *
  assert.match(help, /--clip_value \(default 0\.01\) \{wgan, wgan_gp\}\n/);
  assert.match(help, /--gp_norm \[sample\|pixel\] \(default sample\) \{wgan_gp\} \*/);
  assert.match(help, /--b1 \(default 0\.5\) \{adam\}\n/);
  for (const key of Object.keys(MODEL_OPTIONS)) assert.match(help, new RegExp(`  --${key}[ \\n]`), key);
});

Deno.test("TrainOptions: the model's defaults; another model's option, a bad value, a beta without Adam are refused", () => {
  const wgan = resolveTrainOptions({ model: "wgan" });
  assert.deepEqual([wgan.lr, wgan.optimizer, wgan.nCritic, wgan.clipValue, wgan.loss], [
    5e-5,
    "rmsprop",
    5,
    0.01,
    undefined,
  ]);
  assert.equal(wgan.discriminator.layers.at(-1)!.act.kind, "none");
  assert.equal(resolveTrainOptions({ model: "bgan" }).discriminator.layers.at(-1)!.act.kind, "sigmoid");
  assert.equal(resolveTrainOptions({ model: "wgan", lr: 1e-3 }).lr, 1e-3);
  assert.equal(resolveTrainOptions({ model: "wgan_gp", gpClip: true, clipValue: 0.1 }).clipValue, 0.1);
  assert.equal(resolveTrainOptions({ model: "gan", channels: 1 }).modelOptions.channels, undefined); // the run's
  assert.equal(resolveTrainOptions({ model: "wgan_gp", channels: 1 }).modelOptions.channels, 1);
  const bad: [TrainOptions, RegExp][] = [
    [
      { model: "dcgan" as GanModel },
      /model must be one of gan, bgan, softmax_gan, wgan, wgan_gp, wgan_div, cgan, aae, got "dcgan"/,
    ],
    [{ nCritic: 2 }, /nCritic applies to wgan, wgan_gp, wgan_div, not to model gan$/],
    [{ model: "wgan", loss: "hinge" }, /loss applies to gan, cgan, not to model wgan$/],
    [{ model: "wgan_gp", clipValue: 0.1 }, /clipValue applies to wgan_gp only with gpClip$/],
    [{ model: "softmax_gan", divP: 2 }, /divP applies to wgan_div, not to model softmax_gan/],
    [{ model: "wgan", nCritic: 1.5 }, /nCritic must be an integer in \[1, 1048576\], got 1.5$/],
    [{ model: "wgan_gp", lambdaGp: NaN }, /lambdaGp must be a finite number >= 0, got NaN$/],
    [{ model: "wgan_gp", gpNorm: "l2" as "sample" }, /gpNorm must be one of sample, pixel, got "l2"$/],
    [{ model: "softmax_gan", softmaxFreshD: 1 as unknown as boolean }, /softmaxFreshD must be true or false, got 1/],
    [
      { model: "wgan", b1: 0.5 },
      /b1 applies to the adam optimizer only, and this run \(model wgan\) trains with rmsprop$/,
    ],
    [{ optimizer: "sgd" as "adam" }, /optimizer must be adam or rmsprop, got "sgd"/],
    [
      { model: "softmax_gan", channels: 3 },
      /softmax_gan's discriminator takes img_size \*\* 2 inputs .* got 3 channels/,
    ],
  ];
  for (const [o, re] of bad) assert.throws(() => resolveTrainOptions(o), re, JSON.stringify(o));
});

Deno.test("the native GAN config holds the optimizer's settings, the model and only the model's own options", () => {
  const base = ["batch_size", "seed", "lr", "b1", "b2", "eps", "model", "optimizer"];
  for (const model of GAN_MODELS) {
    const c = nativeGanConfig(resolveTrainOptions({ model })) as unknown as Record<string, unknown>;
    assert.deepEqual(Object.keys(c), [...base, ...Object.keys(MODELS[model].options)], model);
    assert.deepEqual([c.model, c.optimizer, c.lr], [model, MODELS[model].optimizer, MODELS[model].lr], model);
  }
  const c = nativeGanConfig(resolveTrainOptions({ model: "wgan_div", divK: 3, nCritic: 2 })) as unknown as Record<
    string,
    unknown
  >;
  assert.deepEqual([c.n_critic, c.div_k, c.div_p], [2, 3, 6]);
});

Deno.test("resume checks: the model, its optimizer and options; a config without them is gan with Adam and bce", () => {
  const dataset = { name: "d", count: 1, channels: 1, height: 28, width: 28, sha256: "00" };
  const base = { batch_size: 64, lr: 2e-4, b1: 0.5, b2: 0.999, latent_dim: 100, img_size: 28, channels: 1, seed: 0 };
  const old = { ...base, bn_eps: 0.8, generator: {}, discriminator: {} }; // written before the models (and losses)
  const cfg = (extra: Record<string, unknown>) => ({ ...old, ...extra });
  const resume = (got: Record<string, unknown>, want: Record<string, unknown>) =>
    checkResume("c.safetensors", { config: got, seed: 0, dataset }, { config: want, dataset });
  resume(old, cfg({ model: "gan", optimizer: "adam", loss: "bce" }));
  const refused: [Record<string, unknown>, Record<string, unknown>, string][] = [
    [old, cfg({ model: "wgan" }), 'model = "gan", this run has "wgan"'],
    [cfg({ model: "wgan_gp" }), cfg({ model: "wgan_div" }), 'model = "wgan_gp", this run has "wgan_div"'],
    [old, cfg({ loss: "hinge" }), 'loss = "bce", this run has "hinge"'],
    [old, cfg({ optimizer: "rmsprop" }), 'optimizer = "adam", this run has "rmsprop"'],
    [cfg({ model: "wgan", n_critic: 5 }), cfg({ model: "wgan", n_critic: 3 }), "n_critic = 5, this run has 3"],
    [
      cfg({ model: "wgan_gp" }),
      cfg({ model: "wgan_gp", gp_norm: "pixel" }),
      'gp_norm = "sample", this run has "pixel"',
    ],
    [cfg({ model: "softmax_gan" }), cfg({ model: "softmax_gan", softmax_fresh_d: true }), "softmax_fresh_d = false"],
  ];
  for (const [got, want, message] of refused) {
    assert.throws(() => resume(got, want), (e: Error) => {
      assert.equal(e.message.split("\n").length, 1);
      assert.ok(e.message.startsWith(`Cannot resume from "c.safetensors": it was trained with ${message}`), e.message);
      return true;
    });
  }
});

const digits = await loadEmbeddedMnist();

/** Runs a command's main in this process with its console output dropped; returns its exit code. */
async function quietly(main: (args: string[]) => Promise<number>, args: string[]): Promise<number> {
  const { log, error } = console;
  console.log = console.error = () => {};
  try {
    return await main(args);
  } finally {
    Object.assign(console, { log, error });
  }
}

Deno.test("every model trains a few steps on the digits: finite losses, the checkpoint records the model and its options, it resumes, another model's resume is refused, sample reads it (eval: the CLI test below)", async () => {
  const data = { ...digits, count: 320, pixels: digits.pixels.slice(0, 320 * 784) };
  const out = await Deno.makeTempDir();
  const run = { backend: "cpu" as const, threads: 2, batchSize: 32, maxSteps: 12, checkpointEvery: 0, seed: 3 };
  // The models of the seed's networks (their checkpoints fit each other's); cgan's: tests/cgan_test.ts, aae's:
  // tests/aae_test.ts.
  const models = GAN_MODELS.filter((m) => !isConditional(m) && !hasEncoder(m));
  for (const [i, model] of models.entries()) {
    const dir = `${out}/${model}`;
    const losses: number[] = [];
    {
      using t = await GanTrainer.create(data, { ...run, model, outDir: dir });
      await t.run({ onStep: (e) => void losses.push(e.dLoss, e.gLoss, e.dReal, e.dFake) });
    }
    assert.equal(losses.length, 48, model);
    assert.ok(losses.every(Number.isFinite), `${model}: ${losses}`);
    const { info } = await readCheckpoint(`${dir}/checkpoints/latest.safetensors`);
    assert.equal(info.config.model, model);
    assert.equal(info.config.optimizer, MODELS[model].optimizer);
    for (const [key, def] of Object.entries(MODELS[model].options)) assert.equal(info.config[key], def, key);
    for (const [key, o] of Object.entries(MODEL_OPTIONS)) {
      if (!(key in MODELS[model].options) && !o.fromRun) {
        assert.equal(info.config[key], undefined, `${model} records ${key}`);
      }
    }
    const runJson = JSON.parse(await Deno.readTextFile(`${dir}/run.json`));
    assert.equal(runJson.config.model, model);
    const ckpt = `${dir}/checkpoints/latest.safetensors`;
    {
      using t = await GanTrainer.create(data, { ...run, model, maxSteps: 14, outDir: dir, resume: ckpt });
      const more: number[] = [];
      await t.run({ onStep: (e) => void more.push(e.dLoss, e.gLoss) });
      assert.ok(more.length === 4 && more.every(Number.isFinite), `${model} resumed: ${more}`);
    }
    const png = `${dir}/samples.png`;
    assert.equal(await quietly(sampleMain, ["--checkpoint", ckpt, "--n", "4", "--out", png, "--backend", "cpu"]), 0);
    assert.ok((await Deno.stat(png)).size > 100);
    const other = models[(i + 1) % models.length];
    await assert.rejects(
      GanTrainer.create(data, { ...run, model: other, resume: `${dir}/checkpoints/latest.safetensors` }),
      new RegExp(`Cannot resume from ".*": it was trained with model = "${model}", this run has "${other}"$`),
    );
  }
  await assert.rejects(
    GanTrainer.create(data, {
      ...run,
      model: "wgan",
      nCritic: 3,
      resume: `${out}/wgan/checkpoints/latest.safetensors`,
    }),
    /it was trained with n_critic = 5, this run has 3$/,
  );
  await Deno.remove(out, { recursive: true });
});

/** The small GAN of tests/small_gan.ts with a critic (D ending in a linear layer). */
function smallCritic(): { generator: MlpSpec; discriminator: MlpSpec } {
  const { generator, discriminator } = smallGan(6, 16, 32);
  const layers = discriminator.layers.map((l, i, a) =>
    i === a.length - 1 ? { ...l, act: { kind: "none" as const } } : l
  );
  return { generator, discriminator: { ...discriminator, layers } };
}

for (const model of ["wgan", "wgan_gp"] as const) {
  testOnBackends(`resume (${model}): 34 steps equal 17 + a resumed 17, bitwise (losses and both networks)`, async (
    _ctx,
    backend,
  ) => {
    // 200 images in batches of 16: 13 batches per epoch; step 17 is epoch 1's batch 4, a critic-only step.
    const data = syntheticImages(200);
    const o: TrainOptions = {
      model,
      backend: backend.name,
      threads: 2,
      seed: 4,
      imgSize: 8,
      latentDim: 6,
      batchSize: 16,
      stepsPerCall: 5,
      ...smallCritic(),
    };
    const record = (e: StepEvent[]) => e.flatMap((s) => [s.dLoss, s.gLoss, s.dReal, s.dFake]);
    const full: StepEvent[] = [], part: StepEvent[] = [];
    let want: Float32Array[];
    {
      using t = await GanTrainer.create(data, { ...o, maxSteps: 34 });
      await t.run({ onStep: (e) => void full.push(e) });
      want = [t.g.get("params"), t.d.get("params"), t.d.get("adam_v"), t.g.get("running")];
    }
    const out = await Deno.makeTempDir();
    {
      using t = await GanTrainer.create(data, { ...o, maxSteps: 17, outDir: out, checkpointEvery: 0 });
      await t.run({ onStep: (e) => void part.push(e) });
    }
    using t = await GanTrainer.create(data, { ...o, maxSteps: 34, resume: `${out}/checkpoints/latest.safetensors` });
    assert.equal(t.step, 17);
    await t.run({ onStep: (e) => void part.push(e) });
    assert.equal(full.length, 34);
    assert.deepEqual(part.map((e) => e.step), full.map((e) => e.step));
    const a = record(full), b = record(part);
    for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `value ${i}: ${a[i]} vs ${b[i]}`);
    assert.deepEqual([t.g.get("params"), t.d.get("params"), t.d.get("adam_v"), t.g.get("running")], want);
    if (model === "wgan") {
      assert.ok(t.d.get("adam_m").every((x) => x === 0), "RMSprop leaves adam_m at zero");
      const clip = t.d.get("params").reduce((m, x) => Math.max(m, Math.abs(x)), 0);
      assert.ok(clip <= 0.01, `the critic is clamped to 0.01, max |p| ${clip}`);
    }
    await Deno.remove(out, { recursive: true });
  });
}

/** The first `count` embedded digits as an unlabelled IDX file in a new folder (eval then scores pixels: no classifier). */
async function unlabelledDigits(count: number): Promise<string> {
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(
    `${dir}/train-images-idx3-ubyte`,
    writeIdx([count, 28, 28], digits.pixels.slice(0, count * 784)),
  );
  return dir;
}

async function cli(command: string, args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...SUBPROCESS_PERMS, `src/cli/${command}.ts`, ...args],
    cwd: new URL("../", import.meta.url),
    env: { NODEVICE_SELECT: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("CLI: train --model wgan (upstream's line on G's steps only), then sample and eval its checkpoint; a resume as gan exits 1", async () => {
  const data = await unlabelledDigits(300); // 10 batches of 32 per epoch (the last of 12)
  const out = await Deno.makeTempDir();
  const flags = ["--dataset=idx", `--data=${data}`, `--out=${out}/run`, "--batch_size=32", "--n_cpu=2"];
  const train = await cli("train", ["--model", "wgan", ...flags, "--max_steps=12", "--log_format=seed"]);
  assert.equal(train.code, 0, train.stderr);
  assert.match(train.stderr, /deno-gan: wgan on idx, 300 images/);
  const lines = train.stdout.trimEnd().split("\n");
  assert.deepEqual(lines.map((l) => l.match(/^\[Epoch (\d)\/50\] \[Batch (\d+)\/10\]/)?.slice(1).join(",")), [
    "0,0",
    "0,5",
    "1,0",
  ]);
  const config = JSON.parse(await Deno.readTextFile(`${out}/run/run.json`)).config;
  assert.deepEqual(
    [config.model, config.optimizer, config.lr, config.n_critic, config.clip_value, config.loss],
    ["wgan", "rmsprop", 5e-5, 5, 0.01, undefined],
  );
  const ckpt = `${out}/run/checkpoints/latest.safetensors`;
  const sample = await cli("sample", ["--checkpoint", ckpt, "--n", "9", "--out", `${out}/s.png`, "--backend", "cpu"]);
  assert.equal(sample.code, 0, sample.stderr);
  assert.ok((await Deno.stat(`${out}/s.png`)).size > 100);
  const evaluated = await cli("eval", ["--checkpoint", ckpt, "--dataset=idx", `--data=${data}`, "--n=300"]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  assert.match(evaluated.stdout, /idx: 300 samples of .* \(step 12\), pixels features/);
  const resumed = await cli("train", ["--model", "gan", ...flags, "--resume", ckpt]);
  assert.equal(resumed.code, 1, resumed.stderr);
  const errors = resumed.stderr.split("\n").filter((l) => l.startsWith("error: "));
  assert.deepEqual(errors, [
    `error: Cannot resume from "${ckpt}": it was trained with model = "wgan", this run has "gan"`,
  ]);
  const refused = await cli("train", ["--model", "gan", "--n_critic", "2", ...flags]);
  assert.equal(refused.code, 2);
  assert.match(refused.stderr, /^error: --n_critic applies to wgan, wgan_gp, wgan_div, not to model gan\n/);
  for (const d of [data, out]) await Deno.remove(d, { recursive: true });
});
