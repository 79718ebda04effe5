/**
 * The worker behind the metrics' FID: it receives one `FidRequest` (copied) and answers `{ answer }` (the prepared
 * real Gaussian, or the distance of a fake set from it), or `{ error }` with the message. Its float64 arithmetic is
 * the same code as in the calling thread ({@link answerFidRequest}), so the value is the same to the last bit; it runs
 * while the calling thread streams the GEMM tiles, on the core the native GEMM leaves idle between its calls.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 *
 * const worker = new Worker(new URL("./fid_worker.ts", import.meta.url), { type: "module" });
 * const ask = (request: unknown) => {
 *   const answer = new Promise<{ answer: unknown }>((resolve) => (worker.onmessage = (e) => resolve(e.data)));
 *   worker.postMessage(request);
 *   return answer;
 * };
 * const x = { data: new Float32Array([0, 1, 2, 3]), n: 4, d: 1 };
 * const { answer: real } = await ask({ op: "prepare", real: x });
 * assert.deepEqual(await ask({ op: "fid", real, fake: { ...x, data: x.data.map((v) => v + 10) } }), { answer: 100 });
 * worker.terminate();
 * ```
 *
 * @module
 */

/// <reference lib="deno.worker" />

import type { FidRequest } from "./metrics.ts";
import { answerFidRequest } from "./fid.ts";

self.onmessage = (e: MessageEvent<FidRequest>) => {
  try {
    self.postMessage({ answer: answerFidRequest(e.data) });
  } catch (err) {
    self.postMessage({ error: err instanceof Error ? err.message : String(err) });
  }
};
