/**
 * deno-gan: train GANs from Deno. TypeScript runs the loop, the data and the files; a Rust library (called through
 * Deno FFI) runs fused forward and backward passes of the MLP layers, the losses and Adam.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { Context, NativeGan, NativeMlp, seedDiscriminator, seedGenerator } from "./mod.ts";
 *
 * using ctx = new Context({ backend: "cpu" });
 * using g = new NativeMlp(ctx, seedGenerator());
 * using d = new NativeMlp(ctx, seedDiscriminator());
 * assert.ok(g.info().params[0].name === "model.0.weight");
 * ```
 *
 * @module
 */

export {
  type AdamOptions,
  type BackendInfo,
  type BackendName,
  Context,
  type ContextOptions,
  type GanConfig,
  type GanInfo,
  liveHandles,
  type LossResult,
  type MlpBuffer,
  type MlpInfo,
  nativeAdam,
  nativeBce,
  NativeGan,
  NativeMlp,
  nativeNormal,
  nativePermutation,
  nativeSigmoidBce,
  type NativeTensorInfo,
  SEED_ADAM,
  type StepResult,
} from "./src/backend/native.ts";
export {
  type Activation,
  type BatchNormSpec,
  type LayerSpec,
  type MlpSpec,
  parameterCount,
  seedDiscriminator,
  seedGenerator,
  type TensorInfo,
  type TensorLayout,
  tensorLayout,
  validateSpec,
} from "./src/model/spec.ts";
export {
  DEFAULT_RELEASE_URL,
  type LibraryLocation,
  loadNativeLibrary,
  type LoadOptions,
  NativeError,
} from "./src/native/ffi.ts";
export { LIBRARY_ENV_VARS, type ManifestEntry, type ReleaseManifest } from "./src/native/fetch.ts";
