/**
 * The counter-based random streams of the native library (native/src/rng.rs), mirrored in TypeScript: the integer
 * hash is bit-identical; the normals agree to float rounding (JavaScript computes log/cos/sin in float64).
 *
 * @module
 */

/** Domain of the generator noise (stream = global step). */
export const DOMAIN_NOISE = 1;
/** Domain of the per-epoch sample order (stream = epoch). */
export const DOMAIN_SHUFFLE = 2;
/** Domain of parameter initialization (stream = 0 for G, 1 for D). */
export const DOMAIN_INIT = 3;
/** Domain of the fixed-noise grid that training writes beside each sample grid. */
export const DOMAIN_FIXED = 4;
/** Domain of the noise of `sample` (stream = the sample seed's stream, 0). */
export const DOMAIN_SAMPLE = 5;
/** Domain of wgan_gp's interpolation weights (stream = global step, counter = row; uniform in [0, 1)). */
export const DOMAIN_ALPHA = 6;
/** Domain of the dropout masks (stream = the forward's stream; one key per pass and layer; counter = r * out + j). */
export const DOMAIN_DROPOUT = 7;
/** Domain of cgan's labels of the fakes: stream = the global step, row `b` is `floor(uniform24(k, b) * classes)`. */
export const DOMAIN_LABELS = 8;
/** Domain of aae's reparameterization noise `eps`: stream = the global step, normals (element `b * latent + c`). */
export const DOMAIN_EPS = 9;

/**
 * The `lowbias32` integer mixer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { mix32 } from "./rng.ts";
 * assert.ok(mix32(0) === 0);
 * ```
 */
export function mix32(x: number): number {
  x = (x ^ (x >>> 16)) >>> 0;
  x = Math.imul(x, 0x7feb352d) >>> 0;
  x = (x ^ (x >>> 15)) >>> 0;
  x = Math.imul(x, 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

/**
 * The key of a stream: `(seed, domain, stream)` hashed to 32 bits.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DOMAIN_NOISE, key } from "./rng.ts";
 * assert.ok(key(1, DOMAIN_NOISE, 0) !== key(2, DOMAIN_NOISE, 0));
 * ```
 */
export function key(seed: number, domain: number, stream: number): number {
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(`seed must be a safe non-negative integer, got ${seed}`);
  }
  const lo = seed % 2 ** 32, hi = Math.floor(seed / 2 ** 32);
  let k = mix32((lo ^ 0x9e3779b9) >>> 0);
  k = mix32((k ^ hi) >>> 0);
  k = mix32((k ^ domain) >>> 0);
  return mix32((k ^ stream) >>> 0);
}

/**
 * Element `counter` of the stream with key `k`, a uniform 32-bit integer.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { rand } from "./rng.ts";
 * assert.ok(rand(5, 0) !== rand(5, 1));
 * ```
 */
export function rand(k: number, counter: number): number {
  return mix32((mix32((counter ^ k) >>> 0) + k) >>> 0);
}

/**
 * `n` standard normals of stream `(seed, domain, stream)` by Box-Muller, as the native library draws them (the
 * library's training noise is domain {@link DOMAIN_NOISE}, stream = the step).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normal } from "./rng.ts";
 * assert.ok(normal(1, 0, 3).length === 3);
 * ```
 */
export function normal(seed: number, stream: number, n: number, domain = DOMAIN_NOISE): Float32Array<ArrayBuffer> {
  const k = key(seed, domain, stream);
  const out = new Float32Array(n);
  const f = Math.fround, scale = 1 / 16777216;
  for (let i = 0; i < n; i += 2) {
    const u1 = f(((rand(k, i) >>> 8) + 1) * scale);
    const u2 = f((rand(k, i + 1) >>> 8) * scale);
    const r = f(Math.sqrt(f(-2 * f(Math.log(u1)))));
    const t = f(f(2 * Math.PI) * u2);
    out[i] = r * f(Math.cos(t));
    if (i + 1 < n) out[i + 1] = r * f(Math.sin(t));
  }
  return out;
}

/**
 * The sample order of an epoch: the Fisher-Yates shuffle of `0..n` that the native library draws.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { permutation } from "./rng.ts";
 * assert.ok([...permutation(1, 0, 5)].sort().join() === "0,1,2,3,4");
 * ```
 */
export function permutation(seed: number, epoch: number, n: number): Uint32Array<ArrayBuffer> {
  const out = new Uint32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  const k = key(seed, DOMAIN_SHUFFLE, epoch);
  for (let i = n - 1; i >= 1; i--) {
    const j = Number((BigInt(rand(k, i)) * BigInt(i + 1)) >> 32n);
    const t = out[i];
    out[i] = out[j];
    out[j] = t;
  }
  return out;
}

/**
 * A uniform [0, 1) generator over stream `(seed, domain, stream)`, 24 bits per number (exact in float32).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { DOMAIN_INIT, uniformStream } from "./rng.ts";
 * const u = uniformStream(1, DOMAIN_INIT, 0);
 * const x = u();
 * assert.ok(x >= 0 && x < 1);
 * ```
 */
export function uniformStream(seed: number, domain: number, stream: number): () => number {
  const k = key(seed, domain, stream);
  let i = 0;
  return () => (rand(k, i++) >>> 8) / 16777216;
}

/**
 * Whether element `counter` (`row * out + column`) of layer `layer`'s dropout mask in pass `pass` of stream
 * `(seed, stream)` is kept with dropout probability `p`, as the native library draws it (`rng::dropout_key`,
 * `dropout_threshold`: the 24-bit uniform below `1 - p`).
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { dropoutKept } from "./rng.ts";
 * assert.equal(dropoutKept(0, 0, 0, 0, 5, 0), true); // p = 0 keeps everything
 * ```
 */
export function dropoutKept(
  seed: number,
  stream: number,
  pass: number,
  layer: number,
  counter: number,
  p: number,
): boolean {
  const k = mix32((key(seed, DOMAIN_DROPOUT, stream) ^ mix32(((pass * 256 + layer) ^ 0x85ebca6b) >>> 0)) >>> 0);
  return rand(k, counter) >>> 8 < Math.ceil((1 - p) * 16777216);
}

/**
 * cgan's labels of the fakes of step `step` (`rows` of them), as the library draws them (`rng::class` over stream
 * `(seed, DOMAIN_LABELS, step)`): row `b` is `floor(uniform24(key, b) * classes)`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { labelDraws } from "./rng.ts";
 * const l = labelDraws(1, 0, 64, 10);
 * assert.ok(l.every((k) => k >= 0 && k < 10) && new Set(l).size > 5);
 * ```
 */
export function labelDraws(seed: number, step: number, rows: number, classes: number): Uint32Array<ArrayBuffer> {
  const u = uniformStream(seed, DOMAIN_LABELS, step);
  return Uint32Array.from({ length: rows }, () => Math.floor(u() * classes));
}
