// Checkpoint checks beyond names and shapes: every statistic's value, a config required and compared in full on
// resume, the identity of the training data recorded and compared (with --allow_other_dataset to override), and the
// cost of that identity (one SHA-256 of the pixels).

import assert from "node:assert/strict";
import { GanTrainer, type TrainOptions } from "../src/train/trainer.ts";
import { readSafetensorsFile, type TensorEntry, writeSafetensorsFile } from "../src/io/safetensors.ts";
import { type Dataset, loadEmbeddedMnist, loadIdxDataset } from "../src/data/dataset.ts";
import { writeIdx } from "../src/data/idx.ts";
import { parseTrainFlags } from "../src/cli/flags.ts";
import { datasetIdentity } from "../src/data/identity.ts";
import { smallGan, smallRunOptions, SUBPROCESS_PERMS, syntheticImages } from "./small_gan.ts";

const data = syntheticImages(96);
const opts: TrainOptions = smallRunOptions({ nEpochs: 10, sampleInterval: 1000, checkpointEvery: 2 });
const PERMS = SUBPROCESS_PERMS;
const decoder = new TextDecoder();

/** A 4-step run's folder: checkpoints/latest.safetensors (step 4) and generator.safetensors. */
async function trained(): Promise<string> {
  const out = await Deno.makeTempDir();
  using t = await GanTrainer.create(data, { ...opts, maxSteps: 4, outDir: out });
  await t.run();
  return out;
}

/** Writes a copy of a safetensors file with some tensors' values or its metadata changed. */
async function altered(
  from: string,
  to: string,
  change: { values?: Record<string, [number, number]>; metadata?: (m: Record<string, string>) => void },
): Promise<string> {
  const map = await readSafetensorsFile(from);
  const entries: TensorEntry[] = [...map].map(([name, t]) => ({ name, ...t, data: t.data.slice() as Float32Array }));
  for (const [name, [index, value]] of Object.entries(change.values ?? {})) {
    const e = entries.find((x) => x.name === name);
    assert.ok(e, name);
    (e.data as Float32Array)[index] = value;
  }
  const metadata = { ...map.metadata };
  change.metadata?.(metadata);
  await writeSafetensorsFile(to, entries, metadata);
  return to;
}

Deno.test("checkpoints: every statistic is checked: a running_var at or below 0, a negative exp_avg_sq", async () => {
  const out = await trained();
  const latest = `${out}/checkpoints/latest.safetensors`, plain = `${out}/checkpoints/generator.safetensors`;
  try {
    // The sample command on a generator whose BatchNorm variance is negative (it wrote a one-colour PNG, exit 0).
    const sample = (path: string) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", ...PERMS, "src/cli/sample.ts", "--checkpoint", path, "--n", "4", "--out", `${out}/s.png`],
        stdout: "piped",
        stderr: "piped",
      }).output();
    for (
      const [file, name] of [
        [latest, "generator.model.3.running_var"],
        [plain, "model.3.running_var"],
      ] as const
    ) {
      for (const bad of [-1, 0]) {
        const path = await altered(file, `${out}/bad.safetensors`, { values: { [name]: [5, bad] } });
        const r = await sample(path);
        assert.notEqual(r.code, 0, `sample accepted ${name}[5] = ${bad}`);
        assert.match(
          decoder.decode(r.stderr),
          new RegExp(
            `Cannot load checkpoint ".*bad.safetensors": tensor "${name}" holds ${bad} at index 5; ` +
              `a running variance must be above 0`,
          ),
        );
      }
    }
    // Resume: the same for the networks, and Adam's second moments.
    const cases: [string, number, RegExp][] = [
      ["generator.model.3.running_var", -0.25, /"generator.model.3.running_var" holds -0.25 at index 5; a running/],
      [
        "optimizer_G.exp_avg_sq.model.0.weight",
        -0.5,
        /tensor "optimizer_G.exp_avg_sq.model.0.weight" holds -0.5 at index 5; a second moment must be at least 0/,
      ],
      [
        "optimizer_D.exp_avg_sq.model.2.bias",
        -0.125,
        /tensor "optimizer_D.exp_avg_sq.model.2.bias" holds -0.125 at index 0; a second moment must be at least 0/,
      ],
      ["generator.model.3.running_mean", NaN, /running statistics hold NaN/],
    ];
    for (const [name, value, re] of cases) {
      const index = name.endsWith(".bias") && name.includes("model.2") ? 0 : 5;
      const path = await altered(latest, `${out}/bad.safetensors`, { values: { [name]: [index, value] } });
      await assert.rejects(GanTrainer.create(data, { ...opts, resume: path }), re, name);
    }
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("resume: a config is required and compared in full: every field the run depends on, both values named", async () => {
  const out = await trained();
  const latest = `${out}/checkpoints/latest.safetensors`;
  const withConfig = (f: (c: Record<string, unknown>) => Record<string, unknown>) =>
    altered(latest, `${out}/c.safetensors`, {
      metadata: (m) => void (m.config = JSON.stringify(f(JSON.parse(m.config)))),
    });
  const refused = async (path: string, re: RegExp, o: TrainOptions = opts) =>
    await assert.rejects(GanTrainer.create(data, { ...o, resume: path }), (e: Error) => {
      assert.match(e.message, new RegExp(`^Cannot resume from ".*c.safetensors": `));
      assert.match(e.message, re);
      return true;
    });
  try {
    // {} used to skip every check (a batch-64 run resumed at batch 32).
    await refused(await withConfig(() => ({})), /its config is empty \(\{\}\), so nothing says how it was trained/);
    await refused(await withConfig(({ lr: _, ...c }) => c), /its config has no lr \(this run has 0.0002\)/);
    await refused(
      await withConfig((c) => ({ ...c, batch_size: 32 })),
      /trained with batch_size = 32, this run has 12$/,
    );
    // The networks' specs in full, not only the shapes the tensors show: a BatchNorm momentum, an activation slope.
    const spec = smallGan(6, 16, 32);
    const g = structuredClone(spec.generator);
    g.layers[1].bn!.momentum = 0.5;
    await refused(
      await withConfig((c) => ({ ...c, generator: g })),
      /it was trained with generator.layers\[1\].bn.momentum = 0.5, this run has 0.1$/,
    );
    const d = structuredClone(spec.discriminator);
    d.layers[0].act = { kind: "leaky_relu", slope: 0.01 };
    await refused(
      await withConfig((c) => ({ ...c, discriminator: d })),
      /it was trained with discriminator.layers\[0\].act.slope = 0.01, this run has 0.2$/,
    );
    await refused(await withConfig((c) => ({ ...c, seed: 3 })), /trained with seed = 3, this run has 9$/);
    await refused(
      await withConfig((c) => c),
      /trained with seed = 9, this run has 4$/,
      { ...opts, seed: 4 },
    );
    // n_epochs and sample_interval may change: a longer run continues exactly.
    using t = await GanTrainer.create(data, { ...opts, nEpochs: 20, sampleInterval: 3, resume: latest });
    assert.equal(t.step, 4);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("resume: the data's identity is recorded and compared; --allow_other_dataset overrides", async () => {
  const out = await trained();
  const latest = `${out}/checkpoints/latest.safetensors`;
  try {
    const id = await datasetIdentity(data);
    const ckpt = await readSafetensorsFile(latest);
    assert.deepEqual(JSON.parse(ckpt.metadata!.dataset), id);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${out}/run.json`)).dataset, id);
    // One pixel changed, or one image fewer: other data. The same pixels under another name: the same data.
    const onePixel: Dataset = { ...data, pixels: data.pixels.slice() };
    onePixel.pixels[1000] ^= 1;
    const fewer: Dataset = { ...data, count: 95, pixels: data.pixels.subarray(0, 95 * 64) };
    const cases: [Dataset, RegExp][] = [
      [onePixel, new RegExp(`dataset sha256 = "${id.sha256}", this run's is "[0-9a-f]{64}"`)],
      [
        fewer,
        /dataset count = 96, this run's is 95 \(trained on "synthetic" \(96 images of 1x8x8, SHA-256 [0-9a-f]{8}…\)/,
      ],
    ];
    for (const [other, re] of cases) {
      await assert.rejects(GanTrainer.create(other, { ...opts, resume: latest }), (e: Error) => {
        assert.match(e.message, /^Cannot resume from ".*latest.safetensors": it was trained on other data: /);
        assert.match(e.message, re);
        assert.match(e.message, /pass --allow_other_dataset \(allowOtherDataset: true\) to resume on it anyway$/);
        return true;
      });
      using t = await GanTrainer.create(other, { ...opts, resume: latest, allowOtherDataset: true });
      assert.equal(t.step, 4);
    }
    using renamed = await GanTrainer.create({ ...data, name: "renamed" }, { ...opts, resume: latest });
    assert.equal(renamed.step, 4);
    // A checkpoint without an identity (written before it was recorded) is refused unless overridden.
    const old = await altered(latest, `${out}/old.safetensors`, { metadata: (m) => void delete m.dataset });
    await assert.rejects(GanTrainer.create(data, { ...opts, resume: old }), /it records no dataset identity/);
    using ok = await GanTrainer.create(data, { ...opts, resume: old, allowOtherDataset: true });
    assert.equal(ok.step, 4);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("resume CLI: onto another dataset exits 1 naming both; --allow_other_dataset continues", async () => {
  assert.equal(parseTrainFlags(["--allow_other_dataset"]).allow_other_dataset, true);
  assert.equal(parseTrainFlags([]).allow_other_dataset, false);
  const dir = await Deno.makeTempDir();
  try {
    const digits = await loadEmbeddedMnist();
    await Deno.mkdir(`${dir}/idx`);
    await Deno.writeFile(
      `${dir}/idx/train-images-idx3-ubyte`,
      writeIdx([640, 28, 28], digits.pixels.slice(0, 640 * 784)),
    );
    const train = (args: string[]) =>
      new Deno.Command(Deno.execPath(), {
        args: ["run", ...PERMS, "src/cli/train.ts", "--backend", "cpu", "--log_format", "seed", ...args],
        stdout: "null",
        stderr: "piped",
      }).output();
    const first = await train(["--dataset", "embedded", "--out", `${dir}/a`, "--max_steps", "2"]);
    assert.equal(first.code, 0, decoder.decode(first.stderr));
    const resume = ["--dataset", "idx", "--data", `${dir}/idx`, "--resume", `${dir}/a/checkpoints/latest.safetensors`];
    const refused = await train([...resume, "--out", `${dir}/b`, "--max_steps", "3"]);
    assert.equal(refused.code, 1);
    assert.match(
      decoder.decode(refused.stderr),
      /it was trained on other data: dataset count = 10000, this run's is 640 \(trained on "mnist-embedded" .*, this run has "idx" \(640 images of 1x28x28/,
    );
    const allowed = await train([...resume, "--out", `${dir}/b`, "--max_steps", "3", "--allow_other_dataset"]);
    assert.equal(allowed.code, 0, decoder.decode(allowed.stderr));
    assert.match(decoder.decode(allowed.stderr), /resuming at step 2/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

const FASHION = "/usr/share/datasets/fashion-mnist";
const hasFashion = (() => {
  try {
    return Deno.statSync(`${FASHION}/train-images-idx3-ubyte.gz`).isFile;
  } catch {
    return false;
  }
})();

Deno.test("identity: its cost, one SHA-256 of the pixels, on the 10,000 embedded digits and on 60,000 Fashion-MNIST", async () => {
  const sets: Dataset[] = [await loadEmbeddedMnist()];
  if (hasFashion) sets.push(await loadIdxDataset(FASHION, "fashion-mnist"));
  for (const ds of sets) {
    await datasetIdentity(ds); // warm-up
    const t0 = performance.now();
    const id = await datasetIdentity(ds);
    const ms = performance.now() - t0;
    console.log(`  ${ds.name}: ${ds.count} images, ${(ds.pixels.length / 1e6).toFixed(1)} MB: ${ms.toFixed(1)} ms`);
    assert.match(id.sha256, /^[0-9a-f]{64}$/);
    assert.deepEqual([id.count, id.channels, id.height, id.width], [ds.count, 1, 28, 28]);
  }
  if (!hasFashion) console.log(`  (Fashion-MNIST not installed in ${FASHION}: apt-get install dataset-fashion-mnist)`);
});
