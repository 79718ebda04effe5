/**
 * The checks a checkpoint must pass beyond its names, dtypes and shapes: the size a checkpoint of the model can have,
 * the values of its statistics, and, on resume, every setting the run depends on and the identity of its data.
 *
 * @example
 * ```ts
 * import { checkResume } from "./checkpoint_checks.ts";
 * import assert from "node:assert/strict";
 *
 * const config = { batch_size: 64, lr: 0.0002, b1: 0.5, b2: 0.999, latent_dim: 100, img_size: 28, channels: 1, seed: 0, bn_eps: 0.8, generator: {}, discriminator: {} };
 * const dataset = { name: "d", count: 1, channels: 1, height: 28, width: 28, sha256: "00" };
 * checkResume("a.safetensors", { config, seed: 0, dataset }, { config, dataset });
 * assert.throws(
 *   () => checkResume("a.safetensors", { config, seed: 0, dataset }, { config: { ...config, batch_size: 32 }, dataset }),
 *   { message: 'Cannot resume from "a.safetensors": it was trained with batch_size = 64, this run has 32' },
 * );
 * ```
 *
 * @module
 */

import type { MlpSpec } from "../model/spec.ts";
import { GAN_MODELS, type GanModel, MODELS } from "../model/models.ts";
import { describeSpec } from "../native/handles.ts";
import { datasetDifference, type DatasetIdentity, describeDatasetIdentity } from "../data/identity.ts";
import type { ReadSafetensorsFileOptions } from "./safetensors.ts";
import { formatBytes } from "./regular_file.ts";

/**
 * The room a checkpoint's size limit leaves for its header beyond its tensors: 16 MiB (the seed's header is 11 KB).
 *
 * @example
 * ```ts
 * import { CHECKPOINT_HEADER_ALLOWANCE } from "./checkpoint_checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(CHECKPOINT_HEADER_ALLOWANCE, 16 * 2 ** 20);
 * ```
 */
export const CHECKPOINT_HEADER_ALLOWANCE = 16 * 2 ** 20;

/** The bytes of one network's tensors in a full checkpoint: state_dict, both Adam moments, the counters. */
function networkBytes(spec: MlpSpec): number {
  const layout = describeSpec(spec); // the library's layout; allocates nothing
  const bnLayers = layout.buffers.length / 2;
  return 4 * layout.paramCount + 4 * layout.bufferCount + 8 * bnLayers + // state_dict + num_batches_tracked
    8 * layout.paramCount + 8; // exp_avg, exp_avg_sq, step
}

/**
 * The size limit of a full checkpoint of these networks: the bytes of its tensors (computed from the specs) plus
 * {@linkcode CHECKPOINT_HEADER_ALLOWANCE}. A file above it cannot be a checkpoint of this model and is refused before
 * it is read.
 *
 * @param g The generator's spec.
 * @param d The discriminator's spec.
 * @param e aae's encoder's spec (absent: none).
 * @returns Options for `readSafetensorsFile` (the limit and why).
 *
 * @example
 * ```ts
 * import { checkpointSizeLimit } from "./checkpoint_checks.ts";
 * import { seedDiscriminator, seedGenerator } from "../model/spec.ts";
 * import assert from "node:assert/strict";
 *
 * const { maxBytes } = checkpointSizeLimit(seedGenerator(), seedDiscriminator());
 * assert.ok(maxBytes > 24e6 && maxBytes < 24e6 + 17 * 2 ** 20);
 * ```
 */
export function checkpointSizeLimit(g: MlpSpec, d: MlpSpec, e?: MlpSpec): Required<ReadSafetensorsFileOptions> {
  const tensors = networkBytes(g) + networkBytes(d) + (e ? networkBytes(e) : 0) + 16; // + train.step, train.seed
  return {
    maxBytes: tensors + CHECKPOINT_HEADER_ALLOWANCE,
    limitNote: `what a checkpoint of this model can hold: ${tensors} bytes of tensors and up to ${
      formatBytes(CHECKPOINT_HEADER_ALLOWANCE)
    } of header`,
  };
}

/**
 * Checks the values of statistics that have a sign: every `running_var` must be above 0 (a BatchNorm divides by
 * `sqrt(running_var + eps)`; a negative one makes every output NaN), every Adam `exp_avg_sq` at least 0 (Adam takes
 * its square root). Finiteness is checked separately.
 *
 * @param values The flat buffer the tensors live in.
 * @param tensors Where each tensor lies (`name`, `offset`, `size`); names not ending in `.running_var` and not
 *   containing `.exp_avg_sq.` are skipped.
 * @param prefix Put before each name in the message (e.g. `"generator."`).
 * @param file The checkpoint, for the message.
 *
 * @example
 * ```ts
 * import { checkStatistics } from "./checkpoint_checks.ts";
 * import assert from "node:assert/strict";
 *
 * const t = [{ name: "model.3.running_var", offset: 0, size: 2 }];
 * checkStatistics(new Float32Array([1, 0.5]), t, "", "g.safetensors");
 * assert.throws(
 *   () => checkStatistics(new Float32Array([1, -1]), t, "generator.", "g.safetensors"),
 *   { message: 'Cannot load checkpoint "g.safetensors": tensor "generator.model.3.running_var" holds -1 at index 1; a running variance must be above 0' },
 * );
 * ```
 */
export function checkStatistics(
  values: Float32Array,
  tensors: readonly { name: string; offset: number; size: number }[],
  prefix: string,
  file: string,
): void {
  for (const t of tensors) {
    const variance = t.name.endsWith(".running_var");
    if (!variance && !t.name.includes(".exp_avg_sq.")) continue;
    for (let i = 0; i < t.size; i++) {
      const v = values[t.offset + i];
      if (variance ? !(v > 0) : !(v >= 0)) {
        throw new Error(
          `Cannot load checkpoint "${file}": tensor "${prefix}${t.name}" holds ${v} at index ${i}; ` +
            (variance ? "a running variance must be above 0" : "a second moment must be at least 0"),
        );
      }
    }
  }
}

/**
 * The settings a resumed run must share with the checkpoint, because the arithmetic of every later step depends on
 * them. `n_epochs` and `sample_interval` may change (to extend a run, or to sample more often): the shuffle of
 * epoch e and the noise of step s depend only on the seed, e and s.
 *
 * @example
 * ```ts
 * import { RESUME_FIELDS } from "./checkpoint_checks.ts";
 * import assert from "node:assert/strict";
 *
 * assert.ok(RESUME_FIELDS.includes("batch_size") && !RESUME_FIELDS.includes("n_epochs"));
 * ```
 */
export const RESUME_FIELDS: readonly string[] = [
  "batch_size",
  "lr",
  "b1",
  "b2",
  "latent_dim",
  "img_size",
  "channels",
  "seed",
  "bn_eps",
  "generator",
  "discriminator",
];

/**
 * The settings of some models only, compared like {@linkcode RESUME_FIELDS} when the checkpoint or the run has one:
 * aae's `encoder` (the other models record none).
 */
export const MODEL_RESUME_FIELDS: readonly string[] = ["encoder"];

function show(v: unknown): string {
  return typeof v === "number" ? String(v) : JSON.stringify(v);
}

/** The first place where `a` and `b` differ, as a path (`generator.layers[1].out`), or null. */
function firstDifference(a: unknown, b: unknown, path: string): { path: string; a: unknown; b: unknown } | null {
  if (Object.is(a, b)) return null;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`);
      if (d) return d;
    }
    return a.length === b.length ? null : { path: `${path}.length`, a: a.length, b: b.length };
  }
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === "object" && x !== null && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(b), ...Object.keys(a)])];
    for (const k of keys) {
      const d = firstDifference(a[k], b[k], `${path}.${k}`);
      if (d) return d;
    }
    return null;
  }
  return { path, a, b };
}

/**
 * The first difference in the model between two configs: `model`, then `optimizer`, then each of the model's options
 * (see `MODELS`). What a config does not record is the default: a checkpoint from before the models trained gan with
 * Adam, one from before the losses with `bce`.
 */
function modelDifference(
  got: Record<string, unknown>,
  want: Record<string, unknown>,
): { key: string; a: unknown; b: unknown } | null {
  const a = got.model ?? "gan", b = want.model ?? "gan";
  if (a !== b || !(GAN_MODELS as readonly unknown[]).includes(a)) return { key: "model", a, b };
  const info = MODELS[a as GanModel];
  const defaults: Record<string, unknown> = { optimizer: info.optimizer, ...info.options };
  for (const [key, def] of Object.entries(defaults)) {
    if (!Object.is(got[key] ?? def, want[key] ?? def)) return { key, a: got[key] ?? def, b: want[key] ?? def };
  }
  return null;
}

/** What a checkpoint records about its run. */
export interface RecordedRun {
  /** The run's settings (the checkpoint's `config` metadata). */
  config: Record<string, unknown>;
  /** The `train.seed` tensor. */
  seed: number;
  /** The data's identity, when recorded. */
  dataset?: DatasetIdentity;
}

/** What the resuming run has. */
export interface CurrentRun {
  /** Its settings, in the form checkpoints record them. */
  config: Record<string, unknown>;
  /** Its data's identity. */
  dataset: DatasetIdentity;
}

/**
 * Checks that a run may resume from a checkpoint: its config is present and agrees on the model, its optimizer and
 * its options (absent: gan, Adam, the defaults) and on every field of {@linkcode RESUME_FIELDS} (the message names the field, or the first differing part of a network's spec, and both
 * values), its `train.seed` agrees with its config, and it was trained on the same data (count, shape and pixel hash;
 * the name is not compared) unless `allowOtherDataset`.
 *
 * @param path The checkpoint, for messages.
 * @param recorded What the checkpoint records.
 * @param current What the resuming run has.
 * @param options `allowOtherDataset: true` skips the data check.
 *
 * @example
 * ```ts
 * import { checkResume } from "./checkpoint_checks.ts";
 * import assert from "node:assert/strict";
 *
 * const dataset = { name: "d", count: 1, channels: 1, height: 28, width: 28, sha256: "00" };
 * assert.throws(
 *   () => checkResume("old.safetensors", { config: {}, seed: 0, dataset }, { config: { batch_size: 64 }, dataset }),
 *   /its config is empty/,
 * );
 * ```
 */
export function checkResume(
  path: string,
  recorded: RecordedRun,
  current: CurrentRun,
  options: { allowOtherDataset?: boolean } = {},
): void {
  const fail = (what: string): never => {
    throw new Error(`Cannot resume from "${path}": ${what}`);
  };
  const got = recorded.config, want = current.config;
  if (RESUME_FIELDS.every((k) => got[k] === undefined)) {
    fail(
      `its config is empty (${JSON.stringify(got).slice(0, 80)}), so nothing says how it was trained ` +
        `(a deno-gan checkpoint records ${RESUME_FIELDS.join(", ")})`,
    );
  }
  const model = modelDifference(got, want);
  if (model) fail(`it was trained with ${model.key} = ${show(model.a)}, this run has ${show(model.b)}`);
  for (const k of RESUME_FIELDS) {
    if (got[k] === undefined) fail(`its config has no ${k} (this run has ${show(want[k])})`);
    const d = firstDifference(got[k], want[k], k);
    if (d) fail(`it was trained with ${d.path} = ${show(d.a)}, this run has ${show(d.b)}`);
  }
  for (const k of MODEL_RESUME_FIELDS) {
    if (got[k] === undefined && want[k] === undefined) continue;
    if (got[k] === undefined) fail(`its config has no ${k}, and this run has one`);
    if (want[k] === undefined) fail(`it was trained with an ${k}, and this run has none`);
    const d = firstDifference(got[k], want[k], k);
    if (d) fail(`it was trained with ${d.path} = ${show(d.a)}, this run has ${show(d.b)}`);
  }
  if (got.seed !== recorded.seed) {
    fail(`its config says seed = ${show(got.seed)} but its train.seed tensor holds ${recorded.seed}`);
  }
  if (options.allowOtherDataset) return;
  const override = "pass --allow_other_dataset (allowOtherDataset: true) to resume on it anyway";
  if (recorded.dataset === undefined) {
    return fail(
      `it records no dataset identity (it was written before deno-gan recorded one), so nothing says it was trained ` +
        `on ${describeDatasetIdentity(current.dataset)}; ${override}`,
    );
  }
  const diff = datasetDifference(recorded.dataset, current.dataset);
  if (diff) {
    fail(
      `it was trained on other data: dataset ${diff.field} = ${show(diff.recorded)}, this run's is ${
        show(diff.current)
      } (trained on ${describeDatasetIdentity(recorded.dataset)}, this run has ${
        describeDatasetIdentity(current.dataset)
      }); ${override}`,
    );
  }
}
