/**
 * The worker behind `computeMetrics`'s FID: it receives `{ real, fake }` (two feature matrices, copied), fits both
 * Gaussians and answers `{ fid }`, or `{ error }` with the message. Its float64 arithmetic is the same code as in the
 * calling thread ({@link frechetDistance} of {@link gaussianStats}), so the value is the same to the last bit; it runs
 * while the calling thread streams the GEMM tiles, on the core the native GEMM leaves idle between its calls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const worker = new Worker(new URL("./fid_worker.ts", import.meta.url), { type: "module" });
 * const x = { data: new Float32Array([0, 1, 2, 3]), n: 4, d: 1 };
 * const answer = new Promise((resolve) => (worker.onmessage = (e) => resolve(e.data)));
 * worker.postMessage({ real: x, fake: { ...x, data: x.data.map((v) => v + 10) } });
 * assert.deepEqual(await answer, { fid: 100 });
 * worker.terminate();
 * ```
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { Features } from "./features.ts";
import { frechetDistance, gaussianStats } from "./fid.ts";

self.onmessage = (e: MessageEvent<{ real: Features; fake: Features }>) => {
  try {
    self.postMessage({ fid: frechetDistance(gaussianStats(e.data.real), gaussianStats(e.data.fake)) });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
