/**
 * Sample quality metrics of a generator, from feature matrices of real and generated samples (e.g. a classifier's
 * penultimate activations): FID, KID, improved precision and recall, density and coverage in one call. The pairwise
 * work (every pair of each set and across the sets) runs on the native GEMM in bounded tiles, three passes shared by
 * the k-NN metrics and KID; FID's covariances are float64 in JavaScript, its matrix square root goes through
 * ml-matrix's symmetric eigen-decompositions, in a worker beside the GEMM passes. {@link RealSide} prepares the real
 * set's part once (one pass, its Gaussian and root) for scoring many generated sets with two passes each. See "Sample quality metrics" in
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
import type { PreparedGaussian } from "./fid.ts";
import { checkKidSizes, type Kid, kidFakeSubsets, kidRealSubsets, KidSums } from "./kid.ts";
import { checkK, ManifoldCounts, type ManifoldMetrics, selfRadii2 } from "./knn.ts";
import { checkBlockSize, DotTiles } from "./pairwise.ts";

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

/**
 * fid.ts, imported by a template with a relative head: `deno publish` can analyze it, and Deno neither loads it with
 * this module (as it would a string literal) nor searches the folder for it (as it does for a template that starts
 * with "./").
 */
const FID_FILE = "fid.ts";
const FID_WORKER = new URL("./fid_worker.ts", import.meta.url).href;

/** Work of fid.ts under way: its value to come, and a way to stop it. */
interface Pending<T> {
  result: Promise<T>;
  cancel(): void;
}

/** What the FID worker is asked (see fid_worker.ts). */
export type FidRequest = { op: "prepare"; real: Features } | { op: "fid"; real: PreparedGaussian; fake: Features };

/**
 * Runs one FID request (about a second of float64 JavaScript at 10,000 x 256) in a worker, so that it runs beside the
 * GEMM passes; without `Worker` or `inWorker`, in this thread when awaited. fid.ts and its npm package are loaded
 * there on first use: importing this module pulls in no npm package.
 */
function startFid<T>(request: FidRequest, inWorker: boolean): Pending<T> {
  if (!inWorker || typeof Worker === "undefined") {
    const inThread = async () => {
      const fid = await import(`../eval/${FID_FILE}`) as typeof import("./fid.ts");
      return fid.answerFidRequest(request) as T;
    };
    return { result: Promise.resolve().then(inThread), cancel: () => {} };
  }
  const worker = new Worker(FID_WORKER, { type: "module" });
  const result = new Promise<T>((resolve, reject) => {
    worker.onmessage = (e: MessageEvent<{ answer?: T; error?: string }>) => {
      worker.terminate();
      if (e.data.error !== undefined) reject(new Error(`FID: ${e.data.error}`));
      else resolve(e.data.answer!);
    };
    worker.onerror = (e: ErrorEvent) => {
      e.preventDefault();
      worker.terminate();
      reject(new Error(`FID worker failed: ${e.message}`));
    };
  });
  worker.postMessage(request); // copies the matrices
  return { result, cancel: () => worker.terminate() };
}

/** Checks a set and the options that concern it alone, before any arithmetic. */
function checkSide(f: Features, name: string, k: number): void {
  checkFeatures(f, name);
  checkK(k, f.n, name);
}

/** Checks the seed option. */
function checkSeed(seed: number): number {
  if (!Number.isInteger(seed) || seed < 0 || seed >= 2 ** 32) {
    throw new RangeError(`seed must be an integer in 0..2^32-1, got ${seed}`);
  }
  return seed;
}

/**
 * The real side of the metrics, computed once and scored against any number of generated sets: the k-NN radii of
 * the real features (the real x real GEMM pass), KID's real kernel sums, and the real Gaussian with its covariance's
 * square root. Scoring a fake set then costs two GEMM passes (fake x fake, real x fake) instead of three.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { computeMetrics, RealSide } from "./metrics.ts";
 *
 * const set = (n: number, shift: number) =>
 *   ({ data: Float32Array.from({ length: n * 4 }, (_, i) => Math.sin(i * 1.3 + shift)), n, d: 4 });
 * const options = { kidSubsets: 5, kidSubsetSize: 50 };
 * using real = await RealSide.prepare(set(200, 0), options);
 * const once = await real.score(set(150, 1));
 * assert.deepEqual(once, await computeMetrics(set(200, 0), set(150, 1), options)); // the same numbers
 * ```
 */
export class RealSide implements Disposable {
  readonly #features: Features;
  readonly #k: number;
  readonly #norms: Float64Array;
  readonly #radii2: Float64Array;
  readonly #kid: { sets: Int32Array[]; m: number; seed: number; sums: Float64Array };
  readonly #gaussian: PreparedGaussian;
  readonly #options: MetricsOptions;

  private constructor(
    features: Features,
    k: number,
    parts: { norms: Float64Array; radii2: Float64Array; kidSums: Float64Array; gaussian: PreparedGaussian },
    kid: { sets: Int32Array[]; m: number; seed: number },
    options: MetricsOptions,
  ) {
    [this.#features, this.#k, this.#options] = [features, k, options];
    [this.#norms, this.#radii2, this.#gaussian] = [parts.norms, parts.radii2, parts.gaussian];
    this.#kid = { ...kid, sums: parts.kidSums };
  }

  /**
   * Prepares `real` (checked first, with every option): one GEMM pass, and the Gaussian in a worker beside it.
   * KID's subset size defaults to `min(1000, N)`; every fake set scored later needs at least that many samples.
   */
  static async prepare(real: Features, options: MetricsOptions = {}): Promise<RealSide> {
    const k = options.k ?? 3;
    checkSide(real, "real", k);
    const seed = checkSeed(options.seed ?? 0);
    const m = options.kidSubsetSize ?? Math.min(1000, real.n);
    const sets = kidRealSubsets(real.n, m, options.kidSubsets ?? 100, seed);
    checkBlockSize(options.blockSize);
    const fid = startFid<PreparedGaussian>({ op: "prepare", real }, options.fidWorker ?? true);
    try {
      using tiles = new DotTiles({ context: options.context, blockSize: options.blockSize });
      const kid = new KidSums({ real: sets, fake: [] }, real.n, 0, real.d);
      const norms = rowSquaredNorms(real);
      const radii2 = selfRadii2(tiles, real, norms, k, (t) => kid.addTile(t, "real"));
      const parts = { norms, radii2, kidSums: kid.real, gaussian: await fid.result };
      return new RealSide(real, k, parts, { sets, m, seed }, options);
    } catch (e) {
      fid.cancel();
      throw e;
    }
  }

  /** Real samples. */
  get n(): number {
    return this.#features.n;
  }

  /** Features per sample. */
  get d(): number {
    return this.#features.d;
  }

  /** Checks `fake` against this real side. */
  #check(fake: Features): void {
    checkSide(fake, "fake", this.#k);
    if (this.d !== fake.d) {
      throw new RangeError(`real has ${this.d} features per sample, fake has ${fake.d}: they must come from one model`);
    }
    checkKidSizes(this.n, fake.n, this.#kid.m, this.#kid.sets.length);
  }

  /**
   * FID, KID, improved precision and recall, density and coverage of `fake` against this real side (`fake` is
   * checked first: the same `d`, at least `k + 1` rows and at least KID's subset size, every value finite).
   */
  async score(fake: Features): Promise<Metrics> {
    this.#check(fake);
    const fid = startFid<number>({ op: "fid", real: this.#gaussian, fake }, this.#options.fidWorker ?? true);
    let pairs: ManifoldMetrics & { kid: Kid };
    try {
      pairs = this.#pairs(fake);
    } catch (e) {
      fid.cancel();
      throw e;
    }
    const { kid, precision, recall, density, coverage } = pairs;
    return { fid: await fid.result, kid: { mean: kid.mean, std: kid.std }, precision, recall, density, coverage };
  }

  /** The two GEMM passes with a fake set (fake x fake, real x fake) and what the k-NN metrics and KID keep. */
  #pairs(fake: Features): ManifoldMetrics & { kid: Kid } {
    const o = this.#options, real = this.#features;
    using tiles = new DotTiles({ context: o.context, blockSize: o.blockSize });
    const sets = {
      real: this.#kid.sets,
      fake: kidFakeSubsets(fake.n, this.#kid.m, this.#kid.sets.length, this.#kid.seed),
    };
    const kid = new KidSums(sets, real.n, fake.n, real.d);
    kid.real.set(this.#kid.sums);
    const fakeNorms = rowSquaredNorms(fake);
    const fakeR2 = selfRadii2(tiles, fake, fakeNorms, this.#k, (t) => kid.addTile(t, "fake"));
    const counts = new ManifoldCounts(this.#radii2, fakeR2, this.#norms, fakeNorms);
    tiles.forEachCross(real, fake, (t) => {
      counts.addTile(t);
      kid.addTile(t, "cross");
    });
    return { ...counts.result(this.#k), kid: kid.result() };
  }

  /** Nothing native is held between calls (the tiles are per call); kept for `using` and future caches. */
  [Symbol.dispose](): void {}
}

/**
 * FID, KID, improved precision and recall, density and coverage of `fake` against `real`. Both sets are checked
 * first (the same `d`, at least `k + 1` rows each, every value finite; the error names the set and the index).
 * Scoring many fake sets against one real set: {@link RealSide}.
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
  const k = options.k ?? 3;
  checkSide(real, "real", k);
  checkSide(fake, "fake", k);
  if (real.d !== fake.d) {
    throw new RangeError(`real has ${real.d} features per sample, fake has ${fake.d}: they must come from one model`);
  }
  checkSeed(options.seed ?? 0);
  const m = options.kidSubsetSize ?? Math.min(1000, real.n, fake.n);
  checkKidSizes(real.n, fake.n, m, options.kidSubsets ?? 100);
  using side = await RealSide.prepare(real, { ...options, kidSubsetSize: m });
  return await side.score(fake);
}
