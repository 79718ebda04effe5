// Parity with PyTorch for the models of the general step (native/src/core/family.rs): bgan, softmax_gan, wgan,
// wgan_gp and wgan_div, one or two steps of upstream's loop body each, with every switch the fixtures hold. The
// fixtures are tests/fixtures/family/<model>.safetensors, written by bench/reference/make_family_fixtures.py from
// bench/reference/family.py (upstream's networks at hidden widths / 16, batch 8; bench/reference/FAMILY.md documents
// every tensor and the fallbacks). No PyTorch is needed to run this test.
//
// What is compared, on the cpu and gpu backends (the gpu where an adapter exists; lavapipe in CI):
// - the step record: D's loss (the critic's, with its penalty), G's loss on steps that update G, and the mean D
//   outputs, to 1e-5 relative (1e-5 absolute below 1);
// - the gradient each network was updated with (the library's grads buffer after the step, PyTorch's `.grad` at its
//   optimizer's step) to 1e-4 of the tensor's largest value plus 1e-3 relative plus 1e-6 of the network's largest
//   (a gradient that is 0 in exact arithmetic, as softmax_gan's last D bias, is rounding noise on both sides): the
//   one-step comparison that shows more than a sign (the penalties' second-order pass included);
// - the parameters after the step (2e-7 + 1e-6 |e| where PyTorch's gradient is above 1e-4 of the network's largest;
//   else within twice the largest first-step move of the optimizer: lr for Adam, 10 lr for RMSprop, whose first step
//   is lr g / (0.1 |g|)), and the running statistics (1e-6 + 1e-5 |e|, plus 0.1 x 2 moves from step 2 on: the
//   pre-BatchNorm biases, whose gradients are rounding noise, move apart by up to 2 moves in step 1).

import assert from "node:assert/strict";
import { type Context, type GanConfig, NativeGan, NativeMlp } from "../src/native/handles.ts";
import { expectTensor, readSafetensors, type TensorMap } from "../src/io/safetensors.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { testOnBackends } from "./backends.ts";

interface Meta {
  model: string;
  batch: number;
  steps: number;
  options: Record<string, number | string | boolean>;
  cases: Record<string, { prefix: string; options_changed: Record<string, number | string | boolean>; steps: number }>;
}

/** A fixture with its tensor lookup (the writer's fallbacks). */
class Fixture {
  readonly t: TensorMap;
  readonly meta: Meta;
  constructor(readonly model: string) {
    const path = `tests/fixtures/family/${model}.safetensors`;
    this.t = readSafetensors(
      Deno.readFileSync(new URL(`./fixtures/family/${model}.safetensors`, import.meta.url)),
      path,
    );
    this.meta = JSON.parse(this.t.metadata!.fixture) as Meta;
  }
  /** `<prefix><group><step>.<name>`, falling back to the default case's, and `after2.` to `after.`. */
  get(prefix: string, group: string, step: number, name: string, shape: number[]): Float32Array<ArrayBuffer> {
    const g = step === 1 ? group : `${group}${step}`;
    const tries = [`${prefix}${g}.${name}`, `${g}.${name}`];
    if (group === "after" && step === 2) tries.push(`after.${name}`);
    const key = tries.find((k) => this.t.has(k));
    if (key === undefined) throw new Error(`${this.model}: no tensor ${tries[0]}`);
    return expectTensor(this.t, key, "F32", shape, this.model) as Float32Array<ArrayBuffer>;
  }
  has(prefix: string, group: string, step: number, name: string): boolean {
    const g = step === 1 ? group : `${group}${step}`;
    return this.t.has(`${prefix}${g}.${name}`) || this.t.has(`${g}.${name}`);
  }
  /** The initial state (`generator.` / `discriminator.` state_dict entries) in `mlp`'s flat layout. */
  initial(mlp: NativeMlp, net: string): void {
    const layout = mlp.layout();
    for (
      const [which, table, n] of [["params", layout.params, layout.paramCount], [
        "running",
        layout.buffers,
        layout.bufferCount,
      ]] as const
    ) {
      const out = new Float32Array(n);
      for (const e of table) {
        out.set(expectTensor(this.t, `${net}.${e.name}`, "F32", e.shape, this.model) as Float32Array, e.offset);
      }
      mlp.set(which, out);
    }
  }
}

const lrelu = { kind: "leaky_relu", slope: 0.2 } as const;
const bn = { eps: 0.8, momentum: 0.1 };
/** Upstream's G and D at hidden widths / 16, as the fixtures hold them. */
function specs(sigmoid: boolean): { g: MlpSpec; d: MlpSpec } {
  return {
    g: {
      input: 100,
      layers: [
        { out: 8, bn: null, act: lrelu },
        { out: 16, bn, act: lrelu },
        { out: 32, bn, act: lrelu },
        { out: 64, bn, act: lrelu },
        { out: 784, bn: null, act: { kind: "tanh" } },
      ],
    },
    d: {
      input: 784,
      layers: [
        { out: 32, bn: null, act: lrelu },
        { out: 16, bn: null, act: lrelu },
        { out: 1, bn: null, act: sigmoid ? { kind: "sigmoid" } : { kind: "none" } },
      ],
    },
  };
}

/** The GAN config of a case: the model's options as the library names them. */
function config(meta: Meta, changed: Record<string, number | string | boolean>): GanConfig {
  const o = { ...meta.options, ...changed };
  const base = {
    batch_size: meta.batch,
    seed: 0,
    lr: o.lr as number,
    b1: o.b1 as number,
    b2: o.b2 as number,
    eps: 1e-8,
  };
  switch (meta.model) {
    case "wgan":
      return { ...base, model: "wgan", n_critic: o.n_critic as number, clip_value: o.clip_value as number };
    case "wgan_gp":
      return {
        ...base,
        model: "wgan_gp",
        n_critic: o.n_critic as number,
        lambda_gp: o.lambda_gp as number,
        gp_norm: o.gp_norm as "sample" | "pixel",
        gp_clip: o.gp_clip as boolean,
        clip_value: o.clip_value as number,
      };
    case "wgan_div":
      return { ...base, model: "wgan_div", n_critic: o.n_critic as number, div_k: o.k as number, div_p: o.p as number };
    case "softmax_gan":
      return {
        ...base,
        model: "softmax_gan",
        softmax_fresh_d: o.softmax_fresh_d as boolean,
        softmax_g_loss_only: o.softmax_g_loss_only as boolean,
      };
    default:
      return { ...base, model: meta.model };
  }
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function close(label: string, got: number, want: number): void {
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${label}: ours ${got}, PyTorch ${want}`);
}

/** One network after a step: its gradients, parameters and running statistics against PyTorch's. */
function compareNet(
  label: string,
  fx: Fixture,
  mlp: NativeMlp,
  net: string,
  prefix: string,
  step: number,
  move: number,
  withGrads: boolean,
): number {
  const layout = mlp.layout(), params = mlp.get("params"), running = mlp.get("running"), grads = mlp.get("grads");
  // After a critic-only step, G's parameters are those of its last update (step 1), classified by its gradients.
  const gradStep = withGrads ? step : 1;
  const want = layout.params.map((t) => fx.get(prefix, "grad", gradStep, `${net}.${t.name}`, t.shape));
  const netMax = Math.max(...want.map(maxAbs)), noise = 1e-4 * netMax;
  let worstGrad = 0;
  layout.params.forEach((t, k) => {
    const scale = maxAbs(want[k]);
    const after = fx.get(prefix, "after", step, `${net}.${t.name}`, t.shape);
    for (let i = 0; i < t.size; i++) {
      if (withGrads) {
        const dg = Math.abs(grads[t.offset + i] - want[k][i]);
        worstGrad = Math.max(worstGrad, dg / netMax);
        const tolG = 1e-4 * scale + 1e-3 * Math.abs(want[k][i]) + 1e-6 * netMax;
        if (!(dg <= tolG)) {
          throw new Error(
            `${label} grad ${t.name}[${i}]: ${grads[t.offset + i]} vs PyTorch ${want[k][i]} (tol ${tolG})`,
          );
        }
      }
      const d = Math.abs(params[t.offset + i] - after[i]);
      const tol = Math.abs(want[k][i]) > noise ? 2e-7 + 1e-6 * Math.abs(after[i]) : 2 * move + 1e-6;
      if (!(d <= tol)) throw new Error(`${label} ${t.name}[${i}]: ${params[t.offset + i]} vs PyTorch ${after[i]}`);
    }
  });
  // From step 2 on, the pre-BatchNorm biases (rounding-noise gradients) differ by up to 2 moves, and the BN momentum
  // (0.1) carries that shift of the batch means into the running means.
  const bnShift = step > 1 ? 0.1 * 2 * move : 0;
  for (const t of layout.buffers) {
    const after = fx.get(prefix, "after", step, `${net}.${t.name}`, t.shape);
    for (let i = 0; i < t.size; i++) {
      const got = running[t.offset + i], tol = 1e-6 + 1e-5 * Math.abs(after[i]) + bnShift;
      assert.ok(Math.abs(got - after[i]) <= tol, `${label} ${t.name}[${i}]: ${got} vs PyTorch ${after[i]}`);
    }
  }
  return worstGrad;
}

/** Runs every case of one model's fixture on `backend`; returns lines for the log. */
function runModel(model: string, ctx: Context, backend: string): string[] {
  const fx = new Fixture(model), meta = fx.meta, B = meta.batch;
  const lines: string[] = [];
  for (const [name, c] of Object.entries(meta.cases)) {
    const cfg = config(meta, c.options_changed);
    const { g: gs, d: ds } = specs(model === "bgan");
    using g = new NativeMlp(ctx, gs);
    using d = new NativeMlp(ctx, ds);
    fx.initial(g, "generator");
    fx.initial(d, "discriminator");
    using gan = new NativeGan(ctx, g, d, cfg);
    gan.setData(new Uint8Array(2 * B * 784), 2 * B); // two batches per epoch: step 2 is batch index 1
    const move = (cfg.optimizer ?? (model === "wgan" ? "rmsprop" : "adam")) === "rmsprop" ? 10 * cfg.lr : cfg.lr;
    for (let step = 1; step <= c.steps; step++) {
      const z = fx.get("", "input", step, "z", [B, 100]);
      const x = fx.get("", "input", step, "real", [B, 784]);
      const aux = model === "wgan_gp" ? fx.get("", "input", step, "alpha", [B, 1]) : undefined;
      const r = gan.stepExplicit(z, x, B, aux);
      const at = `${model} ${name} [${backend}] step ${step}`;
      close(`${at} d_loss`, r.dLoss, fx.get(c.prefix, "out", step, "d_loss", [])[0]);
      close(`${at} d_real`, r.dReal, mean(fx.get(c.prefix, "out", step, "d_real", [B, 1])));
      close(`${at} d_fake`, r.dFake, mean(fx.get(c.prefix, "out", step, "d_fake", [B, 1])));
      const gUpdated = fx.has(c.prefix, "out", step, "g_loss");
      if (gUpdated) close(`${at} g_loss`, r.gLoss, fx.get(c.prefix, "out", step, "g_loss", [])[0]);
      const wd = compareNet(`${at} D`, fx, d, "discriminator", c.prefix, step, move, true);
      const wg = compareNet(`${at} G`, fx, g, "generator", c.prefix, step, move, gUpdated);
      lines.push(
        `${at}: D loss ${r.dLoss.toFixed(6)}, G loss ${gUpdated ? r.gLoss.toFixed(6) : "(critic-only)"}; ` +
          `worst grad diff / network's largest: D ${wd.toExponential(1)}, G ${gUpdated ? wg.toExponential(1) : "-"}`,
      );
    }
  }
  return lines;
}

const MODELS = ["bgan", "softmax_gan", "wgan", "wgan_gp", "wgan_div"];

testOnBackends("PyTorch parity of the general step's models: bgan, softmax_gan, wgan, wgan_gp, wgan_div", (ctx, b) => {
  for (const m of MODELS) console.log(runModel(m, ctx, b.name).map((l) => `  ${l}`).join("\n"));
});
