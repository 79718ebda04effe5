/**
 * Sample quality metrics of a generator, from feature matrices of real and generated samples (e.g. a classifier's
 * penultimate activations): FID, KID, improved precision and recall, density and coverage in one call. The pairwise
 * work (every pair of each set and across the sets) runs on the native GEMM in bounded tiles, three passes shared by
 * the k-NN metrics and KID; FID's covariances are float64 in JavaScript, its matrix square root goes through
 * ml-matrix's symmetric eigen-decompositions, in a worker beside the GEMM passes. See "Sample quality metrics" in
 * docs/ARCHITECTURE.md for the definitions and the costs.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeMetrics } from "./metrics.ts";
 *
 * const noise = (n: number, d: number, shift: number) =>
 *   ({ data: Float32Array.from({ length: n * d }, (_, i) => Math.sin(i * 12.9898 + shift) * 43758.5453 % 1), n, d });
 * const real = noise(300, 8, 0);
 * const same = await computeMetrics(real, real, { kidSubsets: 10, kidSubsetSize: 100 });
 * assert.ok(Math.abs(same.fid) < 1e-9 && same.precision === 1 && same.recall === 1 && same.coverage === 1);
 * const other = await computeMetrics(real, noise(300, 8, 1), { kidSubsets: 10, kidSubsetSize: 100 });
 * assert.ok(other.fid > 0 && other.precision > 0.5); // another draw of the same distribution
 * ```
 *
 * @module
 */

import type { Context } from "../native/handles.ts";
import { checkFeatures, type Features, rowSquaredNorms } from "./features.ts";
import { type Kid, type KidSubsets, kidSubsets, KidSums } from "./kid.ts";
import { checkK, ManifoldCounts, type ManifoldMetrics, selfRadii2 } from "./knn.ts";
import { DotTiles } from "./pairwise.ts";

/** Options of {@link computeMetrics}. */
export interface MetricsOptions {
  /** The neighbour that sets the k-NN radii of precision, recall, density and coverage (default 3). */
  k?: number;
  /** KID's subset pairs (default 100). */
  kidSubsets?: number;
  /** KID's samples per subset (default `min(1000, N, M)`). */
  kidSubsetSize?: number;
  /** Seed of KID's subsets, an integer in 0..2^32-1 (default 0). */
  seed?: number;
  /** The side of the GEMM tiles (default 1,024; memory grows with its square, see `tileBytes`). */
  blockSize?: number;
  /** The native context the GEMM runs in (default: a CPU context opened and closed by the call). */
  context?: Context;
  /**
   * Compute FID in a worker, beside the GEMM passes (default true). With false it runs in this thread after them:
   * about 0.9 s slower at 10,000 x 256 on 2 cores (4.6 s instead of 3.7), and about 80 MB less at the peak (no second
   * isolate, no copy of the features).
   */
  fidWorker?: boolean;
}

/** The metrics of generated samples against real ones. */
export interface Metrics {
  /** The Fréchet distance of the fitted Gaussians (lower is better, 0 for one set against itself). */
  fid: number;
  /** KID: the mean and standard deviation over the subsets of the unbiased MMD^2 (lower is better, about 0 at best). */
  kid: { mean: number; std: number };
  /** Improved precision: the share of fakes inside the real manifold (fidelity). */
  precision: number;
  /** Improved recall: the share of reals inside the fake manifold (diversity). */
  recall: number;
  /** Density: about 1 when fakes follow the real distribution. */
  density: number;
  /** Coverage: the share of real neighbourhoods holding a fake. */
  coverage: number;
}

const FID_MODULE = new URL("./fid.ts", import.meta.url).href;
const FID_WORKER = new URL("./fid_worker.ts", import.meta.url).href;

/** FID under way: its value to come, and a way to stop the work. */
interface PendingFid {
  result: Promise<number>;
  cancel(): void;
}

/**
 * Starts FID (covariances and eigen-decompositions, about a second of float64 JavaScript at 10,000 x 256) in a
 * worker, so that it runs beside the GEMM passes; without `Worker` or `inWorker`, in this thread when awaited. fid.ts and its npm
 * package are loaded there on first use: importing this module pulls in no npm package.
 */
function startFid(real: Features, fake: Features, inWorker: boolean): PendingFid {
  if (!inWorker || typeof Worker === "undefined") {
    const inThread = async () => {
      const { frechetDistance, gaussianStats } = await import(FID_MODULE) as typeof import("./fid.ts");
      return frechetDistance(gaussianStats(real), gaussianStats(fake));
    };
    return { result: Promise.resolve().then(inThread), cancel: () => {} };
  }
  const worker = new Worker(FID_WORKER, { type: "module" });
  const result = new Promise<number>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ fid?: number; error?: string }>) => {
      worker.terminate();
      if (e.data.error !== undefined) reject(new Error(`FID: ${e.data.error}`));
      else resolve(e.data.fid!);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`FID worker failed: ${e.message}`));
    };
  });
  worker.postMessage({ real, fake }); // copies both matrices
  return { result, cancel: () => worker.terminate() };
}

/** Checks both sets and every option before any arithmetic. */
function checkInputs(real: Features, fake: Features, o: MetricsOptions): { k: number; sets: KidSubsets } {
  checkFeatures(real, "real");
  checkFeatures(fake, "fake");
  if (real.d !== fake.d) {
    throw new RangeError(`real has ${real.d} features per sample, fake has ${fake.d}: they must come from one model`);
  }
  const k = o.k ?? 3;
  checkK(k, real.n, "real");
  checkK(k, fake.n, "fake");
  const seed = o.seed ?? 0;
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new RangeError(`seed must be an integer in 0..2^32-1, got ${seed}`);
  }
  const m = o.kidSubsetSize ?? Math.min(1000, real.n, fake.n);
  return { k, sets: kidSubsets(real.n, fake.n, m, o.kidSubsets ?? 100, seed) };
}

/** The three GEMM passes (real x real, fake x fake, real x fake) and what the k-NN metrics and KID keep of them. */
function pairMetrics(
  real: Features,
  fake: Features,
  k: number,
  sets: KidSubsets,
  o: MetricsOptions,
): ManifoldMetrics & { kid: Kid } {
  using tiles = new DotTiles({ context: o.context, blockSize: o.blockSize });
  const kid = new KidSums(sets, real.n, fake.n, real.d);
  const [realNorms, fakeNorms] = [rowSquaredNorms(real), rowSquaredNorms(fake)];
  const realR2 = selfRadii2(tiles, real, realNorms, k, (t) => kid.addTile(t, "real"));
  const fakeR2 = selfRadii2(tiles, fake, fakeNorms, k, (t) => kid.addTile(t, "fake"));
  const counts = new ManifoldCounts(realR2, fakeR2, realNorms, fakeNorms);
  tiles.forEachCross(real, fake, (t) => {
    counts.addTile(t);
    kid.addTile(t, "cross");
  });
  return { ...counts.result(k), kid: kid.result() };
}

/**
 * FID, KID, improved precision and recall, density and coverage of `fake` against `real`. Both sets are checked
 * first (the same `d`, at least `k + 1` rows each, every value finite; the error names the set and the index).
 *
 * @param real Real features `[N, d]`.
 * @param fake Generated features `[M, d]`.
 * @param options k, KID's subsets and seed, the tile size, the context.
 * @returns The metrics.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeMetrics } from "./metrics.ts";
 *
 * const real = { data: Float32Array.from({ length: 40 }, (_, i) => i % 7), n: 10, d: 4 };
 * const bad = { data: new Float32Array(40).fill(NaN, 13, 14), n: 10, d: 4 };
 * await assert.rejects(computeMetrics(real, bad), /fake\.data\[13\] \(row 3, column 1\) is NaN/);
 * ```
 */
export async function computeMetrics(real: Features, fake: Features, options: MetricsOptions = {}): Promise<Metrics> {
  const { k, sets } = checkInputs(real, fake, options);
  const fid = startFid(real, fake, options.fidWorker ?? true);
  let pairs: ReturnType<typeof pairMetrics>;
  try {
    pairs = pairMetrics(real, fake, k, sets, options);
  } catch (e) {
    fid.cancel();
    throw e;
  }
  const { kid, precision, recall, density, coverage } = pairs;
  return { fid: await fid.result, kid: { mean: kid.mean, std: kid.std }, precision, recall, density, coverage };
}
