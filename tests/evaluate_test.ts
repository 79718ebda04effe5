// evaluate(): the classifier's features, the metrics and the reference rows, end to end on the embedded digits with
// a small classifier (a quick recipe passed in) and 500 samples: real digits score near the real-vs-real reference,
// a collapsed set covers one class with recall near 0, noise scores like the noise reference; a generator is sampled
// from a fixed seed (the same seed, the same result); a dataset without labels runs the pixel-space metrics and says
// which were skipped.

import assert from "node:assert/strict";
import { evaluate } from "../src/eval/evaluate.ts";
import { trainClassifier } from "../src/eval/classifier.ts";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { Context, NativeMlp } from "../src/native/handles.ts";

const digits = await loadEmbeddedMnist();
const N = 500;

/** `n` digits in [-1, 1], taken every `stride` images from `start` (all ten classes). */
function someDigits(n: number, start: number, stride: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n * 784);
  for (let r = 0; r < n; r++) {
    const i = (start + r * stride) % digits.count;
    for (let j = 0; j < 784; j++) out[r * 784 + j] = digits.pixels[i * 784 + j] / 127.5 - 1;
  }
  return out;
}

Deno.test("evaluate: real digits, a collapsed set and noise, each against its reference rows", async () => {
  using ctx = new Context({ backend: "cpu" });
  using classifier = trainClassifier(ctx, digits, { epochs: 2, limit: 3000 });
  const real = await evaluate(someDigits(N, 7, 19), digits, { context: ctx, classifier });
  assert.equal(real.n, N);
  assert.equal(real.features, "classifier");
  assert.equal(real.classes_covered, 10);
  assert.ok(real.precision > 0.6 && real.recall > 0.6, JSON.stringify(real));
  const ref = real.reference!;
  assert.ok(real.fid < 3 * ref.real.fid + 1, `digits ${real.fid} vs real reference ${ref.real.fid}`);
  assert.ok(ref.noise.fid > 10 * ref.real.fid, `noise reference ${ref.noise.fid} vs real ${ref.real.fid}`);
  assert.ok(ref.noise.precision < 0.05);

  const one = someDigits(1, 123, 1);
  const collapsed = new Float32Array(N * 784).map((_, i) => one[i % 784]);
  const c = await evaluate(collapsed, digits, { context: ctx, classifier, reference: false });
  assert.equal(c.classes_covered, 1);
  assert.ok(c.recall < 0.02, `collapsed recall ${c.recall}`);
  assert.ok(c.classifier_score! < 1.1, `collapsed score ${c.classifier_score}`);
  assert.equal(c.reference, undefined);
  assert.ok(c.fid > real.fid);
});

Deno.test("evaluate: a generator is sampled from a fixed seed; the same seed gives the same result", async () => {
  using ctx = new Context({ backend: "cpu" });
  using classifier = trainClassifier(ctx, digits, { epochs: 1, limit: 1000 });
  using g = new NativeMlp(ctx, { input: 8, layers: [{ out: 784, bn: null, act: { kind: "tanh" } }] });
  g.init(3, 0);
  const a = await evaluate(g, digits, { context: ctx, classifier, n: 1200, reference: false });
  const b = await evaluate(g, digits, { context: ctx, classifier, n: 1200, reference: false });
  assert.equal(a.n, 1200);
  assert.deepEqual(a, b);
  const other = await evaluate(g, digits, { context: ctx, classifier, n: 1200, seed: 1, reference: false });
  assert.notEqual(other.fid, a.fid);
});

Deno.test("evaluate: without labels the pixel-space metrics run and the class metrics are named as skipped", async () => {
  const { labels: _, ...unlabelled } = digits;
  const r = await evaluate(someDigits(300, 1, 31), unlabelled, { reference: false });
  assert.equal(r.features, "pixels");
  assert.equal(r.classes_covered, null);
  assert.equal(r.classifier_accuracy, null);
  assert.match(r.skipped.join(";"), /classes_covered, class_kl, classifier_score: the dataset has no labels/);
  assert.ok(Number.isFinite(r.fid) && r.precision > 0.3);
  await assert.rejects(evaluate(new Float32Array(100), digits), /100 values, not a whole number of 784-value images/);
});
