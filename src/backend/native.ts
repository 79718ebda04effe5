/**
 * The native backends (cpu now, gpu behind the same calls) as TypeScript classes that own native handles.
 * Handles are released by `close()` or `using`; a FinalizationRegistry frees what was forgotten.
 *
 * @module
 */

import { check, checkHandle, lib, type LibraryLocation, loadLibrary, readJson, utf8 } from "../native/ffi.ts";
import type { MlpSpec } from "../model/spec.ts";
import { DOMAIN_NOISE } from "./rng.ts";

/** A backend name: `cpu`, `gpu`, or `auto` (a hardware GPU when there is one, else the CPU). */
export type BackendName = "cpu" | "gpu" | "auto";

/** What a context runs on. */
export interface BackendInfo {
  /** The backend in use: `cpu` or `gpu`. */
  backend: "cpu" | "gpu";
  /** CPU threads used by the CPU backend. */
  threads: number;
  /** Cores available to this process. */
  cores: number;
  /** CPU vector extensions detected at run time (the GEMM picks its kernel from them). */
  simd: string[];
  /** The GPU adapter (null on the CPU backend). */
  adapter: { name: string; api: string; software: boolean } | null;
  /** The native library's version. */
  version: string;
  /** Where the native library was loaded from. */
  library: LibraryLocation;
}

/** Options for {@link Context}. */
export interface ContextOptions {
  /** The backend (default `auto`). */
  backend?: BackendName;
  /** CPU threads; 0 or absent means the cores available. */
  threads?: number;
  /** An explicit path to the native library (else GAN_NATIVE_LIB, else the checkout's build). */
  libraryPath?: string;
}

const finalizer = new FinalizationRegistry<() => void>((free) => free());

/** Owns one native handle: frees it on close/dispose, or through the finalizer if forgotten. */
export abstract class Handle implements Disposable {
  #handle: number;
  #token = {};
  /** Takes ownership of `handle`, released with `free`. */
  protected constructor(handle: number, free: (h: number) => number) {
    this.#handle = handle;
    finalizer.register(this, () => free(handle), this.#token);
    this.#free = free;
  }
  #free: (h: number) => number;
  /** The raw native handle (0 once closed). */
  get handle(): number {
    return this.#handle;
  }
  /** Whether `close()` has been called. */
  get closed(): boolean {
    return this.#handle === 0;
  }
  /** Releases the native object. Calling it twice is harmless. */
  close(): void {
    if (this.#handle === 0) return;
    finalizer.unregister(this.#token);
    const h = this.#handle;
    this.#handle = 0;
    check(this.#free(h), `${this.constructor.name}.close`);
  }
  /** Same as {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/**
 * A compute context: the backend and its threads. Every model lives in one.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Context } from "./native.ts";
 * using ctx = new Context({ backend: "cpu", threads: 1 });
 * assert.ok(ctx.info().backend === "cpu");
 * ```
 */
export class Context extends Handle {
  /** Opens a context (loading the native library on first use). */
  constructor(opts: ContextOptions = {}) {
    const { symbols } = loadLibrary({ path: opts.libraryPath });
    const name = utf8(opts.backend ?? "auto");
    const threads = opts.threads ?? 0;
    if (!Number.isInteger(threads) || threads < 0) {
      throw new RangeError(`threads must be a non-negative integer, got ${threads}`);
    }
    super(
      checkHandle(symbols.gan_context_new(name, BigInt(name.length), threads), "Context"),
      symbols.gan_context_free,
    );
  }

  /** What this context runs on. */
  info(): BackendInfo {
    const s = lib();
    const info = readJson("gan_context_info", (b, n) => s.gan_context_info(this.handle, b, BigInt(n))) as BackendInfo;
    return { ...info, library: loadLibrary().location };
  }
}

/** Where a tensor lives in an MLP's flat buffers, named as PyTorch's state_dict names it. */
export interface NativeTensorInfo {
  /** The state_dict name, e.g. `model.0.weight`. */
  name: string;
  /** The shape, e.g. `[128, 100]`. */
  shape: number[];
  /** Offset in the flat buffer (floats). */
  offset: number;
  /** Element count. */
  size: number;
}

/** The layout and counters of an MLP, as the native library reports them. */
export interface MlpInfo {
  /** Input features. */
  input: number;
  /** Output features. */
  output: number;
  /** Floats in the flat parameter buffer (and in the gradient and Adam buffers). */
  param_count: number;
  /** Floats in the flat buffer of BN running statistics. */
  buffer_count: number;
  /** Every parameter tensor, in flat-buffer order. */
  params: NativeTensorInfo[];
  /** Every running-statistics tensor, in flat-buffer order. */
  buffers: NativeTensorInfo[];
  /** Adam steps taken. */
  adam_step: number;
  /** Train-mode forwards (PyTorch's `num_batches_tracked`). */
  num_batches_tracked: number;
  /** Rows of the last forward (0 before any). */
  last_rows: number;
}

/** Adam hyperparameters. */
export interface AdamOptions {
  /** Learning rate. */
  lr: number;
  /** Decay of the first moment (beta1). */
  b1: number;
  /** Decay of the second moment (beta2). */
  b2: number;
  /** Added to the denominator. */
  eps: number;
}

/** The seed's Adam settings: lr 2e-4, betas (0.5, 0.999), eps 1e-8. */
export const SEED_ADAM: AdamOptions = { lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 };

/** The flat buffers of an MLP: which one `get`/`set` address. */
export type MlpBuffer = "params" | "grads" | "adam_m" | "adam_v" | "running";
const BUFFER_INDEX: Record<MlpBuffer, number> = { params: 0, grads: 1, adam_m: 2, adam_v: 3, running: 4 };

/**
 * An MLP of fused blocks (Linear -> optional BatchNorm1d -> activation) in a native context.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Context, NativeMlp } from "./native.ts";
 * using ctx = new Context({ backend: "cpu" });
 * using mlp = new NativeMlp(ctx, {
 *   input: 3,
 *   layers: [{ out: 2, bn: null, act: { kind: "tanh" } }],
 * });
 * mlp.set("params", new Float32Array(mlp.info().param_count).fill(0.1));
 * const y = mlp.forward(new Float32Array([1, 2, 3]), 1, false); // [1, 2]
 * assert.ok(Math.abs(y[0] - Math.tanh(0.7)) < 1e-6);
 * ```
 */
export class NativeMlp extends Handle {
  /** The spec this MLP was built from. */
  readonly spec: MlpSpec;
  readonly #layout: MlpInfo;
  #rows = 0;

  /** Builds the MLP; parameters start at zero (BN gamma 1) until set. */
  constructor(ctx: Context, spec: MlpSpec) {
    const s = lib();
    const json = utf8(JSON.stringify(spec));
    super(checkHandle(s.gan_mlp_new(ctx.handle, json, BigInt(json.length)), "NativeMlp"), s.gan_mlp_free);
    this.spec = spec;
    this.#layout = this.info();
  }

  /** Layout and counters. */
  info(): MlpInfo {
    const s = lib();
    return readJson("gan_mlp_info", (b, n) => s.gan_mlp_info(this.handle, b, BigInt(n))) as MlpInfo;
  }

  /** Element count of a flat buffer. */
  size(which: MlpBuffer): number {
    return which === "running" ? this.#layout.buffer_count : this.#layout.param_count;
  }

  /** A copy of a flat buffer. */
  get(which: MlpBuffer): Float32Array<ArrayBuffer> {
    const out = new Float32Array(this.size(which));
    check(lib().gan_mlp_get(this.handle, BUFFER_INDEX[which], out, BigInt(out.length)), `NativeMlp.get(${which})`);
    return out;
  }

  /** Replaces a flat buffer (every value must be finite). */
  set(which: MlpBuffer, values: Float32Array<ArrayBuffer>): void {
    check(
      lib().gan_mlp_set(this.handle, BUFFER_INDEX[which], values, BigInt(values.length)),
      `NativeMlp.set(${which})`,
    );
  }

  /** Sets the Adam step counter and `num_batches_tracked` (for resume). */
  setCounters(adamStep: number, numBatchesTracked: number): void {
    check(lib().gan_mlp_set_counters(this.handle, BigInt(adamStep), BigInt(numBatchesTracked)), "setCounters");
  }

  /** `x [rows, input]` -> `[rows, output]`; train mode uses batch statistics and updates the running ones. */
  forward(x: Float32Array<ArrayBuffer>, rows: number, train: boolean): Float32Array<ArrayBuffer> {
    const y = new Float32Array(rows * this.#layout.output);
    check(
      lib().gan_mlp_forward(this.handle, x, BigInt(x.length), rows, train ? 1 : 0, y, BigInt(y.length)),
      "NativeMlp.forward",
    );
    this.#rows = rows;
    return y;
  }

  /** Backward of the last forward: returns `d loss / d x [rows, input]`; parameter gradients go to `get("grads")`. */
  backward(dy: Float32Array<ArrayBuffer>): Float32Array<ArrayBuffer> {
    const dx = new Float32Array(this.#rows * this.#layout.input);
    check(lib().gan_mlp_backward(this.handle, dy, BigInt(dy.length), dx, BigInt(dx.length)), "NativeMlp.backward");
    return dx;
  }

  /** The output of the last forward `[rows, output]` (in a GAN step: the generator's fake batch of that step). */
  lastOutput(): Float32Array<ArrayBuffer> {
    const out = new Float32Array(this.info().last_rows * this.#layout.output);
    check(lib().gan_mlp_output(this.handle, out, BigInt(out.length)), "NativeMlp.lastOutput");
    return out;
  }

  /** One Adam step over all parameters with the current gradients. */
  adam(o: AdamOptions = SEED_ADAM): void {
    check(lib().gan_mlp_adam(this.handle, o.lr, o.b1, o.b2, o.eps), "NativeMlp.adam");
  }
}

/** Settings of a native GAN trainer. */
export interface GanConfig extends AdamOptions {
  /** Images per step. */
  batch_size: number;
  /** Seed of the noise and the shuffles (an integer below 2^53). */
  seed: number;
}

/** Where a GAN run stands. */
export interface GanInfo {
  /** Steps taken (the next step's global index). */
  step: number;
  /** The next step's epoch (0-based). */
  epoch: number;
  /** The next step's batch in its epoch (0-based). */
  batch: number;
  /** Images in the next step's batch (the last batch of an epoch may be short). */
  rows: number;
  /** Batches per epoch (the last one may be short). */
  batches_per_epoch: number;
  /** Images per batch. */
  batch_size: number;
  /** The run's seed. */
  seed: number;
}

/** The results of one training step. */
export interface StepResult {
  /** (BCE(D(x), 1) + BCE(D(G(z)), 0)) / 2 */
  dLoss: number;
  /** BCE(D(G(z)), 1) */
  gLoss: number;
  /** mean D(x) over the real batch */
  dReal: number;
  /** mean D(G(z)) over the fake batch, before either update */
  dFake: number;
}

/**
 * The seed's GAN step run natively over a dataset held in the library.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Context, NativeGan, NativeMlp } from "./native.ts";
 * using ctx = new Context({ backend: "cpu" });
 * using g = new NativeMlp(ctx, { input: 2, layers: [{ out: 4, bn: null, act: { kind: "tanh" } }] });
 * using d = new NativeMlp(ctx, { input: 4, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] });
 * using gan = new NativeGan(ctx, g, d, { batch_size: 2, seed: 1, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 });
 * gan.setData(new Uint8Array([0, 64, 128, 255, 255, 128, 64, 0]), 2);
 * const [r] = gan.step(1);
 * assert.ok(Math.abs(r.dLoss - Math.log(2)) < 1e-6); // all-zero weights: D says 0.5 everywhere
 * ```
 */
export class NativeGan extends Handle {
  /** Creates the trainer for generator `g` and discriminator `d` (which stay owned by the caller). */
  constructor(ctx: Context, g: NativeMlp, d: NativeMlp, config: GanConfig) {
    const s = lib();
    const json = utf8(JSON.stringify(config));
    super(
      checkHandle(s.gan_gan_new(ctx.handle, g.handle, d.handle, json, BigInt(json.length)), "NativeGan"),
      s.gan_gan_free,
    );
  }

  /** Uploads the dataset once: `pixels [count, features]` u8. */
  setData(pixels: Uint8Array<ArrayBuffer>, count: number): void {
    check(lib().gan_gan_set_data(this.handle, pixels, BigInt(pixels.length), count), "NativeGan.setData");
  }

  /** Runs `n` steps in one call; returns each step's losses. */
  step(n = 1): StepResult[] {
    const raw = this.stepRaw(n);
    const out: StepResult[] = [];
    for (let i = 0; i < n; i++) {
      out.push({ dLoss: raw[4 * i], gLoss: raw[4 * i + 1], dReal: raw[4 * i + 2], dFake: raw[4 * i + 3] });
    }
    return out;
  }

  /** Runs `n` steps; returns `[n, 4]` floats: d_loss, g_loss, mean D(x), mean D(G(z)). */
  stepRaw(n = 1, out: Float32Array<ArrayBuffer> = new Float32Array(4 * n)): Float32Array<ArrayBuffer> {
    check(lib().gan_gan_step(this.handle, n, out, BigInt(out.length)), "NativeGan.step");
    return out;
  }

  /**
   * One training step on a given noise batch `z [rows, latent]` and real batch `xReal [rows, features]` (already in
   * [-1, 1]), both row-major, instead of the library's own noise and data; it counts as a step. For parity tests.
   */
  stepExplicit(z: Float32Array<ArrayBuffer>, xReal: Float32Array<ArrayBuffer>, rows: number): StepResult {
    const out = new Float32Array(4);
    check(
      lib().gan_gan_step_explicit(
        this.handle,
        z,
        BigInt(z.length),
        xReal,
        BigInt(xReal.length),
        rows,
        out,
        BigInt(out.length),
      ),
      "NativeGan.stepExplicit",
    );
    return { dLoss: out[0], gLoss: out[1], dReal: out[2], dFake: out[3] };
  }

  /** Where the run stands. */
  info(): GanInfo {
    const s = lib();
    return readJson("gan_gan_info", (b, n) => s.gan_gan_info(this.handle, b, BigInt(n))) as GanInfo;
  }

  /** Moves the run to a global step (for resume). */
  setStep(step: number): void {
    check(lib().gan_gan_set_step(this.handle, BigInt(step)), "NativeGan.setStep");
  }
}

/** Live native handles, for leak tests. */
export function liveHandles(): number {
  return lib().gan_live_handles();
}

/** A loss value and, when asked for, its gradient. */
export interface LossResult {
  /** The mean loss. */
  loss: number;
  /** Its gradient with respect to the input, when asked for. */
  grad: Float32Array<ArrayBuffer> | null;
}

function lossCall(
  fn: "gan_bce" | "gan_sigmoid_bce",
  input: Float32Array<ArrayBuffer>,
  target: Float32Array<ArrayBuffer>,
  withGrad: boolean,
): LossResult {
  if (target.length !== input.length) {
    throw new RangeError(`${fn}: target has ${target.length} values, input has ${input.length}`);
  }
  const loss = new Float32Array(1);
  const grad = withGrad ? new Float32Array(input.length) : null;
  check(lib()[fn](input, target, BigInt(input.length), loss, grad, BigInt(grad?.length ?? 0)), fn);
  return { loss: loss[0], grad };
}

/**
 * Mean binary cross-entropy of probabilities against targets, with PyTorch's clamps (each log term at -100, the
 * gradient's denominator at 1e-12).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeBce } from "./native.ts";
 * const { loss } = nativeBce(new Float32Array([0.5]), new Float32Array([1]));
 * assert.ok(Math.abs(loss - Math.log(2)) < 1e-6);
 * ```
 */
export function nativeBce(
  p: Float32Array<ArrayBuffer>,
  y: Float32Array<ArrayBuffer>,
  withGrad = true,
): LossResult {
  return lossCall("gan_bce", p, y, withGrad);
}

/**
 * Fused sigmoid + BCE over logits; the gradient is the exact composition of PyTorch's two gradients.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeSigmoidBce } from "./native.ts";
 * const { grad } = nativeSigmoidBce(new Float32Array([0]), new Float32Array([1]));
 * assert.ok(Math.abs(grad![0] + 0.5) < 1e-6);
 * ```
 */
export function nativeSigmoidBce(
  logits: Float32Array<ArrayBuffer>,
  y: Float32Array<ArrayBuffer>,
  withGrad = true,
): LossResult {
  return lossCall("gan_sigmoid_bce", logits, y, withGrad);
}

/**
 * One Adam step in place over caller buffers (PyTorch's update; `t` counts from 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeAdam } from "./native.ts";
 * const p = new Float32Array([1]), m = new Float32Array(1), v = new Float32Array(1);
 * nativeAdam(p, new Float32Array([0.5]), m, v, 1, { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8 });
 * assert.ok(Math.abs(p[0] - 0.9) < 1e-6); // the first step moves by lr
 * ```
 */
export function nativeAdam(
  params: Float32Array<ArrayBuffer>,
  grads: Float32Array<ArrayBuffer>,
  m: Float32Array<ArrayBuffer>,
  v: Float32Array<ArrayBuffer>,
  t: number,
  o: AdamOptions,
): void {
  const n = params.length;
  if (grads.length !== n || m.length !== n || v.length !== n) {
    throw new RangeError(
      `nativeAdam: lengths differ (params ${n}, grads ${grads.length}, m ${m.length}, v ${v.length})`,
    );
  }
  check(lib().gan_adam(params, grads, m, v, BigInt(n), BigInt(t), o.lr, o.b1, o.b2, o.eps), "gan_adam");
}

/**
 * The generator noise of one training step: `n` standard normals from the counter-based stream `(seed, step)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeNormal } from "./native.ts";
 * const a = nativeNormal(7, 0, 4), b = nativeNormal(7, 0, 4);
 * assert.ok(a.every((x, i) => x === b[i]));
 * ```
 */
export function nativeNormal(seed: number, step: number, n: number): Float32Array<ArrayBuffer> {
  const out = new Float32Array(n);
  check(lib().gan_rng_normal(BigInt(seed), DOMAIN_NOISE, step, out, BigInt(n)), "gan_rng_normal");
  return out;
}

/**
 * The sample order of one epoch: a seeded permutation of `0..n`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativePermutation } from "./native.ts";
 * const p = nativePermutation(1, 0, 10);
 * assert.ok([...p].sort((a, b) => a - b).every((v, i) => v === i));
 * ```
 */
export function nativePermutation(seed: number, epoch: number, n: number): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(n);
  check(lib().gan_rng_permutation(BigInt(seed), epoch, out, BigInt(n)), "gan_rng_permutation");
  return out;
}
