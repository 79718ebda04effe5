// Parity with PyTorch for aae (upstream implementations/aae/aae.py): one step of upstream's loop body from the committed
// fixture tests/fixtures/family/aae.safetensors (bench/reference/make_family_fixtures.py: upstream's encoder, decoder
// and latent discriminator at hidden widths / 16, batch 8, img_size 32, latent 10), on the cpu and gpu backends. No
// PyTorch is needed to run it. The fixture's reparameterization noise `eps` goes in as the explicit step's `aux`, its
// prior sample as `z`.
//
// What is compared: the step record (D's loss, the mean D of the prior and of the encoded codes, the generator loss
// `0.001 BCE + 0.999 L1`) to 1e-5 relative; the gradient each of the three networks was updated with, and the
// parameters and running statistics after the step, with the tolerances of tests/one_step_fixture.ts.

import assert from "node:assert/strict";
import { NativeGan, NativeMlp } from "../src/native/handles.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { testOnBackends } from "./backends.ts";
import { closeTo, mean, OneStepFixture } from "./one_step_fixture.ts";

const B = 8, L = 10, PIXELS = 1024;
const fx = new OneStepFixture("aae");
const f32 = (name: string, shape: number[]) => fx.f32(name, shape);

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
  fx.load(enc, "encoder");
  fx.load(dec, "decoder");
  fx.load(d, "discriminator");
  const lr = 2e-4;
  const cfg = { batch_size: B, seed: 0, lr, b1: 0.5, b2: 0.999, eps: 1e-8, model: "aae" } as const;
  using gan = new NativeGan(ctx, dec, d, cfg, enc);
  const r = gan.stepExplicit(f32("input.z", [B, L]), f32("input.real", [B, PIXELS]), B, f32("input.eps", [B, L]));
  closeTo("d_loss", r.dLoss, f32("out.d_loss", [])[0]);
  closeTo("g_loss", r.gLoss, f32("out.g_loss", [])[0]);
  closeTo("d_real", r.dReal, mean(f32("out.d_prior", [B, 1])));
  closeTo("d_fake", r.dFake, mean(f32("out.d_encoded", [B, 1])));
  const worst = [
    fx.compare(`aae [${b.name}] encoder`, enc, "encoder", lr),
    fx.compare(`aae [${b.name}] decoder`, dec, "decoder", lr),
    fx.compare(`aae [${b.name}] D`, d, "discriminator", lr),
  ];
  console.log(
    `  aae [${b.name}]: D loss ${r.dLoss.toFixed(6)}, G loss ${r.gLoss.toFixed(6)}; worst grad diff / network's ` +
      `largest: encoder ${worst[0].toExponential(1)}, decoder ${worst[1].toExponential(1)}, D ${
        worst[2].toExponential(1)
      }`,
  );
});
