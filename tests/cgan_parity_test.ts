// Parity with PyTorch for cgan (upstream implementations/cgan/cgan.py): one step of upstream's loop body from the
// committed fixture tests/fixtures/family/cgan.safetensors (bench/reference/make_family_fixtures.py: upstream's
// networks at hidden widths / 16, batch 8, img_size 32), on the cpu and gpu backends. No PyTorch is needed to run it.
//
// The fixture's dropout masks are our counter-based stream's (bench/reference/rng_mirror.py draws them as
// native/src/rng.rs does; this test checks them against the TypeScript mirror first), so the library draws the same
// masks itself: D(gen) of the G step is dropout pass 1, the D step's pass over [fake; real] is pass 2 (FAMILY.md).
// The labels of the fakes and of the real rows go in as the explicit step's `aux`.
//
// What is compared: the step record (D's loss and mean outputs of the D step, G's loss of the G step) to 1e-5
// relative; the gradient each network was updated with, the label embeddings' tables included, and the parameters and
// running statistics after the step, with the tolerances of tests/one_step_fixture.ts.

import assert from "node:assert/strict";
import { NativeGan, NativeMlp } from "../src/native/handles.ts";
import { expectTensor } from "../src/io/safetensors.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { testOnBackends } from "./backends.ts";
import { closeTo, mean, OneStepFixture } from "./one_step_fixture.ts";
import { dropoutKept } from "./reference/rng.ts";

const B = 8, W = 32, LATENT = 100, PIXELS = 1024, CLASSES = 10;
const fx = new OneStepFixture("cgan");
const f32 = (name: string, shape: number[]) => fx.f32(name, shape);
const i64 = (name: string) => fx.i64(name, B);

const lrelu = { kind: "leaky_relu", slope: 0.2 } as const;
const bn = { eps: 0.8, momentum: 0.1 };
/** Upstream's cgan networks at hidden widths / 16. */
const G: MlpSpec = {
  input: LATENT,
  embedding: { classes: CLASSES, dim: CLASSES, at: "first", name: "label_emb" },
  layers: [
    { out: 8, bn: null, act: lrelu },
    { out: 16, bn, act: lrelu },
    { out: 32, bn, act: lrelu },
    { out: 64, bn, act: lrelu },
    { out: PIXELS, bn: null, act: { kind: "tanh" } },
  ],
};
const D: MlpSpec = {
  input: PIXELS,
  embedding: { classes: CLASSES, dim: CLASSES, at: "last", name: "label_embedding" },
  layers: [
    { out: W, bn: null, act: lrelu },
    { out: W, bn: null, act: lrelu, dropout: 0.4 },
    { out: W, bn: null, act: lrelu, dropout: 0.4 },
    { out: 1, bn: null, act: { kind: "none" } },
  ],
};

Deno.test("the cgan fixture's dropout masks are our stream's (pass 1: the G step's D; pass 2: [fake; real])", () => {
  // mask k: [pass, layer, first row] (FAMILY.md, "cgan's dropout masks")
  const where = [[1, 1, 0], [1, 2, 0], [2, 1, B], [2, 2, B], [2, 1, 0], [2, 2, 0]];
  where.forEach(([pass, layer, row0], k) => {
    const m = expectTensor(fx.t, `input.dropout.${k}`, "U8", [B, W], fx.path);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < W; j++) {
        const kept = dropoutKept(0, 0, pass, layer, (row0 + b) * W + j, 0.4);
        assert.equal(m[b * W + j], kept ? 1 : 0, `mask ${k} [${b}, ${j}]`);
      }
    }
  });
});

testOnBackends("PyTorch parity of cgan: one step with label embeddings and dropout", (ctx, b) => {
  using g = new NativeMlp(ctx, G);
  using d = new NativeMlp(ctx, D);
  assert.equal(g.layout().params[0].name, "label_emb.weight");
  assert.equal(d.layout().params[0].name, "label_embedding.weight");
  fx.load(g, "generator");
  fx.load(d, "discriminator");
  const lr = 2e-4;
  using gan = new NativeGan(ctx, g, d, { batch_size: B, seed: 0, lr, b1: 0.5, b2: 0.999, eps: 1e-8, model: "cgan" });
  const aux = Float32Array.from([...i64("input.gen_labels"), ...i64("input.labels")]);
  const r = gan.stepExplicit(f32("input.z", [B, LATENT]), f32("input.real", [B, PIXELS]), B, aux);
  closeTo("d_loss", r.dLoss, f32("out.d_loss", [])[0]);
  closeTo("g_loss", r.gLoss, f32("out.g_loss", [])[0]);
  closeTo("d_real", r.dReal, mean(f32("out.validity_real", [B, 1])));
  closeTo("d_fake", r.dFake, mean(f32("out.validity_fake", [B, 1])));
  const wd = fx.compare(`cgan [${b.name}] D`, d, "discriminator", lr);
  const wg = fx.compare(`cgan [${b.name}] G`, g, "generator", lr);
  console.log(
    `  cgan [${b.name}]: D loss ${r.dLoss.toFixed(6)}, G loss ${r.gLoss.toFixed(6)}; worst grad diff / network's ` +
      `largest: D ${wd.toExponential(1)}, G ${wg.toExponential(1)}`,
  );
});
