/**
 * The float64 reference of every operation of the trainer, written for clarity, not speed. Tests check the native
 * backends against it; its own gradients are checked by central differences in tests/reference_test.ts.
 *
 * Conventions (llm.c style, see docs/ARCHITECTURE.md):
 * - Every matrix is row-major; a batch of activations is `[B, features]`; a Linear weight is `W[out, in]`.
 * - Low-level ops are `*Forward` / `*Backward` pairs whose arguments come in one order: outputs, saved state, inputs,
 *   weights, sizes. Forward saves exactly what backward reads. Backward *overwrites* its gradient outputs.
 * - Higher-level functions (`blockForward`, `mlpForward`, `ganStepReference`) never mutate their inputs: updated running
 *   statistics, parameters and Adam moments come back as new arrays.
 *
 * @example Usage
 * ```ts
 * import { initBuffers, initParams, mlpForward } from "./reference.ts";
 * import { seedDiscriminator } from "../../src/model/spec.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = seedDiscriminator(4); // 16 -> 512 -> 256 -> 1
 * const params = initParams(spec, Math.random);
 * const x = new Float64Array(2 * 16); // [2, 16]
 * const { out } = mlpForward(spec, params, initBuffers(spec), x, 2, true); // out: [2, 1]
 * assert.equal(out.length, 2);
 * ```
 *
 * @module
 */

import type {
  Activation,
  BatchNormSpec,
  GanLoss,
  LayerSpec,
  MlpSpec,
  TensorInfo,
  TensorLayout,
} from "../../src/model/spec.ts";

/**
 * The reference's own flat layouts of an MLP (see docs/ARCHITECTURE.md, "Parameter order"), written from the
 * contract independently of the library, which owns the layout in production: `tests/reference_test.ts` checks that
 * the two agree. Parameters, per layer in order: `weight [out, in]`, `bias [out]`, then with BatchNorm `bn.weight
 * (gamma) [out]`, `bn.bias (beta) [out]`. Buffers, per BN layer: `running_mean [out]`, `running_var [out]`. A module
 * index `k` starts at 0 and advances once for the Linear, once for the BatchNorm if any, and once for the activation
 * unless it is `none`.
 *
 * @param spec The MLP.
 * @param prefix The name prefix (`model` in the seed).
 * @returns The params and buffers tables with their total sizes.
 *
 * @example Usage
 * ```ts
 * import { tensorLayout } from "./reference.ts";
 * import { seedGenerator } from "../../src/model/spec.ts";
 * import assert from "node:assert/strict";
 *
 * const { params, buffers } = tensorLayout(seedGenerator());
 * assert.deepEqual(params.slice(0, 2).map((t) => t.name), ["model.0.weight", "model.0.bias"]);
 * assert.equal(buffers[0].name, "model.3.running_mean");
 * ```
 */
export function tensorLayout(spec: MlpSpec, prefix = "model"): TensorLayout {
  if (spec.layers.length === 0) throw new RangeError("tensorLayout: the spec has no layers");
  const params: TensorInfo[] = [];
  const buffers: TensorInfo[] = [];
  let paramCount = 0;
  let bufferCount = 0;
  const add = (into: TensorInfo[], name: string, shape: number[], at: number) => {
    const size = shape.reduce((a, b) => a * b, 1);
    into.push({ name: `${prefix}.${name}`, shape, offset: at, size });
    return size;
  };
  let k = 0;
  let inFeatures = spec.input;
  for (const layer of spec.layers) {
    const out = layer.out;
    paramCount += add(params, `${k}.weight`, [out, inFeatures], paramCount);
    paramCount += add(params, `${k}.bias`, [out], paramCount);
    k += 1;
    if (layer.bn !== null) {
      paramCount += add(params, `${k}.weight`, [out], paramCount);
      paramCount += add(params, `${k}.bias`, [out], paramCount);
      bufferCount += add(buffers, `${k}.running_mean`, [out], bufferCount);
      bufferCount += add(buffers, `${k}.running_var`, [out], bufferCount);
      k += 1;
    }
    if (layer.act.kind !== "none") k += 1;
    inFeatures = out;
  }
  return { params, buffers, paramCount, bufferCount };
}

// ---------------------------------------------------------------------------------------------------------------------
// Helpers

function expectLength(what: string, array: ArrayLike<number>, expected: number): void {
  if (array.length !== expected) {
    throw new RangeError(`${what} has ${array.length} elements, expected ${expected}`);
  }
}

function batchOf(what: string, array: ArrayLike<number>, features: number): number {
  const B = array.length / features;
  if (!Number.isInteger(B) || B < 1) {
    throw new RangeError(`${what} has ${array.length} elements, which is not a positive multiple of ${features}`);
  }
  return B;
}

// ---------------------------------------------------------------------------------------------------------------------
// Linear: out = x W^T + b

/**
 * Linear forward: `out = x W^T + b`.
 *
 * @param out Output `[B, outF]` (written).
 * @param x Input `[B, inF]`.
 * @param w Weight `[outF, inF]`.
 * @param b Bias `[outF]`.
 * @param B Batch size.
 * @param inF Input features.
 * @param outF Output features.
 *
 * @example Usage
 * ```ts
 * import { linearForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const out = new Float64Array(2); // [1, 2]
 * // x = [1, 2]; W = [[1, 0], [3, 4]]; b = [10, 20]
 * linearForward(out, Float64Array.of(1, 2), Float64Array.of(1, 0, 3, 4), Float64Array.of(10, 20), 1, 2, 2);
 * assert.deepEqual([...out], [11, 31]);
 * ```
 */
export function linearForward(
  out: Float64Array,
  x: Float64Array,
  w: Float64Array,
  b: Float64Array,
  B: number,
  inF: number,
  outF: number,
): void {
  for (let i = 0; i < B; i++) {
    for (let o = 0; o < outF; o++) {
      let sum = b[o];
      for (let k = 0; k < inF; k++) sum += x[i * inF + k] * w[o * inF + k];
      out[i * outF + o] = sum;
    }
  }
}

/**
 * Linear backward: `dx = dout W`, `dW = dout^T x`, `db = sum_b dout`. Overwrites `dx`, `dw`, `db`.
 *
 * @param dx Input gradient `[B, inF]` (written), or `null` to skip it.
 * @param dw Weight gradient `[outF, inF]` (written).
 * @param db Bias gradient `[outF]` (written).
 * @param dout Output gradient `[B, outF]`.
 * @param x The forward input `[B, inF]`.
 * @param w Weight `[outF, inF]`.
 * @param B Batch size.
 * @param inF Input features.
 * @param outF Output features.
 *
 * @example Usage
 * ```ts
 * import { linearBackward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const dx = new Float64Array(2), dw = new Float64Array(4), db = new Float64Array(2);
 * const dout = Float64Array.of(1, 1); // [1, 2]
 * linearBackward(dx, dw, db, dout, Float64Array.of(1, 2), Float64Array.of(1, 0, 3, 4), 1, 2, 2);
 * assert.deepEqual([...dx], [4, 4]);
 * assert.deepEqual([...dw], [1, 2, 1, 2]);
 * assert.deepEqual([...db], [1, 1]);
 * ```
 */
export function linearBackward(
  dx: Float64Array | null,
  dw: Float64Array,
  db: Float64Array,
  dout: Float64Array,
  x: Float64Array,
  w: Float64Array,
  B: number,
  inF: number,
  outF: number,
): void {
  for (let o = 0; o < outF; o++) {
    let dbSum = 0;
    for (let i = 0; i < B; i++) dbSum += dout[i * outF + o];
    db[o] = dbSum;
    for (let k = 0; k < inF; k++) {
      let dwSum = 0;
      for (let i = 0; i < B; i++) dwSum += dout[i * outF + o] * x[i * inF + k];
      dw[o * inF + k] = dwSum;
    }
  }
  if (dx === null) return;
  for (let i = 0; i < B; i++) {
    for (let k = 0; k < inF; k++) {
      let sum = 0;
      for (let o = 0; o < outF; o++) sum += dout[i * outF + o] * w[o * inF + k];
      dx[i * inF + k] = sum;
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// BatchNorm1d

/**
 * BatchNorm1d forward over `x [B, C]`.
 *
 * Train mode: `mean = mean_b(x)`, `var = mean_b((x - mean)^2)` (biased), `rstd = 1 / sqrt(var + eps)`,
 * `xhat = (x - mean) rstd`, `out = gamma xhat + beta`; running statistics become
 * `(1 - momentum) running + momentum * batch` with the unbiased variance `var B / (B - 1)`. B must be at least 2.
 *
 * Eval mode: `mean = runningMean`, `rstd = 1 / sqrt(runningVar + eps)`; the running statistics are copied unchanged.
 *
 * `runMeanOut` / `runVarOut` may be the same arrays as `runningMean` / `runningVar` (an in-place update).
 *
 * @param out Output `[B, C]` (written).
 * @param xhat Saved normalized input `[B, C]` (written).
 * @param mean Saved mean used `[C]` (written; batch mean in train mode, running mean in eval mode).
 * @param rstd Saved reciprocal standard deviation used `[C]` (written).
 * @param runMeanOut Updated running mean `[C]` (written).
 * @param runVarOut Updated running variance `[C]` (written).
 * @param x Input `[B, C]`.
 * @param gamma Scale `[C]`.
 * @param beta Shift `[C]`.
 * @param runningMean Running mean `[C]`.
 * @param runningVar Running variance `[C]`.
 * @param B Batch size.
 * @param C Channels (features).
 * @param bn eps and momentum.
 * @param train Train mode (batch statistics) or eval mode (running statistics).
 * @throws {RangeError} Train mode with B < 2.
 *
 * @example Usage
 * ```ts
 * import { batchNormForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const [B, C] = [2, 1];
 * const out = new Float64Array(B * C), xhat = new Float64Array(B * C);
 * const mean = new Float64Array(C), rstd = new Float64Array(C);
 * const rm = new Float64Array(C), rv = Float64Array.of(1);
 * const x = Float64Array.of(1, 3); // [2, 1]: mean 2, biased var 1, unbiased var 2
 * batchNormForward(out, xhat, mean, rstd, rm, rv, x, Float64Array.of(1), Float64Array.of(0), rm, rv, B, C,
 *   { eps: 0, momentum: 0.5 }, true);
 * assert.deepEqual([...out], [-1, 1]);
 * assert.deepEqual([...rm, ...rv], [1, 1.5]);
 * ```
 */
export function batchNormForward(
  out: Float64Array,
  xhat: Float64Array,
  mean: Float64Array,
  rstd: Float64Array,
  runMeanOut: Float64Array,
  runVarOut: Float64Array,
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  runningMean: Float64Array,
  runningVar: Float64Array,
  B: number,
  C: number,
  bn: BatchNormSpec,
  train: boolean,
): void {
  if (train && B < 2) {
    throw new RangeError(`Expected more than 1 value per channel when training, got input size [${B}, ${C}]`);
  }
  for (let c = 0; c < C; c++) {
    let mu: number;
    let variance: number;
    if (train) {
      let sum = 0;
      for (let i = 0; i < B; i++) sum += x[i * C + c];
      mu = sum / B;
      let sq = 0;
      for (let i = 0; i < B; i++) sq += (x[i * C + c] - mu) ** 2;
      variance = sq / B; // biased, used for normalization
      const m = bn.momentum;
      runMeanOut[c] = (1 - m) * runningMean[c] + m * mu;
      runVarOut[c] = (1 - m) * runningVar[c] + m * variance * B / (B - 1); // unbiased
    } else {
      mu = runningMean[c];
      variance = runningVar[c];
      runMeanOut[c] = runningMean[c];
      runVarOut[c] = runningVar[c];
    }
    const r = 1 / Math.sqrt(variance + bn.eps);
    mean[c] = mu;
    rstd[c] = r;
    for (let i = 0; i < B; i++) {
      const xh = (x[i * C + c] - mu) * r;
      xhat[i * C + c] = xh;
      out[i * C + c] = gamma[c] * xh + beta[c];
    }
  }
}

/**
 * BatchNorm1d backward. `dgamma = sum_b dout xhat`, `dbeta = sum_b dout`, `dxhat = dout gamma`; train mode
 * `dx = rstd / B (B dxhat - sum_b dxhat - xhat sum_b(dxhat xhat))`, eval mode `dx = dxhat rstd` (the running
 * statistics are constants). Overwrites `dx`, `dgamma`, `dbeta`.
 *
 * @param dx Input gradient `[B, C]` (written).
 * @param dgamma Scale gradient `[C]` (written).
 * @param dbeta Shift gradient `[C]` (written).
 * @param dout Output gradient `[B, C]`.
 * @param xhat Saved normalized input `[B, C]`.
 * @param rstd Saved reciprocal standard deviation `[C]`.
 * @param gamma Scale `[C]`.
 * @param B Batch size.
 * @param C Channels.
 * @param train Whether the forward ran in train mode.
 *
 * @example Usage
 * ```ts
 * import { batchNormBackward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const dx = new Float64Array(2), dgamma = new Float64Array(1), dbeta = new Float64Array(1);
 * // A constant upstream gradient does not reach the input in train mode (the mean is subtracted).
 * batchNormBackward(dx, dgamma, dbeta, Float64Array.of(1, 1), Float64Array.of(-1, 1), Float64Array.of(0.5),
 *   Float64Array.of(2), 2, 1, true);
 * assert.deepEqual([...dx, ...dgamma, ...dbeta], [0, 0, 0, 2]);
 * ```
 */
export function batchNormBackward(
  dx: Float64Array,
  dgamma: Float64Array,
  dbeta: Float64Array,
  dout: Float64Array,
  xhat: Float64Array,
  rstd: Float64Array,
  gamma: Float64Array,
  B: number,
  C: number,
  train: boolean,
): void {
  for (let c = 0; c < C; c++) {
    let sumDout = 0; // sum_b dout
    let sumDoutXhat = 0; // sum_b dout * xhat
    for (let i = 0; i < B; i++) {
      sumDout += dout[i * C + c];
      sumDoutXhat += dout[i * C + c] * xhat[i * C + c];
    }
    dgamma[c] = sumDoutXhat;
    dbeta[c] = sumDout;
    if (train) {
      const sumDxhat = sumDout * gamma[c]; // sum_b dxhat
      const sumDxhatXhat = sumDoutXhat * gamma[c]; // sum_b dxhat * xhat
      for (let i = 0; i < B; i++) {
        const dxhat = dout[i * C + c] * gamma[c];
        dx[i * C + c] = rstd[c] / B * (B * dxhat - sumDxhat - xhat[i * C + c] * sumDxhatXhat);
      }
    } else {
      for (let i = 0; i < B; i++) dx[i * C + c] = dout[i * C + c] * gamma[c] * rstd[c];
    }
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Activations

/**
 * Activation forward, elementwise: none `a = z`; leaky_relu `z > 0 ? z : slope z`; tanh; sigmoid `1 / (1 + exp(-z))`.
 *
 * @param a Output `[n]` (written).
 * @param z Input `[n]`.
 * @param act The activation.
 * @param n Element count.
 *
 * @example Usage
 * ```ts
 * import { activationForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const a = new Float64Array(2);
 * activationForward(a, Float64Array.of(-1, 2), { kind: "leaky_relu", slope: 0.2 }, 2);
 * assert.deepEqual([...a], [-0.2, 2]);
 * ```
 */
export function activationForward(a: Float64Array, z: Float64Array, act: Activation, n: number): void {
  switch (act.kind) {
    case "none":
      for (let i = 0; i < n; i++) a[i] = z[i];
      return;
    case "leaky_relu":
      for (let i = 0; i < n; i++) a[i] = z[i] > 0 ? z[i] : act.slope * z[i];
      return;
    case "tanh":
      for (let i = 0; i < n; i++) a[i] = Math.tanh(z[i]);
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) a[i] = 1 / (1 + Math.exp(-z[i]));
      return;
  }
}

/**
 * Activation backward from the saved output `a`: `dz = da * act'`, with act' = none 1; leaky_relu
 * `a > 0 ? 1 : slope` (correct for slope >= 0, which the library's spec validation enforces); tanh `1 - a^2`; sigmoid `a (1 - a)`.
 * Overwrites `dz`.
 *
 * @param dz Input gradient `[n]` (written).
 * @param da Output gradient `[n]`.
 * @param a Saved forward output `[n]`.
 * @param act The activation.
 * @param n Element count.
 *
 * @example Usage
 * ```ts
 * import { activationBackward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const dz = new Float64Array(1);
 * activationBackward(dz, Float64Array.of(2), Float64Array.of(0.5), { kind: "sigmoid" }, 1);
 * assert.equal(dz[0], 0.5); // 2 * 0.5 * (1 - 0.5)
 * ```
 */
export function activationBackward(
  dz: Float64Array,
  da: Float64Array,
  a: Float64Array,
  act: Activation,
  n: number,
): void {
  switch (act.kind) {
    case "none":
      for (let i = 0; i < n; i++) dz[i] = da[i];
      return;
    case "leaky_relu":
      for (let i = 0; i < n; i++) dz[i] = da[i] * (a[i] > 0 ? 1 : act.slope);
      return;
    case "tanh":
      for (let i = 0; i < n; i++) dz[i] = da[i] * (1 - a[i] * a[i]);
      return;
    case "sigmoid":
      for (let i = 0; i < n; i++) dz[i] = da[i] * (a[i] * (1 - a[i]));
      return;
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Fused block: Linear -> optional BatchNorm1d -> activation

/**
 * The weights of one block (views or copies).
 *
 * @example Usage
 * ```ts
 * import type { BlockWeights } from "./reference.ts";
 *
 * const weights: BlockWeights = { w: new Float64Array(6), b: new Float64Array(3), gamma: null, beta: null };
 * ```
 */
export interface BlockWeights {
  /** Linear weight `[out, in]`. */
  w: Float64Array;
  /** Linear bias `[out]`. */
  b: Float64Array;
  /** BatchNorm scale `[out]`, or `null` without BatchNorm. */
  gamma: Float64Array | null;
  /** BatchNorm shift `[out]`, or `null` without BatchNorm. */
  beta: Float64Array | null;
}

/**
 * BatchNorm running statistics of one block.
 *
 * @example Usage
 * ```ts
 * import type { RunningStats } from "./reference.ts";
 *
 * const stats: RunningStats = { mean: new Float64Array(3), var: new Float64Array(3).fill(1) };
 * ```
 */
export interface RunningStats {
  /** Running mean `[out]`. */
  mean: Float64Array;
  /** Running (unbiased) variance `[out]`. */
  var: Float64Array;
}

/**
 * What a block's forward saves for its backward.
 *
 * @example Usage
 * ```ts
 * import { blockForward, type BlockCache } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = { out: 1, bn: null, act: { kind: "tanh" as const } };
 * const weights = { w: Float64Array.of(1), b: Float64Array.of(0), gamma: null, beta: null };
 * const cache: BlockCache = blockForward(layer, 1, Float64Array.of(0.5), 1, weights, null, true).cache;
 * assert.equal(cache.a[0], Math.tanh(0.5));
 * ```
 */
export interface BlockCache {
  /** Batch size. */
  B: number;
  /** Input features. */
  inF: number;
  /** Output features. */
  outF: number;
  /** Whether the forward ran in train mode. */
  train: boolean;
  /** Copy of the block input `[B, inF]`. */
  x: Float64Array;
  /** Linear output `[B, outF]`. */
  pre: Float64Array;
  /** BatchNorm normalized input `[B, outF]`, or `null` without BatchNorm. */
  xhat: Float64Array | null;
  /** BatchNorm mean used `[outF]`, or `null`. */
  mean: Float64Array | null;
  /** BatchNorm reciprocal standard deviation used `[outF]`, or `null`. */
  rstd: Float64Array | null;
  /** Block output after the activation `[B, outF]`. */
  a: Float64Array;
}

/**
 * The gradients of one block's weights.
 *
 * @example Usage
 * ```ts
 * import type { BlockGrads } from "./reference.ts";
 *
 * const grads: BlockGrads = { w: new Float64Array(6), b: new Float64Array(3), gamma: null, beta: null };
 * ```
 */
export interface BlockGrads {
  /** `[out, in]` */
  w: Float64Array;
  /** `[out]` */
  b: Float64Array;
  /** `[out]` or `null` without BatchNorm. */
  gamma: Float64Array | null;
  /** `[out]` or `null` without BatchNorm. */
  beta: Float64Array | null;
}

/**
 * Forward of one fused block over `x [B, inF]`: `pre = x W^T + b`, then BatchNorm if the layer has one, then the
 * activation. Pure: `x`, `weights` and `stats` are not mutated; the returned `stats` are new arrays (updated in train
 * mode, copies in eval mode), or `null` without BatchNorm.
 *
 * @param layer The block's spec.
 * @param inF Input features.
 * @param x Input `[B, inF]`.
 * @param B Batch size.
 * @param weights The block's weights (`gamma`/`beta` required when the layer has BatchNorm).
 * @param stats Running statistics (required when the layer has BatchNorm), else `null`.
 * @param train Train mode (BatchNorm batch statistics, running statistics updated) or eval mode.
 * @returns The output `[B, outF]`, the cache for the backward, and the new running statistics.
 *
 * @example Usage
 * ```ts
 * import { blockForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = { out: 1, bn: { eps: 0, momentum: 1 }, act: { kind: "none" as const } };
 * const weights = { w: Float64Array.of(1), b: Float64Array.of(0), gamma: Float64Array.of(1), beta: Float64Array.of(0) };
 * const stats = { mean: Float64Array.of(0), var: Float64Array.of(1) };
 * const r = blockForward(layer, 1, Float64Array.of(1, 3), 2, weights, stats, true);
 * assert.deepEqual([...r.out], [-1, 1]);
 * assert.deepEqual([r.stats!.mean[0], r.stats!.var[0]], [2, 2]);
 * assert.equal(stats.mean[0], 0); // not mutated
 * ```
 */
export function blockForward(
  layer: LayerSpec,
  inF: number,
  x: Float64Array,
  B: number,
  weights: BlockWeights,
  stats: RunningStats | null,
  train: boolean,
): { out: Float64Array; cache: BlockCache; stats: RunningStats | null } {
  const outF = layer.out;
  expectLength("block input x", x, B * inF);
  expectLength("block weight", weights.w, outF * inF);
  expectLength("block bias", weights.b, outF);
  const pre = new Float64Array(B * outF); // [B, outF]
  linearForward(pre, x, weights.w, weights.b, B, inF, outF);
  let z = pre; // [B, outF] the activation input
  let xhat: Float64Array | null = null;
  let mean: Float64Array | null = null;
  let rstd: Float64Array | null = null;
  let newStats: RunningStats | null = null;
  if (layer.bn !== null) {
    if (weights.gamma === null || weights.beta === null || stats === null) {
      throw new TypeError("blockForward: a BatchNorm layer needs gamma, beta and running statistics");
    }
    expectLength("block BatchNorm gamma", weights.gamma, outF);
    expectLength("block BatchNorm beta", weights.beta, outF);
    expectLength("block running_mean", stats.mean, outF);
    expectLength("block running_var", stats.var, outF);
    z = new Float64Array(B * outF); // [B, outF]
    xhat = new Float64Array(B * outF); // [B, outF]
    mean = new Float64Array(outF); // [outF]
    rstd = new Float64Array(outF); // [outF]
    newStats = { mean: new Float64Array(outF), var: new Float64Array(outF) }; // [outF] each
    batchNormForward(
      z,
      xhat,
      mean,
      rstd,
      newStats.mean,
      newStats.var,
      pre,
      weights.gamma,
      weights.beta,
      stats.mean,
      stats.var,
      B,
      outF,
      layer.bn,
      train,
    );
  }
  const a = new Float64Array(B * outF); // [B, outF]
  activationForward(a, z, layer.act, B * outF);
  const cache: BlockCache = { B, inF, outF, train, x: x.slice(), pre, xhat, mean, rstd, a };
  return { out: a, cache, stats: newStats };
}

/**
 * Backward of one fused block: activation' from the saved output, BatchNorm backward (train or eval, as the forward
 * ran), then the Linear backward. Returns new arrays.
 *
 * @param layer The block's spec.
 * @param dout Output gradient `[B, outF]`.
 * @param cache The forward's cache.
 * @param weights The block's weights (the same as in the forward).
 * @returns `dx [B, inF]` and the weight gradients.
 *
 * @example Usage
 * ```ts
 * import { blockBackward, blockForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const layer = { out: 1, bn: null, act: { kind: "leaky_relu" as const, slope: 0.1 } };
 * const weights = { w: Float64Array.of(2), b: Float64Array.of(0), gamma: null, beta: null };
 * const { cache } = blockForward(layer, 1, Float64Array.of(-1), 1, weights, null, true);
 * const { dx, grads } = blockBackward(layer, Float64Array.of(1), cache, weights);
 * assert.equal(dx[0], 0.2); // slope * w
 * assert.equal(grads.w[0], -0.1); // slope * x
 * ```
 */
export function blockBackward(
  layer: LayerSpec,
  dout: Float64Array,
  cache: BlockCache,
  weights: BlockWeights,
): { dx: Float64Array; grads: BlockGrads } {
  const { B, inF, outF } = cache;
  expectLength("block output gradient", dout, B * outF);
  const dz = new Float64Array(B * outF); // [B, outF] gradient at the activation input
  activationBackward(dz, dout, cache.a, layer.act, B * outF);
  let dpre = dz; // [B, outF] gradient at the Linear output
  let dgamma: Float64Array | null = null;
  let dbeta: Float64Array | null = null;
  if (layer.bn !== null) {
    if (weights.gamma === null || cache.xhat === null || cache.rstd === null) {
      throw new TypeError("blockBackward: a BatchNorm layer needs gamma and a BatchNorm cache");
    }
    dpre = new Float64Array(B * outF); // [B, outF]
    dgamma = new Float64Array(outF); // [outF]
    dbeta = new Float64Array(outF); // [outF]
    batchNormBackward(dpre, dgamma, dbeta, dz, cache.xhat, cache.rstd, weights.gamma, B, outF, cache.train);
  }
  const dx = new Float64Array(B * inF); // [B, inF]
  const dw = new Float64Array(outF * inF); // [outF, inF]
  const db = new Float64Array(outF); // [outF]
  linearBackward(dx, dw, db, dpre, cache.x, weights.w, B, inF, outF);
  return { dx, grads: { w: dw, b: db, gamma: dgamma, beta: dbeta } };
}

// ---------------------------------------------------------------------------------------------------------------------
// Whole MLP over the flat buffers

/** Per-layer views into a flat parameter buffer, walked with the `tensorLayout` offsets. */
function layerViews(spec: MlpSpec, flat: Float64Array): BlockWeights[] {
  const { params } = tensorLayout(spec);
  const view = (j: number) => flat.subarray(params[j].offset, params[j].offset + params[j].size);
  const views: BlockWeights[] = [];
  let j = 0;
  for (const layer of spec.layers) {
    const w = view(j++);
    const b = view(j++);
    const gamma = layer.bn === null ? null : view(j++);
    const beta = layer.bn === null ? null : view(j++);
    views.push({ w, b, gamma, beta });
  }
  return views;
}

/** Per-layer views into a flat running-statistics buffer (`null` for layers without BatchNorm). */
function statViews(spec: MlpSpec, flat: Float64Array): (RunningStats | null)[] {
  const { buffers } = tensorLayout(spec);
  const view = (j: number) => flat.subarray(buffers[j].offset, buffers[j].offset + buffers[j].size);
  let j = 0;
  return spec.layers.map((layer) => {
    if (layer.bn === null) return null;
    const mean = view(j++);
    return { mean, var: view(j++) };
  });
}

/**
 * What `mlpForward` saves for `mlpBackward`.
 *
 * @example Usage
 * ```ts
 * import { initBuffers, initParams, mlpForward, type MlpCache } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { input: 2, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" as const } }] };
 * const cache: MlpCache = mlpForward(spec, initParams(spec, Math.random), initBuffers(spec), new Float64Array(2), 1, true)
 *   .cache;
 * assert.equal(cache.blocks.length, 1);
 * ```
 */
export interface MlpCache {
  /** Batch size. */
  B: number;
  /** Whether the forward ran in train mode. */
  train: boolean;
  /** One cache per layer. */
  blocks: BlockCache[];
}

/**
 * Forward of a whole MLP over a flat parameter buffer and a flat running-statistics buffer (layouts from
 * `tensorLayout`). Pure: nothing passed in is mutated; `buffers` in the result is a new array (updated in train mode, a
 * copy in eval mode).
 *
 * @param spec The MLP.
 * @param params Flat parameters `[paramCount]`.
 * @param buffers Flat running statistics `[bufferCount]` (empty when the MLP has no BatchNorm).
 * @param x Input `[B, spec.input]`.
 * @param B Batch size.
 * @param train Train mode or eval mode.
 * @returns The output `[B, lastOut]`, the cache, and the new running statistics `[bufferCount]`.
 *
 * @example Usage
 * ```ts
 * import { initBuffers, mlpForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { input: 2, layers: [{ out: 1, bn: null, act: { kind: "none" as const } }] };
 * const params = Float64Array.of(1, 2, 0.5); // weight [1, 2], bias [1]
 * const { out } = mlpForward(spec, params, initBuffers(spec), Float64Array.of(1, 1, 2, 0), 2, false);
 * assert.deepEqual([...out], [3.5, 2.5]);
 * ```
 */
export function mlpForward(
  spec: MlpSpec,
  params: Float64Array,
  buffers: Float64Array,
  x: Float64Array,
  B: number,
  train: boolean,
): { out: Float64Array; cache: MlpCache; buffers: Float64Array } {
  const layout = tensorLayout(spec);
  expectLength("mlpForward params", params, layout.paramCount);
  expectLength("mlpForward buffers", buffers, layout.bufferCount);
  expectLength("mlpForward input x", x, B * spec.input);
  const weights = layerViews(spec, params);
  const newBuffers = buffers.slice(); // [bufferCount]
  const stats = statViews(spec, buffers);
  const newStats = statViews(spec, newBuffers);
  const blocks: BlockCache[] = [];
  let h = x; // [B, inF] the current activation
  let inF = spec.input;
  spec.layers.forEach((layer, l) => {
    const r = blockForward(layer, inF, h, B, weights[l], stats[l], train);
    const target = newStats[l];
    if (r.stats !== null && target !== null) {
      target.mean.set(r.stats.mean);
      target.var.set(r.stats.var);
    }
    blocks.push(r.cache);
    h = r.out;
    inF = layer.out;
  });
  return { out: h, cache: { B, train, blocks }, buffers: newBuffers };
}

/**
 * Backward of a whole MLP. Returns the input gradient and the parameter gradients in the flat parameter layout (a new
 * array, so "overwrite" semantics).
 *
 * @param spec The MLP.
 * @param params Flat parameters `[paramCount]` (the same as in the forward).
 * @param cache The forward's cache.
 * @param dout Output gradient `[B, lastOut]`.
 * @returns `dx [B, spec.input]` and `grads [paramCount]`.
 *
 * @example Usage
 * ```ts
 * import { initBuffers, mlpBackward, mlpForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { input: 2, layers: [{ out: 1, bn: null, act: { kind: "none" as const } }] };
 * const params = Float64Array.of(1, 2, 0.5);
 * const { cache } = mlpForward(spec, params, initBuffers(spec), Float64Array.of(3, 4), 1, true);
 * const { dx, grads } = mlpBackward(spec, params, cache, Float64Array.of(1));
 * assert.deepEqual([...dx], [1, 2]);
 * assert.deepEqual([...grads], [3, 4, 1]);
 * ```
 */
export function mlpBackward(
  spec: MlpSpec,
  params: Float64Array,
  cache: MlpCache,
  dout: Float64Array,
): { dx: Float64Array; grads: Float64Array } {
  const layout = tensorLayout(spec);
  expectLength("mlpBackward params", params, layout.paramCount);
  if (cache.blocks.length !== spec.layers.length) {
    throw new RangeError(`mlpBackward: the cache has ${cache.blocks.length} layers, the spec ${spec.layers.length}`);
  }
  const weights = layerViews(spec, params);
  const grads = new Float64Array(layout.paramCount); // [paramCount]
  const gradViews = layerViews(spec, grads);
  let d = dout; // [B, outF] gradient at the current layer's output
  for (let l = spec.layers.length - 1; l >= 0; l--) {
    const r = blockBackward(spec.layers[l], d, cache.blocks[l], weights[l]);
    const g = gradViews[l];
    g.w.set(r.grads.w);
    g.b.set(r.grads.b);
    if (g.gamma !== null && r.grads.gamma !== null) g.gamma.set(r.grads.gamma);
    if (g.beta !== null && r.grads.beta !== null) g.beta.set(r.grads.beta);
    d = r.dx;
  }
  return { dx: d, grads };
}

// ---------------------------------------------------------------------------------------------------------------------
// Losses (PyTorch semantics)

function targetAt(y: ArrayLike<number> | number, i: number): number {
  return typeof y === "number" ? y : y[i];
}

function checkProbabilities(what: string, p: ArrayLike<number>, y: ArrayLike<number> | number): void {
  if (typeof y !== "number") expectLength(`${what} targets`, y, p.length);
  if (p.length === 0) throw new RangeError(`${what}: empty input`);
  for (let i = 0; i < p.length; i++) {
    if (!(p[i] >= 0 && p[i] <= 1)) {
      throw new RangeError(`${what}: all elements of input should be between 0 and 1, got p[${i}] = ${p[i]}`);
    }
  }
}

/**
 * Binary cross-entropy with mean reduction, as PyTorch computes it: each log term is clamped at -100,
 * `mean_i -(y_i max(log p_i, -100) + (1 - y_i) max(log(1 - p_i), -100))`.
 *
 * @param p Probabilities in [0, 1] `[N]`.
 * @param y Targets `[N]`, or one target for every element.
 * @returns The mean loss.
 * @throws {RangeError} A probability outside [0, 1] (or NaN), or mismatched lengths.
 *
 * @example Usage
 * ```ts
 * import { bceForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(bceForward(Float64Array.of(0.5), 1), Math.LN2);
 * assert.equal(bceForward(Float64Array.of(0, 1), 1), 50); // (100 + 0) / 2: log 0 clamped at -100
 * ```
 */
export function bceForward(p: ArrayLike<number>, y: ArrayLike<number> | number): number {
  checkProbabilities("bceForward", p, y);
  const N = p.length;
  let sum = 0;
  for (let i = 0; i < N; i++) {
    const t = targetAt(y, i);
    const logP = Math.max(Math.log(p[i]), -100);
    const log1mP = Math.max(Math.log(1 - p[i]), -100);
    sum += -(t * logP + (1 - t) * log1mP);
  }
  return sum / N;
}

/**
 * The gradient of `bceForward` wrt `p`, PyTorch's formula: `dp_i = (p_i - y_i) / max(p_i (1 - p_i), 1e-12) / N`. Where
 * the clamp bites this is not the derivative of the clamped loss; it is what PyTorch computes.
 *
 * @param p Probabilities in [0, 1] `[N]`.
 * @param y Targets `[N]`, or one target for every element.
 * @returns `dp [N]`.
 *
 * @example Usage
 * ```ts
 * import { bceBackward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...bceBackward(Float64Array.of(0.5, 0.5), 1)], [-1, -1]); // (0.5 - 1) / 0.25 / 2
 * ```
 */
export function bceBackward(p: ArrayLike<number>, y: ArrayLike<number> | number): Float64Array {
  checkProbabilities("bceBackward", p, y);
  const N = p.length;
  const dp = new Float64Array(N); // [N]
  for (let i = 0; i < N; i++) {
    dp[i] = (p[i] - targetAt(y, i)) / Math.max(p[i] * (1 - p[i]), 1e-12) / N;
  }
  return dp;
}

function sigmoidOf(logits: ArrayLike<number>): Float64Array {
  const p = new Float64Array(logits.length); // [N]
  for (let i = 0; i < logits.length; i++) p[i] = 1 / (1 + Math.exp(-logits[i]));
  return p;
}

/**
 * Sigmoid followed by BCE: exactly `bceForward(sigmoid(logits), y)` (not the log-sum-exp form), so saturated logits
 * hit the same -100 clamps as the unfused composition.
 *
 * @param logits Logits `[N]`.
 * @param y Targets `[N]`, or one target for every element.
 * @returns The mean loss.
 *
 * @example Usage
 * ```ts
 * import { sigmoidBceForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sigmoidBceForward(Float64Array.of(0), 0), Math.LN2);
 * assert.equal(sigmoidBceForward(Float64Array.of(-1000), 1), 100); // clamped, not 1000
 * ```
 */
export function sigmoidBceForward(logits: ArrayLike<number>, y: ArrayLike<number> | number): number {
  return bceForward(sigmoidOf(logits), y);
}

/**
 * The gradient of `sigmoidBceForward` wrt the logits, exactly the composition of PyTorch's backward passes:
 * `p = sigmoid(logit)`, `dlogit_i = dp_i * p_i (1 - p_i)` with `dp` from `bceBackward`. Where `p (1 - p) < 1e-12` this
 * differs from the textbook `(p - y) / N`.
 *
 * @param logits Logits `[N]`.
 * @param y Targets `[N]`, or one target for every element.
 * @returns `dlogits [N]`.
 *
 * @example Usage
 * ```ts
 * import { sigmoidBceBackward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(sigmoidBceBackward(Float64Array.of(0), 1)[0], -0.5); // (p - y) / N
 * assert.equal(sigmoidBceBackward(Float64Array.of(1000), 0)[0], 0); // p == 1 exactly: p (1 - p) = 0
 * ```
 */
export function sigmoidBceBackward(logits: ArrayLike<number>, y: ArrayLike<number> | number): Float64Array {
  const p = sigmoidOf(logits); // [N]
  const dp = bceBackward(p, y); // [N]
  const dlogits = new Float64Array(p.length); // [N]
  for (let i = 0; i < p.length; i++) dlogits[i] = dp[i] * (p[i] * (1 - p[i]));
  return dlogits;
}

// ---------------------------------------------------------------------------------------------------------------------
// Softmax cross-entropy (PyTorch's CrossEntropyLoss, mean reduction)

/**
 * Mean softmax cross-entropy of logits `[rows, classes]` against integer labels: `mean_r (logsumexp(z_r) - z_r[y_r])`,
 * each row shifted by its maximum.
 *
 * @param logits Logits `[rows, classes]`, row-major.
 * @param labels The class of each row.
 * @param classes Classes per row.
 * @returns The mean loss.
 *
 * @example Usage
 * ```ts
 * import { softmaxCeForward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(softmaxCeForward(Float64Array.of(0, 0), [1], 2), Math.LN2);
 * ```
 */
export function softmaxCeForward(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): number {
  let total = 0;
  for (let r = 0; r < labels.length; r++) {
    const row = Array.from({ length: classes }, (_, k) => logits[r * classes + k]); // [classes]
    const m = Math.max(...row);
    const lse = m + Math.log(row.reduce((a, z) => a + Math.exp(z - m), 0));
    total += lse - row[labels[r]];
  }
  return total / labels.length;
}

/**
 * The gradient of {@link softmaxCeForward} with respect to the logits: `(softmax(z_r) - onehot(y_r)) / rows`.
 *
 * @param logits Logits `[rows, classes]`, row-major.
 * @param labels The class of each row.
 * @param classes Classes per row.
 * @returns `dlogits [rows, classes]`.
 *
 * @example Usage
 * ```ts
 * import { softmaxCeBackward } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...softmaxCeBackward(Float64Array.of(0, 0), [1], 2)], [0.5, -0.5]);
 * ```
 */
export function softmaxCeBackward(logits: ArrayLike<number>, labels: ArrayLike<number>, classes: number): Float64Array {
  const rows = labels.length;
  const d = new Float64Array(rows * classes); // [rows, classes]
  for (let r = 0; r < rows; r++) {
    const row = Array.from({ length: classes }, (_, k) => logits[r * classes + k]);
    const m = Math.max(...row);
    const e = row.map((z) => Math.exp(z - m));
    const sum = e.reduce((a, b) => a + b, 0);
    for (let k = 0; k < classes; k++) d[r * classes + k] = (e[k] / sum - (k === labels[r] ? 1 : 0)) / rows;
  }
  return d;
}

// ---------------------------------------------------------------------------------------------------------------------
// Adam (PyTorch's update)

/**
 * One Adam step in place, PyTorch's update with bias correction:
 * `m = b1 m + (1 - b1) g`, `v = b2 v + (1 - b2) g^2`, `p -= (lr / (1 - b1^t)) m / (sqrt(v) / sqrt(1 - b2^t) + eps)`.
 *
 * @param params Parameters `[n]` (updated in place).
 * @param grads Gradients `[n]`.
 * @param m First moment `[n]` (updated in place).
 * @param v Second moment `[n]` (updated in place).
 * @param t The 1-based number of this step (1 on the first step).
 * @param lr Learning rate.
 * @param b1 First-moment decay.
 * @param b2 Second-moment decay.
 * @param eps Added to the denominator.
 *
 * @example Usage
 * ```ts
 * import { adamStep } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const p = Float64Array.of(1), m = new Float64Array(1), v = new Float64Array(1);
 * adamStep(p, Float64Array.of(0.5), m, v, 1, 0.1, 0.9, 0.999, 0);
 * assert.ok(Math.abs(p[0] - 0.9) < 1e-12); // the first step moves by lr * sign(g)
 * ```
 */
export function adamStep(
  params: Float64Array,
  grads: Float64Array,
  m: Float64Array,
  v: Float64Array,
  t: number,
  lr: number,
  b1: number,
  b2: number,
  eps: number,
): void {
  const n = params.length;
  expectLength("adamStep grads", grads, n);
  expectLength("adamStep m", m, n);
  expectLength("adamStep v", v, n);
  if (!Number.isInteger(t) || t < 1) throw new RangeError(`adamStep: t must be an integer >= 1, got ${t}`);
  const bc1 = 1 - b1 ** t;
  const bc2 = 1 - b2 ** t;
  const stepSize = lr / bc1;
  const bc2Sqrt = Math.sqrt(bc2);
  for (let i = 0; i < n; i++) {
    const g = grads[i];
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    params[i] -= stepSize * m[i] / (Math.sqrt(v[i]) / bc2Sqrt + eps);
  }
}

// ---------------------------------------------------------------------------------------------------------------------
// Init

/**
 * PyTorch-style initial parameters in the flat layout: each Linear's weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)),
 * drawn as `-bound + 2 bound rand()` element by element in the flat order (weight row-major, then bias, layer by layer);
 * BatchNorm gamma 1, beta 0 (drawing nothing).
 *
 * @param spec The MLP.
 * @param rand Uniform numbers in [0, 1).
 * @returns Flat parameters `[paramCount]`.
 *
 * @example Usage
 * ```ts
 * import { initParams } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { input: 4, layers: [{ out: 2, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "none" as const } }] };
 * const p = initParams(spec, () => 0); // every draw at the lower bound -1/sqrt(4)
 * assert.deepEqual([...p], [...new Array(10).fill(-0.5), 1, 1, 0, 0]);
 * ```
 */
export function initParams(spec: MlpSpec, rand: () => number): Float64Array {
  const { params, paramCount } = tensorLayout(spec);
  const flat = new Float64Array(paramCount); // [paramCount]
  let j = 0;
  let inF = spec.input;
  for (const layer of spec.layers) {
    const bound = 1 / Math.sqrt(inF);
    for (let q = 0; q < 2; q++) { // weight, then bias
      const t = params[j++];
      for (let i = t.offset; i < t.offset + t.size; i++) flat[i] = -bound + 2 * bound * rand();
    }
    if (layer.bn !== null) {
      const gamma = params[j++];
      flat.fill(1, gamma.offset, gamma.offset + gamma.size);
      j++; // beta stays 0
    }
    inF = layer.out;
  }
  return flat;
}

/**
 * Initial running statistics in the flat buffer layout: running mean 0, running variance 1.
 *
 * @param spec The MLP.
 * @returns Flat buffers `[bufferCount]` (empty without BatchNorm).
 *
 * @example Usage
 * ```ts
 * import { initBuffers } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = { input: 4, layers: [{ out: 2, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "none" as const } }] };
 * assert.deepEqual([...initBuffers(spec)], [0, 0, 1, 1]);
 * ```
 */
export function initBuffers(spec: MlpSpec): Float64Array {
  const { buffers, bufferCount } = tensorLayout(spec);
  const flat = new Float64Array(bufferCount); // [bufferCount]
  for (const t of buffers) {
    if (t.name.endsWith(".running_var")) flat.fill(1, t.offset, t.offset + t.size);
  }
  return flat;
}

// ---------------------------------------------------------------------------------------------------------------------
// One GAN step, the seed's way

/**
 * Adam state of one network: both moments in the flat parameter layout and the number of steps taken so far.
 *
 * @example Usage
 * ```ts
 * import type { AdamState } from "./reference.ts";
 *
 * const state: AdamState = { m: new Float64Array(10), v: new Float64Array(10), t: 0 };
 * ```
 */
export interface AdamState {
  /** First moment `[paramCount]`. */
  m: Float64Array;
  /** Second moment `[paramCount]`. */
  v: Float64Array;
  /** Steps taken so far (0 before the first step; the next step uses t + 1 for the bias correction). */
  t: number;
}

/**
 * The inputs of `ganStepReference`. None of them is mutated.
 *
 * @example Usage
 * ```ts
 * import type { GanStepArgs } from "./reference.ts";
 *
 * const partial: Partial<GanStepArgs> = { lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 };
 * ```
 */
export interface GanStepArgs {
  /** Generator spec. */
  gSpec: MlpSpec;
  /** Generator parameters `[gParamCount]`. */
  gParams: Float64Array;
  /** Generator running statistics `[gBufferCount]`. */
  gBuffers: Float64Array;
  /** Generator Adam state. */
  gAdam: AdamState;
  /** Discriminator spec (no BatchNorm; its output is D's probability, e.g. a final sigmoid). */
  dSpec: MlpSpec;
  /** Discriminator parameters `[dParamCount]`. */
  dParams: Float64Array;
  /** Discriminator Adam state. */
  dAdam: AdamState;
  /** Real batch `[B, dSpec.input]`, already scaled to [-1, 1]. */
  xReal: Float64Array;
  /** Noise `[B, gSpec.input]`. */
  z: Float64Array;
  /** Adam learning rate (both networks). */
  lr: number;
  /** Adam beta1. */
  b1: number;
  /** Adam beta2. */
  b2: number;
  /** Adam eps. */
  eps: number;
  /** The adversarial loss (default `bce`; the others take D's raw score: see {@link ganLossReference}). */
  loss?: GanLoss;
}

/**
 * The adversarial losses of a GAN step from D's outputs, in float64, written from their definitions (`o_f = D(G(z))`,
 * `o_r = D(x)`, means over the batch; `sp(t) = ln(1 + e^t)`):
 *
 * - `bce`: D `(BCE(o_r, 1) + BCE(o_f, 0)) / 2`, G `BCE(o_f, 1)`
 * - `mse`: D `(mean (o_r - 1)^2 + mean o_f^2) / 2`, G `mean (o_f - 1)^2`
 * - `hinge`: D `mean relu(1 - o_r) + mean relu(1 + o_f)`, G `-mean o_f`
 * - `relativistic`: D `mean sp(-(o_r - o_f))`, G `mean sp(-(o_f - o_r))` (row i with row i)
 * - `relativistic_avg`: D `(mean sp(-(o_r - mean o_f)) + mean sp(o_f - mean o_r)) / 2`,
 *   G `(mean sp(-(o_f - mean o_r)) + mean sp(o_r - mean o_f)) / 2`
 *
 * @param loss The loss.
 * @param oFake D's outputs on the fakes `[B]`.
 * @param oReal D's outputs on the reals `[B]`.
 * @returns Both losses.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ganLossReference } from "./reference.ts";
 * const r = ganLossReference("hinge", Float64Array.of(0.5), Float64Array.of(2));
 * assert.deepEqual(r, { dLoss: 0 + 1.5, gLoss: -0.5 });
 * ```
 */
export function ganLossReference(
  loss: GanLoss,
  oFake: ArrayLike<number>,
  oReal: ArrayLike<number>,
): { dLoss: number; gLoss: number } {
  const n = oFake.length;
  const mean = (f: (i: number) => number) => {
    let s = 0;
    for (let i = 0; i < n; i++) s += f(i);
    return s / n;
  };
  const sp = (t: number) => Math.max(t, 0) + Math.log1p(Math.exp(-Math.abs(t)));
  const mf = mean((i) => oFake[i]), mr = mean((i) => oReal[i]);
  switch (loss) {
    case "bce":
      return { dLoss: (bceForward(oReal, 1) + bceForward(oFake, 0)) / 2, gLoss: bceForward(oFake, 1) };
    case "mse":
      return {
        dLoss: (mean((i) => (oReal[i] - 1) ** 2) + mean((i) => oFake[i] ** 2)) / 2,
        gLoss: mean((i) => (oFake[i] - 1) ** 2),
      };
    case "hinge":
      return {
        dLoss: mean((i) => Math.max(0, 1 - oReal[i])) + mean((i) => Math.max(0, 1 + oFake[i])),
        gLoss: -mf,
      };
    case "relativistic":
      return { dLoss: mean((i) => sp(-(oReal[i] - oFake[i]))), gLoss: mean((i) => sp(-(oFake[i] - oReal[i]))) };
    case "relativistic_avg":
      return {
        dLoss: (mean((i) => sp(-(oReal[i] - mf))) + mean((i) => sp(oFake[i] - mr))) / 2,
        gLoss: (mean((i) => sp(-(oFake[i] - mr))) + mean((i) => sp(oReal[i] - mf))) / 2,
      };
  }
}

/**
 * The gradients of {@link ganLossReference} with respect to D's outputs, by central differences in float64 (step
 * `1e-6`, error about `1e-10`): independent of any hand-derived formula. `dG` is d g_loss / d o_f (o_r held fixed: it
 * does not depend on G); `dFake`, `dReal` are d d_loss / d o_f and d o_r.
 *
 * @param loss The loss.
 * @param oFake D's outputs on the fakes `[B]`.
 * @param oReal D's outputs on the reals `[B]`.
 * @returns The three gradients `[B]` each.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ganLossGradients } from "./reference.ts";
 * const g = ganLossGradients("mse", Float64Array.of(0.5, 0), Float64Array.of(1, 3));
 * assert.ok(Math.abs(g.dG[0] - 2 * (0.5 - 1) / 2) < 1e-8); // d mean (o_f - 1)^2 / d o_f[0]
 * ```
 */
export function ganLossGradients(
  loss: GanLoss,
  oFake: Float64Array,
  oReal: Float64Array,
): { dG: Float64Array; dFake: Float64Array; dReal: Float64Array } {
  const h = 1e-6, n = oFake.length;
  const diff = (which: "fake" | "real", i: number, pick: "dLoss" | "gLoss") => {
    const at = (delta: number) => {
      const f = oFake.slice(), r = oReal.slice();
      (which === "fake" ? f : r)[i] += delta;
      return ganLossReference(loss, f, r)[pick];
    };
    return (at(h) - at(-h)) / (2 * h);
  };
  const of = (which: "fake" | "real", pick: "dLoss" | "gLoss") =>
    Float64Array.from({ length: n }, (_, i) => diff(which, i, pick));
  return { dG: of("fake", "gLoss"), dFake: of("fake", "dLoss"), dReal: of("real", "dLoss") };
}

/**
 * What `ganStepReference` returns: new state for both networks, the losses, and intermediates for parity tests.
 *
 * @example Usage
 * ```ts
 * import type { GanStepResult } from "./reference.ts";
 *
 * const line = (r: GanStepResult) => `[D loss: ${r.dLoss.toFixed(6)}] [G loss: ${r.gLoss.toFixed(6)}]`;
 * ```
 */
export interface GanStepResult {
  /** Updated generator parameters. */
  gParams: Float64Array;
  /** Generator running statistics after the one train-mode forward. */
  gBuffers: Float64Array;
  /** Updated generator Adam state (t + 1). */
  gAdam: AdamState;
  /** Updated discriminator parameters. */
  dParams: Float64Array;
  /** Updated discriminator Adam state (t + 1). */
  dAdam: AdamState;
  /** `(BCE(D(x_real), 1) + BCE(D(fake.detach()), 0)) / 2`. */
  dLoss: number;
  /** `BCE(D(fake), 1)`. */
  gLoss: number;
  /** Mean of D(x_real) over the batch. */
  dReal: number;
  /** Mean of D(fake) over the batch (D before its update). */
  dFake: number;
  /** The generated batch `G(z)` `[B, gOut]` (G before its update). */
  fake: Float64Array;
  /** The gradient of g_loss wrt the G parameters, as Adam on G saw it `[gParamCount]`. */
  gGrads: Float64Array;
  /** The gradient of d_loss wrt the D parameters, as Adam on D saw it `[dParamCount]`. */
  dGrads: Float64Array;
}

/**
 * One full GAN training step in the seed's order, the naive way (five passes through D, as PyTorch runs it), to check
 * the native fused step independently:
 *
 * ```
 * fake = G(z)                                  train mode; G's running statistics updated once
 * g_loss = BCE(D(fake), 1); backward through D into G (D's gradients from this pass are discarded, as the seed's
 *          optimizer_D.zero_grad() does); Adam on G
 * d_loss = (BCE(D(x_real), 1) + BCE(D(fake.detach()), 0)) / 2; backward (D's gradients from both terms summed);
 *          Adam on D
 * ```
 *
 * Pure: nothing passed in is mutated.
 *
 * @param args Specs, parameters, buffers, Adam states, the batch, the noise and Adam's settings.
 * @returns The new state, the losses and intermediates.
 * @throws {RangeError} Mismatched sizes, or a discriminator with BatchNorm.
 *
 * @example Usage
 * ```ts
 * import { ganStepReference, initBuffers, initParams } from "./reference.ts";
 * import assert from "node:assert/strict";
 *
 * const gSpec = { input: 2, layers: [{ out: 3, bn: null, act: { kind: "tanh" as const } }] };
 * const dSpec = { input: 3, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" as const } }] };
 * const gParams = initParams(gSpec, Math.random), dParams = initParams(dSpec, Math.random);
 * const adam = (n: number) => ({ m: new Float64Array(n), v: new Float64Array(n), t: 0 });
 * const r = ganStepReference({
 *   gSpec, gParams, gBuffers: initBuffers(gSpec), gAdam: adam(gParams.length),
 *   dSpec, dParams, dAdam: adam(dParams.length),
 *   xReal: Float64Array.of(1, -1, 0.5, 0, 0, 0), z: Float64Array.of(0.1, 0.2, -0.3, 0.4), // B = 2
 *   lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8,
 * });
 * assert.equal(r.gAdam.t, 1);
 * assert.ok(r.dLoss > 0 && r.gLoss > 0);
 * ```
 */
export function ganStepReference(args: GanStepArgs): GanStepResult {
  const { gSpec, dSpec, lr, b1, b2, eps } = args;
  if (dSpec.layers.some((l) => l.bn !== null)) {
    throw new RangeError(
      "ganStepReference: the discriminator must not have BatchNorm (its batches must be independent)",
    );
  }
  const gOut = gSpec.layers[gSpec.layers.length - 1].out;
  if (gOut !== dSpec.input) {
    throw new RangeError(`ganStepReference: G outputs ${gOut} features but D takes ${dSpec.input}`);
  }
  const B = batchOf("ganStepReference z", args.z, gSpec.input);
  expectLength("ganStepReference xReal", args.xReal, B * dSpec.input);
  const noDBuffers = new Float64Array(0); // D has no BatchNorm
  const ones = 1; // targets "valid"
  const zeros = 0; // targets "fake"

  // --- Generator step --------------------------------------------------------------------------------------------
  const gFwd = mlpForward(gSpec, args.gParams, args.gBuffers, args.z, B, true);
  const fake = gFwd.out; // [B, gOut]
  const loss = args.loss ?? "bce";
  const dOnFake = mlpForward(dSpec, args.dParams, noDBuffers, fake, B, true);
  // The relativistic G losses take D(x_real) too, a constant for G (D before its update).
  const dOnRealForG = mlpForward(dSpec, args.dParams, noDBuffers, args.xReal, B, true);
  const gLoss = ganLossReference(loss, dOnFake.out, dOnRealForG.out).gLoss;
  const dpG = loss === "bce" ? bceBackward(dOnFake.out, ones) : ganLossGradients(loss, dOnFake.out, dOnRealForG.out).dG;
  // Backward through D: only dx is used; D's parameter gradients of this pass are dropped (optimizer_D.zero_grad()).
  const throughD = mlpBackward(dSpec, args.dParams, dOnFake.cache, dpG);
  const gGrads = mlpBackward(gSpec, args.gParams, gFwd.cache, throughD.dx).grads; // [gParamCount]
  const gParams = args.gParams.slice();
  const gAdam: AdamState = { m: args.gAdam.m.slice(), v: args.gAdam.v.slice(), t: args.gAdam.t + 1 };
  adamStep(gParams, gGrads, gAdam.m, gAdam.v, gAdam.t, lr, b1, b2, eps);

  // --- Discriminator step (D's gradients start from zero) --------------------------------------------------------
  const dOnReal = mlpForward(dSpec, args.dParams, noDBuffers, args.xReal, B, true);
  const dOnFakeDetached = mlpForward(dSpec, args.dParams, noDBuffers, fake, B, true);
  const dLoss = ganLossReference(loss, dOnFakeDetached.out, dOnReal.out).dLoss;
  const fd = loss === "bce" ? null : ganLossGradients(loss, dOnFakeDetached.out, dOnReal.out);
  // [B, dOut] d(d_loss)/d(D(x_real)) and d(d_loss)/d(D(fake))
  const dpReal = fd ? fd.dReal : bceBackward(dOnReal.out, ones).map((g) => g / 2);
  const dpFake = fd ? fd.dFake : bceBackward(dOnFakeDetached.out, zeros).map((g) => g / 2);
  const gradsReal = mlpBackward(dSpec, args.dParams, dOnReal.cache, dpReal).grads;
  const gradsFake = mlpBackward(dSpec, args.dParams, dOnFakeDetached.cache, dpFake).grads;
  const dGrads = gradsReal.map((g, i) => g + gradsFake[i]); // [dParamCount] accumulated, as autograd does
  const dParams = args.dParams.slice();
  const dAdam: AdamState = { m: args.dAdam.m.slice(), v: args.dAdam.v.slice(), t: args.dAdam.t + 1 };
  adamStep(dParams, dGrads, dAdam.m, dAdam.v, dAdam.t, lr, b1, b2, eps);

  const mean = (a: Float64Array) => a.reduce((s, e) => s + e, 0) / a.length;
  return {
    gParams,
    gBuffers: gFwd.buffers,
    gAdam,
    dParams,
    dAdam,
    dLoss,
    gLoss,
    dReal: mean(dOnReal.out),
    dFake: mean(dOnFakeDetached.out),
    fake,
    gGrads,
    dGrads,
  };
}
