// The sample-quality metrics (src/eval/) against the float64 reference (tests/reference/metrics_reference.ts) on
// small data, and the properties that say each metric measures what it claims to.
//
// Tolerances. FID's covariances are float64 in both, so FID agrees to ~1e-10 relative; 1e-6 is the check. Distances
// come from the float32 GEMM: `|a|^2 + |b|^2 - 2 a.b` with a.b rounded at ~1e-7 relative, so radii agree to ~1e-6
// relative on unit-scale data; 1e-5 is the check. The k-NN counts are compared exactly: on this seeded data no
// distance lies within that rounding of a radius (a tie would show up as a count off by one). KID's kernel values
// carry the same float32 rounding into sums of ~m^2 terms: 1e-5 relative plus 1e-6 absolute.

import assert from "node:assert/strict";
import { assertTensorClose, mulberry32 } from "./check.ts";
import { type RefFeatures, refFid, refManifold, refMeanCov, refMmd, refRadii } from "./reference/metrics_reference.ts";
import { computeMetrics } from "../src/eval/metrics.ts";
import { frechetDistance, type GaussianStats, gaussianStats } from "../src/eval/fid.ts";
import { kNearestRadii, manifoldMetrics } from "../src/eval/knn.ts";
import { kernelInceptionDistance, kidSubsets } from "../src/eval/kid.ts";
import { classStats } from "../src/eval/class_stats.ts";
import type { Features } from "../src/eval/features.ts";
import { Context, liveHandles } from "../src/native/handles.ts";

/** `n x d` standard normals (Box-Muller from a seeded stream), times `scale` plus `shift`, as float32. */
function gaussian(seed: number, n: number, d: number, scale = 1, shift = 0): Features {
  const rand = mulberry32(seed);
  const data = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) {
    data[i] = shift + scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }
  return { data, n, d };
}

/** The same matrix for the reference: the float32 values, read as float64. */
const ref = (f: Features): RefFeatures => ({ data: Float64Array.from(f.data), n: f.n, d: f.d });

/** A random orthogonal `[d, d]` (Gram-Schmidt of a seeded Gaussian matrix). */
function orthogonal(seed: number, d: number): Float64Array {
  const q = Float64Array.from(gaussian(seed, d, d).data);
  for (let i = 0; i < d; i++) {
    for (let j = 0; j < i; j++) {
      let dot = 0;
      for (let c = 0; c < d; c++) dot += q[i * d + c] * q[j * d + c];
      for (let c = 0; c < d; c++) q[i * d + c] -= dot * q[j * d + c];
    }
    const norm = Math.hypot(...q.subarray(i * d, (i + 1) * d));
    for (let c = 0; c < d; c++) q[i * d + c] /= norm;
  }
  return q;
}

/** `Q^T diag(s) Q`: a covariance with eigenvalues `s` along the rows of `Q`. */
function rotated(q: Float64Array, s: Float64Array, d: number): Float64Array {
  const out = new Float64Array(d * d);
  for (let a = 0; a < d; a++) {
    for (let b = 0; b < d; b++) {
      for (let k = 0; k < d; k++) out[a * d + b] += q[k * d + a] * s[k] * q[k * d + b];
    }
  }
  return out;
}

const relClose = (label: string, actual: number, expected: number, rtol: number, atol = 0) =>
  assertTensorClose(label, [actual], [expected], atol, rtol);

Deno.test("Fréchet distance of two Gaussians with diagonal covariances matches the closed form", () => {
  const d = 16;
  const rand = mulberry32(3);
  const [mu1, mu2, s1, s2] = [0, 1, 2, 3].map((k) => Float64Array.from({ length: d }, () => (k < 2 ? 2 : 3) * rand()));
  let closed = 0;
  for (let j = 0; j < d; j++) closed += (mu1[j] - mu2[j]) ** 2 + s1[j] + s2[j] - 2 * Math.sqrt(s1[j] * s2[j]);
  const diag = (s: Float64Array) => rotated(Float64Array.from({ length: d * d }, (_, i) => +(i % (d + 1) === 0)), s, d);
  const g = (mean: Float64Array, cov: Float64Array): GaussianStats => ({ d, n: 100, mean, cov });
  relClose("FID, diagonal", frechetDistance(g(mu1, diag(s1)), g(mu2, diag(s2))), closed, 1e-6);
  // The same covariances in a rotated basis (both rotated alike, so they still commute): the same distance.
  const q = orthogonal(5, d);
  relClose("FID, rotated", frechetDistance(g(mu1, rotated(q, s1, d)), g(mu2, rotated(q, s2, d))), closed, 1e-6);
});

Deno.test("FID of feature sets matches the float64 reference (Denman-Beavers square root of S1 S2)", async () => {
  const real = gaussian(1, 200, 6);
  const fake = gaussian(2, 150, 6, 1.5, 0.3);
  for (let i = 0; i < fake.n; i++) fake.data[i * 6] += 0.8 * fake.data[i * 6 + 1]; // correlated: S1 S2 not symmetric
  const m = await computeMetrics(real, fake, { kidSubsets: 2, kidSubsetSize: 50 });
  relClose("FID", m.fid, refFid(ref(real), ref(fake)), 1e-6);
  const inThread = await computeMetrics(real, fake, { kidSubsets: 2, kidSubsetSize: 50, fidWorker: false });
  assert.equal(inThread.fid, m.fid); // the worker runs the same float64 code
  const stats = gaussianStats(real);
  const expected = refMeanCov(ref(real));
  assertTensorClose("mean", stats.mean, expected.mean, 1e-12, 1e-10);
  assertTensorClose("covariance", stats.cov, expected.cov, 1e-12, 1e-10);
});

Deno.test("FID of a set with itself is ~0, and FID is symmetric", () => {
  const [a, b] = [gaussianStats(gaussian(7, 500, 32)), gaussianStats(gaussian(8, 400, 32, 1.2, 0.1))];
  const trace = a.cov.reduce((s, v, i) => s + (i % 33 === 0 ? v : 0), 0);
  assert.ok(Math.abs(frechetDistance(a, a)) < 1e-9 * trace, `FID(a, a) = ${frechetDistance(a, a)}`);
  relClose("FID(a, b) vs FID(b, a)", frechetDistance(a, b), frechetDistance(b, a), 1e-9);
  assert.ok(frechetDistance(a, b) > 1);
});

Deno.test("k-NN radii from the native GEMM equal brute force in float64, whatever the blocks", () => {
  const x = gaussian(11, 300, 17);
  for (const k of [1, 3, 5]) {
    const expected = refRadii(ref(x), k);
    // 2048: one block; 47: 7 blocks of 43, the last 42; 7: 43 blocks of 7, the last 6 (uneven, many tiles)
    for (const blockSize of [2048, 47, 7]) {
      assertTensorClose(`radii k=${k} block ${blockSize}`, kNearestRadii(x, k, { blockSize }), expected, 1e-5, 1e-5);
    }
  }
});

Deno.test("precision, recall, density and coverage equal brute force in float64", () => {
  const real = gaussian(21, 260, 5);
  const fake = gaussian(22, 190, 5, 1.3, 0.4);
  const expected = refManifold(ref(real), ref(fake), 3);
  for (const blockSize of [2048, 64, 13]) assert.deepEqual(manifoldMetrics(real, fake, 3, { blockSize }), expected);
  assert.ok(expected.precision > 0.2 && expected.precision < 0.95, `a case away from 0 and 1: ${expected.precision}`);
  assert.deepEqual(manifoldMetrics(real, fake, 5, { blockSize: 50 }), refManifold(ref(real), ref(fake), 5));
});

Deno.test("a set against itself: precision, recall and coverage 1, density 1", async () => {
  const x = gaussian(31, 400, 8);
  const m = await computeMetrics(x, x, { kidSubsets: 10, kidSubsetSize: 100, blockSize: 150 });
  assert.deepEqual([m.precision, m.recall, m.coverage], [1, 1, 1]);
  // Each real ball holds its centre and k - 1 neighbours strictly (the k-th is on the boundary): density k / k.
  assert.equal(m.density, 1);
});

Deno.test("two draws of one distribution: density about 1, precision and recall high, small FID and KID", async () => {
  const [real, fake] = [gaussian(41, 1000, 8), gaussian(42, 1000, 8)];
  const m = await computeMetrics(real, fake, { kidSubsets: 20, kidSubsetSize: 500 });
  assert.ok(Math.abs(m.density - 1) < 0.15, `density ${m.density}`);
  assert.ok(m.precision > 0.7 && m.recall > 0.7 && m.coverage > 0.8, JSON.stringify(m));
  assert.ok(m.fid < 0.1 && Math.abs(m.kid.mean) < 0.01, JSON.stringify(m));
});

Deno.test("a collapsed set (one point repeated) has recall near 0 and covers one class", async () => {
  const real = gaussian(51, 500, 8);
  const point = real.data.slice(8, 16);
  const fake = { data: new Float32Array(300 * 8).map((_, i) => point[i % 8]), n: 300, d: 8 };
  const m = await computeMetrics(real, fake, { kidSubsets: 10, kidSubsetSize: 200 });
  assert.ok(m.recall <= 1 / 500, `recall ${m.recall}`); // at most the real point it copies
  assert.equal(m.precision, 1); // a real point is inside the real manifold
  assert.ok(m.coverage <= 0.02, `coverage ${m.coverage}`);
  // Its classifier output: every sample the same class.
  const probs = { data: new Float32Array(300 * 10).map((_, i) => (i % 10 === 4 ? 1 : 0)), n: 300, d: 10 };
  const s = classStats(probs, Int32Array.from({ length: 500 }, (_, i) => i % 10));
  assert.deepEqual([s.covered, s.realCovered, s.score], [1, 10, 1]);
  relClose("KL(one class || uniform)", s.kl, Math.log((1 + 1e-6) / (0.1 + 1e-6)), 1e-12);
});

Deno.test("a far-away set has precision, recall, density and coverage 0", () => {
  const real = gaussian(61, 200, 8);
  assert.deepEqual(manifoldMetrics(real, gaussian(62, 200, 8, 1, 50)), {
    precision: 0,
    recall: 0,
    density: 0,
    coverage: 0,
  });
});

Deno.test("KID matches the float64 MMD of the same subsets, subset by subset", () => {
  const [real, fake] = [gaussian(71, 130, 5), gaussian(72, 110, 5, 1.2, 0.2)];
  const options = { subsets: 6, subsetSize: 40, seed: 9 };
  const sets = kidSubsets(130, 110, 40, 6, 9);
  const expected = sets.real.map((xs, s) => refMmd(ref(real), ref(fake), xs, sets.fake[s]));
  for (const blockSize of [2048, 47, 16]) {
    const kid = kernelInceptionDistance(real, fake, { ...options, blockSize });
    assertTensorClose(`KID subsets, block ${blockSize}`, kid.subsets, expected, 1e-6, 1e-5);
    const mean = expected.reduce((a, b) => a + b, 0) / expected.length;
    const std = Math.sqrt(expected.reduce((a, b) => a + (b - mean) ** 2, 0) / expected.length);
    assertTensorClose("KID mean, std", [kid.mean, kid.std], [mean, std], 1e-6, 1e-5);
  }
});

Deno.test("KID: ~0 for one set against itself, clearly positive for a shifted set; the seed fixes the subsets", async () => {
  const real = gaussian(81, 2000, 16);
  const options = { kidSubsets: 50, kidSubsetSize: 500 };
  const same = await computeMetrics(real, gaussian(82, 2000, 16), options);
  const shifted = await computeMetrics(real, gaussian(83, 2000, 16, 1, 0.3), options);
  assert.ok(shifted.kid.mean > 10 * shifted.kid.std, JSON.stringify(shifted.kid));
  assert.ok(Math.abs(same.kid.mean) < 0.02 * shifted.kid.mean, `${same.kid.mean} vs ${shifted.kid.mean}`);
  const again = await computeMetrics(real, gaussian(83, 2000, 16, 1, 0.3), options);
  assert.deepEqual(again.kid, shifted.kid);
  const other = await computeMetrics(real, gaussian(83, 2000, 16, 1, 0.3), { ...options, seed: 1 });
  assert.notEqual(other.kid.mean, shifted.kid.mean);
  assert.notDeepEqual(kidSubsets(2000, 2000, 500, 1, 0).real, kidSubsets(2000, 2000, 500, 1, 1).real);
});

Deno.test("computeMetrics: KID as kernelInceptionDistance, the k-NN metrics as manifoldMetrics", async () => {
  const [real, fake] = [gaussian(91, 300, 6), gaussian(92, 250, 6, 1.1)];
  const m = await computeMetrics(real, fake, { k: 4, kidSubsets: 5, kidSubsetSize: 100, seed: 3, blockSize: 70 });
  const kid = kernelInceptionDistance(real, fake, { subsets: 5, subsetSize: 100, seed: 3 });
  assertTensorClose("KID", [m.kid.mean, m.kid.std], [kid.mean, kid.std], 1e-9, 1e-9);
  const { precision, recall, density, coverage } = m;
  assert.deepEqual({ precision, recall, density, coverage }, manifoldMetrics(real, fake, 4));
  assert.deepEqual({ precision, recall, density, coverage }, refManifold(ref(real), ref(fake), 4));
});

Deno.test("classStats: classifier score, classes covered at 2%, KL", () => {
  const n = 1000;
  const uniform = { data: new Float32Array(n * 10).fill(0.1), n, d: 10 };
  const labels = Int32Array.from({ length: n }, (_, i) => i % 10);
  relClose("score of uniform predictions", classStats(uniform, labels).score, 1, 1e-6);
  const oneHot = {
    data: new Float32Array(n * 10).map((_, i) => (i % 10 === Math.floor(i / 10) % 10 ? 1 : 0)),
    n,
    d: 10,
  };
  const s = classStats(oneHot, labels);
  relClose("score of certain, evenly spread predictions", s.score, 10, 1e-9);
  assert.deepEqual([s.covered, s.kl], [10, 0]); // identical histograms
  assert.deepEqual(classStats(oneHot, oneHot), s); // real classes as labels or as probabilities alike
  // 100 samples over 10 classes as 50, 30, 12, 2, 2, 1, 1, 1, 1, 0: at 2%, 5 classes are covered; at 1%, 9
  const counts = [50, 30, 12, 2, 2, 1, 1, 1, 1, 0];
  const classes = counts.flatMap((c, k) => Array(c).fill(k));
  const probs = {
    data: new Float32Array(100 * 10).map((_, i) => (i % 10 === classes[Math.floor(i / 10)] ? 1 : 0)),
    n: 100,
    d: 10,
  };
  const h = classStats(probs, labels);
  assert.equal(h.covered, 5);
  assert.equal(classStats(probs, labels, { threshold: 0.01 }).covered, 9);
  const eps = 1e-6;
  const kl = counts.reduce((a, c) => a + (c ? (c / 100) * Math.log((c / 100 + eps) / (0.1 + eps)) : 0), 0);
  relClose("KL(histogram || uniform)", h.kl, kl, 1e-12);
});

Deno.test("bad input is refused with the problem and the value", async () => {
  const x = gaussian(101, 20, 4);
  await assert.rejects(computeMetrics(x, gaussian(102, 20, 5)), /real has 4 features per sample, fake has 5/);
  await assert.rejects(
    computeMetrics(x, gaussian(103, 3, 4)),
    /fake has 3 samples: the k-th nearest neighbour \(k = 3\) needs at least 4/,
  );
  await assert.rejects(
    computeMetrics(gaussian(103, 5, 4), x, { k: 5 }),
    /real has 5 samples: .*\(k = 5\) needs at least 6/,
  );
  const nan = gaussian(104, 20, 4);
  nan.data[4 * 7 + 2] = NaN;
  await assert.rejects(computeMetrics(x, nan), /fake\.data\[30\] \(row 7, column 2\) is NaN: features must be finite/);
  nan.data[30] = Infinity;
  await assert.rejects(computeMetrics(nan, x), /real\.data\[30\] \(row 7, column 2\) is Infinity/);
  await assert.rejects(
    computeMetrics({ data: new Float32Array(79), n: 20, d: 4 }, x),
    /real has 79 values, expected 20 x 4 = 80/,
  );
  await assert.rejects(
    computeMetrics({ data: new Float64Array(80), n: 20, d: 4 } as unknown as Features, x),
    /real\.data must be a Float32Array, got a Float64Array/,
  );
  await assert.rejects(
    computeMetrics(x, x, { kidSubsetSize: 21 }),
    /KID subset size 21 is larger than the smaller set \(real 20, fake 20/,
  );
  await assert.rejects(computeMetrics(x, x, { kidSubsets: 0 }), /KID subsets must be a positive integer, got 0/);
  await assert.rejects(computeMetrics(x, x, { seed: -1 }), /seed must be an integer in 0..2\^32-1, got -1/);
  await assert.rejects(computeMetrics(x, x, { k: 0 }), /k must be a positive integer, got 0/);
  await assert.rejects(computeMetrics(x, x, { blockSize: 0 }), /blockSize must be an integer in 1..65536, got 0/);
  const probs = { data: new Float32Array([0.5, 0.5, 0.7, 0.2]), n: 2, d: 2 };
  assert.throws(
    () => classStats(probs, [0, 1]),
    /fake probabilities: row 1 sums to 0\.8999\d*, not 1 \(within 0\.001\)/,
  );
  assert.throws(
    () => classStats({ data: new Float32Array([1, 0]), n: 1, d: 2 }, [0, 2]),
    /real label \[1\] is 2, expected an integer in 0..1/,
  );
  assert.throws(
    () => classStats({ data: new Float32Array([1, 0]), n: 1, d: 2 }, { data: new Float32Array([1, 0, 0]), n: 1, d: 3 }),
    /real probabilities have 3 classes, fake ones 2/,
  );
});

Deno.test("native handles: none left behind; a context passed in is used and left open", async () => {
  const before = liveHandles();
  const [real, fake] = [gaussian(111, 50, 4), gaussian(112, 40, 4)];
  await computeMetrics(real, fake, { kidSubsets: 3, kidSubsetSize: 20 });
  assert.equal(liveHandles(), before);
  using ctx = new Context({ backend: "cpu", threads: 1 });
  const m = await computeMetrics(real, fake, { kidSubsets: 3, kidSubsetSize: 20, context: ctx });
  assert.ok(!ctx.closed && liveHandles() === before + 1);
  assert.deepEqual(m, await computeMetrics(real, fake, { kidSubsets: 3, kidSubsetSize: 20 })); // threads change nothing
});
