// Parity with PyTorch for the loss options of the `gan` model: one step of upstream's gan.py loop body with each
// loss (bce, mse, hinge, relativistic, relativistic_avg), computed by bench/reference/family.py and stored in
// tests/fixtures/family/gan.safetensors by bench/reference/make_family_fixtures.py (hidden widths of upstream / 16,
// batch 8; FAMILY.md documents every tensor), run again here by NativeGan.stepExplicit on the same weights, noise and
// real batch. No PyTorch is needed to run this test.
//
// Tolerances (float32 both sides, summed in different orders), as in tests/torch_parity_test.ts: losses and mean D
// outputs 1e-5 (relative above 1); parameters after the step 2e-7 + 1e-6 |e| where PyTorch's gradient is above 1e-4
// of the network's largest (there both sides move by about lr sign(g)), else up to 2 lr + 1e-6 (a gradient within
// rounding noise of 0: the Linear biases before a BatchNorm; for the relativistic losses also D's last bias, whose
// gradient is 0 in exact arithmetic because those losses do not change when every score shifts by one constant);
// running statistics 1e-6 + 1e-5 |e|.

import assert from "node:assert/strict";
import { Context, NativeGan, NativeMlp } from "../src/native/handles.ts";
import { expectTensor, readSafetensors, type TensorMap } from "../src/io/safetensors.ts";
import { GAN_LOSSES, type GanLoss, type MlpSpec } from "../src/model/spec.ts";

const FIXTURE = "tests/fixtures/family/gan.safetensors";
const fixture: TensorMap = readSafetensors(
  await Deno.readFile(new URL("./fixtures/family/gan.safetensors", import.meta.url)),
  FIXTURE,
);
const meta = JSON.parse(fixture.metadata!.fixture) as {
  batch: number;
  options: { lr: number; b1: number; b2: number; latent_dim: number };
  cases: Record<string, { prefix: string; options_changed: { loss?: string } }>;
};
const ADAM = { lr: meta.options.lr, b1: meta.options.b1, b2: meta.options.b2, eps: 1e-8 };

const lrelu = { kind: "leaky_relu", slope: 0.2 } as const;
const bn = { eps: 0.8, momentum: 0.1 };
/** Upstream's G and D at hidden widths / 16 (the fixture's), D ending in a sigmoid for bce and linear otherwise. */
function specs(loss: GanLoss): { g: MlpSpec; d: MlpSpec } {
  const g: MlpSpec = {
    input: meta.options.latent_dim,
    layers: [
      { out: 8, bn: null, act: lrelu },
      { out: 16, bn, act: lrelu },
      { out: 32, bn, act: lrelu },
      { out: 64, bn, act: lrelu },
      { out: 784, bn: null, act: { kind: "tanh" } },
    ],
  };
  const d: MlpSpec = {
    input: 784,
    layers: [
      { out: 32, bn: null, act: lrelu },
      { out: 16, bn: null, act: lrelu },
      { out: 1, bn: null, act: loss === "bce" ? { kind: "sigmoid" } : { kind: "none" } },
    ],
  };
  return { g, d };
}

/** Tensor `name` of the case with `prefix`, or the default case's when the writer left it out (bitwise equal). */
function tensor(prefix: string, name: string, shape: number[]): Float32Array {
  const own = `${prefix}${name}`;
  return expectTensor(fixture, fixture.has(own) ? own : name, "F32", shape, FIXTURE) as Float32Array;
}

/** `<group>.<net>.<state_dict name>` tensors into the flat layout of `mlp`'s params or running statistics. */
function flat(mlp: NativeMlp, which: "params" | "running", group: string): Float32Array<ArrayBuffer> {
  const layout = mlp.layout(), table = which === "params" ? layout.params : layout.buffers;
  const out = new Float32Array(which === "params" ? layout.paramCount : layout.bufferCount);
  for (const t of table) out.set(tensor("", `${group}${t.name}`, t.shape), t.offset);
  return out;
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

/** Compares one network's parameters and running statistics after the step with PyTorch's. */
function compareNet(label: string, mlp: NativeMlp, net: string, prefix: string): { tight: number; loose: number } {
  const layout = mlp.layout(), params = mlp.get("params"), running = mlp.get("running");
  const grads = layout.params.map((t) => tensor(prefix, `grad.${net}.${t.name}`, t.shape));
  const noise = 1e-4 * Math.max(...grads.map(maxAbs));
  const worst = { tight: 0, loose: 0 };
  layout.params.forEach((t, k) => {
    const want = tensor(prefix, `after.${net}.${t.name}`, t.shape);
    for (let i = 0; i < t.size; i++) {
      const d = Math.abs(params[t.offset + i] - want[i]);
      const tight = Math.abs(grads[k][i]) > noise;
      const tol = tight ? 2e-7 + 1e-6 * Math.abs(want[i]) : 2 * ADAM.lr + 1e-6;
      if (!(d <= tol)) {
        throw new Error(`${label} ${t.name}[${i}]: ${params[t.offset + i]} vs PyTorch ${want[i]} (tolerance ${tol})`);
      }
      if (tight) worst.tight = Math.max(worst.tight, d);
      else worst.loose = Math.max(worst.loose, d);
    }
  });
  for (const t of layout.buffers) {
    const want = tensor(prefix, `after.${net}.${t.name}`, t.shape);
    for (let i = 0; i < t.size; i++) {
      const got = running[t.offset + i];
      assert.ok(Math.abs(got - want[i]) <= 1e-6 + 1e-5 * Math.abs(want[i]), `${label} ${t.name}[${i}]`);
    }
  }
  return worst;
}

Deno.test("PyTorch parity, gan with every loss option: one step of upstream's loop body (family fixture)", () => {
  const cases = Object.entries(meta.cases);
  assert.deepEqual(cases.map(([name]) => name), [...GAN_LOSSES]); // every loss has a case, and only those
  using ctx = new Context({ backend: "cpu", threads: 1 });
  for (const [name, c] of cases) {
    const loss = (c.options_changed.loss ?? "bce") as GanLoss;
    const { g: gSpec, d: dSpec } = specs(loss);
    using g = new NativeMlp(ctx, gSpec);
    using d = new NativeMlp(ctx, dSpec);
    g.set("params", flat(g, "params", "generator."));
    g.set("running", flat(g, "running", "generator."));
    d.set("params", flat(d, "params", "discriminator."));
    using gan = new NativeGan(ctx, g, d, { batch_size: meta.batch, seed: 0, ...ADAM, loss });
    const B = meta.batch;
    const z = tensor("", "input.z", [B, gSpec.input]) as Float32Array<ArrayBuffer>;
    const x = tensor("", "input.real", [B, 784]) as Float32Array<ArrayBuffer>;
    const step = gan.stepExplicit(z, x, B);
    const want = {
      dLoss: tensor(c.prefix, "out.d_loss", [])[0],
      gLoss: tensor(c.prefix, "out.g_loss", [])[0],
      dReal: mean(tensor(c.prefix, "out.d_real", [B, 1])), // D's outputs per row
      dFake: mean(tensor(c.prefix, "out.d_fake", [B, 1])),
    };
    for (const k of ["dLoss", "gLoss", "dReal", "dFake"] as const) {
      const ok = Math.abs(step[k] - want[k]) <= 1e-5 * Math.max(1, Math.abs(want[k]));
      assert.ok(ok, `${name} ${k}: ours ${step[k]}, PyTorch ${want[k]}`);
    }
    const wg = compareNet(`${name} G`, g, "generator", c.prefix),
      wd = compareNet(`${name} D`, d, "discriminator", c.prefix);
    console.log(
      `  ${name}: D loss ${step.dLoss.toFixed(6)} (PyTorch ${want.dLoss.toFixed(6)}), G loss ${
        step.gLoss.toFixed(6)
      };` +
        ` worst param diff ${Math.max(wg.tight, wd.tight).toExponential(1)} (noise-level grads ` +
        `${Math.max(wg.loose, wd.loose).toExponential(1)})`,
    );
  }
});
