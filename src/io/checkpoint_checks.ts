/**
 * The checks a checkpoint must pass beyond its names, dtypes and shapes: the size a checkpoint of the model can have.
 *
 * @example
 * ```ts
 * import { checkpointSizeLimit } from "./checkpoint_checks.ts";
 * import assert from "node:assert/strict";
 *
 * const g = { input: 2, layers: [{ out: 3, bn: null, act: { kind: "tanh" as const } }] };
 * const d = { input: 3, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" as const } }] };
 * assert.equal(checkpointSizeLimit(g, d).maxBytes, 12 * 9 + 8 + 12 * 4 + 8 + 16 + 16 * 2 ** 20);
 * ```
 *
 * @module
 */

import { type MlpSpec, tensorLayout } from "../model/spec.ts";
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
  const layout = tensorLayout(spec);
  const bnLayers = layout.buffers.length / 2;
  return 4 * layout.paramCount + 4 * layout.bufferCount + 8 * bnLayers + // state_dict + num_batches_tracked
    8 * layout.paramCount + 8; // exp_avg, exp_avg_sq, step
}

/**
 * The size limit of a full checkpoint of these two networks: the bytes of its tensors (computed from the specs)
 * plus {@linkcode CHECKPOINT_HEADER_ALLOWANCE}. A file above it cannot be a checkpoint of this model and is refused
 * before it is read.
 *
 * @param g The generator's spec.
 * @param d The discriminator's spec.
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
export function checkpointSizeLimit(g: MlpSpec, d: MlpSpec): Required<ReadSafetensorsFileOptions> {
  const tensors = networkBytes(g) + networkBytes(d) + 16; // + train.step, train.seed
  return {
    maxBytes: tensors + CHECKPOINT_HEADER_ALLOWANCE,
    limitNote: `what a checkpoint of this model can hold: ${tensors} bytes of tensors and up to ${
      formatBytes(CHECKPOINT_HEADER_ALLOWANCE)
    } of header`,
  };
}
