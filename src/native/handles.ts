/**
 * The classes that own native handles (contexts, MLPs, GAN trainers) and the free functions over caller buffers
 * (losses, Adam, the random streams), beside the symbol table in `./ffi.ts`. Handles are released by `close()` or
 * `using`; a FinalizationRegistry frees what was forgotten.
 *
 * @module
 */

import { f32Arg, intArg, u32ArrayArg, u64Arg, u8Arg } from "./args.ts";
import { check, checkHandle, lib, type LibraryLocation, loadLibrary, nativeContract, readJson, utf8 } from "./ffi.ts";
import {
  checkSpecFields,
  type EmbeddingSpec,
  type GanLoss,
  type MlpSpec,
  specJson,
  type TensorLayout,
} from "../model/spec.ts";

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
  /**
   * The CPU backend's kernels on this machine: `avx512` (a library built with its default `avx512` feature, on a CPU
   * with AVX-512), `avx2` (AVX2+FMA) or `baseline`.
   */
  cpu_kernels: "avx512" | "avx2" | "baseline";
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
 * import { Context } from "./handles.ts";
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
  /** Input features (the caller's `x`, without the embedding's columns). */
  input: number;
  /** The label embedding (its table is `params[0]`), or null for none. */
  embedding: EmbeddingSpec | null;
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

/**
 * Validates a spec and returns its layout as the library lays it out (names, shapes, offsets, the parameter and
 * running-statistics counts), without building the MLP or allocating its buffers. An invalid spec is a
 * {@link NativeError} (InvalidArgument) whose message names the field and the value.
 *
 * @param spec The spec.
 * @returns Its layout and its input and output sizes.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { describeSpec } from "./handles.ts";
 * const l = describeSpec({ input: 4, layers: [{ out: 3, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "tanh" } }] });
 * assert.equal(l.paramCount, 4 * 3 + 3 + 3 + 3); // Linear weight and bias, BatchNorm gamma and beta
 * assert.deepEqual(l.buffers.map((t) => t.name), ["model.1.running_mean", "model.1.running_var"]);
 * ```
 */
export function describeSpec(
  spec: MlpSpec,
): TensorLayout & { input: number; output: number; embedding: EmbeddingSpec | null } {
  checkSpecFields(spec);
  const s = lib();
  const json = utf8(specJson(spec));
  const info = readJson("gan_spec_info", (b, n) => s.gan_spec_info(json, BigInt(json.length), b, BigInt(n))) as MlpInfo;
  return {
    input: info.input,
    output: info.output,
    embedding: info.embedding ?? null,
    params: info.params,
    buffers: info.buffers,
    paramCount: info.param_count,
    bufferCount: info.buffer_count,
  };
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

/** The flat buffers of an MLP: which one `get`/`set` address (the library's names, see `nativeContract().buffers`). */
export type MlpBuffer = "params" | "grads" | "adam_m" | "adam_v" | "running";

/** The library's selector of a flat buffer. */
function bufferIndex(which: MlpBuffer): number {
  const i = nativeContract().buffers.indexOf(which);
  if (i < 0) {
    throw new TypeError(`unknown MLP buffer "${which}" (the library has ${nativeContract().buffers.join(", ")})`);
  }
  return i;
}

/**
 * An MLP of fused blocks (Linear -> optional BatchNorm1d -> activation) in a native context.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Context, NativeMlp } from "./handles.ts";
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
    checkSpecFields(spec);
    const s = lib();
    const json = utf8(specJson(spec));
    super(checkHandle(s.gan_mlp_new(ctx.handle, json, BigInt(json.length)), "NativeMlp"), s.gan_mlp_free);
    this.spec = spec;
    this.#layout = this.info();
  }

  /** Layout and counters. */
  info(): MlpInfo {
    const s = lib();
    return readJson("gan_mlp_info", (b, n) => s.gan_mlp_info(this.handle, b, BigInt(n))) as MlpInfo;
  }

  /**
   * The offset tables of the flat buffers, with PyTorch's state_dict names, as the library lays them out (the one
   * source of the parameter layout).
   */
  layout(): TensorLayout {
    const l = this.#layout;
    return {
      params: l.params,
      buffers: l.buffers,
      paramCount: l.param_count,
      bufferCount: l.buffer_count,
      embedding: l.embedding ?? this.embedding,
    };
  }

  /** The label embedding, or null: an MLP with one takes a label per row in {@link forward}. */
  get embedding(): EmbeddingSpec | null {
    return this.spec.embedding ?? null;
  }

  /** Element count of a flat buffer. */
  size(which: MlpBuffer): number {
    return which === "running" ? this.#layout.buffer_count : this.#layout.param_count;
  }

  /** A copy of a flat buffer. */
  get(which: MlpBuffer): Float32Array<ArrayBuffer> {
    const out = new Float32Array(this.size(which));
    check(lib().gan_mlp_get(this.handle, bufferIndex(which), out, BigInt(out.length)), `NativeMlp.get(${which})`);
    return out;
  }

  /** Replaces a flat buffer (every value must be finite). */
  set(which: MlpBuffer, values: Float32Array<ArrayBuffer>): void {
    const fn = `NativeMlp.set(${which})`;
    const v = f32Arg(values, "values", fn);
    check(lib().gan_mlp_set(this.handle, bufferIndex(which), v, BigInt(v.length)), fn);
  }

  /**
   * PyTorch's default initialization, drawn by the library from its init stream `(seed, stream)`: Linear weight and
   * bias ~ U(-1/sqrt(in), 1/sqrt(in)), BN gamma 1 and beta 0, running mean 0 and var 1. The same seed gives the same
   * weights on every backend. By convention stream 0 is the generator, 1 the discriminator and 2 aae's encoder.
   */
  init(seed: number, stream: number): void {
    const fn = "NativeMlp.init";
    check(lib().gan_mlp_init(this.handle, u64Arg(seed, "seed", fn), intArg(stream, "stream", fn)), fn);
  }

  /** Sets the Adam step counter and `num_batches_tracked` (for resume). */
  setCounters(adamStep: number, numBatchesTracked: number): void {
    const fn = "NativeMlp.setCounters";
    const [a, b] = [u64Arg(adamStep, "adamStep", fn), u64Arg(numBatchesTracked, "numBatchesTracked", fn)];
    check(lib().gan_mlp_set_counters(this.handle, a, b), fn);
  }

  /**
   * `x [rows, input]` -> `[rows, output]`; train mode uses batch statistics and updates the running ones. An MLP with
   * a label embedding takes `labels [rows]` (each below its `classes`), and one without refuses them: the first
   * block then reads `[table[label], x]` (`at: "first"`) or `[x, table[label]]` (`at: "last"`) per row.
   */
  forward(
    x: Float32Array<ArrayBuffer>,
    rows: number,
    train: boolean,
    labels?: Uint32Array<ArrayBuffer>,
  ): Float32Array<ArrayBuffer> {
    const fn = "NativeMlp.forward";
    intArg(rows, "rows", fn);
    const xs = f32Arg(x, "x", fn);
    const emb = this.embedding;
    if (labels === undefined && emb !== null) {
      throw new TypeError(
        `${fn}: this MLP has the label embedding "${emb.name}" (${emb.classes} classes): pass labels [rows]`,
      );
    }
    if (labels !== undefined && emb === null) {
      throw new TypeError(`${fn}: labels were given, but this MLP has no label embedding`);
    }
    // Allocate y only when x holds rows x input values, so that rows alone never sizes an allocation (with a short x
    // the library refuses the call, naming both sizes).
    const y = new Float32Array(xs.length === rows * this.#layout.input ? rows * this.#layout.output : 0);
    const t = train ? 1 : 0;
    if (labels === undefined) {
      check(lib().gan_mlp_forward(this.handle, xs, BigInt(xs.length), rows, t, y, BigInt(y.length)), fn);
    } else {
      const ls = u32ArrayArg(labels, "labels", fn);
      const n = [BigInt(xs.length), BigInt(ls.length), BigInt(y.length)] as const;
      check(lib().gan_mlp_forward_labeled(this.handle, xs, n[0], ls, n[1], rows, t, y, n[2]), fn);
    }
    this.#rows = rows;
    return y;
  }

  /** Backward of the last forward: returns `d loss / d x [rows, input]`; parameter gradients go to `get("grads")`. */
  backward(dy: Float32Array<ArrayBuffer>): Float32Array<ArrayBuffer> {
    const fn = "NativeMlp.backward";
    const g = f32Arg(dy, "dy", fn);
    const dx = new Float32Array(this.#rows * this.#layout.input);
    check(lib().gan_mlp_backward(this.handle, g, BigInt(g.length), dx, BigInt(dx.length)), fn);
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
  /**
   * The adversarial loss of models `gan` (default `bce`) and `cgan` (default `mse`; see `GAN_LOSSES`): D's last
   * activation must suit it.
   */
  loss?: GanLoss;
  /**
   * The model (default `gan`): `gan`, `bgan`, `softmax_gan`, `wgan`, `wgan_gp`, `wgan_div`, `cgan` or `aae` (the
   * contract's `models`, with upstream's defaults; cgan needs a generator embedding at `first` and a discriminator
   * embedding at `last` with the same classes, and {@link NativeGan.setLabels}; aae an encoder, the constructor's
   * fifth argument, whose last layer has `mu` and `logvar` heads, a decoder as `g` and a D on the latent). A key below
   * that the model does not take is refused.
   */
  model?: string;
  /** `adam` or `rmsprop` (PyTorch's, alpha 0.99, its average in `adam_v`); default the model's. */
  optimizer?: "adam" | "rmsprop";
  /** Wasserstein models: the generator updates at batch indices divisible by this (default 5). */
  n_critic?: number;
  /** wgan (and wgan_gp with `gp_clip`): every critic parameter is clamped to `[-clip_value, clip_value]`. */
  clip_value?: number;
  /** wgan_gp: the penalty's weight (default 10). */
  lambda_gp?: number;
  /** wgan_gp: the norm of the penalty, over each sample (`sample`, upstream today) or each pixel (`pixel`, issue 20). */
  gp_norm?: "sample" | "pixel";
  /** wgan_gp: clamp the critic to `[-clip_value, clip_value]` as wgan does (upstream parses the flag, issue 196). */
  gp_clip?: boolean;
  /** wgan_gp with `gp_norm: "pixel"`: the images' channels (default 1). */
  channels?: number;
  /** wgan_div: the penalty's k (default 2). */
  div_k?: number;
  /** wgan_div: the penalty's power p (default 6). */
  div_p?: number;
  /** softmax_gan: G's g_loss gradient through D's weights before its update (not the 2018 late weights). */
  softmax_fresh_d?: boolean;
  /** softmax_gan: G follows grad(g_loss) alone (not grad(d_loss) + grad(g_loss), upstream's). */
  softmax_g_loss_only?: boolean;
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
  /** The step at which the last step call diverged (a loss or parameter turned NaN or infinite), else null. */
  diverged_step: number | null;
  /**
   * GPU dispatches per step of the last step call (its mean over the call's steps); 0 on the CPU backend, which
   * records no GPU work, and before the first call.
   */
  dispatches_per_step: number;
  /**
   * Pipeline barriers per step of the last step call: dispatches that bind a buffer an earlier dispatch of the same
   * submission bound (every binding is read-write, so wgpu makes each wait for the work before it); 0 on the CPU.
   */
  barriers_per_step: number;
  /**
   * GPU workgroups launched per step of the last step call (the sum of every dispatch's grid); 0 on the CPU backend.
   */
  workgroups_per_step: number;
  /**
   * CPU microseconds per step that the last step call spent recording GPU work (from a submission's first dispatch
   * until its queue submit began: the dispatches, their uniforms, the command buffer); 0 on the CPU backend.
   */
  record_us_per_step: number;
  /**
   * Microseconds per step inside the queue submits of the last step call: short on a hardware GPU; a software
   * adapter (lavapipe) blocks there until the previous submission has run. 0 on the CPU backend.
   */
  submit_us_per_step: number;
  /** GPU submissions of the last step call; 0 on the CPU backend. */
  submissions: number;
}

/**
 * Floats per step in the records that a step call writes (the length of the library's `step_fields`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { stepRecordLength } from "./handles.ts";
 * assert.equal(stepRecordLength(), 4);
 * ```
 */
export function stepRecordLength(): number {
  return nativeContract().step_fields.length;
}

const camel = (snake: string) => snake.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

/**
 * Decodes the `[n, stepRecordLength()]` records of a step call into one {@link StepResult} per step, by the field
 * names the library gives (`d_loss` becomes `dLoss`). The one place that knows the record's layout.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { decodeSteps } from "./handles.ts";
 * const [r] = decodeSteps(new Float32Array([0.5, 0.25, 0.75, 0.125]));
 * assert.deepEqual(r, { dLoss: 0.5, gLoss: 0.25, dReal: 0.75, dFake: 0.125 });
 * ```
 */
export function decodeSteps(raw: Float32Array): StepResult[] {
  const fields = nativeContract().step_fields.map(camel);
  const k = fields.length;
  if (raw.length % k !== 0) throw new RangeError(`step records: ${raw.length} floats is not a multiple of ${k}`);
  const out: StepResult[] = [];
  for (let i = 0; i < raw.length; i += k) {
    const r: Record<string, number> = {};
    for (let j = 0; j < k; j++) r[fields[j]] = raw[i + j];
    out.push(r as unknown as StepResult);
  }
  return out;
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
 * import { Context, NativeGan, NativeMlp } from "./handles.ts";
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
  /**
   * Creates the trainer for generator `g` and discriminator `d` (which stay owned by the caller), and for model `aae`
   * its `encoder` (a third MLP of the same context, also the caller's; `gan_gan_new_with_encoder`), which every step
   * then trains too. aae needs one and every other model refuses one (the library's messages).
   */
  constructor(ctx: Context, g: NativeMlp, d: NativeMlp, config: GanConfig, encoder?: NativeMlp) {
    const s = lib();
    const json = utf8(JSON.stringify(config));
    const n = BigInt(json.length);
    super(
      checkHandle(
        encoder === undefined
          ? s.gan_gan_new(ctx.handle, g.handle, d.handle, json, n)
          : s.gan_gan_new_with_encoder(ctx.handle, g.handle, d.handle, encoder.handle, json, n),
        "NativeGan",
      ),
      s.gan_gan_free,
    );
  }

  /** Uploads the dataset once: `pixels [count, features]` u8. */
  setData(pixels: Uint8Array<ArrayBuffer>, count: number): void {
    const fn = "NativeGan.setData";
    const px = u8Arg(pixels, "pixels", fn);
    check(lib().gan_gan_set_data(this.handle, px, BigInt(px.length), intArg(count, "count", fn)), fn);
  }

  /**
   * Uploads the dataset's labels (a conditional model's: cgan), one per image of the last {@link setData} and each
   * below the networks' `classes`; {@link setData} forgets them, so call it after each. A conditional step without
   * labels is refused (BadState).
   */
  setLabels(labels: Uint32Array<ArrayBuffer>): void {
    const fn = "NativeGan.setLabels";
    const ls = u32ArrayArg(labels, "labels", fn);
    check(lib().gan_gan_set_labels(this.handle, ls, BigInt(ls.length)), fn);
  }

  /** Runs `n` steps in one call; returns each step's losses. */
  step(n = 1): StepResult[] {
    return decodeSteps(this.stepRaw(n));
  }

  /**
   * Runs `n` steps (at most {@link MAX_STEPS_PER_CALL}); returns the `[n, stepRecordLength()]` records (see
   * {@link decodeSteps}), written into `out` when given (a Float32Array of exactly that length).
   */
  stepRaw(n = 1, out?: Float32Array<ArrayBuffer>): Float32Array<ArrayBuffer> {
    const fn = "NativeGan.step";
    const len = stepRecordLength() * intArg(n, "n", fn, 1, MAX_STEPS_PER_CALL);
    const o = out === undefined ? new Float32Array(len) : f32Arg(out, "out", fn); // the library checks its length
    check(lib().gan_gan_step(this.handle, n, o, BigInt(o.length)), fn);
    return o;
  }

  /**
   * One training step on a given noise batch `z [rows, latent]` and real batch `xReal [rows, features]` (already in
   * [-1, 1]), both row-major, and the step's other draws `aux` (wgan_gp's interpolation weights `alpha [rows]` in
   * [0, 1]; cgan's labels `[gen_labels (rows), real labels (rows)]` as integer values; aae's reparameterization noise
   * `eps [rows, latent]`, with `z` the prior sample of its D step; empty for every other model), instead of the
   * library's own noise and data; it counts as a step, and the
   * Wasserstein models' batch index is the position of the run's step in the epoch. For parity tests.
   */
  stepExplicit(
    z: Float32Array<ArrayBuffer>,
    xReal: Float32Array<ArrayBuffer>,
    rows: number,
    aux: Float32Array<ArrayBuffer> = new Float32Array(0),
  ): StepResult {
    const fn = "NativeGan.stepExplicit";
    const [zs, xs, as] = [f32Arg(z, "z", fn), f32Arg(xReal, "xReal", fn), f32Arg(aux, "aux", fn)];
    const out = new Float32Array(stepRecordLength());
    const r = intArg(rows, "rows", fn);
    check(
      lib().gan_gan_step_explicit(
        this.handle,
        zs,
        BigInt(zs.length),
        xs,
        BigInt(xs.length),
        as,
        BigInt(as.length),
        r,
        out,
        BigInt(out.length),
      ),
      fn,
    );
    return decodeSteps(out)[0];
  }

  /** Where the run stands. */
  info(): GanInfo {
    const s = lib();
    return readJson("gan_gan_info", (b, n) => s.gan_gan_info(this.handle, b, BigInt(n))) as GanInfo;
  }

  /** Moves the run to a global step (for resume). */
  setStep(step: number): void {
    check(lib().gan_gan_set_step(this.handle, u64Arg(step, "step", "NativeGan.setStep")), "NativeGan.setStep");
  }
}

/** The most steps one {@link NativeGan.stepRaw} call runs (its records are allocated before the call). */
export const MAX_STEPS_PER_CALL = 1 << 20;

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
  const [x, y] = [f32Arg(input, "input", fn), f32Arg(target, "target", fn)];
  if (y.length !== x.length) {
    throw new RangeError(`${fn}: target has ${y.length} values, input has ${x.length}`);
  }
  const loss = new Float32Array(1);
  const grad = withGrad ? new Float32Array(x.length) : null;
  check(lib()[fn](x, y, BigInt(x.length), loss, grad, BigInt(grad?.length ?? 0)), fn);
  return { loss: loss[0], grad };
}

/**
 * Mean binary cross-entropy of probabilities against targets, with PyTorch's clamps (each log term at -100, the
 * gradient's denominator at 1e-12).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeBce } from "./handles.ts";
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
 * import { nativeSigmoidBce } from "./handles.ts";
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
 * Mean softmax cross-entropy of `logits [rows, classes]` (row-major) against integer `labels [rows]`, as PyTorch's
 * `CrossEntropyLoss`: `mean_r (logsumexp(z_r) - z_r[y_r])`; its gradient `(softmax(z_r) - onehot(y_r)) / rows`. It runs
 * on the context's backend (a GPU context computes it on its device). Every argument is checked before any work: a
 * label of `classes` or more is refused naming its row and value, and so is a NaN or infinite logit.
 *
 * @param ctx The context whose backend computes it.
 * @param logits The logits, `rows * classes` values.
 * @param labels The class of each row (each below `classes`).
 * @param classes Classes per row.
 * @param withGrad Whether to compute the gradient with respect to the logits.
 * @returns The loss and, when asked for, `[rows, classes]` gradients.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Context, nativeSoftmaxCrossEntropy } from "./handles.ts";
 * using ctx = new Context({ backend: "cpu", threads: 1 });
 * const { loss, grad } = nativeSoftmaxCrossEntropy(ctx, new Float32Array([0, 0]), new Uint32Array([1]), 2);
 * assert.ok(Math.abs(loss - Math.log(2)) < 1e-6); // two equal logits
 * assert.ok(Math.abs(grad![1] + 0.5) < 1e-6);
 * ```
 */
export function nativeSoftmaxCrossEntropy(
  ctx: Context,
  logits: Float32Array<ArrayBuffer>,
  labels: Uint32Array<ArrayBuffer>,
  classes: number,
  withGrad = true,
): LossResult {
  const fn = "nativeSoftmaxCrossEntropy";
  const [z, y] = [f32Arg(logits, "logits", fn), u32ArrayArg(labels, "labels", fn)];
  const c = intArg(classes, "classes", fn);
  const loss = new Float32Array(1);
  const grad = withGrad && z.length === y.length * c ? new Float32Array(z.length) : null;
  check(
    lib().gan_softmax_ce(
      ctx.handle,
      z,
      BigInt(z.length),
      y,
      BigInt(y.length),
      c,
      loss,
      grad,
      BigInt(grad?.length ?? 0),
    ),
    fn,
  );
  return { loss: loss[0], grad };
}

/**
 * One Adam step in place over caller buffers (PyTorch's update; `t` counts from 1).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeAdam } from "./handles.ts";
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
  const fn = "nativeAdam";
  const [p, g, m1, v1] = [
    f32Arg(params, "params", fn),
    f32Arg(grads, "grads", fn),
    f32Arg(m, "m", fn),
    f32Arg(v, "v", fn),
  ];
  const n = p.length;
  if (g.length !== n || m1.length !== n || v1.length !== n) {
    throw new RangeError(`nativeAdam: lengths differ (params ${n}, grads ${g.length}, m ${m1.length}, v ${v1.length})`);
  }
  const step = u64Arg(t, "t", fn);
  check(lib().gan_adam(p, g, m1, v1, BigInt(n), step, o.lr, o.b1, o.b2, o.eps), "gan_adam");
}

/** The most values one {@link nativeNormal} or {@link nativePermutation} call draws (2^28, 1 GiB of floats). */
export const MAX_NOISE_VALUES = 2 ** 28;

/** The library's normal-noise streams: training noise (stream = step), the fixed grid, and `sample`. */
export type NoiseDomain = "noise" | "fixed" | "sample";

/**
 * `n` standard normals from the library's counter-based stream `(seed, domain, stream)`: the training noise of step
 * `stream` (domain `noise`), the fixed-noise grid (`fixed`), or the noise of `sample` (`sample`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativeNormal } from "./handles.ts";
 * const a = nativeNormal(7, 0, 4), b = nativeNormal(7, 0, 4), c = nativeNormal(7, 0, 4, "sample");
 * assert.ok(a.every((x, i) => x === b[i]));
 * assert.ok(a.some((x, i) => x !== c[i]));
 * ```
 */
export function nativeNormal(
  seed: number,
  stream: number,
  n: number,
  domain: NoiseDomain = "noise",
): Float32Array<ArrayBuffer> {
  const fn = "nativeNormal";
  const d = nativeContract().rng_domains[domain];
  if (d === undefined) throw new TypeError(`${fn}: unknown noise domain "${domain}"`);
  const out = new Float32Array(intArg(n, "n", fn, 0, MAX_NOISE_VALUES));
  check(lib().gan_rng_normal(u64Arg(seed, "seed", fn), d, intArg(stream, "stream", fn), out, BigInt(n)), fn);
  return out;
}

/**
 * The sample order of one epoch: a seeded permutation of `0..n`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { nativePermutation } from "./handles.ts";
 * const p = nativePermutation(1, 0, 10);
 * assert.ok([...p].sort((a, b) => a - b).every((v, i) => v === i));
 * ```
 */
export function nativePermutation(seed: number, epoch: number, n: number): Uint32Array<ArrayBuffer> {
  const fn = "nativePermutation";
  const out = new Uint32Array(intArg(n, "n", fn, 0, MAX_NOISE_VALUES));
  check(lib().gan_rng_permutation(u64Arg(seed, "seed", fn), intArg(epoch, "epoch", fn), out, BigInt(n)), fn);
  return out;
}
