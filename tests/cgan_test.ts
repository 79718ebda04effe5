// The conditional GAN (cgan, PyTorch-GAN's implementations/cgan/cgan.py) on the TypeScript side: the spec's label
// embedding (checked, laid out by the library), the labeled forward and backward through the FFI, `--model cgan`
// and `--n_classes`, training on the dataset's labels (a dataset without labels, or with a label past n_classes, is
// one clear error), exact resume, the fixed grid in upstream's label order, sampling with labels (the library's
// `sample(n, { labels })` and `deno task sample --label`), and the per-label accuracy of the evaluation.

import assert from "node:assert/strict";
import { parseTrainFlags, trainUsage, UsageError } from "../src/cli/flags.ts";
import { main as sampleMain } from "../src/cli/sample.ts";
import { runCommand } from "../src/cli/run.ts";
import { type Dataset, loadEmbeddedMnist, resizeBilinear } from "../src/data/dataset.ts";
import { writeIdx } from "../src/data/idx.ts";
import { labelAccuracy } from "../src/eval/class_stats.ts";
import { trainClassifier } from "../src/eval/classifier.ts";
import { Evaluator } from "../src/eval/evaluate.ts";
import { decodePng, saveGrid } from "../src/io/png.ts";
import { readSafetensorsFile } from "../src/io/safetensors.ts";
import { buildReportHtml } from "../src/report/report.ts";
import { readRunFolder } from "../src/report/run_files.ts";
import { sampleLabels } from "../src/model/labels.ts";
import { isConditional, modelDiscriminator, modelGenerator, MODELS } from "../src/model/models.ts";
import { checkEmbedding, type MlpSpec } from "../src/model/spec.ts";
import { Context, describeSpec, NativeMlp, nativeNormal } from "../src/native/handles.ts";
import { GanTrainer, resolveTrainOptions, type StepEvent, type TrainOptions } from "../src/train/trainer.ts";
import { testOnBackends } from "./backends.ts";
import { smallRunOptions, SUBPROCESS_PERMS, syntheticImages } from "./small_gan.ts";

const digits = await loadEmbeddedMnist();

/** `count` digits evenly spaced over the embedded set (it is sorted by digit), so every label is there. */
function spreadDigits(count: number): Dataset {
  const step = Math.floor(digits.count / count);
  const pick = Array.from({ length: count }, (_, i) => i * step);
  const pixels = new Uint8Array(count * 784);
  pick.forEach((i, r) => pixels.set(digits.pixels.subarray(i * 784, (i + 1) * 784), r * 784));
  return { ...digits, count, pixels, labels: Uint8Array.from(pick, (i) => digits.labels![i]) };
}

/** A narrow cgan for images of `features` values: upstream's shape (embeddings, BN, dropout) at small widths. */
function smallCgan(latent: number, features: number, classes = 10): { generator: MlpSpec; discriminator: MlpSpec } {
  const lrelu = { kind: "leaky_relu" as const, slope: 0.2 };
  return {
    generator: {
      input: latent,
      embedding: { classes, dim: classes, at: "first", name: "label_emb" },
      layers: [
        { out: 16, bn: null, act: lrelu },
        { out: 32, bn: { eps: 0.8, momentum: 0.1 }, act: lrelu },
        { out: features, bn: null, act: { kind: "tanh" } },
      ],
    },
    discriminator: {
      input: features,
      embedding: { classes, dim: classes, at: "last", name: "label_embedding" },
      layers: [
        { out: 32, bn: null, act: lrelu },
        { out: 32, bn: null, act: lrelu, dropout: 0.4 },
        { out: 1, bn: null, act: { kind: "none" } },
      ],
    },
  };
}

const small14 = resizeBilinear(spreadDigits(200), 14);
const smallOptions = (o: TrainOptions = {}): TrainOptions => ({
  model: "cgan",
  backend: "cpu",
  threads: 2,
  seed: 7,
  imgSize: 14,
  latentDim: 8,
  batchSize: 16,
  stepsPerCall: 3,
  ...smallCgan(8, 196),
  ...o,
});

Deno.test("spec: the embedding is checked in TypeScript, naming the field and the value", () => {
  const ok: MlpSpec = {
    input: 4,
    embedding: { classes: 10, dim: 3, at: "last", name: "label_embedding" },
    layers: [{ out: 1, bn: null, act: { kind: "none" } }],
  };
  checkEmbedding(ok);
  checkEmbedding({ input: 4, layers: [] }); // none
  checkEmbedding({ input: 4, embedding: null, layers: [] }); // none, as the library's describe reports it
  const bad: [unknown, string | RegExp][] = [
    [7, "embedding must be an object {classes, dim, at, name}, null or absent, got 7"],
    [[1], "embedding must be an object {classes, dim, at, name}, null or absent, got [1]"],
    [{ ...ok.embedding, classes: 0 }, "embedding.classes must be an integer in [1, 1048576], got 0"],
    [{ ...ok.embedding, classes: 2.5 }, "embedding.classes must be an integer in [1, 1048576], got 2.5"],
    [{ ...ok.embedding, classes: "10" }, 'embedding.classes must be an integer in [1, 1048576], got "10"'],
    [{ ...ok.embedding, dim: -1 }, "embedding.dim must be an integer in [1, 1048576], got -1"],
    [{ ...ok.embedding, dim: undefined }, "embedding.dim must be an integer in [1, 1048576], got undefined"],
    [{ ...ok.embedding, at: "middle" }, 'embedding.at must be "first" or "last", got "middle"'],
    [
      { ...ok.embedding, name: "1st" },
      'embedding.name must match /^[A-Za-z_][A-Za-z0-9_]*$/ in at most 64 characters (a module name), got "1st"',
    ],
    [
      { ...ok.embedding, name: "a.b" },
      'embedding.name must match /^[A-Za-z_][A-Za-z0-9_]*$/ in at most 64 characters (a module name), got "a.b"',
    ],
    [{ ...ok.embedding, size: 3 }, 'embedding has an unknown key "size" (it takes classes, dim, at, name)'],
    [{ ...ok.embedding, classes: 2 ** 20, dim: 4096 }, "embedding of 1048576 x 4096 is more than 2^31 parameters"],
    [{ ...ok.embedding, name: "x".repeat(65) }, /RangeError: embedding.name must match .* in at most 64 characters/],
  ];
  for (const [embedding, message] of bad) {
    const spec = { ...ok, embedding } as MlpSpec;
    const want = typeof message === "string" ? { name: "RangeError", message } : message;
    assert.throws(() => checkEmbedding(spec), want, JSON.stringify(embedding));
    assert.throws(() => describeSpec(spec), want, "describeSpec checks it before the library");
  }
  assert.throws(() => checkEmbedding({ ...ok, embedding: { ...ok.embedding!, dim: 0 } }, "generator"), {
    message: "generator.embedding.dim must be an integer in [1, 1048576], got 0",
  });
});

Deno.test("spec: cgan's networks as upstream's (names, shapes, the table first in the flat buffer)", () => {
  const g = describeSpec(modelGenerator("cgan", 100, 32));
  assert.deepEqual(g.embedding, { classes: 10, dim: 10, at: "first", name: "label_emb" });
  assert.equal(g.input, 100);
  assert.equal(g.output, 1024);
  assert.deepEqual(g.params.slice(0, 3).map((t) => [t.name, t.shape, t.offset]), [
    ["label_emb.weight", [10, 10], 0],
    ["model.0.weight", [128, 110], 100],
    ["model.0.bias", [128], 100 + 128 * 110],
  ]);
  assert.deepEqual(g.params.map((t) => t.name).slice(-2), ["model.11.weight", "model.11.bias"]);
  const d = describeSpec(modelDiscriminator("cgan", 32));
  assert.deepEqual(d.embedding, { classes: 10, dim: 10, at: "last", name: "label_embedding" });
  assert.equal(d.input, 1024);
  assert.deepEqual(d.params.map((t) => [t.name, t.shape]), [
    ["label_embedding.weight", [10, 10]],
    ["model.0.weight", [512, 1034]],
    ["model.0.bias", [512]],
    ["model.2.weight", [512, 512]],
    ["model.2.bias", [512]],
    ["model.5.weight", [512, 512]],
    ["model.5.bias", [512]],
    ["model.8.weight", [1, 512]],
    ["model.8.bias", [1]],
  ]);
  assert.equal(d.paramCount, 100 + 1034 * 512 + 512 + 2 * (512 * 512 + 512) + 512 + 1);
  assert.equal(modelDiscriminator("cgan", 32, 1, "bce").layers.at(-1)!.act.kind, "sigmoid");
  assert.equal(describeSpec(modelGenerator("cgan", 100, 32, 1, 0.8, 3)).params[0].shape.join("x"), "3x3");
  assert.throws(() => modelGenerator("gan", 100, 28, 1, 0.8, 10), /nClasses applies to cgan, not to model gan/);
  assert.equal(describeSpec(modelGenerator("gan")).embedding, null);
});

testOnBackends(
  "NativeMlp.forward with labels: [table[label], x] (first) or [x, table[label]] (last), and the table's gradient",
  (ctx) => {
    for (const at of ["first", "last"] as const) {
      using mlp = new NativeMlp(ctx, {
        input: 2,
        embedding: { classes: 3, dim: 2, at, name: "e" },
        layers: [{ out: 1, bn: null, act: { kind: "none" } }],
      });
      const names = mlp.layout().params.map((t) => `${t.name}@${t.offset}`);
      assert.deepEqual(names, ["e.weight@0", "model.0.weight@6", "model.0.bias@10"], at);
      assert.deepEqual(mlp.layout().embedding, { classes: 3, dim: 2, at, name: "e" });
      const table = [1, 2, 3, 4, 5, 6], w = [0.5, -1, 2, 0.25], b = 0.125;
      mlp.set("params", new Float32Array([...table, ...w, b]));
      const x = new Float32Array([10, 20, -3, 7]); // two rows
      const labels = new Uint32Array([2, 2]);
      const y = mlp.forward(x, 2, true, labels);
      const input = (r: number) => {
        const e = table.slice(2 * labels[r], 2 * labels[r] + 2), xs = [x[2 * r], x[2 * r + 1]];
        return at === "first" ? [...e, ...xs] : [...xs, ...e];
      };
      for (let r = 0; r < 2; r++) {
        const want = input(r).reduce((s, v, j) => s + v * w[j], b);
        assert.ok(Math.abs(y[r] - want) < 1e-4, `${at}: row ${r} ${y[r]} vs ${want}`);
      }
      const dx = mlp.backward(new Float32Array([1, 2]));
      const wx = at === "first" ? w.slice(2) : w.slice(0, 2), we = at === "first" ? w.slice(0, 2) : w.slice(2);
      assert.deepEqual([...dx], [wx[0], wx[1], 2 * wx[0], 2 * wx[1]], `${at}: dx is the caller's x only`);
      const grads = mlp.get("grads");
      // Both rows have label 2: the table's gradient is their scatter-add (1 + 2 times the embedding's weights).
      assert.deepEqual([...grads.subarray(0, 6)], [0, 0, 0, 0, 3 * we[0], 3 * we[1]], `${at}: table gradient`);
      assert.throws(() => mlp.forward(x, 2, false), /has the label embedding "e" \(3 classes\): pass labels/);
      assert.throws(
        () => mlp.forward(x, 2, false, new Uint32Array([0, 3])),
        /NativeMlp.forward: label\[1\] is 3, expected a class in \[0, 3\)$/, // the library's check
      );
      assert.throws(() => mlp.forward(x, 2, false, new Uint32Array([0])), /1 labels for a batch of 2/);
    }
    using plain = new NativeMlp(ctx, { input: 2, layers: [{ out: 1, bn: null, act: { kind: "none" } }] });
    assert.throws(() => plain.forward(new Float32Array(2), 1, false, new Uint32Array([0])), /no label embedding/);
  },
);

const usage = (args: string[], message: string) =>
  assert.throws(() => parseTrainFlags(args), (e: unknown) => {
    assert.ok(e instanceof UsageError, String(e));
    assert.equal(e.message, message);
    return true;
  }, args.join(" "));

Deno.test("train --model cgan: upstream's defaults (img_size 32, n_classes 10, mse), --n_classes, and its refusals", () => {
  const f = parseTrainFlags(["--model", "cgan"]);
  assert.deepEqual(
    [f.model, f.optimizer, f.lr, f.b1, f.b2, f.latent_dim, f.img_size, f.n_classes, f.loss, f.n_critic],
    ["cgan", "adam", 2e-4, 0.5, 0.999, 100, 32, 10, "mse", undefined],
  );
  const g = parseTrainFlags(["--model=cgan", "--n_classes=5", "--img_size=28", "--loss=bce"]);
  assert.deepEqual([g.n_classes, g.img_size, g.loss], [5, 28, "bce"]);
  const gan = parseTrainFlags([]);
  assert.deepEqual([gan.img_size, gan.n_classes, gan.loss], [28, undefined, "bce"]);
  usage(["--n_classes", "10"], "--n_classes applies to cgan, not to model gan");
  usage(["--model", "wgan", "--n_classes=3"], "--n_classes applies to cgan, not to model wgan");
  usage(["--model", "cgan", "--n_classes", "0"], '--n_classes must be an integer in [1, 256], got "0"');
  usage(["--model", "cgan", "--n_classes", "257"], '--n_classes must be an integer in [1, 256], got "257"');
  usage(["--model", "cgan", "--n_critic", "2"], "--n_critic applies to wgan, wgan_gp, wgan_div, not to model cgan");
  const help = trainUsage();
  assert.match(help, /--n_classes \(default 10\) \{cgan\}\n/);
  assert.match(help, /--img_size \(default 28; cgan, aae 32\)\n/);
  assert.match(
    help,
    /--loss \[bce\|mse\|hinge\|relativistic\|relativistic_avg\] \(default bce; cgan mse\) \{gan, cgan\}/,
  );
});

Deno.test("TrainOptions for cgan: the model's defaults and specs; nClasses is refused for the others", () => {
  const r = resolveTrainOptions({ model: "cgan" });
  assert.deepEqual([r.imgSize, r.nClasses, r.loss, r.lr, r.latentDim], [32, 10, "mse", 2e-4, 100]);
  assert.deepEqual(r.generator, modelGenerator("cgan", 100, 32));
  assert.deepEqual(r.discriminator, modelDiscriminator("cgan", 32));
  assert.equal(resolveTrainOptions({ model: "cgan", nClasses: 4 }).discriminator.embedding!.classes, 4);
  assert.equal(resolveTrainOptions({ model: "cgan", imgSize: 28 }).generator.layers.at(-1)!.out, 784);
  assert.equal(resolveTrainOptions({}).imgSize, 28);
  assert.equal(resolveTrainOptions({}).nClasses, undefined);
  assert.ok(isConditional("cgan") && !isConditional("wgan_gp"));
  assert.equal(MODELS.cgan.nClasses, 10);
  assert.throws(
    () => resolveTrainOptions({ nClasses: 10 }),
    /^RangeError: nClasses applies to cgan, not to model gan$/,
  );
  assert.throws(
    () => resolveTrainOptions({ model: "cgan", nClasses: 1.5 }),
    /nClasses must be an integer in \[1, 256\], got 1.5/,
  );
});

Deno.test("cgan trains on the dataset's labels: a dataset without labels, or a label past n_classes, is one clear error", async () => {
  const { labels: _, ...unlabelled } = small14;
  await assert.rejects(
    GanTrainer.create({ ...unlabelled, name: "plain" }, smallOptions()),
    (e: Error) => {
      assert.equal(e.message.split("\n").length, 1);
      assert.match(e.message, /^dataset "plain" has no labels, and model cgan trains on each image's label/);
      return true;
    },
  );
  const firstFive = small14.labels!.indexOf(5);
  await assert.rejects(
    GanTrainer.create(small14, smallOptions({ nClasses: 5, ...smallCgan(8, 196, 5) })),
    {
      message: `dataset "mnist-embedded" has label 5 (image ${firstFive}), but the model has n_classes 5: its labels ` +
        "must be in [0, 4] (raise --n_classes)",
    },
  );
  // The library's own check: labels from the caller, one per image, each below classes.
  using t = await GanTrainer.create(small14, smallOptions({ maxSteps: 2 }));
  assert.throws(
    () => t.gan.setLabels(new Uint32Array(small14.count).fill(10)),
    /NativeGan.setLabels: label\[0\] is 10, expected a class in \[0, 10\)$/,
  );
  assert.throws(() => t.gan.setLabels(new Uint32Array(3)), /3 labels for a dataset of 200 images/);
  t.gan.setData(small14.pixels as Uint8Array<ArrayBuffer>, small14.count); // forgets the labels
  assert.throws(() => t.gan.step(1), /no labels: model cgan trains on the dataset's labels/);
});

Deno.test("cgan: a stopped and resumed run gives bitwise the same losses and networks; the fixed grid is upstream's (column = class)", async () => {
  const record = (e: StepEvent[]) => e.flatMap((s) => [s.dLoss, s.gLoss, s.dReal, s.dFake]);
  const full: StepEvent[] = [], part: StepEvent[] = [];
  let want: Float32Array[];
  {
    using t = await GanTrainer.create(small14, smallOptions({ maxSteps: 16 }));
    await t.run({ onStep: (e) => void full.push(e) });
    want = [t.g.get("params"), t.d.get("params"), t.d.get("adam_v"), t.g.get("running")];
  }
  const out = await Deno.makeTempDir();
  const grids: string[] = [];
  {
    // 200 images in batches of 16: 13 per epoch; 8 steps end inside epoch 0.
    const o = smallOptions({ maxSteps: 8, outDir: out, checkpointEvery: 0, sampleInterval: 7 });
    using t = await GanTrainer.create(small14, o);
    await t.run({ onStep: (e) => void part.push(e), onSample: (e) => void grids.push(...e.paths) });
    // The grid of step 7 was drawn with the networks as they are now (step 7 is the run's last).
    const labels = sampleLabels(100, 10); // 0..9 in every grid row
    assert.deepEqual([...labels.subarray(0, 12)], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]);
    const fixedZ = nativeNormal(7, 0, 100 * 8, "fixed");
    const mine = `${out}/mine.png`, rows = `${out}/rows.png`;
    await saveGrid(mine, t.g.forward(fixedZ, 100, false, labels), 100, 1, 14, 14, { nrow: 10, normalize: true });
    const byRow = Uint32Array.from({ length: 100 }, (_, i) => Math.floor(i / 10)); // the other reading: row = class
    await saveGrid(rows, t.g.forward(fixedZ, 100, false, byRow), 100, 1, 14, 14, { nrow: 10, normalize: true });
    const fixed = await Deno.readFile(`${out}/images/fixed_7.png`);
    assert.deepEqual(fixed, await Deno.readFile(mine), "fixed_7.png is upstream's grid of the fixed noise");
    assert.notDeepEqual(fixed, await Deno.readFile(rows), "the test tells the two label orders apart");
    const img = decodePng(fixed);
    assert.deepEqual([img.width, img.height], [10 * 16 + 2, 10 * 16 + 2]); // 10 x 10 images of 14 + padding 2
  }
  assert.deepEqual(grids.map((p) => p.slice(out.length)), [
    "/images/0.png",
    "/images/fixed_0.png",
    "/images/7.png",
    "/images/fixed_7.png",
  ]);
  const ckpt = await readSafetensorsFile(`${out}/checkpoints/latest.safetensors`);
  assert.deepEqual(ckpt.get("generator.label_emb.weight")!.shape, [10, 10]);
  assert.deepEqual(ckpt.get("discriminator.label_embedding.weight")!.shape, [10, 10]);
  assert.deepEqual(ckpt.get("optimizer_G.exp_avg_sq.label_emb.weight")!.shape, [10, 10]);
  assert.equal(JSON.parse(ckpt.metadata!.config).n_classes, 10);
  {
    using t = await GanTrainer.create(
      small14,
      smallOptions({ maxSteps: 16, resume: `${out}/checkpoints/latest.safetensors` }),
    );
    assert.equal(t.step, 8);
    await t.run({ onStep: (e) => void part.push(e) });
    assert.deepEqual(part.map((e) => e.step), full.map((e) => e.step));
    const a = record(full), b = record(part);
    assert.ok(a.every(Number.isFinite), `finite losses: ${a}`);
    for (let i = 0; i < a.length; i++) assert.ok(Object.is(a[i], b[i]), `value ${i}: ${a[i]} vs ${b[i]}`);
    assert.deepEqual([t.g.get("params"), t.d.get("params"), t.d.get("adam_v"), t.g.get("running")], want);
    // The table is trained: it has left its N(0, 1) start (the first tensor of G's parameters).
    using fresh = new NativeMlp(t.ctx, smallCgan(8, 196).generator);
    fresh.init(7, 0);
    const [now, start] = [t.g.get("params").subarray(0, 100), fresh.get("params").subarray(0, 100)];
    assert.ok(now.some((v, i) => v !== start[i]), "label_emb.weight moved");
    assert.ok(start.every((v, i) => Math.abs(v - now[i]) < 0.1), "by Adam's steps of about lr each");
    // sample(n, { labels }): one label for all, a list cycled, upstream's order by default; refused labels.
    const one = t.sample(3, { labels: 4, seed: 2 }), listed = t.sample(3, { labels: [4, 1], seed: 2 });
    assert.deepEqual(one.subarray(0, 196), listed.subarray(0, 196)); // image 0 has label 4 in both
    assert.notDeepEqual(one.subarray(196, 392), listed.subarray(196, 392)); // image 1: label 4 vs 1
    assert.deepEqual(listed.subarray(392), one.subarray(392)); // image 2: label 4 again (the list cycles)
    assert.deepEqual(t.sample(2, 5), t.sample(2, { seed: 5, labels: [0, 1] })); // the default: i % n_classes
    assert.throws(() => t.sample(2, { labels: 10 }), /label 10 is not a class of this generator: .*\[0, 9\]/);
    assert.throws(() => t.sample(2, { labels: -1 }), /label -1 is not a class/);
    assert.throws(() => t.sample(2, { labels: [] }), /the list is empty/);
  }
  using gan = await GanTrainer.create(syntheticImages(32), smallRunOptions({ maxSteps: 1 }));
  assert.throws(() => gan.sample(2, { labels: 1 }), /labels apply to a conditional model \(cgan\); model gan has none/);
  await Deno.remove(out, { recursive: true });
});

Deno.test("label accuracy: the classifier's agreement with the label asked for, per label and its mean", async () => {
  // The pure function: hand-made probabilities.
  const probs = { data: new Float32Array([0.9, 0.1, 0, 0.2, 0.7, 0.1, 0.1, 0.1, 0.8, 0.6, 0.3, 0.1]), n: 4, d: 3 };
  const a = labelAccuracy(probs, [0, 1, 2, 2], 3);
  assert.deepEqual(a.per_label, [1, 1, 0.5]);
  assert.deepEqual(a.counts, [1, 1, 2]);
  assert.ok(Math.abs(a.mean - 2.5 / 3) < 1e-12);
  assert.deepEqual(labelAccuracy(probs, [0, 0, 0, 0], 4).per_label, [0.5, null, null, null]); // rows 0 and 3 say 0
  assert.throws(() => labelAccuracy(probs, [0, 1, 2, 3], 3), /label \[3\] is 3, expected an integer in 0..2/);
  // Through the evaluator: real digits labelled with their own labels score the classifier's accuracy; shifted
  // labels score near 0; a conditional generator is sampled with equal counts per label.
  using ctx = new Context({ backend: "cpu", threads: 2 });
  const data = spreadDigits(1000);
  using classifier = trainClassifier(ctx, data, { epochs: 3, limit: 1000 });
  using ev = await Evaluator.create(data, { context: ctx, classifier, n: 200, reference: false });
  const idx = Array.from({ length: 200 }, (_, i) => i * 5);
  const images = new Float32Array(200 * 784).map((_, j) =>
    data.pixels[idx[Math.floor(j / 784)] * 784 + (j % 784)] / 127.5 - 1
  );
  const labels = idx.map((i) => data.labels![i]);
  const right = await ev.score(images, { labels, classes: 10 });
  const wrong = await ev.score(images, { labels: labels.map((k) => (k + 1) % 10), classes: 10 });
  assert.ok(right.label_accuracy!.mean > 0.7, `right labels: ${right.label_accuracy!.mean}`);
  assert.ok(wrong.label_accuracy!.mean < 0.2, `shifted labels: ${wrong.label_accuracy!.mean}`);
  assert.equal((await ev.score(images)).label_accuracy, null);
  using g = new NativeMlp(ctx, smallCgan(8, 784).generator);
  g.init(1, 0);
  const fromG = await ev.score(g);
  assert.deepEqual(fromG.label_accuracy!.counts, new Array(10).fill(20));
  assert.equal(fromG.label_accuracy!.per_label.length, 10);
  assert.ok(fromG.label_accuracy!.per_label.every((v) => v !== null && v >= 0 && v <= 1));
});

/** Runs a command in this process, capturing its stderr lines; returns its exit code and them. */
async function captured(command: string, main: (a: string[]) => Promise<number>, args: string[]) {
  const lines: string[] = [];
  const { log, error } = console;
  console.log = () => {};
  console.error = (...a: unknown[]) => void lines.push(a.join(" "));
  try {
    return { code: await runCommand(command, main, args), lines };
  } finally {
    Object.assign(console, { log, error });
  }
}

async function cli(command: string, args: string[], cache: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...SUBPROCESS_PERMS, `src/cli/${command}.ts`, ...args],
    cwd: new URL("../", import.meta.url),
    env: { NODEVICE_SELECT: "1", GAN_NATIVE_CACHE: cache },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("CLI: train --model cgan (a checkpoint and upstream's grid), resume it, sample --label, eval's label accuracy; bad labels are one line", async () => {
  const data = await Deno.makeTempDir(), cache = await Deno.makeTempDir(), out = await Deno.makeTempDir();
  const set = spreadDigits(300);
  await Deno.writeFile(`${data}/train-images-idx3-ubyte`, writeIdx([300, 28, 28], set.pixels));
  const common = ["--dataset=idx", `--data=${data}`, "--batch_size=16", "--n_cpu=2"];
  const flags = [...common, `--out=${out}/run`];
  const noLabels = await cli("train", ["--model", "cgan", ...flags, "--max_steps=1"], cache);
  assert.equal(noLabels.code, 1, noLabels.stderr);
  assert.deepEqual(noLabels.stderr.split("\n").filter((l) => l.startsWith("error: ")).length, 1, noLabels.stderr);
  assert.match(noLabels.stderr, /^error: dataset "idx" has no labels, and model cgan trains on each image's label/m);
  await Deno.writeFile(`${data}/train-labels-idx1-ubyte`, writeIdx([300], set.labels!));
  const train = await cli("train", [
    "--model",
    "cgan",
    ...flags,
    "--max_steps=3",
    "--sample_interval=2",
    "--log_format=seed",
    "--eval_every=3",
    "--eval_n=100",
  ], cache);
  assert.equal(train.code, 0, train.stderr);
  assert.match(train.stderr, /deno-gan: cgan on idx, 300 images/);
  assert.match(train.stderr, /eval at step 3: FID .*, label accuracy \d\.\d{3} \(/);
  assert.match(train.stderr, /^label accuracy: mean \d\.\d{3} \(0: /m); // under the final table
  const evalRow = (await Deno.readTextFile(`${out}/run/metrics.jsonl`)).trim().split("\n").map((l) => JSON.parse(l))
    .find((r) => r.kind === "eval");
  assert.equal(typeof evalRow.label_accuracy, "number");
  assert.equal(evalRow.label_accuracy_per_label.length, 10);
  const finalEval = JSON.parse(await Deno.readTextFile(`${out}/run/run.json`)).final_eval;
  assert.equal(finalEval.label_accuracy, evalRow.label_accuracy);
  assert.deepEqual(train.stdout.trimEnd().split("\n").map((l) => l.match(/^\[Epoch 0\/50\] \[Batch (\d)\/19\]/)?.[1]), [
    "0",
    "1",
    "2",
  ]);
  const config = JSON.parse(await Deno.readTextFile(`${out}/run/run.json`)).config;
  assert.deepEqual([config.model, config.img_size, config.n_classes, config.loss], ["cgan", 32, 10, "mse"]);
  for (const [file, w, h] of [["fixed_0", 342, 342], ["fixed_2", 342, 342], ["0", 172, 138]] as const) {
    const img = decodePng(await Deno.readFile(`${out}/run/images/${file}.png`));
    assert.deepEqual([img.width, img.height], [w, h], file); // 10 x 10 (or the batch's 16, 5 a row) of 32 + 2
  }
  const ckpt = `${out}/run/checkpoints/latest.safetensors`;
  const resumed = await cli("train", [
    "--model",
    "cgan",
    ...flags,
    "--max_steps=5",
    `--resume=${ckpt}`,
    "--log_format=seed",
  ], cache);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /\(resuming at step 3\)/);
  assert.deepEqual(resumed.stdout.trimEnd().split("\n").map((l) => l.match(/\[Batch (\d)\/19\]/)?.[1]), ["3", "4"]);
  const tooFew = await cli("train", ["--model", "cgan", ...common, "--n_classes=3", `--out=${out}/few`], cache);
  assert.equal(tooFew.code, 1, tooFew.stderr);
  assert.match(tooFew.stderr, /^error: dataset "idx" has label 3 \(image \d+\), but the model has n_classes 3/m);

  // sample: --label K, --label list, and upstream's grid without --label.
  const sample = (args: string[]) =>
    captured("sample", sampleMain, ["--checkpoint", ckpt, "--backend", "cpu", ...args]);
  const shapes: [string[], number, number][] = [
    [["--label", "7"], 8 * 34 + 2, 8 * 34 + 2], // 64 images, 8 a row
    [["--label", "1,4,7", "--n", "6"], 3 * 34 + 2, 2 * 34 + 2],
    [[], 10 * 34 + 2, 10 * 34 + 2], // 100: n_classes rows of n_classes
  ];
  for (const [args, w, h] of shapes) {
    const png = `${out}/s${args.join("_")}.png`;
    const r = await sample([...args, "--out", png]);
    assert.equal(r.code, 0, r.lines.join("\n"));
    const img = decodePng(await Deno.readFile(png));
    assert.deepEqual([img.width, img.height], [w, h], args.join(" "));
  }
  const seven = await Deno.readFile(`${out}/s--label_7.png`);
  assert.ok(seven.length > 100);
  const badLabels: [string, RegExp][] = [
    [
      "10",
      /^error: --label: label 10 is not a class of this generator: labels are integers in \[0, 9\] \(n_classes 10\)$/,
    ],
    ["-1", /^error: --label: label -1 is not a class of this generator/],
    ["2.5", /^error: --label: label 2.5 is not a class of this generator/],
    ["seven", /^error: --label must be a label or a comma-separated list of labels \(integers\), got "seven"$/],
    ["1,,2", /^error: --label must be .* got "1,,2"$/],
  ];
  for (const [label, re] of badLabels) {
    const r = await sample(["--label", label, "--out", `${out}/bad.png`]);
    assert.equal(r.code, 2, label);
    assert.equal(r.lines.filter((l) => l.startsWith("error: ")).length, 1, r.lines.join("\n"));
    assert.match(r.lines[0], re);
  }
  // --label on a model without labels.
  {
    using t = await GanTrainer.create(syntheticImages(32), smallRunOptions({ maxSteps: 1, outDir: `${out}/gan` }));
    await t.run();
  }
  const plain = await captured("sample", sampleMain, [
    "--checkpoint",
    `${out}/gan/checkpoints/latest.safetensors`,
    "--label",
    "3",
  ]);
  assert.equal(plain.code, 2);
  assert.match(
    plain.lines[0],
    /^error: --label applies to a conditional model \(cgan\); the generator of ".*" \(model gan\) takes no labels$/,
  );

  // eval: the per-label accuracy (equal counts per label) in the table and the JSON.
  const json = `${out}/eval.json`;
  const ev = await cli(
    "eval",
    ["--checkpoint", ckpt, "--dataset=idx", `--data=${data}`, "--n=300", `--json=${json}`],
    cache,
  );
  assert.equal(ev.code, 0, ev.stderr);
  assert.match(ev.stdout, /^label accuracy: mean \d\.\d{3} \(0: \d\.\d{3}, 1: .*, 9: \d\.\d{3}\)/m);
  const record = JSON.parse(await Deno.readTextFile(json));
  assert.equal(typeof record.label_accuracy, "number");
  assert.equal(record.label_accuracy_per_label.length, 10);
  const mean = record.label_accuracy_per_label.reduce((a: number, v: number) => a + v, 0) / 10;
  assert.ok(Math.abs(record.label_accuracy - mean) < 1e-12, "the mean of the labels' accuracies");
  // The report shows a final_eval's label accuracy under the final scores.
  const run = JSON.parse(await Deno.readTextFile(`${out}/run/run.json`));
  run.final_eval = {
    ...record,
    label_accuracy: 0.625,
    label_accuracy_per_label: [0.5, 0.75, ...new Array(8).fill(null)],
  };
  await Deno.writeTextFile(`${out}/run/run.json`, JSON.stringify(run));
  const html = buildReportHtml(readRunFolder(`${out}/run`), { uplotJs: "", uplotCss: "" });
  assert.match(
    html,
    /<span id="label-accuracy">label accuracy \(how often the classifier names the label asked for\): mean 0\.625 \(0: 0\.5, 1: 0\.75, 2: -, /,
  );
  for (const d of [data, cache, out]) await Deno.remove(d, { recursive: true });
});
