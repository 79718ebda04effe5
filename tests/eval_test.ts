// Evaluation where a user meets it: `train --eval_every` (eval rows in metrics.jsonl, final_eval in run.json, the
// same losses as without it, kept across a resume) and `deno task eval` end to end (the table, the JSON, bad input).

import assert from "node:assert/strict";
import { oneErrorLine } from "./cli_output.ts";
import { GanTrainer } from "../src/train/trainer.ts";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { writeIdx } from "../src/data/idx.ts";
import { NativeMlp } from "../src/native/handles.ts";
import { Context } from "../src/native/handles.ts";
import { saveGenerator } from "../src/train/checkpoint.ts";
import { seedGenerator } from "../src/model/spec.ts";
import { smallRunOptions, SUBPROCESS_PERMS, syntheticImages } from "./small_gan.ts";

const ROOT = new URL("../", import.meta.url);

async function readRows(path: string): Promise<Record<string, unknown>[]> {
  return (await Deno.readTextFile(path)).trimEnd().split("\n").map((l) => JSON.parse(l));
}

Deno.test("train --eval_every: eval rows at every interval and at the end, final_eval in run.json, losses unchanged", async () => {
  const data = syntheticImages(240); // no labels: pixel-space metrics, the class metrics named as skipped
  const out = await Deno.makeTempDir();
  const base = smallRunOptions({ nEpochs: 2, checkpointEvery: 0, sampleInterval: 1000 });
  const losses = async (options: typeof base) => {
    using t = await GanTrainer.create(data, options);
    const seen: number[] = [];
    const evals: number[] = [];
    await t.run({ onStep: (e) => void seen.push(e.dLoss, e.gLoss), onEval: (e) => void evals.push(e.step) });
    return { seen, evals };
  };
  const plain = await losses(base);
  const evaluated = await losses({ ...base, outDir: out, evalEvery: 15, evalN: 100 });
  assert.deepEqual(evaluated.seen, plain.seen, "evaluating must not change training");
  assert.deepEqual(evaluated.evals, [15, 30, 40]); // 20 steps per epoch: every 15, and the end
  const rows = await readRows(`${out}/metrics.jsonl`);
  const evalRows = rows.filter((r) => r.kind === "eval");
  assert.deepEqual(evalRows.map((r) => r.step), [15, 30, 40]);
  for (const r of evalRows) {
    for (const k of ["fid", "kid", "kid_std", "precision", "recall", "density", "coverage", "seconds"]) {
      assert.equal(typeof r[k], "number", `${k} in ${JSON.stringify(r)}`);
    }
    assert.equal(r.classes_covered, null);
    assert.equal(r.n, 100);
  }
  // the eval row of step 15 follows the row of step 14 (the state after 15 steps)
  const i = rows.findIndex((r) => r.kind === "eval");
  assert.equal(rows[i - 1].step, 14);
  const run = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
  assert.deepEqual(run.eval, { every: 15, n: 100 });
  assert.equal(run.final_eval.step, 40);
  assert.equal(run.final_eval.fid, evalRows[2].fid);
  assert.equal(run.final_eval.features, "pixels");
  assert.match(run.final_eval.skipped[0], /no labels/);
  assert.equal(typeof run.final_eval.reference.noise.fid, "number");
  assert.equal(typeof run.finished, "string");
  await Deno.remove(out, { recursive: true });
});

Deno.test("train --eval_every: a resume keeps the eval row of the step it resumes from", async () => {
  const data = syntheticImages(240);
  const out = await Deno.makeTempDir();
  const options = smallRunOptions({ nEpochs: 2, checkpointEvery: 20, sampleInterval: 1000, outDir: out });
  {
    using t = await GanTrainer.create(data, { ...options, evalEvery: 20, evalN: 50, maxSteps: 20 });
    await t.run();
  }
  {
    using t = await GanTrainer.create(data, {
      ...options,
      evalEvery: 20,
      evalN: 50,
      resume: `${out}/checkpoints/latest.safetensors`,
    });
    await t.run();
  }
  const evalSteps = (await readRows(`${out}/metrics.jsonl`)).filter((r) => r.kind === "eval").map((r) => r.step);
  assert.deepEqual(evalSteps, [20, 40]);
  await Deno.remove(out, { recursive: true });
});

Deno.test("GanTrainer: evalEvery and evalN are checked before anything is built", async () => {
  const data = syntheticImages(24);
  await assert.rejects(
    GanTrainer.create(data, smallRunOptions({ evalEvery: -1 })),
    /evalEvery must be an integer >= 0/,
  );
  await assert.rejects(GanTrainer.create(data, smallRunOptions({ evalN: 2 })), /evalN must be an integer >= 4, got 2/);
  await assert.rejects(
    GanTrainer.create(data, smallRunOptions({ evalEvery: 10, evalN: 2 ** 40, memoryLimit: 2 ** 30 })),
    /evaluations of 1099511627776 samples\) needs about/,
  );
});

/** `count` embedded digits, evenly spaced (they are sorted by digit), as IDX files in a new folder (with labels). */
async function digitsIdx(count: number, labels = true): Promise<string> {
  const all = await loadEmbeddedMnist(), step = Math.floor(all.count / count);
  const pick = Array.from({ length: count }, (_, i) => i * step);
  const digits = {
    pixels: new Uint8Array(count * 784).map((_, j) => all.pixels[pick[Math.floor(j / 784)] * 784 + (j % 784)]),
    labels: Uint8Array.from(pick, (i) => all.labels![i]),
  };
  const dir = await Deno.makeTempDir();
  await Deno.writeFile(
    `${dir}/train-images-idx3-ubyte`,
    writeIdx([count, 28, 28], digits.pixels.slice(0, count * 784)),
  );
  if (labels) await Deno.writeFile(`${dir}/train-labels-idx1-ubyte`, writeIdx([count], digits.labels!.slice(0, count)));
  return dir;
}

async function cli(command: string, args: string[], cache: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...SUBPROCESS_PERMS, `src/cli/${command}.ts`, ...args],
    cwd: ROOT,
    env: { GAN_NATIVE_CACHE: cache, NODEVICE_SELECT: "1" },
    stdout: "piped",
    stderr: "piped",
  }).output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test("deno task eval: a short run's checkpoint scored with the reference rows, as a table and as JSON", async () => {
  const data = await digitsIdx(1200);
  const cache = await Deno.makeTempDir(); // a classifier of these 1,200 digits is trained once, here
  const out = await Deno.makeTempDir();
  const train = await cli("train", [
    "--dataset=idx",
    `--data=${data}`,
    `--out=${out}`,
    "--max_steps=20",
    "--eval_every=10",
    "--eval_n=300",
    "--n_cpu=2",
    "--log_format=seed",
  ], cache);
  assert.equal(train.code, 0, train.stderr);
  assert.match(train.stderr, /training the classifier of "idx"/);
  assert.match(train.stderr, /eval at step 10: FID \d+\.\d+, precision/);
  assert.match(train.stderr, /generator \(step 20\)\s+\d+\.\d+/); // the final table
  const json = `${out}/eval.json`;
  const r = await cli("eval", [
    `--checkpoint=${out}/checkpoints/latest.safetensors`,
    "--dataset=idx",
    `--data=${data}`,
    "--n=300",
    `--json=${json}`,
  ], cache);
  assert.equal(r.code, 0, r.stderr);
  assert.doesNotMatch(r.stderr, /training the classifier/); // cached by the training run
  const lines = r.stdout.split("\n");
  assert.match(lines[0], /idx: 300 samples of .* \(step 20\), classifier features \(classifier held-out accuracy/);
  assert.match(lines[1], /FID\s+KID ± std\s+precision\s+recall\s+density\s+coverage\s+classes/);
  assert.match(lines[2], /^generator \(step 20\)/);
  assert.match(lines[3], /^real halves \(best\)/);
  assert.match(lines[4], /^uniform noise \(worst\)/);
  const j = JSON.parse(await Deno.readTextFile(json));
  for (const k of ["fid", "kid", "precision", "recall", "density", "coverage", "classes_covered", "classifier_score"]) {
    assert.equal(typeof j[k], "number", `${k}: ${JSON.stringify(j[k])}`);
  }
  assert.equal(j.step, 20);
  assert.equal(j.n, 300);
  assert.equal(j.histogram.length, 10);
  assert.ok(j.reference.real.fid < j.reference.noise.fid);
  // the same seed gives the same numbers as the run's final evaluation
  const run = JSON.parse(await Deno.readTextFile(`${out}/run.json`));
  assert.equal(j.fid, run.final_eval.fid);
  assert.deepEqual(j.reference, run.final_eval.reference);
  // the reference rows are cached beside the classifier; a damaged file is computed again and rewritten
  const [refFile] = [...Deno.readDirSync(`${cache}/classifiers`)].map((e) => e.name).filter((n) =>
    n.endsWith(".reference-n300-seed0.json")
  );
  assert.ok(refFile, "a cached reference file");
  await Deno.writeTextFile(`${cache}/classifiers/${refFile}`, '{"format": "deno-gan-reference/2", "real": ');
  const again = await cli("eval", [
    `--checkpoint=${out}/checkpoints/latest.safetensors`,
    "--dataset=idx",
    `--data=${data}`,
    "--n=300",
    `--json=${json}`,
  ], cache);
  assert.equal(again.code, 0, again.stderr);
  assert.deepEqual(JSON.parse(await Deno.readTextFile(json)).reference, j.reference);
  const rewritten = JSON.parse(await Deno.readTextFile(`${cache}/classifiers/${refFile}`));
  assert.equal(rewritten.real.fid, j.reference.real.fid);
  assert.deepEqual(rewritten.noise.kid, { mean: j.reference.noise.kid, std: j.reference.noise.kid_std });
  for (const dir of [data, cache, out]) await Deno.remove(dir, { recursive: true });
});

Deno.test("deno task eval: bad input is one error line (usage: exit 2; data: exit 1); no labels skips the class metrics", async () => {
  const cache = await Deno.makeTempDir();
  const dir = await Deno.makeTempDir();
  // a generator of 3x28x28 images, as a generator.safetensors
  const g3 = `${dir}/rgb.safetensors`;
  {
    using ctx = new Context({ backend: "cpu" });
    const spec = seedGenerator(100, 28, 3);
    using g = new NativeMlp(ctx, spec);
    g.init(0, 0);
    await saveGenerator(g3, g, { generator: spec, img_size: 28, channels: 3, latent_dim: 100 });
  }
  const usage: [string[], RegExp][] = [
    [[], /--checkpoint PATH is required/],
    [["--checkpoint", g3, "--n", "0"], /--n must be an integer in \[4, 2147483647\], got "0"/],
    [["--checkpoint", g3, "--backend", "tpu"], /--backend must be auto, cpu or gpu, got "tpu"/],
  ];
  for (const [args, message] of usage) {
    const r = await cli("eval", args, cache);
    assert.equal(r.code, 2, r.stderr);
    oneErrorLine(r.stderr, message);
  }
  const rgb = await cli("eval", ["--checkpoint", g3, "--dataset", "embedded"], cache);
  assert.equal(rgb.code, 1, rgb.stderr);
  oneErrorLine(rgb.stderr, /the checkpoint makes 3x28x28 images, the dataset "mnist-embedded" has 1x28x28 images/);

  const g1 = `${dir}/gray.safetensors`;
  {
    using ctx = new Context({ backend: "cpu" });
    using g = new NativeMlp(ctx, seedGenerator());
    g.init(0, 0);
    await saveGenerator(g1, g, { img_size: 28, channels: 1, latent_dim: 100 });
  }
  const huge = await cli("eval", ["--checkpoint", g1, "--dataset", "embedded", "--n", "2000000000"], cache);
  assert.equal(huge.code, 1, huge.stderr);
  oneErrorLine(huge.stderr, /evaluating 2000000000 samples needs about \d+\.\d GiB of memory, more than the limit/);

  const unlabelled = await digitsIdx(300, false);
  const r = await cli("eval", ["--checkpoint", g1, "--dataset", "idx", "--data", unlabelled, "--n", "300"], cache);
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /pixels features/);
  assert.match(r.stdout, /skipped: classes_covered, class_kl, classifier_score: the dataset has no labels/);
  for (const d of [cache, dir, unlabelled]) await Deno.remove(d, { recursive: true });
});
