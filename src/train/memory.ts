/**
 * What a run will need in memory, estimated before anything is allocated, and the limit it must stay under: a
 * stated share (80%) of the machine's memory. A run (or a `sample(n)`) above the limit is refused with a message
 * that gives the estimate and the limit, instead of growing until the machine swaps or the process is killed.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateRunBytes } from "./memory.ts";
 * import { seedDiscriminator, seedGenerator } from "../model/spec.ts";
 * const bytes = estimateRunBytes(seedGenerator(), seedDiscriminator(), 64, { count: 10000, features: 784 });
 * assert.ok(bytes > 32e6 && bytes < 512e6); // the seed's run: about 0.2 GB
 * ```
 *
 * @module
 */

import { describeSpec } from "../native/handles.ts";
import type { MlpSpec } from "../model/spec.ts";

/** The share of the machine's memory a run may plan to use. */
export const MEMORY_SHARE = 0.8;

/** The memory assumed when the machine's cannot be read (no `--allow-sys=systemMemoryInfo`). */
export const ASSUMED_MEMORY = 16 * 2 ** 30;

/** Bytes of one MLP inside the library and the trainer: 4 parameter-sized buffers, running stats, activations. */
function mlpBytes(spec: MlpSpec, rows: number): { native: number; params: number } {
  const l = describeSpec(spec); // validates the spec; allocates nothing
  const widths = spec.layers.reduce((a, x) => a + x.out, spec.input + 2 * (spec.embedding?.dim ?? 0));
  // params, grads, Adam m and v (f32); running stats; per row: activations, saved pre-BN values and gradients.
  const native = 4 * (4 * l.paramCount + l.bufferCount) + 4 * rows * widths * 4;
  return { native, params: l.paramCount + l.bufferCount };
}

/**
 * Estimated peak bytes of a training run: the networks in the library (parameters, gradients, both Adam moments,
 * running statistics, activations for the batch; D sees real and generated rows; aae's encoder sees the batch), the
 * dataset held twice (the caller's copy and the library's), and a checkpoint being written (every tensor copied out,
 * then serialized: about three float32 copies of all four parameter-sized buffers).
 *
 * @param generator The generator's spec.
 * @param discriminator The discriminator's spec.
 * @param batchSize Images per step.
 * @param data The dataset's image count and values per image.
 * @param encoder aae's encoder's spec (absent: none).
 * @returns Bytes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { estimateRunBytes } from "./memory.ts";
 * import { seedDiscriminator, seedGenerator } from "../model/spec.ts";
 * const big = estimateRunBytes(seedGenerator(100, 1024), seedDiscriminator(1024), 64, { count: 10000, features: 1 << 20 });
 * assert.ok(big > 24 * 2 ** 30); // --img_size 1024: more than a 24 GiB machine has
 * ```
 */
export function estimateRunBytes(
  generator: MlpSpec,
  discriminator: MlpSpec,
  batchSize: number,
  data: { count: number; features: number },
  encoder?: MlpSpec,
): number {
  const g = mlpBytes(generator, batchSize), d = mlpBytes(discriminator, 2 * batchSize);
  const e = encoder ? mlpBytes(encoder, batchSize) : { native: 0, params: 0 };
  const checkpoint = 3 * 4 * 4 * (g.params + d.params + e.params);
  return g.native + d.native + e.native + 2 * data.count * data.features + checkpoint;
}

/**
 * The most bytes a run may plan to use: {@link MEMORY_SHARE} of the machine's memory (or of
 * {@link ASSUMED_MEMORY} when it cannot be read), with where that figure came from.
 *
 * @returns The limit and a description of it for messages.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { memoryLimit } from "./memory.ts";
 * assert.ok(memoryLimit().bytes > 0);
 * ```
 */
export function memoryLimit(): { bytes: number; what: string } {
  let total: number | undefined;
  try {
    total = Deno.systemMemoryInfo().total;
  } catch {
    total = undefined; // no --allow-sys=systemMemoryInfo
  }
  const share = `${MEMORY_SHARE * 100}%`;
  return total ? { bytes: MEMORY_SHARE * total, what: `${share} of this machine's ${gib(total)}` } : {
    bytes: MEMORY_SHARE * ASSUMED_MEMORY,
    what: `${share} of an assumed ${gib(ASSUMED_MEMORY)} (run with --allow-sys=systemMemoryInfo to use the real size)`,
  };
}

function gib(bytes: number): string {
  return `${(bytes / 2 ** 30).toFixed(1)} GiB`;
}

/**
 * Throws a RangeError when `bytes` exceeds `limit` (default {@link memoryLimit}), naming what would need them.
 *
 * @param bytes The estimate.
 * @param what What needs them, e.g. `this run (img_size 1024, batch 64, 10000 images)`.
 * @param limit The limit (default: {@link memoryLimit}).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkMemory } from "./memory.ts";
 * assert.throws(() => checkMemory(2 ** 40, "this run", { bytes: 2 ** 30, what: "1 GiB" }), /needs about 1024\.0 GiB/);
 * ```
 */
export function checkMemory(bytes: number, what: string, limit = memoryLimit()): void {
  if (bytes > limit.bytes) {
    throw new RangeError(
      `${what} needs about ${gib(bytes)} of memory, more than the limit of ${gib(limit.bytes)} (${limit.what}); ` +
        `use smaller sizes`,
    );
  }
}
