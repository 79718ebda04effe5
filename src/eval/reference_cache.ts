/**
 * The reference rows of an evaluation, cached beside the classifier they were computed with: they depend only on the
 * dataset, the classifier, the sample count and the seed (and the metric code, named by the format), not on the
 * generator, so `deno task eval` and every training run on the same data compute them once. A cached file is used
 * only when its format, the classifier's SHA-256, `n` and the seed all match and every value is a finite number
 * where one belongs; anything else is computed again and rewritten (atomically).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { cachedReferenceRows } from "./reference_cache.ts";
 * const dir = await Deno.makeTempDir();
 * const row = { fid: 1, kid: { mean: 0, std: 0 }, precision: 1, recall: 1, density: 1, coverage: 1,
 *   classes_covered: 10, class_kl: 0, classifier_score: 9, histogram: [1], n: 4 };
 * const key = { classifierPath: `${dir}/c.safetensors`, classifierSha256: "ab".repeat(32), n: 4, seed: 0 };
 * let computed = 0;
 * const compute = () => Promise.resolve((computed++, { real: row, noise: row }));
 * assert.deepEqual(await cachedReferenceRows(key, compute), { real: row, noise: row });
 * assert.deepEqual(await cachedReferenceRows(key, compute), { real: row, noise: row });
 * assert.equal(computed, 1); // the second came from the file
 * await cachedReferenceRows({ ...key, seed: 1 }, compute);
 * assert.equal(computed, 2); // another seed: other rows
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

import type { QualityRow } from "./evaluate.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { readRegularFile } from "../io/regular_file.ts";

/** The format of the cached file; a change of the metric code that moves any number changes it. */
export const REFERENCE_FORMAT = "deno-gan-reference/2";

/** What identifies a set of reference rows. */
export interface ReferenceKey {
  /** The cached classifier's file (the rows are cached beside it). */
  classifierPath: string;
  /** Its SHA-256. */
  classifierSha256: string;
  /** Samples of the evaluation (the noise row's count; the real subset is `min(n, count)`). */
  n: number;
  /** The evaluation's seed. */
  seed: number;
}

/** The two reference rows. */
export type ReferenceRows = { real: QualityRow; noise: QualityRow };

/** The cached file of `key`. */
export function referencePath(key: ReferenceKey): string {
  return `${key.classifierPath}.reference-n${key.n}-seed${key.seed}.json`;
}

const isNum = (x: unknown) => typeof x === "number" && Number.isFinite(x);
const isNumOrNull = (x: unknown) => x === null || isNum(x);

/** Whether `r` has every field of a row, each of the right kind. */
function isRow(r: unknown): r is QualityRow {
  if (typeof r !== "object" || r === null) return false;
  const o = r as Record<string, unknown>, kid = o.kid as Record<string, unknown> | null;
  return ["fid", "precision", "recall", "density", "coverage", "n"].every((k) => isNum(o[k])) &&
    typeof kid === "object" && kid !== null && isNum(kid.mean) && isNum(kid.std) &&
    ["classes_covered", "class_kl", "classifier_score"].every((k) => isNumOrNull(o[k])) &&
    (o.histogram === null || (Array.isArray(o.histogram) && o.histogram.every(isNum)));
}

/** The rows of `key` from its file, or null when there is none or it does not match. */
function readCached(key: ReferenceKey): ReferenceRows | null {
  let doc: Record<string, unknown>;
  try {
    const bytes = readRegularFile(referencePath(key), { what: "reference rows", maxBytes: 1 << 20 });
    doc = JSON.parse(new TextDecoder().decode(bytes));
  } catch {
    return null; // missing, unreadable, too large, not JSON: computed again
  }
  const same = doc?.format === REFERENCE_FORMAT && doc.classifier_sha256 === key.classifierSha256 &&
    doc.n === key.n && doc.seed === key.seed;
  return same && isRow(doc.real) && isRow(doc.noise) ? { real: doc.real, noise: doc.noise } : null;
}

/**
 * The reference rows of `key`: from the cache when a matching file is there, else `compute()`d and cached.
 *
 * @param key What the rows depend on.
 * @param compute Computes them.
 * @returns The rows.
 */
export async function cachedReferenceRows(
  key: ReferenceKey,
  compute: () => Promise<ReferenceRows>,
): Promise<ReferenceRows> {
  const cached = readCached(key);
  if (cached) return cached;
  const rows = await compute();
  const doc = { format: REFERENCE_FORMAT, classifier_sha256: key.classifierSha256, n: key.n, seed: key.seed, ...rows };
  try {
    await writeFileAtomic(referencePath(key), new TextEncoder().encode(JSON.stringify(doc) + "\n"));
  } catch { /* a read-only cache: the rows are still right, only not kept */ }
  return rows;
}
