// @ts-check
// @ts-self-types="./runtime.d.ts"
/**
 * The exported page's runtime: a trained generator's forward pass (eval mode) in a web page, on WebGPU with the
 * native library's own WGSL kernels (`native/src/gpu/shaders/common.wgsl` + `columns.wgsl` + `linear.wgsl`, given as text), or in
 * plain JavaScript where WebGPU is missing. One ES module with no imports and no DOM use, so it runs in any browser,
 * in a worker and in Deno; the exported site's `index.html` inlines it, and `runtime.js` beside it is the same file.
 *
 * What it holds, each the one home of its rule on the JavaScript side:
 * - {@link readSafetensors}: the weights file (F32 or F16 tensors);
 * - {@link flatLayout}: the library's flat parameter order (docs/ARCHITECTURE.md "Parameter order");
 * - {@link normals}: the library's counter-based normal stream (`native/src/rng.rs` `fill_normal`), so that a page's
 *   seed gives the images of `deno task sample --seed`;
 * - {@link makeGrid}: torchvision's `make_grid` + `save_image` bytes (src/io/png.ts encodes its result as PNG);
 * - {@link Generator}: the forward pass on either path.
 *
 * @example A generator of one linear layer, in plain JavaScript
 * ```ts
 * import assert from "node:assert/strict";
 * import { Generator, type SiteModelLike } from "./runtime.js";
 *
 * const model: SiteModelLike = {
 *   spec: { input: 2, layers: [{ out: 1, bn: null, act: { kind: "none" } }] },
 *   layout: { params: [{ name: "w", offset: 0, size: 2 }, { name: "b", offset: 2, size: 1 }], buffers: [] },
 *   image: { channels: 1, side: 1 },
 * };
 * const tensors = new Map([["w", new Float32Array([1, 2])], ["b", new Float32Array([0.5])]]);
 * const g = await Generator.create(model, tensors, { backend: "js" });
 * assert.deepEqual([...await g.generate(new Float32Array([1, 1]), 1)], [3.5]);
 * ```
 *
 * @module
 */

/** The format tag of an exported site's `model.json`. */
export const SITE_FORMAT = "deno-gan-site/1";

/** The rng domain of `sample`'s noise (`native/src/rng.rs` DOMAIN_SAMPLE; a test ties the two). */
export const DOMAIN_SAMPLE = 5;

/** Activation codes of the WGSL kernels (common.wgsl `ACT_*`). */
const ACT_CODES = { none: 0, leaky_relu: 1, tanh: 2, sigmoid: 3 };

/** The most bytes a safetensors header may take (as src/io/safetensors.ts). */
const MAX_HEADER_BYTES = 100_000_000;

// ---------------------------------------------------------------------------------------------------------------
// Weights

/**
 * One f16 value (its bits) as a number.
 *
 * @param {number} h The 16 bits.
 * @returns {number} The value.
 */
function halfToFloat(h) {
  const s = h & 0x8000 ? -1 : 1, e = (h >> 10) & 0x1f, m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/**
 * Parses a safetensors file of F32 and F16 tensors (F16 widened to float32): name -> values. Every problem throws an
 * Error naming the file and what is wrong; no read goes past the bytes given.
 *
 * @param {Uint8Array} bytes The file.
 * @param {string} [fileName] Its name, for errors.
 * @returns {Map<string, Float32Array>} The tensors.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { readSafetensors } from "./runtime.js";
 *
 * const header = new TextEncoder().encode('{"t":{"dtype":"F16","shape":[1],"data_offsets":[0,2]}}');
 * const bytes = new Uint8Array(8 + header.length + 2);
 * new DataView(bytes.buffer).setUint32(0, header.length, true);
 * bytes.set(header, 8);
 * bytes.set([0x00, 0x3c], 8 + header.length); // 1.0 in f16
 * assert.deepEqual([...readSafetensors(bytes).get("t") ?? []], [1]);
 * ```
 */
export function readSafetensors(bytes, fileName = "generator.safetensors") {
  const fail = (/** @type {string} */ what) => {
    throw new Error(`Cannot read "${fileName}": ${what}`);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes, shorter than the 8-byte header length`);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const len = view.getUint32(0, true) + view.getUint32(4, true) * 2 ** 32;
  if (len > MAX_HEADER_BYTES || 8 + len > bytes.length) fail(`header length ${len} does not fit the file`);
  /** @type {Record<string, {dtype: string, shape: number[], data_offsets: [number, number]}>} */
  let header;
  try {
    header = JSON.parse(new TextDecoder().decode(bytes.subarray(8, 8 + len)));
  } catch {
    return fail("the header is not JSON");
  }
  const data = bytes.subarray(8 + len);
  const out = new Map();
  for (const [name, t] of Object.entries(header)) {
    if (name === "__metadata__") continue;
    const size = Array.isArray(t?.shape) ? t.shape.reduce((a, b) => a * b, 1) : NaN;
    const width = t?.dtype === "F32" ? 4 : t?.dtype === "F16" ? 2 : 0;
    if (!width) fail(`tensor "${name}" has dtype ${JSON.stringify(t?.dtype)}; F32 and F16 are read`);
    const [a, b] = Array.isArray(t.data_offsets) ? t.data_offsets : [NaN, NaN];
    if (!(Number.isSafeInteger(size) && a >= 0 && b <= data.length && b - a === size * width)) {
      fail(`tensor "${name}" (shape ${JSON.stringify(t.shape)}) has data_offsets ${JSON.stringify(t.data_offsets)}`);
    }
    const v = new DataView(data.buffer, data.byteOffset + a, b - a);
    const values = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      values[i] = width === 4 ? v.getFloat32(4 * i, true) : halfToFloat(v.getUint16(2 * i, true));
    }
    out.set(name, values);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Layout

/**
 * @typedef {{ kind: "none" | "tanh" | "sigmoid" } | { kind: "leaky_relu", slope: number }} Activation
 * @typedef {{ out: number, bn: { eps: number, momentum?: number } | null, act: Activation }} LayerSpec
 * @typedef {{ classes: number, dim: number, at: "first" | "last", name?: string }} EmbeddingSpec
 * @typedef {{ input: number, embedding?: EmbeddingSpec | null, layers: LayerSpec[] }} MlpSpec
 * @typedef {{ inp: number, out: number, w: number, b: number, gamma: number, beta: number, rmean: number,
 *   rvar: number, eps: number, bn: boolean, act: number, slope: number }} Block
 * @typedef {{ embedding: EmbeddingSpec | null, blocks: Block[], params: number, buffers: number, input: number,
 *   output: number }} FlatLayout
 */

/**
 * Where every tensor of an MLP lives in the library's two flat buffers: the label table first (at 0), then per
 * layer `weight [out, in]`, `bias [out]` and, with BatchNorm, `gamma [out]`, `beta [out]`; running statistics per BN
 * layer `mean [out]`, `var [out]` (docs/ARCHITECTURE.md "Parameter order"; a test ties it to the native layout).
 *
 * @param {MlpSpec} spec The MLP.
 * @returns {FlatLayout} The offsets per block, the buffer sizes, the caller's input and the output widths.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { flatLayout } from "./runtime.js";
 *
 * const l = flatLayout({ input: 3, layers: [{ out: 2, bn: { eps: 0.8 }, act: { kind: "tanh" } }] });
 * assert.deepEqual([l.blocks[0].w, l.blocks[0].b, l.blocks[0].gamma, l.blocks[0].beta, l.params], [0, 6, 8, 10, 12]);
 * assert.deepEqual([l.blocks[0].rmean, l.blocks[0].rvar, l.buffers], [0, 2, 4]);
 * ```
 */
export function flatLayout(spec) {
  const embedding = spec.embedding ?? null;
  let p = embedding ? embedding.classes * embedding.dim : 0, r = 0;
  let inp = spec.input + (embedding ? embedding.dim : 0);
  const blocks = spec.layers.map((l) => {
    const bn = l.bn !== null && l.bn !== undefined;
    const code = ACT_CODES[l.act.kind];
    if (code === undefined) throw new Error(`unknown activation ${JSON.stringify(l.act.kind)}`);
    const blk = {
      inp,
      out: l.out,
      w: p,
      b: p + l.out * inp,
      gamma: bn ? p + l.out * inp + l.out : 0,
      beta: bn ? p + l.out * inp + 2 * l.out : 0,
      rmean: bn ? r : 0,
      rvar: bn ? r + l.out : 0,
      eps: bn ? Number(l.bn?.eps) : 0,
      bn,
      act: code,
      slope: l.act.kind === "leaky_relu" ? l.act.slope : 0,
    };
    p += l.out * inp + l.out + (bn ? 2 * l.out : 0);
    r += bn ? 2 * l.out : 0;
    inp = l.out;
    return blk;
  });
  return { embedding, blocks, params: p, buffers: r, input: spec.input, output: inp };
}

// ---------------------------------------------------------------------------------------------------------------
// Noise

/**
 * The lowbias32 mixer (rng.rs `mix32`).
 *
 * @param {number} x A 32-bit word.
 * @returns {number} Its mix, unsigned.
 */
function mix32(x) {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/**
 * `n` standard normals of the library's stream `(seed, domain, stream)` (rng.rs `fill_normal`: Box-Muller over
 * counter pairs). The hash is bit for bit the library's; log, cos and sin are float64 here, so a value can differ
 * from the library's float32 one in its last bit.
 *
 * @param {number} seed A non-negative integer below 2^53.
 * @param {number} stream The stream (0 for `sample`).
 * @param {number} n How many.
 * @param {number} [domain] The rng domain (default `sample`'s).
 * @returns {Float32Array} The normals.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { normals } from "./runtime.js";
 *
 * const z = normals(7, 0, 1000);
 * const mean = z.reduce((a, b) => a + b, 0) / z.length;
 * assert.ok(Math.abs(mean) < 0.1);
 * ```
 */
export function normals(seed, stream, n, domain = DOMAIN_SAMPLE) {
  const lo = seed % 2 ** 32, hi = Math.floor(seed / 2 ** 32);
  let k = mix32(lo ^ 0x9e3779b9);
  k = mix32(k ^ hi);
  k = mix32(k ^ domain);
  k = mix32(k ^ stream);
  const rand = (/** @type {number} */ c) => mix32((mix32((c ^ k) >>> 0) + k) >>> 0);
  const f = Math.fround, scale = 1 / 16777216, tau = f(2 * Math.PI);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i += 2) {
    const u1 = f(((rand(i) >>> 8) + 1) * scale);
    const u2 = f((rand(i + 1) >>> 8) * scale);
    const r = f(Math.sqrt(f(-2 * f(Math.log(u1)))));
    const t = f(tau * u2);
    out[i] = f(r * f(Math.cos(t)));
    if (i + 1 < n) out[i + 1] = f(r * f(Math.sin(t)));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grids

/**
 * torchvision's conversion of a [0, 1] float to a byte: `mul(255).add_(0.5).clamp_(0, 255)`, then a truncating cast.
 *
 * @param {number} v The value.
 * @returns {number} The byte.
 */
function toByte(v) {
  const s = Math.fround(Math.fround(v * 255) + 0.5);
  if (!(s > 0)) return 0; // also NaN
  return s >= 255 ? 255 : Math.trunc(s);
}

/**
 * @typedef {{ nrow: number, padding?: number, normalize?: boolean, padValue?: number }} GridOptions
 * @typedef {{ width: number, height: number, channels: number, data: Uint8Array }} GridImage
 */

/**
 * Lays out the first `n` images of a `[*, channels, height, width]` float32 batch as torchvision's `make_grid`
 * followed by `save_image`'s conversion to bytes (src/io/png.ts `makeGrid` documents the arithmetic).
 *
 * @param {Float32Array} images The batch.
 * @param {number} n How many images to show.
 * @param {number} channels 1, 3 or 4.
 * @param {number} height Image height.
 * @param {number} width Image width.
 * @param {GridOptions} opts Layout and normalization.
 * @returns {GridImage} `[H, W, 3 or 4]` bytes.
 */
export function makeGrid(images, n, channels, height, width, opts) {
  const fail = (/** @type {string} */ what) => {
    throw new Error(`Cannot make an image grid: ${what}`);
  };
  for (const [k, v] of Object.entries({ n, height, width, nrow: opts.nrow })) {
    if (!Number.isInteger(v) || v < 1) fail(`${k} ${v} is not a positive integer`);
  }
  if (channels !== 1 && channels !== 3 && channels !== 4) fail(`${channels} channels; only 1, 3 or 4 can be saved`);
  const padding = opts.padding ?? 2;
  if (!Number.isInteger(padding) || padding < 0) fail(`padding ${padding} is not a non-negative integer`);
  const per = channels * height * width;
  if (images.length < n * per) {
    fail(`${n} images of ${channels}x${height}x${width} need ${n * per} values, the batch has ${images.length}`);
  }
  const src = images.subarray(0, n * per);
  let lo = 0, scale = 1;
  if (opts.normalize) {
    let min = Infinity, max = -Infinity;
    for (let i = 0; i < src.length; i++) {
      const v = src[i];
      if (v < min) min = v;
      if (v > max) max = v;
    }
    lo = min;
    scale = Math.fround(Math.max(max - min, 1e-5)); // the Python float, cast to the tensor's float32
  }
  const value = (/** @type {number} */ v) => {
    if (!opts.normalize) return toByte(v);
    const c = v < lo ? lo : v; // clamp_(min, max) is a no-op for in-batch values
    return toByte(Math.fround(Math.fround(c - lo) / scale));
  };
  const outC = channels === 1 ? 3 : channels;
  const pad = n === 1 ? 0 : padding;
  const xmaps = Math.min(opts.nrow, n), ymaps = Math.ceil(n / xmaps);
  const cellH = height + pad, cellW = width + pad;
  const H = cellH * ymaps + pad, W = cellW * xmaps + pad;
  const data = new Uint8Array(H * W * outC);
  const padByte = toByte(opts.padValue ?? 0);
  if (padByte !== 0) data.fill(padByte);
  for (let k = 0; k < n; k++) {
    const top = Math.floor(k / xmaps) * cellH + pad, left = (k % xmaps) * cellW + pad;
    for (let c = 0; c < outC; c++) {
      const plane = k * per + (channels === 1 ? 0 : c) * height * width;
      for (let y = 0; y < height; y++) {
        let o = ((top + y) * W + left) * outC + c;
        const row = plane + y * width;
        for (let x = 0; x < width; x++, o += outC) data[o] = value(src[row + x]);
      }
    }
  }
  return { width: W, height: H, channels: outC, data };
}

// ---------------------------------------------------------------------------------------------------------------
// The generator

/**
 * @typedef {{ name: string, offset: number, size: number, shape?: number[] }} TensorInfo
 * @typedef {{ spec: MlpSpec, layout: { params: TensorInfo[], buffers: TensorInfo[] },
 *   image: { channels: number, side: number } }} SiteModel
 * @typedef {{ common: string, columns: string, linear: string }} Kernels
 * @typedef {{ backend?: "auto" | "webgpu" | "js", kernels?: Kernels, maxRows?: number,
 *   gpu?: { requestAdapter(): Promise<any> } | null }} GeneratorOptions
 */

/**
 * Copies the named tensors into one flat buffer at their offsets, checking that each is there with its size.
 *
 * @param {TensorInfo[]} infos The layout's entries.
 * @param {number} count The buffer's length.
 * @param {Map<string, Float32Array>} tensors The tensors by name.
 * @returns {Float32Array} The flat buffer.
 */
function assemble(infos, count, tensors) {
  const flat = new Float32Array(count);
  for (const t of infos) {
    const v = tensors.get(t.name);
    if (!v) throw new Error(`the weights lack tensor "${t.name}"`);
    if (v.length !== t.size || t.offset + t.size > count) {
      throw new Error(`tensor "${t.name}" has ${v.length} values where the model expects ${t.size}`);
    }
    flat.set(v, t.offset);
  }
  return flat;
}

/**
 * A trained generator's forward pass in eval mode (BatchNorm with its running statistics, no dropout), on WebGPU
 * with the library's WGSL kernels or in plain JavaScript.
 */
export class Generator {
  /** @type {FlatLayout} */ layout;
  /** @type {Float32Array} */ params;
  /** @type {Float32Array} */ running;
  /** @type {SiteModel} */ model;
  /** @type {"webgpu" | "js"} */ backend = "js";
  /** Why this path was chosen (e.g. "WebGPU: google swiftshader" or "no WebGPU in this browser"). */
  reason = "";
  /** @type {GpuForward | null} */ #gpu = null;
  /** @type {Promise<unknown>} */ #queue = Promise.resolve();

  /**
   * @param {SiteModel} model The site's model.json.
   * @param {Map<string, Float32Array>} tensors The weights by name.
   */
  constructor(model, tensors) {
    this.model = model;
    this.layout = flatLayout(model.spec);
    this.params = assemble(model.layout.params, this.layout.params, tensors);
    this.running = assemble(model.layout.buffers, this.layout.buffers, tensors);
  }

  /**
   * Builds the generator and picks its path: `webgpu` needs the kernels and an adapter (and fails without them),
   * `js` never touches the GPU, `auto` (the default) tries WebGPU and falls back to JavaScript, saying why in
   * {@link Generator.reason}.
   *
   * @param {SiteModel} model The site's model.json.
   * @param {Map<string, Float32Array>} tensors The weights by name.
   * @param {GeneratorOptions} [options] The path, the kernels' text, the rows per pass.
   * @returns {Promise<Generator>} The generator.
   */
  static async create(model, tensors, options = {}) {
    const g = new Generator(model, tensors);
    const want = options.backend ?? "auto";
    if (want === "js") {
      g.reason = "JavaScript (asked for)";
      return g;
    }
    const gpu = options.gpu !== undefined ? options.gpu : globalThis.navigator?.gpu;
    try {
      if (!options.kernels) throw new Error("no WGSL kernels were given");
      if (!gpu) throw new Error("no WebGPU in this browser");
      g.#gpu = await GpuForward.create(gpu, g, options.kernels, options.maxRows ?? 128);
      g.backend = "webgpu";
      g.reason = `WebGPU: ${g.#gpu.adapterName}`;
    } catch (e) {
      if (want === "webgpu") throw e;
      g.reason = `JavaScript (${/** @type {Error} */ (e).message})`;
    }
    return g;
  }

  /** The noise width per image (without the label). */
  get latent() {
    return this.layout.input;
  }

  /** Label classes of a conditional generator, or 0. */
  get classes() {
    return this.layout.embedding?.classes ?? 0;
  }

  /**
   * The first block's input: each row's noise with its label's table row before it (`at: first`) or after it.
   *
   * @param {Float32Array} z `[rows, latent]`.
   * @param {number} rows Rows.
   * @param {ArrayLike<number>} [labels] One per row (conditional generators).
   * @returns {Float32Array} `[rows, latent (+ dim)]`.
   */
  input(z, rows, labels) {
    const e = this.layout.embedding, lat = this.latent;
    if (z.length !== rows * lat) throw new Error(`noise of ${z.length} values for ${rows} rows of ${lat}`);
    if (!e) return z;
    if (!labels || labels.length !== rows) throw new Error(`a conditional generator needs ${rows} labels`);
    const w = lat + e.dim, x = new Float32Array(rows * w);
    for (let r = 0; r < rows; r++) {
      const k = labels[r];
      if (!Number.isInteger(k) || k < 0 || k >= e.classes) throw new Error(`label ${k} is not in [0, ${e.classes})`);
      const row = this.params.subarray(k * e.dim, (k + 1) * e.dim);
      x.set(row, r * w + (e.at === "first" ? 0 : lat));
      x.set(z.subarray(r * lat, (r + 1) * lat), r * w + (e.at === "first" ? e.dim : 0));
    }
    return x;
  }

  /**
   * The images of `rows` noise rows (and labels): `[rows, output]` float32, the generator's output (tanh: [-1, 1]).
   *
   * @param {Float32Array} z `[rows, latent]` noise.
   * @param {number} rows Rows.
   * @param {ArrayLike<number>} [labels] One label per row (conditional generators).
   * @returns {Promise<Float32Array>} The output.
   */
  generate(z, rows, labels) {
    const x = this.input(z, rows, labels);
    // One pass at a time: the GPU path reuses its buffers (calls overlapping in time run in call order).
    const run = this.#queue.then(() => (this.#gpu ? this.#gpu.run(x, rows) : forwardJs(this, x, rows)));
    this.#queue = run.catch(() => {});
    return run;
  }

  /** Releases the GPU buffers (the JavaScript path holds none). */
  destroy() {
    this.#gpu?.destroy();
    this.#gpu = null;
  }
}

/**
 * An activation of a float32 value, rounded to float32.
 *
 * @param {Block} b The block.
 * @param {number} z The value.
 * @returns {number} act(z).
 */
function act(b, z) {
  switch (b.act) {
    case 1:
      return z > 0 ? z : Math.fround(z * b.slope);
    case 2:
      return Math.fround(Math.tanh(z));
    case 3:
      return Math.fround(1 / (1 + Math.exp(-z)));
    default:
      return z;
  }
}

/**
 * The forward pass in JavaScript: per block `a = act(BN_eval(x W^T + b))` with each dot product summed in float64
 * and every later operation rounded to float32 as the kernels round it.
 *
 * @param {Generator} g The generator.
 * @param {Float32Array} x0 `[rows, in]`.
 * @param {number} rows Rows.
 * @returns {Float32Array} `[rows, out]`.
 */
function forwardJs(g, x0, rows) {
  const f = Math.fround, P = g.params, R = g.running;
  let x = x0;
  for (const b of g.layout.blocks) {
    const y = new Float32Array(rows * b.out);
    for (let c = 0; c < b.out; c++) {
      const w = b.w + c * b.inp, bias = P[b.b + c];
      const mean = b.bn ? f(R[b.rmean + c] - bias) : 0;
      const rs = b.bn ? f(1 / f(Math.sqrt(f(R[b.rvar + c] + f(b.eps))))) : 0;
      for (let r = 0; r < rows; r++) {
        let acc = 0;
        const xr = r * b.inp;
        for (let k = 0; k < b.inp; k++) acc += x[xr + k] * P[w + k];
        const z = b.bn ? f(f(P[b.gamma + c] * f(f(f(acc) - mean) * rs)) + P[b.beta + c]) : f(f(acc) + bias);
        y[r * b.out + c] = act(b, z);
      }
    }
    x = y;
  }
  return x;
}

/** WebGPU's usage flags (the numbers of the spec, so this module needs no global at load time). */
const USAGE = { MAP_READ: 1, COPY_SRC: 4, COPY_DST: 8, UNIFORM: 64, STORAGE: 128 };

/** Words of linear.wgsl's `Gemm`. */
export const GEMM_WORDS = 24;
/** The `Gemm`s that start linear.wgsl's `LinearU` (the forward uses the first). */
export const GEMMS = 3;
/** Words of linear.wgsl's `LinearU`: the `Gemm`s, then 56 words; 512 bytes. */
export const UNIFORM_WORDS = 128;
/** The first word after the `Gemm`s (`act`). */
const TAIL = GEMMS * GEMM_WORDS;

/**
 * The forward pass on WebGPU: one linear.wgsl `forward` dispatch per block (MODE 0 without BatchNorm, MODE 1 with
 * running statistics), in one compute pass, the last block's output copied to a mapped buffer.
 */
class GpuForward {
  /** @type {any} */ device;
  /** @type {any[]} */ pipelines = [];
  /** @type {{ out: any, uniform: any, bind: any[] }[]} */ blocks = [];
  /** @type {any} */ input;
  /** @type {any} */ readback;
  /** @type {any[]} */ owned = [];
  adapterName = "";
  maxRows = 0;
  /** @type {Generator} */ g;

  /** @param {Generator} g The generator whose forward this runs. */
  constructor(g) {
    this.g = g;
  }

  /**
   * @param {any} gpu `navigator.gpu`.
   * @param {Generator} g The generator.
   * @param {Kernels} kernels The WGSL sources.
   * @param {number} maxRows Rows per pass.
   * @returns {Promise<GpuForward>} The forward pass, ready.
   */
  static async create(gpu, g, kernels, maxRows) {
    const adapter = await gpu.requestAdapter();
    if (!adapter) throw new Error("WebGPU offers no adapter here");
    const self = new GpuForward(g);
    self.maxRows = maxRows;
    const info = adapter.info ?? {};
    self.adapterName = [info.vendor, info.architecture, info.description].filter((s) => s).join(" ") || "adapter";
    const needed = Math.max(g.layout.params, ...g.layout.blocks.map((b) => 2 * maxRows * b.out + b.out)) * 4;
    if (needed > adapter.limits.maxStorageBufferBindingSize) {
      throw new Error(`a buffer of ${needed} bytes passes the adapter's binding limit`);
    }
    // WebGPU's default binding limit is 128 MiB; ask for more only when a buffer needs it.
    const big = needed > 134217728 ? { maxStorageBufferBindingSize: needed, maxBufferSize: needed } : {};
    const device = await adapter.requestDevice({ requiredLimits: big });
    self.device = device;
    device.pushErrorScope("validation");
    const module = device.createShaderModule({ code: `${kernels.common}\n${kernels.columns}\n${kernels.linear}` });
    const messages = (await module.getCompilationInfo()).messages.filter((/** @type {any} */ m) => m.type === "error");
    if (messages.length) throw new Error(`the WGSL kernels do not compile: ${messages[0].message}`);
    const storage = { buffer: { type: "storage" }, visibility: 4 };
    const layout0 = device.createBindGroupLayout({
      entries: [0, 1, 2, 3, 4, 5, 6, 7].map((i) => ({ binding: i, ...storage })),
    });
    const layout1 = device.createBindGroupLayout({
      entries: [{ binding: 0, visibility: 4, buffer: { type: "uniform" } }],
    });
    const layout = device.createPipelineLayout({ bindGroupLayouts: [layout0, layout1] });
    self.pipelines = [0, 1].map((mode) =>
      device.createComputePipeline({ layout, compute: { module, entryPoint: "forward", constants: { MODE: mode } } })
    );
    const buf = (/** @type {number} */ floats, /** @type {number} */ usage) => {
      const b = device.createBuffer({ size: Math.max(16, floats * 4), usage });
      self.owned.push(b);
      return b;
    };
    const params = buf(g.layout.params, USAGE.STORAGE | USAGE.COPY_DST);
    device.queue.writeBuffer(params, 0, g.params);
    const running = buf(g.layout.buffers, USAGE.STORAGE | USAGE.COPY_DST);
    if (g.layout.buffers) device.queue.writeBuffer(running, 0, g.running);
    const spare = [0, 1, 2, 3, 4].map(() => buf(4, USAGE.STORAGE));
    self.input = buf(maxRows * g.layout.blocks[0].inp, USAGE.STORAGE | USAGE.COPY_DST);
    let x = self.input;
    for (const b of g.layout.blocks) {
      const out = buf(2 * maxRows * b.out + b.out, USAGE.STORAGE | USAGE.COPY_SRC);
      const uniform = device.createBuffer({ size: UNIFORM_WORDS * 4, usage: USAGE.UNIFORM | USAGE.COPY_DST });
      self.owned.push(uniform);
      const res = [x, params, out, b.bn ? running : spare[0], ...spare.slice(1)];
      const bind = [
        device.createBindGroup({
          layout: layout0,
          entries: res.map((buffer, i) => ({ binding: i, resource: { buffer } })),
        }),
        device.createBindGroup({ layout: layout1, entries: [{ binding: 0, resource: { buffer: uniform } }] }),
      ];
      self.blocks.push({ out, uniform, bind });
      x = out;
    }
    self.readback = buf(maxRows * g.layout.output, USAGE.MAP_READ | USAGE.COPY_DST);
    const error = await device.popErrorScope();
    if (error) throw new Error(`WebGPU refused the setup: ${error.message}`);
    return self;
  }

  /**
   * linear.wgsl `LinearU` of block `b`'s forward over `rows` rows.
   *
   * @param {Block} b The block.
   * @param {number} rows Rows.
   * @returns {ArrayBuffer} `UNIFORM_WORDS` words.
   */
  uniform(b, rows) {
    const bytes = new ArrayBuffer(UNIFORM_WORDS * 4), u = new Uint32Array(bytes), fl = new Float32Array(bytes);
    // g[0]: m n k b_src | a_off a_rs a_cs b_off | b_rs b_cs c_off c_rs | c_dst ones db_off e_act | e_slope e_a_off splits kc
    u.set([rows, b.out, b.inp, 1, 0, b.inp, 1, b.w, 1, b.inp, 0, b.out, 2, 0, 0, 0, 0, 0, 1, b.inp], 0);
    u.set([b.act], TAIL);
    fl[TAIL + 1] = b.slope;
    u.set([b.b, b.gamma, b.beta, b.rmean, b.rvar, this.maxRows * b.out, 2 * this.maxRows * b.out], TAIL + 2);
    fl[TAIL + 9] = b.eps;
    return bytes;
  }

  /**
   * Runs the blocks over `x`, `maxRows` rows at a time.
   *
   * @param {Float32Array} x `[rows, in]`.
   * @param {number} rows Rows.
   * @returns {Promise<Float32Array>} `[rows, out]`.
   */
  async run(x, rows) {
    const { device, g } = this, out = g.layout.output, inp = g.layout.blocks[0].inp;
    const y = new Float32Array(rows * out);
    for (let r0 = 0; r0 < rows; r0 += this.maxRows) {
      const n = Math.min(this.maxRows, rows - r0);
      device.queue.writeBuffer(this.input, 0, x.subarray(r0 * inp, (r0 + n) * inp));
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      g.layout.blocks.forEach((b, i) => {
        device.queue.writeBuffer(this.blocks[i].uniform, 0, this.uniform(b, n));
        pass.setPipeline(this.pipelines[b.bn ? 1 : 0]);
        pass.setBindGroup(0, this.blocks[i].bind[0]);
        pass.setBindGroup(1, this.blocks[i].bind[1]);
        pass.dispatchWorkgroups(Math.ceil(b.out / 64), Math.ceil(n / 64));
      });
      pass.end();
      enc.copyBufferToBuffer(this.blocks[this.blocks.length - 1].out, 0, this.readback, 0, n * out * 4);
      device.queue.submit([enc.finish()]);
      await this.readback.mapAsync(1);
      y.set(new Float32Array(this.readback.getMappedRange(0, n * out * 4)), r0 * out);
      this.readback.unmap();
    }
    return y;
  }

  /** Frees the buffers and the device. */
  destroy() {
    for (const b of this.owned) b.destroy();
    this.device?.destroy();
  }
}
