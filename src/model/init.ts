/**
 * PyTorch's default initialization of the MLP parameters, drawn from the library's seeded streams so that a seed gives
 * the same initial weights on every backend.
 *
 * @module
 */

import { initBuffers, initParams } from "../backend/reference.ts";
import { DOMAIN_INIT, uniformStream } from "../backend/rng.ts";
import type { MlpSpec } from "./spec.ts";

/** Initial parameters and running statistics of an MLP, as float32. */
export interface InitialState {
  /** Flat parameters `[paramCount]`: Linear weight and bias ~ U(-1/sqrt(in), 1/sqrt(in)), BN gamma 1, beta 0. */
  params: Float32Array<ArrayBuffer>;
  /** Flat running statistics `[bufferCount]`: mean 0, var 1. */
  buffers: Float32Array<ArrayBuffer>;
}

/**
 * PyTorch-style initial state of an MLP from a seed (`stream` tells apart two networks with the same seed).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { initialState } from "./init.ts";
 * const { params } = initialState({ input: 4, layers: [{ out: 2, bn: null, act: { kind: "none" } }] }, 1, 0);
 * assert.ok(params.every((p) => Math.abs(p) <= 0.5)); // 1 / sqrt(4)
 * ```
 */
export function initialState(spec: MlpSpec, seed: number, stream: number): InitialState {
  return {
    params: Float32Array.from(initParams(spec, uniformStream(seed, DOMAIN_INIT, stream))),
    buffers: Float32Array.from(initBuffers(spec)),
  };
}
