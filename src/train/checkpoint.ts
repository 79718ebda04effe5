/**
 * Checkpoints in safetensors: both networks (aae: all three) under PyTorch's state_dict names, their Adam states, the
 * BN running statistics, and the run's position (its random streams are counter-based, so seed + step is the whole RNG
 * state).
 *
 * Names in the file (a "prefix." before each state_dict name):
 * - `generator.model.0.weight`, ..., `generator.model.3.running_mean`, `generator.model.3.num_batches_tracked` (I64)
 * - `discriminator.model.0.weight`, ...
 * - aae only: `encoder.model.0.weight`, ..., `encoder.mu.weight`, `encoder.logvar.bias` (its state_dict)
 * - `optimizer_G.exp_avg.<name>`, `optimizer_G.exp_avg_sq.<name>`, `optimizer_G.step` (I64); the same for optimizer_D,
 *   and for aae optimizer_E (the encoder's half of upstream's one Adam over the encoder and the decoder: Adam is per
 *   parameter, so its moments split by network; each half counts the same steps)
 * - `train.step` (I64): training steps done; `train.seed` (I64)
 * - metadata: `format` ("deno-gan/1"), `config` (the run's settings as JSON), `dataset` (the training data's
 *   identity as JSON: name, count, shape, SHA-256 of the pixels; see src/data/identity.ts)
 *
 * Loading checks every name, dtype and shape, and every value: all finite, every `running_var` above 0, every
 * `exp_avg_sq` at least 0, every counter a non-negative integer.
 *
 * Next to each checkpoint the trainer writes `generator.safetensors`: the generator's plain state_dict, which loads
 * into the seed's PyTorch `Generator` with `load_state_dict(safetensors.torch.load_file(path))`.
 *
 * @module
 */

import type { NativeMlp } from "../native/handles.ts";
import {
  expectTensor,
  readSafetensorsFile,
  type ReadSafetensorsFileOptions,
  type TensorEntry,
  type TensorMap,
  writeSafetensors,
  writeSafetensorsFile,
} from "../io/safetensors.ts";
import { writeFileAtomic } from "../io/atomic.ts";
import { readRegularFile } from "../io/regular_file.ts";
import { checkpointSizeLimit, checkStatistics } from "../io/checkpoint_checks.ts";
import type { DatasetIdentity } from "../data/identity.ts";
import { type MlpSpec, seedGenerator } from "../model/spec.ts";

/** The format tag written into every checkpoint's metadata. */
export const CHECKPOINT_FORMAT = "deno-gan/1";

/** The state_dict of one network: parameters, running statistics and `num_batches_tracked` per BN layer. */
export function stateDictEntries(net: NativeMlp, prefix = ""): TensorEntry[] {
  const layout = net.layout();
  const params = net.get("params"), running = net.get("running");
  const out: TensorEntry[] = [];
  const tracked = BigInt64Array.of(BigInt(net.info().num_batches_tracked));
  for (const t of layout.params) {
    out.push({ name: prefix + t.name, dtype: "F32", shape: t.shape, data: params.slice(t.offset, t.offset + t.size) });
  }
  for (const t of layout.buffers) {
    out.push({ name: prefix + t.name, dtype: "F32", shape: t.shape, data: running.slice(t.offset, t.offset + t.size) });
    if (t.name.endsWith(".running_var")) {
      const bn = t.name.slice(0, -".running_var".length);
      out.push({ name: `${prefix}${bn}.num_batches_tracked`, dtype: "I64", shape: [], data: tracked });
    }
  }
  return out;
}

/** The Adam state of one network, as PyTorch's optimizer names its parts. */
function adamEntries(net: NativeMlp, prefix: string): TensorEntry[] {
  const layout = net.layout();
  const m = net.get("adam_m"), v = net.get("adam_v");
  const out: TensorEntry[] = [];
  for (const t of layout.params) {
    out.push({
      name: `${prefix}.exp_avg.${t.name}`,
      dtype: "F32",
      shape: t.shape,
      data: m.slice(t.offset, t.offset + t.size),
    });
    out.push({
      name: `${prefix}.exp_avg_sq.${t.name}`,
      dtype: "F32",
      shape: t.shape,
      data: v.slice(t.offset, t.offset + t.size),
    });
  }
  out.push({ name: `${prefix}.step`, dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(net.info().adam_step)) });
  return out;
}

/** What a checkpoint holds besides the networks. */
export interface CheckpointInfo {
  /** Training steps done. */
  step: number;
  /** The run's seed. */
  seed: number;
  /** The run's settings (free-form JSON, read back by `sample` and `--resume`). */
  config: Record<string, unknown>;
  /** The training data's identity (absent in checkpoints of older versions and in generator files). */
  dataset?: DatasetIdentity;
}

/**
 * A state that must not be saved: a tensor holds NaN or an infinity (training diverged). Nothing was written.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { NonFiniteStateError } from "./checkpoint.ts";
 * assert.match(new NonFiniteStateError("model.0.weight", 3, NaN).message, /"model.0.weight" holds NaN at index 3/);
 * ```
 */
export class NonFiniteStateError extends Error {
  /** Makes the error for element `index` of tensor `tensor`. */
  constructor(
    /** The tensor's name in the checkpoint. */
    readonly tensor: string,
    /** The flat index of the first bad element. */
    readonly index: number,
    value: number,
  ) {
    super(`tensor "${tensor}" holds ${value} at index ${index}`);
    this.name = "NonFiniteStateError";
  }
}

function assertFinite(tensors: TensorEntry[]): void {
  for (const t of tensors) {
    if (t.dtype !== "F32") continue;
    const data = t.data as Float32Array;
    for (let i = 0; i < data.length; i++) {
      if (!Number.isFinite(data[i])) throw new NonFiniteStateError(t.name, i, data[i]);
    }
  }
}

/** A network and the spec it was built from. */
export interface NetworkState {
  /** The spec. */
  spec: MlpSpec;
  /** The network. */
  net: NativeMlp;
}

/**
 * Writes a full checkpoint atomically (a temporary file, then rename). A state with a NaN or infinite value is refused
 * with {@link NonFiniteStateError} before anything is written, so a diverged run never replaces a good checkpoint.
 * aae's encoder (`options.encoder`) goes in as `encoder.*` and `optimizer_E.*`.
 */
export async function saveCheckpoint(
  path: string,
  g: NetworkState,
  d: NetworkState,
  info: CheckpointInfo,
  options: { encoder?: NetworkState } = {},
): Promise<void> {
  const e = options.encoder;
  const tensors = [
    ...stateDictEntries(g.net, "generator."),
    ...stateDictEntries(d.net, "discriminator."),
    ...(e ? stateDictEntries(e.net, "encoder.") : []),
    ...adamEntries(g.net, "optimizer_G"),
    ...adamEntries(d.net, "optimizer_D"),
    ...(e ? adamEntries(e.net, "optimizer_E") : []),
    { name: "train.step", dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(info.step)) },
    { name: "train.seed", dtype: "I64", shape: [], data: BigInt64Array.of(BigInt(info.seed)) },
  ] satisfies TensorEntry[];
  assertFinite(tensors);
  await writeSafetensorsFile(path, tensors, {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(info.config),
    ...(info.dataset ? { dataset: JSON.stringify(info.dataset) } : {}),
  });
}

/** Writes the generator's plain state_dict atomically. */
export async function saveGenerator(path: string, net: NativeMlp, config: Record<string, unknown>) {
  await writeSafetensorsFile(path, stateDictEntries(net), {
    format: CHECKPOINT_FORMAT,
    config: JSON.stringify(config),
  });
}

function scalar(map: TensorMap, name: string, file: string): number {
  const v = Number(expectTensor(map, name, "I64", [], file)[0]);
  if (!Number.isSafeInteger(v) || v < 0) throw new Error(`Cannot load checkpoint "${file}": ${name} is ${v}`);
  return v;
}

/** Reads one network's state (prefix "" for a plain state_dict) into `net`, checking every name, dtype and shape. */
export function loadStateDict(map: TensorMap, file: string, net: NativeMlp, prefix = ""): void {
  const layout = net.layout();
  const params = new Float32Array(layout.paramCount), running = new Float32Array(layout.bufferCount);
  for (const t of layout.params) params.set(expectTensor(map, prefix + t.name, "F32", t.shape, file), t.offset);
  let tracked = 0;
  for (const t of layout.buffers) {
    running.set(expectTensor(map, prefix + t.name, "F32", t.shape, file), t.offset);
    if (t.name.endsWith(".running_var")) {
      tracked = scalar(map, `${prefix}${t.name.slice(0, -12)}.num_batches_tracked`, file);
    }
  }
  checkFinite(params, file, prefix + "parameters");
  checkFinite(running, file, prefix + "running statistics");
  checkStatistics(running, layout.buffers, prefix, file);
  net.set("params", params);
  net.set("running", running);
  net.setCounters(net.info().adam_step, tracked);
}

function checkFinite(a: Float32Array, file: string, what: string) {
  const i = a.findIndex((x) => !Number.isFinite(x));
  if (i >= 0) throw new Error(`Cannot load checkpoint "${file}": ${what} hold ${a[i]} at flat index ${i}`);
}

function loadAdam(map: TensorMap, file: string, net: NativeMlp, prefix: string): void {
  const layout = net.layout();
  const m = new Float32Array(layout.paramCount), v = new Float32Array(layout.paramCount);
  for (const t of layout.params) {
    m.set(expectTensor(map, `${prefix}.exp_avg.${t.name}`, "F32", t.shape, file), t.offset);
    v.set(expectTensor(map, `${prefix}.exp_avg_sq.${t.name}`, "F32", t.shape, file), t.offset);
  }
  checkFinite(m, file, `${prefix}.exp_avg`);
  checkFinite(v, file, `${prefix}.exp_avg_sq`);
  checkStatistics(v, layout.params.map((t) => ({ ...t, name: `${prefix}.exp_avg_sq.${t.name}` })), "", file);
  net.set("adam_m", m);
  net.set("adam_v", v);
  net.setCounters(scalar(map, `${prefix}.step`, file), net.info().num_batches_tracked);
}

/** Reads a checkpoint file's metadata (its config) without touching any network. */
export async function readCheckpoint(
  path: string,
  options: ReadSafetensorsFileOptions = {},
): Promise<{ map: TensorMap; info: CheckpointInfo }> {
  const map = await readSafetensorsFile(path, options);
  if (map.metadata?.format !== CHECKPOINT_FORMAT) {
    throw new Error(
      `Cannot load checkpoint "${path}": metadata format is ${
        JSON.stringify(map.metadata?.format)
      }, expected "${CHECKPOINT_FORMAT}"`,
    );
  }
  let config: Record<string, unknown>;
  try {
    config = JSON.parse(map.metadata.config ?? "{}");
  } catch {
    throw new Error(`Cannot load checkpoint "${path}": metadata "config" is not JSON`);
  }
  let dataset: DatasetIdentity | undefined;
  if (map.metadata.dataset !== undefined) {
    try {
      dataset = JSON.parse(map.metadata.dataset);
    } catch {
      throw new Error(`Cannot load checkpoint "${path}": metadata "dataset" is not JSON`);
    }
  }
  if (typeof config !== "object" || config === null || Array.isArray(config)) {
    throw new Error(`Cannot load checkpoint "${path}": metadata "config" is ${JSON.stringify(config)}, not an object`);
  }
  const full = map.has("train.step");
  return {
    map,
    info: {
      step: full ? scalar(map, "train.step", path) : 0,
      seed: full ? scalar(map, "train.seed", path) : 0,
      config,
      ...(dataset !== undefined ? { dataset } : {}),
    },
  };
}

/** A checkpoint's generator: its spec, image shape and model, and where its tensors are. */
export interface CheckpointGenerator {
  /** The generator's spec (the seed's when the config has none). */
  spec: MlpSpec;
  /** Image side and channels. */
  side: number;
  channels: number;
  /** The model (`gan` when the config names none). */
  model: string;
  /** The name prefix of its tensors: `generator.` in a full checkpoint, "" in generator.safetensors. */
  prefix: string;
}

/**
 * The generator of a checkpoint read by {@link readCheckpoint} (a full one or a generator.safetensors): what `sample`
 * and `export` build before loading its tensors with {@link loadStateDict}.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { checkpointGenerator } from "./checkpoint.ts";
 * import type { TensorMap } from "../io/safetensors.ts";
 *
 * const g = checkpointGenerator(new Map() as TensorMap, { step: 0, seed: 0, config: { img_size: 32 } });
 * assert.deepEqual([g.side, g.channels, g.model, g.prefix, g.spec.input], [32, 1, "gan", "", 100]);
 * ```
 */
export function checkpointGenerator(map: TensorMap, info: CheckpointInfo): CheckpointGenerator {
  const c = info.config as {
    generator?: MlpSpec;
    latent_dim?: number;
    img_size?: number;
    channels?: number;
    model?: string;
  };
  return {
    spec: c.generator ?? seedGenerator(c.latent_dim, c.img_size, c.channels),
    side: c.img_size ?? 28,
    channels: c.channels ?? 1,
    model: c.model ?? "gan",
    prefix: map.has("generator.model.0.weight") ? "generator." : "",
  };
}

/** Options of {@link loadCheckpoint}. */
export interface LoadCheckpointOptions {
  /** aae's encoder: loaded from `encoder.*` and `optimizer_E.*`; a checkpoint with an encoder needs one, and one without refuses it. */
  encoder?: NetworkState;
  /** Called with the checkpoint's info after its header is read and before any tensor is (a resume's settings check). */
  check?: (info: CheckpointInfo) => void;
}

/** Loads a full checkpoint into both networks (aae: all three) and their Adam states; returns its info. */
export async function loadCheckpoint(
  path: string,
  g: NetworkState,
  d: NetworkState,
  options: LoadCheckpointOptions = {},
): Promise<CheckpointInfo> {
  const e = options.encoder;
  const { map, info } = await readCheckpoint(path, checkpointSizeLimit(g.spec, d.spec, e?.spec));
  if (!map.has("train.step")) throw new Error(`Cannot resume from "${path}": it holds no training state (train.step)`);
  options.check?.(info);
  const model = JSON.stringify(info.config.model ?? "gan");
  const stored = [...map.keys()].some((k) => k.startsWith("encoder."));
  if (stored && !e) {
    throw new Error(
      `Cannot resume from "${path}": it holds an encoder (encoder.* tensors; model ${model}) and this run has none`,
    );
  }
  if (!stored && e) {
    throw new Error(
      `Cannot resume from "${path}": it holds no encoder (no encoder.* tensors; model ${model}) and this run trains one`,
    );
  }
  loadStateDict(map, path, g.net, "generator.");
  loadStateDict(map, path, d.net, "discriminator.");
  if (e) loadStateDict(map, path, e.net, "encoder.");
  loadAdam(map, path, g.net, "optimizer_G");
  loadAdam(map, path, d.net, "optimizer_D");
  if (e) loadAdam(map, path, e.net, "optimizer_E");
  return info;
}

/**
 * The bytes `generator.safetensors` must hold next to a full checkpoint: its `generator.*` tensors under their plain
 * state_dict names, with its format and config, exactly as {@link saveGenerator} writes them for the same state.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { generatorFileBytes } from "./checkpoint.ts";
 * import { readSafetensors, type TensorEntry, writeSafetensors } from "../io/safetensors.ts";
 *
 * const w: Omit<TensorEntry, "name"> = { dtype: "F32", shape: [1], data: new Float32Array([0.5]) };
 * const full = readSafetensors(writeSafetensors([
 *   { name: "generator.model.0.weight", ...w },
 *   { name: "discriminator.model.0.weight", ...w },
 * ], { format: "deno-gan/1", config: "{}" }), "latest.safetensors");
 * const plain = readSafetensors(generatorFileBytes(full), "generator.safetensors");
 * assert.deepEqual([...plain.keys()], ["model.0.weight"]);
 * assert.deepEqual(plain.metadata, { config: "{}", format: "deno-gan/1" });
 * ```
 */
export function generatorFileBytes(full: TensorMap): Uint8Array<ArrayBuffer> {
  const entries: TensorEntry[] = [];
  for (const [name, t] of full) {
    if (name.startsWith("generator.")) entries.push({ name: name.slice(10), ...t });
  }
  return writeSafetensors(entries, { format: CHECKPOINT_FORMAT, config: full.metadata?.config ?? "{}" });
}

/**
 * Makes `<dir>/generator.safetensors` hold the generator of `<dir>/latest.safetensors`, rewriting it (atomically)
 * when it differs. The trainer writes the full checkpoint first and the generator right after, so a run killed
 * between the two renames leaves the generator one checkpoint behind; every start in the folder calls this (under the
 * folder's lock) before training. A missing or unreadable latest checkpoint is left to the resume to report.
 *
 * @param dir The checkpoints folder.
 * @param options The size limit of `latest.safetensors`.
 * @returns Whether the generator file was rewritten.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { syncGeneratorFile } from "./checkpoint.ts";
 * import { type TensorEntry, writeSafetensorsFile } from "../io/safetensors.ts";
 *
 * const dir = await Deno.makeTempDir();
 * const t: TensorEntry = { name: "generator.model.0.bias", dtype: "F32", shape: [1], data: new Float32Array([1]) };
 * await writeSafetensorsFile(`${dir}/latest.safetensors`, [t], { format: "deno-gan/1", config: "{}" });
 * assert.equal(await syncGeneratorFile(dir), true); // missing: written
 * assert.equal(await syncGeneratorFile(dir), false); // the same: left alone
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function syncGeneratorFile(dir: string, options: ReadSafetensorsFileOptions = {}): Promise<boolean> {
  let full: TensorMap;
  try {
    full = await readSafetensorsFile(`${dir}/latest.safetensors`, options);
  } catch {
    return false;
  }
  const want = generatorFileBytes(full);
  const path = `${dir}/generator.safetensors`;
  let have: Uint8Array | null = null;
  try {
    have = readRegularFile(path, { what: "generator file", maxBytes: want.length });
  } catch { /* missing, or not the right size */ }
  if (have !== null && have.length === want.length && have.every((b, i) => b === want[i])) return false;
  await writeFileAtomic(path, want);
  return true;
}
