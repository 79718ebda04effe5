/**
 * The labels of a conditional model's samples (cgan): checked against its number of classes, one per image, cycling
 * through a list, or upstream's grid order (`sample_image`: within each grid row the labels 0..n_row-1, so each
 * column of the grid is one class).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sampleLabels } from "./labels.ts";
 *
 * assert.deepEqual([...sampleLabels(4, 10, 7)], [7, 7, 7, 7]);
 * assert.deepEqual([...sampleLabels(5, 10, [1, 4, 7])], [1, 4, 7, 1, 4]);
 * assert.deepEqual([...sampleLabels(6, 3)], [0, 1, 2, 0, 1, 2]); // upstream's grid order: column = class
 * assert.throws(() => sampleLabels(1, 10, 10), /label 10 is not a class of this generator/);
 * ```
 *
 * @module
 */

/** Labels of samples: one label for every image, or a list the images cycle through. */
export type SampleLabels = number | readonly number[] | Uint32Array;

/**
 * Why `label` is not a class of a generator of `classes` classes, or null when it is one.
 *
 * @param label The label (from a caller: anything).
 * @param classes The generator's classes.
 * @returns The reason, one line, or null.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { labelProblem } from "./labels.ts";
 * assert.equal(labelProblem(3, 10), null);
 * assert.equal(labelProblem(-1, 10), "label -1 is not a class of this generator: labels are integers in [0, 9] (n_classes 10)");
 * ```
 */
export function labelProblem(label: unknown, classes: number): string | null {
  if (Number.isSafeInteger(label) && (label as number) >= 0 && (label as number) < classes) return null;
  const shown = typeof label === "number" ? String(label) : JSON.stringify(label) ?? String(label);
  return `label ${shown} is not a class of this generator: labels are integers in [0, ${classes - 1}] ` +
    `(n_classes ${classes})`;
}

/**
 * The labels of `n` samples of a generator of `classes` classes: `labels` given as one label (every image), as a list
 * (the images cycle through it), or absent (upstream's grid order `i % classes`: equal counts per class when `n` is a
 * multiple of `classes`). Every label is checked.
 *
 * @param n Images.
 * @param classes The generator's classes (its embedding's `classes`).
 * @param labels The labels asked for (default: upstream's order).
 * @returns `[n]` labels.
 * @throws {RangeError} For a label that is not an integer in `[0, classes)`, or an empty list.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { sampleLabels } from "./labels.ts";
 * assert.deepEqual([...sampleLabels(3, 10, new Uint32Array([2]))], [2, 2, 2]);
 * assert.throws(() => sampleLabels(3, 10, []), /labels: the list is empty/);
 * ```
 */
export function sampleLabels(n: number, classes: number, labels?: SampleLabels): Uint32Array<ArrayBuffer> {
  const list: ArrayLike<number> = labels === undefined
    ? Array.from({ length: classes }, (_, i) => i)
    : typeof labels === "number"
    ? [labels]
    : labels;
  if (list.length === 0) throw new RangeError("labels: the list is empty (give at least one label)");
  for (let i = 0; i < list.length; i++) {
    const why = labelProblem(list[i], classes);
    if (why) throw new RangeError(why);
  }
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = list[i % list.length];
  return out;
}

/**
 * Checks the labels of a dataset against a conditional model's classes: every label below `classes`.
 *
 * @param labels The dataset's labels (one per image).
 * @param classes The model's classes.
 * @param dataset The dataset's name, for the message.
 * @throws {RangeError} Naming the first label out of range, its image and n_classes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkDatasetLabels } from "./labels.ts";
 * checkDatasetLabels(new Uint8Array([0, 9]), 10, "digits");
 * assert.throws(
 *   () => checkDatasetLabels(new Uint8Array([0, 12]), 10, "digits"),
 *   { message: 'dataset "digits" has label 12 (image 1), but the model has n_classes 10: its labels must be in [0, 9] (raise --n_classes)' },
 * );
 * ```
 */
export function checkDatasetLabels(labels: ArrayLike<number>, classes: number, dataset: string): void {
  for (let i = 0; i < labels.length; i++) {
    if (labels[i] >= classes) {
      throw new RangeError(
        `dataset "${dataset}" has label ${labels[i]} (image ${i}), but the model has n_classes ${classes}: ` +
          `its labels must be in [0, ${classes - 1}] (raise --n_classes)`,
      );
    }
  }
}
