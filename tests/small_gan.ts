// A small GAN of the seed's shape (leaky_relu, one BatchNorm block, tanh; D ending in a sigmoid) over synthetic
// 8x8 images: the fast model of the long-running tests (memory over 10,000 steps, the crash/resume worker).

import type { Dataset } from "../src/data/dataset.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import type { TrainOptions } from "../src/train/trainer.ts";
import { readSafetensorsFile, type TensorEntry, writeSafetensors } from "../src/io/safetensors.ts";

/** `count` synthetic 8x8 grayscale images (a fixed integer hash of the pixel index). */
export function syntheticImages(count: number): Dataset {
  const pixels = new Uint8Array(count * 64).map((_, i) => (i * 2654435761) >>> 24);
  return { name: "synthetic", count, height: 8, width: 8, channels: 1, pixels };
}

/** G: latent -> h1 (leaky_relu) -> h2 (BN eps 0.8, leaky_relu) -> 64 (tanh); D: 64 -> 32 (leaky_relu) -> 1 (sigmoid). */
export function smallGan(latent: number, h1: number, h2: number): { generator: MlpSpec; discriminator: MlpSpec } {
  return {
    generator: {
      input: latent,
      layers: [
        { out: h1, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
        { out: h2, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.2 } },
        { out: 64, bn: null, act: { kind: "tanh" } },
      ],
    },
    discriminator: {
      input: 64,
      layers: [
        { out: 32, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
        { out: 1, bn: null, act: { kind: "sigmoid" } },
      ],
    },
  };
}

/**
 * The settings of the small runs that the crash, output-folder and resume tests share (the same model and data as
 * `tests/workers/crash_worker.ts`, so that their checkpoints fit each other); each test adds what it varies.
 */
export function smallRunOptions(overrides: Partial<TrainOptions> = {}): TrainOptions {
  return {
    backend: "cpu",
    threads: 1,
    seed: 9,
    imgSize: 8,
    latentDim: 6,
    batchSize: 12,
    ...smallGan(6, 16, 32),
    ...overrides,
  };
}

/** The permissions of the CLI and worker subprocesses that the tests start. */
export const SUBPROCESS_PERMS: readonly string[] = [
  "--allow-read",
  "--allow-write",
  "--allow-ffi",
  "--allow-env",
  "--allow-run",
];

/**
 * What generator.safetensors must hold beside a full checkpoint, derived here independently of the trainer (the
 * crash and output-folder tests compare the file with it): its generator.* tensors, its format and config.
 */
export async function generatorOf(latest: string): Promise<Uint8Array> {
  const full = await readSafetensorsFile(latest);
  const entries: TensorEntry[] = [...full].filter(([n]) => n.startsWith("generator.")).map(([n, t]) => ({
    name: n.slice("generator.".length),
    ...t,
  }));
  return writeSafetensors(entries, { format: full.metadata!.format, config: full.metadata!.config });
}
