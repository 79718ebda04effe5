// Parity with PyTorch for aae (upstream implementations/aae/aae.py): one step of upstream's loop body from the committed
// fixture tests/fixtures/family/aae.safetensors (bench/reference/make_family_fixtures.py: upstream's encoder, decoder
// and latent discriminator at hidden widths / 16, batch 8, img_size 32, latent 10), on the cpu and gpu backends. No
// PyTorch is needed to run it. The fixture's reparameterization noise `eps` goes in as the explicit step's `aux`, its
// prior sample as `z`.
//
// What is compared: the step record (D's loss, the mean D of the prior and of the encoded codes, the generator loss
// `0.001 BCE + 0.999 L1`) to 1e-5 relative; the gradient each of the three networks was updated with to 1e-4 of the
// tensor's largest value plus 1e-3 relative plus 1e-6 of the network's largest (the Linear biases before a BatchNorm,
// 0 in exact arithmetic, to be below 1e-4 of the network's largest on both sides); the parameters after the step to 2e-7 +
// 1e-6 |e| where PyTorch's gradient is above 1e-4 of the network's largest, else within 2 lr (Adam's first move); the
// running statistics to 1e-6 + 1e-5 |e|.

import assert from "node:assert/strict";
import { NativeGan, NativeMlp } from "../src/native/handles.ts";
import { expectTensor, readSafetensors, type TensorMap } from "../src/io/safetensors.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { testOnBackends } from "./backends.ts";

const B = 8, L = 10, PIXELS = 1024;
const path = "tests/fixtures/family/aae.safetensors";
const t: TensorMap = readSafetensors(
  Deno.readFileSync(new URL("./fixtures/family/aae.safetensors", import.meta.url)),
  path,
);
const f32 = (name: string, shape: number[]) => expectTensor(t, name, "F32", shape, path) as Float32Array<ArrayBuffer>;

const lrelu = { kind: "leaky_relu", slope: 0.2 } as const;
const bn = { eps: 1e-5, momentum: 0.1 };
/** Upstream's aae networks at hidden widths / 16. */
const ENCODER: MlpSpec = {
  input: PIXELS,
  layers: [
    { out: 32, bn: null, act: lrelu },
    { out: 32, bn, act: lrelu },
    { out: 2 * L, bn: null, act: { kind: "none" }, heads: [{ name: "mu", out: L }, { name: "logvar", out: L }] },
  ],
};
const DECODER: MlpSpec = {
  input: L,
  layers: [
    { out: 32, bn: null, act: lrelu },
    { out: 32, bn, act: lrelu },
    { out: PIXELS, bn: null, act: { kind: "tanh" } },
  ],
};
const D: MlpSpec = {
  input: L,
  layers: [
    { out: 32, bn: null, act: lrelu },
    { out: 16, bn: null, act: lrelu },
    { out: 1, bn: null, act: { kind: "sigmoid" } },
  ],
};

/** The fixture's state of `net` before the step, laid out as `mlp`'s flat buffers. */
function load(mlp: NativeMlp, net: string): void {
  const layout = mlp.layout();
  for (
    const [which, table, n] of [
      ["params", layout.params, layout.paramCount],
      ["running", layout.buffers, layout.bufferCount],
    ] as const
  ) {
    const out = new Float32Array(n);
    for (const e of table) out.set(f32(`${net}.${e.name}`, e.shape), e.offset);
    mlp.set(which, out);
  }
}

function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

/** Gradients, parameters and running statistics of one network against PyTorch's; returns the worst gradient
 * difference over the network's largest gradient. */
function compare(label: string, mlp: NativeMlp, net: string, lr: number): number {
  const layout = mlp.layout(), params = mlp.get("params"), grads = mlp.get("grads"), running = mlp.get("running");
  const want = layout.params.map((e) => f32(`grad.${net}.${e.name}`, e.shape));
  const netMax = Math.max(...want.map(maxAbs));
  let worst = 0;
  // A Linear bias right before a BatchNorm has gradient 0 in exact arithmetic (the batch mean removes it): both sides
  // hold rounding noise there, checked to be below 1e-4 of the network's largest gradient instead of against each other.
  const preBn = new Set(
    layout.buffers.map((e) => e.name.replace(/^model\.(\d+)\..*$/, (_, k) => `model.${Number(k) - 1}.bias`)),
  );
  layout.params.forEach((e, k) => {
    const scale = maxAbs(want[k]), after = f32(`after.${net}.${e.name}`, e.shape);
    for (let i = 0; i < e.size; i++) {
      const dg = Math.abs(grads[e.offset + i] - want[k][i]);
      if (preBn.has(e.name)) {
        const noise = Math.max(Math.abs(grads[e.offset + i]), Math.abs(want[k][i]));
        assert.ok(noise <= 1e-4 * netMax, `${label} grad ${e.name}[${i}]: ${grads[e.offset + i]}, ${want[k][i]}`);
      } else {
        worst = Math.max(worst, dg / netMax);
        const tolG = 1e-4 * scale + 1e-3 * Math.abs(want[k][i]) + 1e-6 * netMax;
        assert.ok(dg <= tolG, `${label} grad ${e.name}[${i}]: ${grads[e.offset + i]} vs PyTorch ${want[k][i]}`);
      }
      const d = Math.abs(params[e.offset + i] - after[i]);
      const tol = Math.abs(want[k][i]) > 1e-4 * netMax ? 2e-7 + 1e-6 * Math.abs(after[i]) : 2 * lr + 1e-6;
      assert.ok(d <= tol, `${label} ${e.name}[${i}]: ${params[e.offset + i]} vs PyTorch ${after[i]}`);
    }
  });
  for (const e of layout.buffers) {
    const after = f32(`after.${net}.${e.name}`, e.shape);
    for (let i = 0; i < e.size; i++) {
      const got = running[e.offset + i];
      assert.ok(Math.abs(got - after[i]) <= 1e-6 + 1e-5 * Math.abs(after[i]), `${label} ${e.name}[${i}]: ${got}`);
    }
  }
  return worst;
}

testOnBackends("PyTorch parity of aae: one step of the encoder, the decoder and the latent discriminator", (ctx, b) => {
  using enc = new NativeMlp(ctx, ENCODER);
  using dec = new NativeMlp(ctx, DECODER);
  using d = new NativeMlp(ctx, D);
  assert.deepEqual(enc.layout().params.slice(-4).map((e) => e.name), [
    "mu.weight",
    "logvar.weight",
    "mu.bias",
    "logvar.bias",
  ]);
  load(enc, "encoder");
  load(dec, "decoder");
  load(d, "discriminator");
  const lr = 2e-4;
  const cfg = { batch_size: B, seed: 0, lr, b1: 0.5, b2: 0.999, eps: 1e-8, model: "aae" } as const;
  using gan = new NativeGan(ctx, dec, d, cfg, enc);
  const r = gan.stepExplicit(f32("input.z", [B, L]), f32("input.real", [B, PIXELS]), B, f32("input.eps", [B, L]));
  const close = (what: string, got: number, want: number) =>
    assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${what}: ours ${got}, PyTorch ${want}`);
  close("d_loss", r.dLoss, f32("out.d_loss", [])[0]);
  close("g_loss", r.gLoss, f32("out.g_loss", [])[0]);
  close("d_real", r.dReal, mean(f32("out.d_prior", [B, 1])));
  close("d_fake", r.dFake, mean(f32("out.d_encoded", [B, 1])));
  const worst = [
    compare(`aae [${b.name}] encoder`, enc, "encoder", lr),
    compare(`aae [${b.name}] decoder`, dec, "decoder", lr),
    compare(`aae [${b.name}] D`, d, "discriminator", lr),
  ];
  console.log(
    `  aae [${b.name}]: D loss ${r.dLoss.toFixed(6)}, G loss ${r.gLoss.toFixed(6)}; worst grad diff / network's ` +
      `largest: encoder ${worst[0].toExponential(1)}, decoder ${worst[1].toExponential(1)}, D ${
        worst[2].toExponential(1)
      }`,
  );
});
