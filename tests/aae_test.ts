// The adversarial autoencoder (aae, PyTorch-GAN's implementations/aae/aae.py) on the TypeScript side: the spec's
// `heads` (checked in TypeScript, laid out and named by the library, arithmetic unchanged), `--model aae` and its
// defaults (latent 10, img 32, BatchNorm eps 1e-5), the three networks (the decoder as the generator, D on the code,
// the encoder with its mu and logvar heads), the encoder in training (init stream 2, trained by the step, in the
// checkpoints, restored on resume: exact resume, bitwise), the resume checks, the fixed grid (upstream's
// sample_image: the decoder on the fixed noise, 10 x 10), and the CLI end to end from the embedded digits (train,
// resume, sample, eval).

import assert from "node:assert/strict";
import { parseTrainFlags, trainUsage, UsageError } from "../src/cli/flags.ts";
import { main as sampleMain } from "../src/cli/sample.ts";
import { main as evalMain } from "../src/cli/eval.ts";
import { runCommand } from "../src/cli/run.ts";
import { type Dataset, loadEmbeddedMnist, resizeBilinear } from "../src/data/dataset.ts";
import { writeIdx } from "../src/data/idx.ts";
import { decodePng, saveGrid } from "../src/io/png.ts";
import { readSafetensorsFile } from "../src/io/safetensors.ts";
import { checkResume } from "../src/io/checkpoint_checks.ts";
import { hasEncoder, modelDiscriminator, modelEncoder, modelGenerator, MODELS } from "../src/model/models.ts";
import { checkHeads, type MlpSpec } from "../src/model/spec.ts";
import { describeSpec, NativeMlp, nativeNormal } from "../src/native/handles.ts";
import { estimateRunBytes } from "../src/train/memory.ts";
import { loadCheckpoint } from "../src/train/checkpoint.ts";
import {
  GanTrainer,
  nativeGanConfig,
  resolveTrainOptions,
  type StepEvent,
  type TrainOptions,
} from "../src/train/trainer.ts";
import { testOnBackends } from "./backends.ts";
import { SUBPROCESS_PERMS } from "./small_gan.ts";

const digits = await loadEmbeddedMnist();

/** A narrow aae for images of `features` values: upstream's shape (BN in the encoder and the decoder, the heads). */
function smallAae(
  latent: number,
  features: number,
  h = 16,
): { generator: MlpSpec; discriminator: MlpSpec; encoder: MlpSpec } {
  const lrelu = { kind: "leaky_relu" as const, slope: 0.2 };
  const bn = { eps: 1e-5, momentum: 0.1 };
  return {
    generator: {
      input: latent,
      layers: [
        { out: h, bn: null, act: lrelu },
        { out: 2 * h, bn, act: lrelu },
        { out: features, bn: null, act: { kind: "tanh" } },
      ],
    },
    discriminator: {
      input: latent,
      layers: [
        { out: 2 * h, bn: null, act: lrelu },
        { out: h, bn: null, act: lrelu },
        { out: 1, bn: null, act: { kind: "sigmoid" } },
      ],
    },
    encoder: {
      input: features,
      layers: [
        { out: 2 * h, bn: null, act: lrelu },
        { out: 2 * h, bn, act: lrelu },
        {
          out: 2 * latent,
          bn: null,
          act: { kind: "none" },
          heads: [{ name: "mu", out: latent }, { name: "logvar", out: latent }],
        },
      ],
    },
  };
}

/** 200 digits at 14x14: 13 batches of 16 per epoch (the last of 8). */
const small14: Dataset = resizeBilinear({ ...digits, count: 200, pixels: digits.pixels.slice(0, 200 * 784) }, 14);
const smallOptions = (o: TrainOptions = {}): TrainOptions => ({
  model: "aae",
  backend: "cpu",
  threads: 2,
  seed: 5,
  imgSize: 14,
  latentDim: 4,
  batchSize: 16,
  stepsPerCall: 3,
  ...smallAae(4, 196),
  ...o,
});

Deno.test("spec: heads are checked in TypeScript, naming the field and the value", () => {
  const last = (heads: unknown, extra: Record<string, unknown> = {}) =>
    ({
      input: 3,
      layers: [
        { out: 5, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.2 } },
        { out: 4, bn: null, act: { kind: "none" }, heads, ...extra },
      ],
    }) as MlpSpec;
  const mu = { name: "mu", out: 2 }, logvar = { name: "logvar", out: 2 };
  checkHeads(last([mu, logvar]));
  checkHeads(last(undefined)); // none
  checkHeads(last(null)); // none, as the library reads it
  checkHeads(last([{ name: "all", out: 4 }])); // one head renames the whole layer
  const bad: [MlpSpec, string][] = [
    [last([]), "layers[1].heads must be a non-empty array of {name, out}, null or absent, got []"],
    [last("mu"), 'layers[1].heads must be a non-empty array of {name, out}, null or absent, got "mu"'],
    [last(7), "layers[1].heads must be a non-empty array of {name, out}, null or absent, got 7"],
    [
      last([mu, { name: "x".repeat(65), out: 2 }]),
      `layers[1].heads[1].name must match /^[A-Za-z_][A-Za-z0-9_]*$/ in at most 64 characters (a module name), got "${
        "x".repeat(65)
      }"`,
    ],
    [
      last([mu, logvar], { bn: { eps: 1e-5, momentum: 0.1 } }),
      'layers[1].heads: a layer with heads must have no BatchNorm (bn: null), got bn {"eps":0.00001,"momentum":0.1}',
    ],
    [last([mu, 3]), "layers[1].heads[1] must be an object {name, out}, got 3"],
    [last([{ ...mu, size: 2 }, logvar]), 'layers[1].heads[0] has an unknown key "size" (it takes name, out)'],
    [
      last([{ name: "1st", out: 2 }, logvar]),
      'layers[1].heads[0].name must match /^[A-Za-z_][A-Za-z0-9_]*$/ in at most 64 characters (a module name), got "1st"',
    ],
    [
      last([mu, { name: "log.var", out: 2 }]),
      'layers[1].heads[1].name must match /^[A-Za-z_][A-Za-z0-9_]*$/ in at most 64 characters (a module name), got "log.var"',
    ],
    [
      last([mu, { out: 2 }]),
      "layers[1].heads[1].name must match /^[A-Za-z_][A-Za-z0-9_]*$/ in at most 64 characters (a module name), got undefined",
    ],
    [last([mu, { name: "mu", out: 2 }]), 'layers[1].heads[1].name repeats the head name "mu"'],
    [last([mu, { name: "logvar", out: 0 }]), "layers[1].heads[1].out must be a positive integer, got 0"],
    [last([mu, { name: "logvar", out: 1.5 }]), "layers[1].heads[1].out must be a positive integer, got 1.5"],
    [last([mu, { name: "logvar", out: "2" }]), 'layers[1].heads[1].out must be a positive integer, got "2"'],
    [
      last([mu, { name: "logvar", out: 1 }]),
      "layers[1].heads: the heads' outs sum to 3 (mu 2 + logvar 1), the layer's out is 4",
    ],
    [
      {
        input: 3,
        layers: [
          { out: 4, bn: null, act: { kind: "none" }, heads: [mu, logvar] },
          { out: 1, bn: null, act: { kind: "none" } },
        ],
      },
      'layers[0].heads: only the last layer (layers[1]) may have heads, layer 0 of 2 has [{"name":"mu","out":2},' +
      '{"name":"logvar","out":2}]',
    ],
  ];
  for (const [spec, message] of bad) {
    assert.throws(() => checkHeads(spec), { name: "RangeError", message }, message);
    assert.throws(() => describeSpec(spec), { message }, "describeSpec checks it before the library");
  }
  assert.throws(() => checkHeads(last([mu]), "encoder"), {
    message: "encoder.layers[1].heads: the heads' outs sum to 2 (mu 2), the layer's out is 4",
  });
});

Deno.test("spec: aae's three networks as upstream's (names, shapes, offsets: mu and logvar from the library)", () => {
  const e = describeSpec(modelEncoder("aae"));
  assert.equal(e.input, 1024);
  assert.equal(e.output, 20);
  const w = 512 * 1024 + 512 + 512 * 512 + 512 + 512 + 512; // the offset of the heads' weight
  const params = [...e.params].sort((a, b) => a.offset - b.offset).map((t) => [t.name, t.shape, t.offset]);
  assert.deepEqual(params, [
    ["model.0.weight", [512, 1024], 0],
    ["model.0.bias", [512], 512 * 1024],
    ["model.2.weight", [512, 512], 512 * 1024 + 512],
    ["model.2.bias", [512], 512 * 1024 + 512 + 512 * 512],
    ["model.3.weight", [512], 512 * 1024 + 512 + 512 * 512 + 512],
    ["model.3.bias", [512], 512 * 1024 + 512 + 512 * 512 + 1024],
    ["mu.weight", [10, 512], w],
    ["logvar.weight", [10, 512], w + 10 * 512],
    ["mu.bias", [10], w + 20 * 512],
    ["logvar.bias", [10], w + 20 * 512 + 10],
  ]);
  assert.equal(e.paramCount, w + 20 * 512 + 20);
  assert.deepEqual(e.buffers.map((t) => t.name), ["model.3.running_mean", "model.3.running_var"]);
  const g = describeSpec(modelGenerator("aae"));
  assert.deepEqual(g.params.map((t) => [t.name, t.shape]), [
    ["model.0.weight", [512, 10]],
    ["model.0.bias", [512]],
    ["model.2.weight", [512, 512]],
    ["model.2.bias", [512]],
    ["model.3.weight", [512]],
    ["model.3.bias", [512]],
    ["model.5.weight", [1024, 512]],
    ["model.5.bias", [1024]],
  ]);
  assert.equal(modelGenerator("aae").layers[1].bn!.eps, 1e-5);
  assert.equal(modelEncoder("aae").layers[1].bn!.eps, 1e-5);
  assert.equal(modelGenerator("aae").layers.at(-1)!.act.kind, "tanh");
  const d = describeSpec(modelDiscriminator("aae"));
  assert.equal(d.input, 10);
  assert.deepEqual(d.params.map((t) => [t.name, t.shape]), [
    ["model.0.weight", [512, 10]],
    ["model.0.bias", [512]],
    ["model.2.weight", [256, 512]],
    ["model.2.bias", [256]],
    ["model.4.weight", [1, 256]],
    ["model.4.bias", [1]],
  ]);
  assert.equal(modelDiscriminator("aae").layers.at(-1)!.act.kind, "sigmoid");
  // The sizes follow the arguments; the encoder is aae's only.
  assert.deepEqual(describeSpec(modelEncoder("aae", 28, 1, 8)).params.find((t) => t.name === "logvar.weight")!.shape, [
    8,
    512,
  ]);
  assert.equal(modelDiscriminator("aae", 28, 1, undefined, undefined, 8).input, 8);
  assert.equal(modelGenerator("aae", 8, 28).layers.at(-1)!.out, 784);
  assert.throws(() => modelEncoder("cgan"), /^RangeError: model cgan has no encoder \(aae has one\)$/);
  assert.throws(() => modelEncoder("aae", 32, 1, 0), /latentDim must be a positive integer, got 0/);
  assert.throws(() => modelDiscriminator("aae", 32, 1, "mse"), /loss applies to gan, cgan, not to model aae/);
  assert.ok(hasEncoder("aae") && !hasEncoder("gan") && !hasEncoder("cgan"));
});

testOnBackends("NativeMlp with heads: the same arithmetic as without them (they rename the tensors only)", (ctx) => {
  const layers = [
    { out: 5, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "leaky_relu" as const, slope: 0.2 } },
    { out: 4, bn: null, act: { kind: "none" as const } },
  ];
  const heads = [{ name: "mu", out: 2 }, { name: "logvar", out: 2 }];
  using named = new NativeMlp(ctx, { input: 3, layers: [layers[0], { ...layers[1], heads }] });
  using plain = new NativeMlp(ctx, { input: 3, layers });
  // The first block's tensors are the same; the last layer's weight and bias are split between the heads by rows.
  const [np, pp] = [named.layout().params, plain.layout().params];
  assert.deepEqual(np.slice(0, 4), pp.slice(0, 4));
  assert.deepEqual(pp.slice(4).map((t) => t.name), ["model.3.weight", "model.3.bias"]);
  const at = (name: string) => {
    const t = np.find((t) => t.name === name)!;
    return [t.shape, t.offset, t.size];
  };
  const [w, b] = pp.slice(4);
  assert.deepEqual(
    [at("mu.weight"), at("logvar.weight"), at("mu.bias"), at("logvar.bias")],
    [[[2, 5], w.offset, 10], [[2, 5], w.offset + 10, 10], [[2], b.offset, 2], [[2], b.offset + 2, 2]],
  );
  assert.equal(named.layout().paramCount, plain.layout().paramCount);
  named.init(3, 2);
  plain.set("params", named.get("params"));
  const x = new Float32Array(4 * 3).map((_, i) => Math.sin(i + 1));
  const y1 = named.forward(x, 4, true), y2 = plain.forward(x, 4, true);
  assert.deepEqual(y1, y2);
  const dy = new Float32Array(16).map((_, i) => Math.cos(i));
  assert.deepEqual(named.backward(dy), plain.backward(dy));
  assert.deepEqual(named.get("grads"), plain.get("grads"));
  assert.deepEqual(named.get("running"), plain.get("running"));
});

const usage = (args: string[], message: string) =>
  assert.throws(() => parseTrainFlags(args), (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.equal(e.message, message);
    return true;
  }, args.join(" "));

Deno.test("train --model aae: upstream's defaults (latent 10, img 32, BN eps 1e-5, Adam 2e-4), and its refusals", () => {
  const f = parseTrainFlags(["--model", "aae"]);
  assert.deepEqual(
    [f.model, f.optimizer, f.lr, f.b1, f.b2, f.latent_dim, f.img_size, f.bn_eps, f.loss, f.n_classes, f.n_critic],
    ["aae", "adam", 2e-4, 0.5, 0.999, 10, 32, 1e-5, undefined, undefined, undefined],
  );
  const g = parseTrainFlags(["--model=aae", "--latent_dim=8", "--img_size=28", "--bn_eps=0.8", "--lr=1e-3"]);
  assert.deepEqual([g.latent_dim, g.img_size, g.bn_eps, g.lr], [8, 28, 0.8, 1e-3]);
  const gan = parseTrainFlags([]);
  assert.deepEqual([gan.latent_dim, gan.img_size, gan.bn_eps], [100, 28, 0.8]); // the others keep theirs
  usage(["--model", "aae", "--loss", "mse"], "--loss applies to gan, cgan, not to model aae");
  usage(["--model", "aae", "--n_classes", "10"], "--n_classes applies to cgan, not to model aae");
  usage(["--model", "aae", "--n_critic", "2"], "--n_critic applies to wgan, wgan_gp, wgan_div, not to model aae");
  const help = trainUsage();
  assert.match(help, /--latent_dim \(default 100; aae 10\)\n/);
  assert.match(help, /--img_size \(default 28; cgan, aae 32\)\n/);
  assert.match(help, /--bn_eps \(default 0\.8; aae 0\.00001\) \*\n/);
});

Deno.test("TrainOptions for aae: the three networks, the model's defaults; an encoder is refused for the others", () => {
  const r = resolveTrainOptions({ model: "aae" });
  assert.deepEqual([r.latentDim, r.imgSize, r.bnEps, r.lr, r.b1, r.b2, r.optimizer], [
    10,
    32,
    1e-5,
    2e-4,
    0.5,
    0.999,
    "adam",
  ]);
  assert.deepEqual(r.generator, modelGenerator("aae"));
  assert.deepEqual(r.discriminator, modelDiscriminator("aae"));
  assert.deepEqual(r.encoder, modelEncoder("aae"));
  assert.deepEqual(r.modelOptions, {});
  const c = nativeGanConfig(r) as unknown as Record<string, unknown>;
  assert.deepEqual(Object.keys(c), ["batch_size", "seed", "lr", "b1", "b2", "eps", "model", "optimizer"]);
  assert.equal(c.model, "aae");
  const r8 = resolveTrainOptions({ model: "aae", latentDim: 8, imgSize: 28, bnEps: 0.5 });
  assert.deepEqual([r8.generator.input, r8.discriminator.input, r8.encoder!.input, r8.encoder!.layers[2].out], [
    8,
    8,
    784,
    16,
  ]);
  assert.equal(r8.encoder!.layers[1].bn!.eps, 0.5); // --bn_eps: the decoder's and the encoder's
  assert.equal(resolveTrainOptions({}).encoder, undefined);
  assert.throws(
    () => resolveTrainOptions({ model: "gan", encoder: modelEncoder("aae") }),
    /^RangeError: encoder applies to aae, not to model gan$/,
  );
  assert.throws(
    () => resolveTrainOptions({ model: "aae", loss: "mse" }),
    /loss applies to gan, cgan, not to model aae/,
  );
  // The memory estimate counts the encoder.
  const data = { count: 10000, features: 1024 };
  assert.ok(
    estimateRunBytes(r.generator, r.discriminator, 64, data, r.encoder) >
      estimateRunBytes(r.generator, r.discriminator, 64, data) + 4 * 4 * describeSpec(r.encoder!).paramCount,
  );
});

Deno.test("resume checks: aae's encoder is compared as the other networks are", () => {
  const dataset = { name: "d", count: 1, channels: 1, height: 32, width: 32, sha256: "00" };
  const base = {
    batch_size: 64,
    lr: 2e-4,
    b1: 0.5,
    b2: 0.999,
    latent_dim: 10,
    img_size: 32,
    channels: 1,
    seed: 0,
    bn_eps: 1e-5,
    model: "aae",
    optimizer: "adam",
    generator: modelGenerator("aae"),
    discriminator: modelDiscriminator("aae"),
    encoder: modelEncoder("aae"),
  };
  const resume = (got: Record<string, unknown>, want: Record<string, unknown>) =>
    checkResume("a.safetensors", { config: got, seed: 0, dataset }, { config: want, dataset });
  resume(base, base);
  const wider = { ...base, encoder: modelEncoder("aae", 32, 1, 12) };
  assert.throws(() => resume(base, wider), /: it was trained with encoder\.layers\[2\]\.out = 20, this run has 24$/);
  const { encoder: _, ...noEncoder } = base;
  assert.throws(() => resume(noEncoder, base), /: its config has no encoder, and this run has one$/);
  assert.throws(() => resume(base, noEncoder), /: it was trained with an encoder, and this run has none$/);
  assert.throws(
    () => resume(base, { ...base, model: "gan" }),
    /it was trained with model = "aae", this run has "gan"$/,
  );
});

testOnBackends(
  "aae: a stopped and resumed run gives bitwise the same losses and all three networks; the checkpoint holds the encoder",
  async (_ctx, backend) => {
    const o = (x: TrainOptions = {}) => smallOptions({ backend: backend.name, ...x });
    const record = (e: StepEvent[]) => e.flatMap((s) => [s.dLoss, s.gLoss, s.dReal, s.dFake]);
    const state = (t: GanTrainer) => [
      ...[t.g, t.d, t.e!].flatMap((n) => [n.get("params"), n.get("adam_m"), n.get("adam_v"), n.get("running")]),
      [t.g, t.d, t.e!].map((n) => [n.info().adam_step, n.info().num_batches_tracked]),
    ];
    const full: StepEvent[] = [], part: StepEvent[] = [];
    let want: unknown[];
    {
      // 200 images in batches of 16: 13 batches per epoch, so 20 steps cross into epoch 1.
      using t = await GanTrainer.create(small14, o({ maxSteps: 20 }));
      // The encoder starts from the init stream 2 of the seed (the generator's is 0, the discriminator's 1).
      using fresh = new NativeMlp(t.ctx, smallAae(4, 196).encoder);
      fresh.init(5, 2);
      const start = fresh.get("params");
      assert.deepEqual(t.e!.get("params"), start);
      await t.run({ onStep: (e) => void full.push(e) });
      want = state(t);
      const now = t.e!.get("params");
      assert.ok(now.some((v, i) => v !== start[i]), "the step trains the encoder");
      assert.deepEqual([t.e!.info().adam_step, t.g.info().adam_step, t.d.info().adam_step], [20, 20, 20]);
    }
    const a = record(full);
    assert.ok(a.every(Number.isFinite), `finite losses: ${a}`);
    // d_loss = 0.5 (BCE(D(z), 1) + BCE(D(encoded), 0)) starts near log 2; g_loss is mostly the L1 of the pixels.
    assert.ok(Math.abs(full[0].dLoss - Math.LN2) < 0.1, `first D loss ${full[0].dLoss}`);
    assert.ok(full[0].gLoss > 0.2 && full[0].gLoss < 1.5, `first G loss ${full[0].gLoss}`);
    assert.ok(full[0].dReal > 0 && full[0].dReal < 1 && full[0].dFake > 0 && full[0].dFake < 1);
    const out = await Deno.makeTempDir();
    {
      using t = await GanTrainer.create(small14, o({ maxSteps: 9, outDir: out, checkpointEvery: 0 }));
      await t.run({ onStep: (e) => void part.push(e) });
    }
    const ckpt = `${out}/checkpoints/latest.safetensors`;
    {
      using t = await GanTrainer.create(small14, o({ maxSteps: 20, resume: ckpt }));
      assert.equal(t.step, 9);
      await t.run({ onStep: (e) => void part.push(e) });
      assert.deepEqual(part.map((e) => e.step), full.map((e) => e.step));
      const b = record(part);
      for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `value ${i}: ${a[i]} vs ${b[i]}`);
      assert.deepEqual(state(t), want);
    }
    // The checkpoint: the encoder's state_dict (upstream's names), its Adam state and counters; the decoder as the
    // generator, also in generator.safetensors.
    const map = await readSafetensorsFile(ckpt);
    const names = [...map.keys()];
    assert.deepEqual(names.filter((k) => k.startsWith("encoder.")).sort(), [
      "encoder.logvar.bias",
      "encoder.logvar.weight",
      "encoder.model.0.bias",
      "encoder.model.0.weight",
      "encoder.model.2.bias",
      "encoder.model.2.weight",
      "encoder.model.3.bias",
      "encoder.model.3.num_batches_tracked",
      "encoder.model.3.running_mean",
      "encoder.model.3.running_var",
      "encoder.model.3.weight",
      "encoder.mu.bias",
      "encoder.mu.weight",
    ]);
    assert.deepEqual(map.get("encoder.mu.weight")!.shape, [4, 32]);
    assert.deepEqual(map.get("optimizer_E.exp_avg_sq.logvar.weight")!.shape, [4, 32]);
    assert.equal(map.get("optimizer_E.step")!.data[0], 9n);
    assert.equal(map.get("encoder.model.3.num_batches_tracked")!.data[0], 9n);
    assert.equal(names.filter((k) => k.startsWith("optimizer_E.exp_avg.")).length, 10);
    assert.deepEqual(map.get("discriminator.model.0.weight")!.shape, [32, 4]); // D judges codes
    const config = JSON.parse(map.metadata!.config);
    assert.deepEqual([config.model, config.latent_dim, config.bn_eps], ["aae", 4, 1e-5]);
    assert.deepEqual(config.encoder, smallAae(4, 196).encoder);
    const plain = await readSafetensorsFile(`${out}/checkpoints/generator.safetensors`);
    assert.deepEqual([...plain.keys()].sort(), [
      "model.0.bias",
      "model.0.weight",
      "model.2.bias",
      "model.2.weight",
      "model.3.bias",
      "model.3.num_batches_tracked",
      "model.3.running_mean",
      "model.3.running_var",
      "model.3.weight",
      "model.5.bias",
      "model.5.weight",
    ]);
    await Deno.remove(out, { recursive: true });
  },
);

/** Runs a command in this process, capturing its stdout and stderr lines; returns its exit code and them. */
async function captured(command: string, main: (a: string[]) => Promise<number>, args: string[]) {
  const lines: string[] = [], outLines: string[] = [];
  const { log, error } = console;
  console.log = (...a: unknown[]) => void outLines.push(a.join(" "));
  console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    return { code: await runCommand(command, main, args), lines, stdout: outLines.join("\n") };
  } finally {
    Object.assign(console, { log, error });
  }
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

Deno.test("aae: the fixed grid is upstream's sample_image (the decoder on fixed noise, 10 x 10); sample() draws the decoder; mismatched resumes are refused", async () => {
  const out = await Deno.makeTempDir();
  const grids: string[] = [];
  {
    using t = await GanTrainer.create(
      small14,
      smallOptions({ maxSteps: 8, outDir: out, checkpointEvery: 0, sampleInterval: 7 }),
    );
    const batches: number[] = [];
    await t.run({ onSample: (e) => void (grids.push(...e.paths), batches.push(e.images.length / 196)) });
    assert.deepEqual(batches, [16, 16]); // the batch grid: the decoder's reconstructions of the step's batch
    // The grid of step 7 was drawn with the networks as they are now (step 7 is the run's last).
    const mine = `${out}/mine.png`, five = `${out}/five.png`;
    const fixedZ = nativeNormal(5, 0, 100 * 4, "fixed"); // [100, latent]
    await saveGrid(mine, t.g.forward(fixedZ, 100, false), 100, 1, 14, 14, { nrow: 10, normalize: true });
    await saveGrid(five, t.g.forward(fixedZ.slice(0, 100), 25, false), 25, 1, 14, 14, { nrow: 5, normalize: true });
    const fixed = await Deno.readFile(`${out}/images/fixed_7.png`);
    assert.deepEqual(fixed, await Deno.readFile(mine), "fixed_7.png is the decoder's 10 x 10 grid of the fixed noise");
    assert.notDeepEqual(fixed, await Deno.readFile(five));
    const img = decodePng(fixed);
    assert.deepEqual([img.width, img.height], [10 * 16 + 2, 10 * 16 + 2]);
    const batch = decodePng(await Deno.readFile(`${out}/images/7.png`));
    assert.deepEqual([batch.width, batch.height], [5 * 16 + 2, 4 * 16 + 2]); // 16 images, 5 a row
    // sample(): the decoder in eval mode on prior noise of the code's size (4 here).
    const s = t.sample(6, 3);
    assert.equal(s.length, 6 * 196);
    assert.deepEqual(s, t.g.forward(nativeNormal(3, 0, 6 * 4, "sample"), 6, false));
    assert.ok(s.every((v) => v >= -1 && v <= 1));
    assert.throws(() => t.sample(2, { labels: 1 }), /labels apply to a conditional model \(cgan\); model aae has none/);
  }
  assert.deepEqual(grids.map((p) => p.slice(out.length)), [
    "/images/0.png",
    "/images/fixed_0.png",
    "/images/7.png",
    "/images/fixed_7.png",
  ]);
  const ckpt = `${out}/checkpoints/latest.safetensors`;
  // Another model, or another encoder: refused by the settings, before any tensor is read.
  await assert.rejects(
    GanTrainer.create(small14, {
      ...smallOptions(),
      model: "gan",
      generator: undefined,
      discriminator: undefined,
      encoder: undefined,
      resume: ckpt,
    }),
    (e: Error) => {
      assert.equal(e.message, `Cannot resume from "${ckpt}": it was trained with model = "aae", this run has "gan"`);
      return true;
    },
  );
  const wider = smallAae(4, 196);
  wider.encoder.layers[0].out = 24;
  await assert.rejects(
    GanTrainer.create(small14, smallOptions({ encoder: wider.encoder, resume: ckpt })),
    /: it was trained with encoder\.layers\[0\]\.out = 32, this run has 24$/,
  );
  // loadCheckpoint itself: an aae checkpoint needs an encoder to load into, and another model's has none to give.
  {
    using t = await GanTrainer.create(small14, smallOptions());
    const g = { spec: t.options.generator, net: t.g }, d = { spec: t.options.discriminator, net: t.d };
    await assert.rejects(
      loadCheckpoint(ckpt, g, d),
      new RegExp(`^Error: Cannot resume from ".*": it holds an encoder \\(encoder.\\* tensors; model "aae"\\)`),
    );
    const info = await loadCheckpoint(ckpt, g, d, { encoder: { spec: t.options.encoder!, net: t.e! } });
    assert.equal(info.step, 8);
  }
  // deno task eval scores the decoder's samples (latent 4 here) against 300 digits, resized to the checkpoint's 14x14
  // (unlabelled: scored on their pixels, no classifier to train).
  const data = await Deno.makeTempDir();
  await Deno.writeFile(`${data}/train-images-idx3-ubyte`, writeIdx([300, 28, 28], digits.pixels.slice(0, 300 * 784)));
  const json = `${out}/eval.json`;
  const ev = await captured("eval", evalMain, [
    "--checkpoint",
    ckpt,
    "--dataset=idx",
    `--data=${data}`,
    "--n=300",
    `--json=${json}`,
    "--backend=cpu",
  ]);
  assert.equal(ev.code, 0, ev.lines.join("\n"));
  assert.match(ev.stdout, /^idx: 300 samples of ".*" \(step 8\), pixels features/);
  const record = JSON.parse(await Deno.readTextFile(json));
  assert.ok(Number.isFinite(record.fid) && record.fid > 0, `FID ${record.fid}`);
  assert.equal(record.n, 300);
  for (const d of [data, out]) await Deno.remove(d, { recursive: true });
});

Deno.test("CLI: train --model aae on the embedded digits (checkpoint with the encoder, upstream's grid), resume it, sample the decoder", async () => {
  const out = await Deno.makeTempDir();
  const flags = ["--model", "aae", "--dataset=embedded", `--out=${out}/run`, "--batch_size=16", "--n_cpu=2"];
  const train = await cli("train", [...flags, "--max_steps=3", "--sample_interval=2", "--log_format=seed"]);
  assert.equal(train.code, 0, train.stderr);
  assert.match(train.stderr, /deno-gan: aae on mnist-embedded, 10000 images/);
  const batches = (s: string) =>
    s.trimEnd().split("\n").map((l) => l.match(/^\[Epoch 0\/50\] \[Batch (\d)\/625\]/)?.[1]);
  assert.deepEqual(batches(train.stdout), ["0", "1", "2"]);
  const config = JSON.parse(await Deno.readTextFile(`${out}/run/run.json`)).config;
  assert.deepEqual(
    [config.model, config.latent_dim, config.img_size, config.bn_eps, config.lr, config.loss],
    ["aae", 10, 32, 1e-5, 2e-4, undefined],
  );
  assert.deepEqual(config.encoder, modelEncoder("aae"));
  assert.deepEqual(config.discriminator, modelDiscriminator("aae"));
  for (const [file, w, h] of [["fixed_0", 342, 342], ["fixed_2", 342, 342], ["2", 172, 138]] as const) {
    const img = decodePng(await Deno.readFile(`${out}/run/images/${file}.png`));
    assert.deepEqual([img.width, img.height], [w, h], file); // 10 x 10 (or the batch's 16, 5 a row) of 32 + 2
  }
  const ckpt = `${out}/run/checkpoints/latest.safetensors`;
  const map = await readSafetensorsFile(ckpt);
  assert.deepEqual(map.get("encoder.mu.weight")!.shape, [10, 512]);
  assert.deepEqual(map.get("encoder.model.0.weight")!.shape, [512, 1024]);
  assert.deepEqual(map.get("generator.model.5.weight")!.shape, [1024, 512]);
  assert.equal(map.get("optimizer_E.step")!.data[0], 3n);
  const resumed = await cli("train", [...flags, "--max_steps=5", `--resume=${ckpt}`, "--log_format=seed"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /\(resuming at step 3\)/);
  assert.deepEqual(batches(resumed.stdout), ["3", "4"]);
  assert.equal((await readSafetensorsFile(ckpt)).get("optimizer_E.step")!.data[0], 5n);
  const asGan = await cli("train", ["--dataset=embedded", `--out=${out}/run`, "--img_size=32", `--resume=${ckpt}`]);
  assert.equal(asGan.code, 1, asGan.stderr);
  assert.deepEqual(asGan.stderr.split("\n").filter((l) => l.startsWith("error: ")), [
    `error: Cannot resume from "${ckpt}": it was trained with model = "aae", this run has "gan"`,
  ]);

  // sample: the decoder on prior noise (latent 10), from the full checkpoint and from generator.safetensors.
  for (const file of [ckpt, `${out}/run/checkpoints/generator.safetensors`]) {
    const png = `${out}/s.png`;
    const r = await captured("sample", sampleMain, [
      "--checkpoint",
      file,
      "--n",
      "9",
      "--out",
      png,
      "--backend",
      "cpu",
    ]);
    assert.equal(r.code, 0, r.lines.join("\n"));
    assert.match(r.lines.at(-1)!, /: 9 samples of 1x32x32 from ".*" \(step (5|0)\)$/);
    const img = decodePng(await Deno.readFile(png));
    assert.deepEqual([img.width, img.height], [3 * 34 + 2, 3 * 34 + 2]);
  }
  await Deno.remove(out, { recursive: true });
});

Deno.test("MODELS.aae: upstream's script and defaults", () => {
  const m = MODELS.aae;
  assert.deepEqual(
    [m.upstream, m.optimizer, m.lr, m.b1, m.b2, m.dOutput, m.options, m.imgSize, m.latentDim, m.bnEps, m.encoder],
    ["implementations/aae/aae.py", "adam", 2e-4, 0.5, 0.999, "sigmoid", {}, 32, 10, 1e-5, true],
  );
  assert.equal(m.nClasses, undefined);
});
