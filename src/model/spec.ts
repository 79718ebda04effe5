/**
 * MLP specifications: the layer list of a model, the seed GAN's two networks, and the JSON the native library reads.
 * The library owns the rules: it validates a spec and reports its flat parameter layout with PyTorch `state_dict`
 * names (`describeSpec` in `../native/handles.ts`; see docs/ARCHITECTURE.md, "Parameter order").
 *
 * @example Usage
 * ```ts
 * import { seedDiscriminator, seedGenerator } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(seedGenerator().layers.length, 5);
 * assert.equal(seedDiscriminator().input, 784);
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
  /**
   * Dropout probability after the activation in train-mode forwards, in [0, 1) (default 0: none). Its masks come from
   * the library's counter-based streams (docs/ARCHITECTURE.md, "Random numbers").
   */
  dropout?: number;
  /**
   * The last layer only, without BatchNorm: names for consecutive row ranges of its Linear, in order (aae's encoder:
   * `[{ name: "mu", out: 10 }, { name: "logvar", out: 10 }]`, upstream's two `Linear(512, latent)` heads as one
   * `Linear(512, 20)`). It changes no arithmetic, only the `state_dict` names: the layer's tensors become
   * `<name>.weight [out, in]` and `<name>.bias [out]` per head instead of `model.<k>.weight` and `model.<k>.bias`.
   * The heads' `out`s sum to the layer's `out` (see {@link checkHeads}).
   */
  heads?: HeadSpec[] | null;
}

/**
 * One named head of a layer (see {@link LayerSpec.heads}): `out` consecutive output features, named `name` in the
 * `state_dict`.
 *
 * @example Usage
 * ```ts
 * import type { HeadSpec } from "./spec.ts";
 *
 * const mu: HeadSpec = { name: "mu", out: 10 };
 * ```
 */
export interface HeadSpec {
  /** The module name of its tensors (`<name>.weight`, `<name>.bias`): letters, digits and `_`, not starting with a digit. */
  name: string;
  /** Its output features: a positive integer. */
  out: number;
}

/**
 * A label embedding in front of an MLP (PyTorch's `nn.Embedding(classes, dim)`): a table `[classes, dim]` of
 * parameters whose row of each input's label is concatenated with the caller's `x` before the first block, before it
 * (`at: "first"`, upstream cgan's generator: `cat(label_emb(labels), z)`) or after it (`at: "last"`, its
 * discriminator: `cat(img, label_embedding(labels))`). The table is the first tensor of the flat parameter buffer,
 * named `<name>.weight` (docs/ARCHITECTURE.md, "Label embeddings").
 *
 * @example Usage
 * ```ts
 * import type { EmbeddingSpec } from "./spec.ts";
 *
 * const emb: EmbeddingSpec = { classes: 10, dim: 10, at: "first", name: "label_emb" };
 * ```
 */
export interface EmbeddingSpec {
  /** Labels it knows: every label must be below it. A positive integer. */
  classes: number;
  /** Width of a table row (features added to the first block's input). A positive integer. */
  dim: number;
  /** Where the row goes in the first block's input: before `x` (`first`) or after it (`last`). */
  at: "first" | "last";
  /** The module name of its `state_dict` entry (`<name>.weight`): letters, digits and `_`, not starting with a digit. */
  name: string;
}

/**
 * A multilayer perceptron: an input size and a list of fused blocks, with an optional label embedding.
 *
 * @example Usage
 * ```ts
 * import type { MlpSpec } from "./spec.ts";
 *
 * const spec: MlpSpec = { input: 4, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] };
 * ```
 */
export interface MlpSpec {
  /** Input features: the width of the caller's `x` (without the embedding's `dim`). */
  input: number;
  /**
   * A label embedding (absent or null: none). With one, every forward takes a label per row, and the first block's
   * input is `input + embedding.dim` wide.
   */
  embedding?: EmbeddingSpec | null;
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
 * import type { TensorLayout } from "./spec.ts";
 * import assert from "node:assert/strict";
 *
 * const layout: TensorLayout = { params: [], buffers: [], paramCount: 0, bufferCount: 0 };
 * assert.equal(layout.paramCount, 0);
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
  /** The label embedding (its table is `params[0]`), or null for none; absent where not reported. */
  embedding?: EmbeddingSpec | null;
}

/**
 * The seed's generator: `z -> 128 (LeakyReLU 0.2) -> [256, 512, 1024] (BatchNorm1d(eps=bnEps, momentum=0.1),
 * LeakyReLU 0.2) -> channels*imgSize*imgSize (Tanh)`. The first block has no BatchNorm. `bnEps` defaults to the seed's
 * 0.8 (it passes 0.8 as BatchNorm1d's positional `eps`).
 *
 * @param latentDim Size of the noise vector z.
 * @param imgSize Image side in pixels.
 * @param channels Image channels.
 * @param bnEps BatchNorm eps of the three normalized blocks.
 * @returns The generator's spec.
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
  checkSeedArgs({ latentDim, imgSize, channels }, bnEps);
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
  return spec;
}

/**
 * The seed's discriminator: `channels*imgSize*imgSize -> 512 (LeakyReLU 0.2) -> 256 (LeakyReLU 0.2) -> 1 (Sigmoid)`,
 * no BatchNorm.
 *
 * @param imgSize Image side in pixels.
 * @param channels Image channels.
 * @param loss The loss it is trained with: a sigmoid output for `bce` (the seed's), a linear one for the others.
 * @returns The discriminator's spec.
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
export function seedDiscriminator(imgSize = 28, channels = 1, loss: GanLoss = "bce"): MlpSpec {
  checkSeedArgs({ imgSize, channels });
  if (!GAN_LOSSES.includes(loss)) throw new RangeError(`loss must be one of ${GAN_LOSSES.join(", ")}, got ${loss}`);
  const spec: MlpSpec = {
    input: channels * imgSize * imgSize,
    layers: [
      { out: 512, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 256, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 1, bn: null, act: loss === "bce" ? { kind: "sigmoid" } : { kind: "none" } },
    ],
  };
  return spec;
}

/**
 * The adversarial losses of the GAN step (the library's list, `nativeContract().gan_losses`; a test ties the two):
 * `bce` the seed's (a sigmoid D), and on a D that ends in a linear layer `mse` (LSGAN), `hinge`, `relativistic`
 * (RSGAN) and `relativistic_avg` (RaGAN). See "Losses" in docs/ARCHITECTURE.md for the formulas.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { GAN_LOSSES, seedDiscriminator } from "./spec.ts";
 * assert.ok(GAN_LOSSES.includes("hinge"));
 * assert.equal(seedDiscriminator(28, 1, "hinge").layers[2].act.kind, "none"); // a raw score
 * ```
 */
export const GAN_LOSSES = ["bce", "mse", "hinge", "relativistic", "relativistic_avg"] as const;

/** One of {@link GAN_LOSSES}. */
export type GanLoss = typeof GAN_LOSSES[number];

function checkBuilderArg(value: number, what: string, positive: (x: number) => boolean, expect: string): void {
  if (typeof value !== "number" || !Number.isFinite(value) || !positive(value)) {
    throw new RangeError(`${what} must be ${expect}, got ${value}`);
  }
}

function checkSeedArgs(sizes: Record<string, number>, bnEps?: number): void {
  for (const [what, v] of Object.entries(sizes)) {
    checkBuilderArg(v, what, (x) => Number.isInteger(x) && x >= 1, "a positive integer");
  }
  if (bnEps !== undefined) checkBuilderArg(bnEps, "bnEps", (x) => x > 0, "a positive finite number");
}

/** The pattern of an embedding's module name (`name`), as the library checks it. */
export const EMBEDDING_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** The most classes (and the widest `dim`) an embedding may have: the library's widest layer, 2^20. */
export const MAX_EMBEDDING_CLASSES = 2 ** 20;

/**
 * Checks a spec's `embedding` (the library checks it too, with the same rules; this names the field and the value
 * before anything crosses the FFI, and also refuses a key it does not know): absent or null, or an object
 * `{ classes, dim, at, name }` with `classes` and `dim` integers in [1, 2^20] and at most 2^31 table entries, `at`
 * `"first"` or `"last"`, `name` matching {@link EMBEDDING_NAME} in at most 64 characters, and no other key.
 *
 * @param spec The spec (possibly malformed; only its `embedding` is looked at).
 * @param what How to name the spec in the message (e.g. `generator`); default none.
 * @throws {RangeError} Naming the field and the value: `embedding.classes must be an integer in [1, 1048576], got 0`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkEmbedding } from "./spec.ts";
 * checkEmbedding({ input: 100, embedding: { classes: 10, dim: 10, at: "first", name: "label_emb" }, layers: [] });
 * assert.throws(
 *   () => checkEmbedding({ input: 1, embedding: { classes: 10, dim: 10, at: "middle", name: "e" }, layers: [] } as never),
 *   { message: 'embedding.at must be "first" or "last", got "middle"' },
 * );
 * ```
 */
export function checkEmbedding(spec: MlpSpec, what?: string): void {
  const e = (spec as { embedding?: unknown })?.embedding;
  if (e === undefined || e === null) return;
  const field = (k?: string) => `${what ? `${what}.` : ""}embedding${k ? `.${k}` : ""}`;
  const show = (v: unknown) => (typeof v === "number" ? String(v) : JSON.stringify(v) ?? String(v));
  if (typeof e !== "object" || e === null || Array.isArray(e)) {
    throw new RangeError(`${field()} must be an object {classes, dim, at, name}, null or absent, got ${show(e)}`);
  }
  const o = e as Record<string, unknown>;
  const extra = Object.keys(o).find((k) => !["classes", "dim", "at", "name"].includes(k));
  if (extra !== undefined) {
    throw new RangeError(`${field()} has an unknown key "${extra}" (it takes classes, dim, at, name)`);
  }
  const int = (k: string, max: number) => {
    const v = o[k];
    if (!Number.isSafeInteger(v) || (v as number) < 1 || (v as number) > max) {
      throw new RangeError(`${field(k)} must be an integer in [1, ${max}], got ${show(v)}`);
    }
  };
  int("classes", MAX_EMBEDDING_CLASSES);
  int("dim", MAX_EMBEDDING_CLASSES);
  if ((o.classes as number) * (o.dim as number) > 2 ** 31) {
    throw new RangeError(`${field()} of ${o.classes} x ${o.dim} is more than 2^31 parameters`);
  }
  if (o.at !== "first" && o.at !== "last") {
    throw new RangeError(`${field("at")} must be "first" or "last", got ${show(o.at)}`);
  }
  if (typeof o.name !== "string" || !EMBEDDING_NAME.test(o.name) || o.name.length > 64) {
    throw new RangeError(
      `${field("name")} must match ${EMBEDDING_NAME} in at most 64 characters (a module name), got ${show(o.name)}`,
    );
  }
}

/**
 * Checks the `heads` of a spec's layers (the library checks them too, with the same rules; this names the field and
 * the value before anything crosses the FFI): absent or null (none), or on the last layer only a non-empty array of
 * `{ name, out }` with no other key, each `name` matching {@link EMBEDDING_NAME} in at most 64 characters and
 * distinct, each `out` a positive integer, the `out`s summing to the layer's `out`, on a layer without BatchNorm.
 *
 * @param spec The spec (possibly malformed; only its layers' `heads` are looked at).
 * @param what How to name the spec in the message (e.g. `encoder`); default none.
 * @throws {RangeError} Naming the field and the value: `layers[2].heads[1].out must be a positive integer, got 0`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkHeads } from "./spec.ts";
 * const heads = [{ name: "mu", out: 2 }, { name: "logvar", out: 2 }];
 * checkHeads({ input: 3, layers: [{ out: 4, bn: null, act: { kind: "none" }, heads }] });
 * assert.throws(
 *   () => checkHeads({ input: 3, layers: [{ out: 5, bn: null, act: { kind: "none" }, heads }] }),
 *   { message: "layers[0].heads: the heads' outs sum to 4 (mu 2 + logvar 2), the layer's out is 5" },
 * );
 * ```
 */
export function checkHeads(spec: MlpSpec, what?: string): void {
  const layers = (spec as { layers?: unknown })?.layers;
  if (!Array.isArray(layers)) return; // the library names a missing or malformed layer list
  const show = (v: unknown) => (typeof v === "number" ? String(v) : JSON.stringify(v) ?? String(v));
  layers.forEach((layer: unknown, i) => {
    const heads = (layer as { heads?: unknown } | null)?.heads;
    if (heads === undefined || heads === null) return;
    const field = (k = "") => `${what ? `${what}.` : ""}layers[${i}].heads${k}`;
    if (i !== layers.length - 1) {
      throw new RangeError(
        `${field()}: only the last layer (layers[${layers.length - 1}]) may have heads, layer ${i} of ` +
          `${layers.length} has ${show(heads)}`,
      );
    }
    if (!Array.isArray(heads) || heads.length === 0) {
      throw new RangeError(`${field()} must be a non-empty array of {name, out}, null or absent, got ${show(heads)}`);
    }
    const bn = (layer as { bn?: unknown }).bn;
    if (bn !== null && bn !== undefined) {
      throw new RangeError(`${field()}: a layer with heads must have no BatchNorm (bn: null), got bn ${show(bn)}`);
    }
    const names = new Set<string>();
    heads.forEach((h: unknown, j) => {
      if (typeof h !== "object" || h === null || Array.isArray(h)) {
        throw new RangeError(`${field(`[${j}]`)} must be an object {name, out}, got ${show(h)}`);
      }
      const o = h as Record<string, unknown>;
      const extra = Object.keys(o).find((k) => k !== "name" && k !== "out");
      if (extra !== undefined) {
        throw new RangeError(`${field(`[${j}]`)} has an unknown key "${extra}" (it takes name, out)`);
      }
      if (typeof o.name !== "string" || !EMBEDDING_NAME.test(o.name) || o.name.length > 64) {
        throw new RangeError(
          `${field(`[${j}].name`)} must match ${EMBEDDING_NAME} in at most 64 characters (a module name), got ${
            show(o.name)
          }`,
        );
      }
      if (names.has(o.name)) throw new RangeError(`${field(`[${j}].name`)} repeats the head name "${o.name}"`);
      names.add(o.name);
      if (!Number.isSafeInteger(o.out) || (o.out as number) < 1) {
        throw new RangeError(`${field(`[${j}].out`)} must be a positive integer, got ${show(o.out)}`);
      }
    });
    const list = heads as HeadSpec[];
    const sum = list.reduce((a, h) => a + h.out, 0), out = (layer as { out?: unknown }).out;
    if (sum !== out) {
      throw new RangeError(
        `${field()}: the heads' outs sum to ${sum} (${list.map((h) => `${h.name} ${h.out}`).join(" + ")}), ` +
          `the layer's out is ${show(out)}`,
      );
    }
  });
}

/**
 * The checks of a spec that TypeScript makes before the library sees it: its `embedding` ({@link checkEmbedding}) and
 * its layers' `heads` ({@link checkHeads}). The library checks everything else (and these again).
 *
 * @param spec The spec (possibly malformed).
 * @param what How to name the spec in the message (e.g. `generator`); default none.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkSpecFields } from "./spec.ts";
 * const head = { out: 1, bn: null, act: { kind: "none" as const }, heads: [{ name: "x", out: 1 }] };
 * assert.throws(
 *   () => checkSpecFields({ input: 1, layers: [head, { out: 1, bn: null, act: { kind: "none" } }] }, "encoder"),
 *   /^RangeError: encoder\.layers\[0\]\.heads: only the last layer/,
 * );
 * ```
 */
export function checkSpecFields(spec: MlpSpec, what?: string): void {
  checkEmbedding(spec, what);
  checkHeads(spec, what);
}

/**
 * The JSON of a spec as the native library reads it. The library validates specs (and reports the layout): numbers
 * JSON cannot hold (NaN, Infinity) are sent as the strings "NaN", "Infinity", "-Infinity", so that its error names
 * them (`layers[2].bn.eps must be a positive finite number, got NaN`).
 *
 * @param spec The spec (possibly malformed: the library checks it).
 * @returns UTF-8 JSON text.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { specJson } from "./spec.ts";
 * assert.equal(specJson({ input: NaN, layers: [] }), '{"input":"NaN","layers":[]}');
 * ```
 */
export function specJson(spec: MlpSpec): string {
  return JSON.stringify(spec, (_k, v) => (typeof v === "number" && !Number.isFinite(v) ? String(v) : v));
}
