/**
 * The types of src/web/runtime.js (plain JavaScript, so that the exported page runs it as it is; JSR wants the types
 * of a JavaScript module declared). The runtime's own JSDoc, checked by `deno check` (`// @ts-check`), documents
 * each function; tests/web_test.ts calls every export through these declarations.
 *
 * @module
 */

/** The format tag of an exported site's `model.json`. */
export declare const SITE_FORMAT: "deno-gan-site/1";

/** The rng domain of `sample`'s noise (`native/src/rng.rs` DOMAIN_SAMPLE). */
export declare const DOMAIN_SAMPLE: number;

/** The words (u32 / f32) of linear.wgsl's `LinearU`, the uniform of the page's WebGPU forward. */
export declare const UNIFORM_WORDS: number;
/** The words of linear.wgsl's `Gemm`. */
export declare const GEMM_WORDS: number;
/** The `Gemm`s that start linear.wgsl's `LinearU`. */
export declare const GEMMS: number;

/** An activation, as in an MLP spec. */
export type Activation = { kind: "none" | "tanh" | "sigmoid" } | { kind: "leaky_relu"; slope: number };

/** The parts of an MLP spec the runtime reads. */
export interface RuntimeSpec {
  /** Noise width (without the label's row). */
  input: number;
  /** A label embedding, or none. */
  embedding?: { classes: number; dim: number; at: "first" | "last"; name?: string } | null;
  /** The blocks. */
  layers: { out: number; bn: { eps: number; momentum?: number } | null; act: Activation }[];
}

/** One block's offsets in the flat buffers, its sizes and its activation (the WGSL code). */
export interface Block {
  /** Input and output features. */
  inp: number;
  /** Output features. */
  out: number;
  /** Offsets of the weight, bias, BN gamma and beta in the parameters (0 without BN). */
  w: number;
  /** Offset of the bias. */
  b: number;
  /** Offset of BN's gamma (0 without BN). */
  gamma: number;
  /** Offset of BN's beta (0 without BN). */
  beta: number;
  /** Offsets of the running mean and variance in the statistics (0 without BN). */
  rmean: number;
  /** Offset of the running variance. */
  rvar: number;
  /** BN's eps (0 without BN). */
  eps: number;
  /** Whether the block has BatchNorm. */
  bn: boolean;
  /** common.wgsl's activation code, and the leaky slope. */
  act: number;
  /** The leaky_relu slope (0 otherwise). */
  slope: number;
}

/** The flat layout of an MLP. */
export interface FlatLayout {
  /** The label embedding (its table at offset 0), or null. */
  embedding: RuntimeSpec["embedding"] | null;
  /** The blocks in order. */
  blocks: Block[];
  /** Sizes of the parameter and statistics buffers. */
  params: number;
  /** Size of the statistics buffer. */
  buffers: number;
  /** The caller's input width and the output width. */
  input: number;
  /** The output width. */
  output: number;
}

/** Parses a safetensors file of F32 and F16 tensors: name -> float32 values. */
export declare function readSafetensors(bytes: Uint8Array, fileName?: string): Map<string, Float32Array>;

/** The library's flat parameter order for a spec. */
export declare function flatLayout(spec: RuntimeSpec): FlatLayout;

/** `n` standard normals of the library's stream `(seed, domain, stream)`. */
export declare function normals(seed: number, stream: number, n: number, domain?: number): Float32Array;

/** Layout options of {@link makeGrid}. */
export interface GridOptions {
  /** Images per row. */
  nrow: number;
  /** Pixels between and around images (default 2). */
  padding?: number;
  /** Min-max normalize the images together. */
  normalize?: boolean;
  /** Value of the padding pixels, in [0, 1]. */
  padValue?: number;
}

/** A grid of images as bytes, `[height, width, channels]`. */
export interface GridImage {
  /** Width in pixels. */
  width: number;
  /** Height in pixels. */
  height: number;
  /** 3 or 4. */
  channels: number;
  /** The pixels. */
  data: Uint8Array;
}

/** torchvision's `make_grid` + `save_image` bytes. */
export declare function makeGrid(
  images: Float32Array,
  n: number,
  channels: number,
  height: number,
  width: number,
  opts: GridOptions,
): GridImage;

/** One tensor of the layout. */
export interface TensorInfo {
  /** Its state_dict name. */
  name: string;
  /** First element in its flat buffer. */
  offset: number;
  /** Elements. */
  size: number;
  /** Shape. */
  shape?: number[];
}

/** The parts of model.json the runtime reads. */
export interface SiteModelLike {
  /** The generator's spec. */
  spec: RuntimeSpec;
  /** Where each tensor goes in the flat buffers. */
  layout: { params: TensorInfo[]; buffers: TensorInfo[] };
  /** The images it makes. */
  image: { channels: number; side: number };
}

/** The WGSL sources the WebGPU path compiles. */
export interface Kernels {
  /** common.wgsl. */
  common: string;
  /** columns.wgsl (the backward's column pass, which linear.wgsl calls). */
  columns: string;
  /** linear.wgsl. */
  linear: string;
}

/** Options of {@link Generator.create}. */
export interface GeneratorOptions {
  /** The path: `auto` (default: WebGPU, else JavaScript), `webgpu` or `js`. */
  backend?: "auto" | "webgpu" | "js";
  /** The kernels (needed for WebGPU). */
  kernels?: Kernels;
  /** Rows per GPU pass (default 128). */
  maxRows?: number;
  /** The WebGPU entry point (default `navigator.gpu`; null: none). */
  gpu?: { requestAdapter(): Promise<unknown> } | null;
}

/** A trained generator's eval-mode forward pass, on WebGPU or in JavaScript. */
export declare class Generator {
  /** The flat layout. */
  layout: FlatLayout;
  /** The flat parameters and running statistics. */
  params: Float32Array;
  /** The running statistics. */
  running: Float32Array;
  /** model.json. */
  model: SiteModelLike;
  /** The path in use. */
  backend: "webgpu" | "js";
  /** Why this path was chosen. */
  reason: string;
  /** Builds it from model.json and the weights by name (no GPU). */
  constructor(model: SiteModelLike, tensors: Map<string, Float32Array>);
  /** Builds it and picks its path. */
  static create(
    model: SiteModelLike,
    tensors: Map<string, Float32Array>,
    options?: GeneratorOptions,
  ): Promise<Generator>;
  /** Noise width. */
  get latent(): number;
  /** Label classes, or 0. */
  get classes(): number;
  /** The first block's input of noise rows and labels. */
  input(z: Float32Array, rows: number, labels?: ArrayLike<number>): Float32Array;
  /** The generator's output for noise rows (and labels): `[rows, output]`. */
  generate(z: Float32Array, rows: number, labels?: ArrayLike<number>): Promise<Float32Array>;
  /** Releases the GPU buffers. */
  destroy(): void;
}
