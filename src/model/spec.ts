/**
 * MLP specifications: the layer list of a model, the seed GAN's two networks, validation, and the flat parameter layout
 * with PyTorch `state_dict` names (see docs/ARCHITECTURE.md, "Parameter order").
 *
 * @example Usage
 * ```ts
 * import { parameterCount, seedDiscriminator, seedGenerator } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parameterCount(seedGenerator()), 1_510_032);
 * assert.equal(parameterCount(seedDiscriminator()), 533_505);
 * ```
 *
 * @module
 */

/**
 * The activation that ends a block.
 *
 * @example Usage
 * ```ts
 * import type { Activation } from "./spec.ts";
 *
 * const act: Activation = { kind: "leaky_relu", slope: 0.2 };
 * ```
 */
export type Activation =
  | { kind: "none" }
  | { kind: "leaky_relu"; slope: number }
  | { kind: "tanh" }
  | { kind: "sigmoid" };

/**
 * BatchNorm1d settings of a block (PyTorch's `eps` and `momentum`).
 *
 * @example Usage
 * ```ts
 * import type { BatchNormSpec } from "./spec.ts";
 *
 * const bn: BatchNormSpec = { eps: 0.8, momentum: 0.1 };
 * ```
 */
export interface BatchNormSpec {
  /** Added to the variance before the square root; must be positive and finite. */
  eps: number;
  /** Weight of the new batch statistic in the running average, in [0, 1]. */
  momentum: number;
}

/**
 * One fused block: `Linear(in -> out) -> optional BatchNorm1d -> activation`. The block's input size is the previous
 * block's `out` (or the MLP's `input` for the first block).
 *
 * @example Usage
 * ```ts
 * import type { LayerSpec } from "./spec.ts";
 *
 * const layer: LayerSpec = { out: 256, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.2 } };
 * ```
 */
export interface LayerSpec {
  /** Output features of the block. */
  out: number;
  /** BatchNorm1d after the Linear, or `null` for none. */
  bn: BatchNormSpec | null;
  /** The activation applied last. */
  act: Activation;
}

/**
 * A multilayer perceptron: an input size and a list of fused blocks.
 *
 * @example Usage
 * ```ts
 * import type { MlpSpec } from "./spec.ts";
 *
 * const spec: MlpSpec = { input: 4, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] };
 * ```
 */
export interface MlpSpec {
  /** Input features. */
  input: number;
  /** The blocks, in order; at least one. */
  layers: LayerSpec[];
}

/**
 * One named tensor inside a flat buffer.
 *
 * @example Usage
 * ```ts
 * import type { TensorInfo } from "./spec.ts";
 *
 * const t: TensorInfo = { name: "model.0.weight", shape: [128, 100], offset: 0, size: 12800 };
 * ```
 */
export interface TensorInfo {
  /** PyTorch `state_dict` name, e.g. `model.3.running_var`. */
  name: string;
  /** Row-major shape. */
  shape: number[];
  /** First element in the flat buffer. */
  offset: number;
  /** Number of elements (the product of `shape`). */
  size: number;
}

/**
 * The offset tables of an MLP's two flat buffers: parameters (weights, biases, BN gamma/beta) and buffers (BN running
 * statistics).
 *
 * @example Usage
 * ```ts
 * import { seedDiscriminator, tensorLayout, type TensorLayout } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * const layout: TensorLayout = tensorLayout(seedDiscriminator());
 * assert.equal(layout.paramCount, 533_505);
 * ```
 */
export interface TensorLayout {
  /** Parameters in the flat parameter order. */
  params: TensorInfo[];
  /** BN running statistics in the flat buffer order. */
  buffers: TensorInfo[];
  /** Total elements of the parameter buffer. */
  paramCount: number;
  /** Total elements of the running-statistics buffer. */
  bufferCount: number;
}

/**
 * The largest accepted layer width (and input size): 2^20.
 *
 * @example Usage
 * ```ts
 * import { MAX_FEATURES } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_FEATURES, 1048576);
 * ```
 */
export const MAX_FEATURES: number = 1 << 20;

/**
 * The largest accepted parameter count of one MLP: 2^31 (the native library's limit).
 *
 * @example Usage
 * ```ts
 * import { MAX_PARAMETERS } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(MAX_PARAMETERS, 2 ** 31);
 * ```
 */
export const MAX_PARAMETERS: number = 2 ** 31;

/**
 * The seed's generator: `z -> 128 (LeakyReLU 0.2) -> [256, 512, 1024] (BatchNorm1d(eps=bnEps, momentum=0.1),
 * LeakyReLU 0.2) -> channels*imgSize*imgSize (Tanh)`. The first block has no BatchNorm. `bnEps` defaults to the seed's
 * 0.8 (it passes 0.8 as BatchNorm1d's positional `eps`).
 *
 * @param latentDim Size of the noise vector z.
 * @param imgSize Image side in pixels.
 * @param channels Image channels.
 * @param bnEps BatchNorm eps of the three normalized blocks.
 * @returns The generator's spec (validated).
 *
 * @example Usage
 * ```ts
 * import { seedGenerator } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * const g = seedGenerator();
 * assert.deepEqual(g.layers.map((l) => l.out), [128, 256, 512, 1024, 784]);
 * assert.equal(g.layers[1].bn?.eps, 0.8);
 * ```
 */
export function seedGenerator(latentDim = 100, imgSize = 28, channels = 1, bnEps = 0.8): MlpSpec {
  const lrelu: Activation = { kind: "leaky_relu", slope: 0.2 };
  const bn = (): BatchNormSpec => ({ eps: bnEps, momentum: 0.1 });
  const spec: MlpSpec = {
    input: latentDim,
    layers: [
      { out: 128, bn: null, act: { ...lrelu } },
      { out: 256, bn: bn(), act: { ...lrelu } },
      { out: 512, bn: bn(), act: { ...lrelu } },
      { out: 1024, bn: bn(), act: { ...lrelu } },
      { out: channels * imgSize * imgSize, bn: null, act: { kind: "tanh" } },
    ],
  };
  validateSpec(spec);
  return spec;
}

/**
 * The seed's discriminator: `channels*imgSize*imgSize -> 512 (LeakyReLU 0.2) -> 256 (LeakyReLU 0.2) -> 1 (Sigmoid)`,
 * no BatchNorm.
 *
 * @param imgSize Image side in pixels.
 * @param channels Image channels.
 * @returns The discriminator's spec (validated).
 *
 * @example Usage
 * ```ts
 * import { seedDiscriminator } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * const d = seedDiscriminator();
 * assert.equal(d.input, 784);
 * assert.deepEqual(d.layers.map((l) => l.act.kind), ["leaky_relu", "leaky_relu", "sigmoid"]);
 * ```
 */
export function seedDiscriminator(imgSize = 28, channels = 1): MlpSpec {
  const spec: MlpSpec = {
    input: channels * imgSize * imgSize,
    layers: [
      { out: 512, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 256, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 1, bn: null, act: { kind: "sigmoid" } },
    ],
  };
  validateSpec(spec);
  return spec;
}

/** Formats a bad value for an error message. */
function shown(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "number") return Object.is(value, -0) ? "-0" : String(value);
  if (value === null || value === undefined || typeof value === "boolean" || typeof value === "bigint") {
    return String(value);
  }
  if (typeof value === "object") {
    try {
      const s = JSON.stringify(value);
      return s.length > 80 ? `${s.slice(0, 77)}...` : s;
    } catch {
      return Array.isArray(value) ? "an array" : "an object";
    }
  }
  return `a ${typeof value}`;
}

function invalid(Kind: typeof TypeError | typeof RangeError, what: string, expect: string, value: unknown): Error {
  return new Kind(`Invalid MLP spec: ${what} must be ${expect}, got ${shown(value)}`);
}

function checkSize(value: unknown, what: string): number {
  const expect = `an integer in [1, ${MAX_FEATURES}]`;
  if (typeof value !== "number") throw invalid(TypeError, what, expect, value);
  if (!Number.isInteger(value) || value < 1 || value > MAX_FEATURES) throw invalid(RangeError, what, expect, value);
  return value;
}

function checkNumber(value: unknown, what: string, ok: (x: number) => boolean, expect: string): void {
  if (typeof value !== "number") throw invalid(TypeError, what, expect, value);
  if (!Number.isFinite(value) || !ok(value)) throw invalid(RangeError, what, expect, value);
}

function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/**
 * Checks an MLP spec, including one that came from untrusted JSON. Sizes must be integers in [1, 2^20]; a BatchNorm's
 * `eps` positive and finite, its `momentum` finite in [0, 1]; a leaky ReLU's `slope` finite and >= 0 (the backward pass
 * derives the slope from the saved output, which is only correct for slope >= 0, as in PyTorch's in-place LeakyReLU); the
 * activation kind one of `none`, `leaky_relu`, `tanh`, `sigmoid`; at least one layer; at most 2^31 parameters.
 *
 * @param spec The spec to check.
 * @throws {TypeError} A field has the wrong type, or the activation kind is unknown.
 * @throws {RangeError} A number is out of range, or there are no layers or too many parameters.
 *
 * @example Usage
 * ```ts
 * import { validateSpec } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(
 *   () => validateSpec({ input: 4, layers: [{ out: 2, bn: { eps: NaN, momentum: 0.1 }, act: { kind: "none" } }] }),
 *   { name: "RangeError", message: "Invalid MLP spec: layers[0].bn.eps must be a positive finite number, got NaN" },
 * );
 * ```
 */
export function validateSpec(spec: MlpSpec): void {
  const s: unknown = spec;
  if (!isObject(s)) throw invalid(TypeError, "the spec", "an object {input, layers}", s);
  let inFeatures = checkSize(s.input, "input");
  const layers = s.layers;
  if (!Array.isArray(layers)) throw invalid(TypeError, "layers", "an array", layers);
  if (layers.length === 0) throw invalid(RangeError, "layers", "a non-empty array", layers);
  let total = 0;
  for (let i = 0; i < layers.length; i++) {
    const at = `layers[${i}]`;
    const layer: unknown = layers[i];
    if (!isObject(layer)) throw invalid(TypeError, at, "an object {out, bn, act}", layer);
    const out = checkSize(layer.out, `${at}.out`);
    const bn = layer.bn;
    if (bn !== null) {
      if (!isObject(bn)) throw invalid(TypeError, `${at}.bn`, "null or an object {eps, momentum}", bn);
      checkNumber(bn.eps, `${at}.bn.eps`, (x) => x > 0, "a positive finite number");
      checkNumber(bn.momentum, `${at}.bn.momentum`, (x) => x >= 0 && x <= 1, "a finite number in [0, 1]");
    }
    const act = layer.act;
    if (!isObject(act)) throw invalid(TypeError, `${at}.act`, "an object {kind}", act);
    switch (act.kind) {
      case "none":
      case "tanh":
      case "sigmoid":
        break;
      case "leaky_relu":
        checkNumber(act.slope, `${at}.act.slope`, (x) => x >= 0, "a finite number >= 0");
        break;
      default:
        throw invalid(TypeError, `${at}.act.kind`, "one of none, leaky_relu, tanh, sigmoid", act.kind);
    }
    total += out * inFeatures + out + (bn === null ? 0 : 2 * out);
    if (total > MAX_PARAMETERS) {
      throw new RangeError(`Invalid MLP spec: more than 2^31 parameters (${total} after ${at})`);
    }
    inFeatures = out;
  }
}

/**
 * The flat layouts of an MLP (see docs/ARCHITECTURE.md). Parameters, per layer in order: `weight [out, in]`,
 * `bias [out]`, then with BatchNorm `bn.weight (gamma) [out]`, `bn.bias (beta) [out]`. Buffers, per BN layer:
 * `running_mean [out]`, `running_var [out]`. Names follow the seed's `nn.Sequential` state_dict: a module index `k`
 * starts at 0 and advances once for the Linear, once for the BatchNorm if any, and once for the activation unless it is
 * `none`. `num_batches_tracked` is not part of the buffers.
 *
 * @param spec The MLP (validated first).
 * @param prefix The name prefix (`model` in the seed).
 * @returns The params and buffers tables with their total sizes.
 *
 * @example Usage
 * ```ts
 * import { seedGenerator, tensorLayout } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * const { params, buffers } = tensorLayout(seedGenerator());
 * assert.deepEqual(params.slice(0, 3).map((t) => [t.name, t.shape]), [
 *   ["model.0.weight", [128, 100]],
 *   ["model.0.bias", [128]],
 *   ["model.2.weight", [256, 128]],
 * ]);
 * assert.equal(buffers[0].name, "model.3.running_mean");
 * ```
 */
export function tensorLayout(spec: MlpSpec, prefix = "model"): TensorLayout {
  validateSpec(spec);
  const params: TensorInfo[] = [];
  const buffers: TensorInfo[] = [];
  let paramCount = 0;
  let bufferCount = 0;
  const param = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    params.push({ name: `${prefix}.${name}`, shape, offset: paramCount, size });
    paramCount += size;
  };
  const buffer = (name: string, shape: number[]) => {
    const size = shape.reduce((a, b) => a * b, 1);
    buffers.push({ name: `${prefix}.${name}`, shape, offset: bufferCount, size });
    bufferCount += size;
  };
  let k = 0;
  let inFeatures = spec.input;
  for (const layer of spec.layers) {
    const out = layer.out;
    param(`${k}.weight`, [out, inFeatures]);
    param(`${k}.bias`, [out]);
    k += 1;
    if (layer.bn !== null) {
      param(`${k}.weight`, [out]);
      param(`${k}.bias`, [out]);
      buffer(`${k}.running_mean`, [out]);
      buffer(`${k}.running_var`, [out]);
      k += 1;
    }
    if (layer.act.kind !== "none") k += 1;
    inFeatures = out;
  }
  return { params, buffers, paramCount, bufferCount };
}

/**
 * The number of parameters of an MLP (the length of its flat parameter buffer).
 *
 * @param spec The MLP (validated first).
 * @returns The parameter count.
 *
 * @example Usage
 * ```ts
 * import { parameterCount } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * // 4*3 + 3 (Linear) + 3 + 3 (BatchNorm gamma, beta)
 * assert.equal(
 *   parameterCount({ input: 4, layers: [{ out: 3, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "tanh" } }] }),
 *   21,
 * );
 * ```
 */
export function parameterCount(spec: MlpSpec): number {
  return tensorLayout(spec).paramCount;
}
