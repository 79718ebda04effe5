/**
 * The quality table of `deno task eval` and of the end of an evaluated training run: one row per scored set, the
 * generator's first and the reference rows under it.
 *
 * @module
 */

import type { EvaluateResult, QualityRow } from "./evaluate.ts";
import type { LabelAccuracy } from "./class_stats.ts";

/** One table row. */
function tableRow(label: string, r: QualityRow): string {
  const num = (x: number | null, digits: number) => (x === null ? "-" : x.toFixed(digits));
  return [
    label.padEnd(24),
    num(r.fid, 2).padStart(9),
    `${num(r.kid.mean, 4)} ± ${num(r.kid.std, 4)}`.padStart(20),
    num(r.precision, 3).padStart(9),
    num(r.recall, 3).padStart(7),
    num(r.density, 3).padStart(8),
    num(r.coverage, 3).padStart(8),
    (r.classes_covered === null ? "-" : String(r.classes_covered)).padStart(7),
    num(r.class_kl, 3).padStart(7),
    num(r.classifier_score, 2).padStart(7),
  ].join(" ");
}

/**
 * The result as a table: the generator's row and the reference rows.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { formatTable } from "./table.ts";
 * const row = { fid: 12.5, kid: { mean: 0.5, std: 0.1 }, precision: 0.8, recall: 0.7, density: 0.9, coverage: 0.85,
 *   classes_covered: 10, class_kl: 0.01, classifier_score: 9.5, histogram: null, n: 100 };
 * const text = formatTable("generator", { ...row, features: "classifier", classifier_accuracy: 0.97,
 *   real_histogram: null, skipped: [], label_accuracy: null });
 * assert.match(text, /generator\s+12\.50/);
 * const cgan = formatTable("generator", { ...row, features: "classifier", classifier_accuracy: 0.97,
 *   real_histogram: null, skipped: [], label_accuracy: { mean: 0.75, per_label: [0.5, 1], counts: [2, 2] } });
 * assert.match(cgan, /label accuracy: mean 0\.750 \(0: 0\.500, 1: 1\.000\)/);
 * ```
 */
export function formatTable(label: string, r: EvaluateResult): string {
  const head = [
    "".padEnd(24),
    "FID".padStart(9),
    "KID ± std".padStart(20),
    "precision".padStart(9),
    "recall".padStart(7),
    "density".padStart(8),
    "coverage".padStart(8),
    "classes".padStart(7),
    "KL".padStart(7),
    "score".padStart(7),
  ].join(" ");
  const lines = [head, tableRow(label, r)];
  if (r.reference) {
    lines.push(tableRow("real halves (best)", r.reference.real), tableRow("uniform noise (worst)", r.reference.noise));
  }
  if (r.label_accuracy) lines.push(labelAccuracyLine(r.label_accuracy));
  return lines.join("\n");
}

/**
 * A conditional generator's per-label accuracy as one line: its mean and each label's.
 *
 * @param a The accuracy.
 * @returns `label accuracy: mean 0.912 (0: 0.980, 1: 0.990, ...): how often the classifier names the label asked for`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { labelAccuracyLine } from "./table.ts";
 * assert.match(labelAccuracyLine({ mean: 1, per_label: [1, null], counts: [3, 0] }), /mean 1\.000 \(0: 1\.000, 1: -\)/);
 * ```
 */
export function labelAccuracyLine(a: LabelAccuracy): string {
  const each = a.per_label.map((v, k) => `${k}: ${v === null ? "-" : v.toFixed(3)}`).join(", ");
  return `label accuracy: mean ${a.mean.toFixed(3)} (${each}): how often the classifier names the label asked for`;
}
