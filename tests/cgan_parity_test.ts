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
// relative; the gradient each network was updated with, the label embeddings' tables included, to 1e-4 of the
// tensor's largest value plus 1e-3 relative plus 1e-6 of the network's largest; the parameters after the step to
// 2e-7 + 1e-6 |e| where PyTorch's gradient is above 1e-4 of the network's largest, else within 2 lr (Adam's first
// move); the running statistics to 1e-6 + 1e-5 |e|.

import assert from "node:assert/strict";
import { NativeGan, NativeMlp } from "../src/native/handles.ts";
import { expectTensor, readSafetensors, type TensorMap } from "../src/io/safetensors.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { testOnBackends } from "./backends.ts";
import { dropoutKept } from "./reference/rng.ts";

const B = 8, W = 32, LATENT = 100, PIXELS = 1024, CLASSES = 10;
const path = "tests/fixtures/family/cgan.safetensors";
const t: TensorMap = readSafetensors(
  Deno.readFileSync(new URL("./fixtures/family/cgan.safetensors", import.meta.url)),
  path,
);
const f32 = (name: string, shape: number[]) => expectTensor(t, name, "F32", shape, path) as Float32Array<ArrayBuffer>;
const i64 = (name: string) => Array.from(expectTensor(t, name, "I64", [B], path), Number);

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
    const m = expectTensor(t, `input.dropout.${k}`, "U8", [B, W], path);
    for (let b = 0; b < B; b++) {
      for (let j = 0; j < W; j++) {
        const kept = dropoutKept(0, 0, pass, layer, (row0 + b) * W + j, 0.4);
        assert.equal(m[b * W + j], kept ? 1 : 0, `mask ${k} [${b}, ${j}]`);
      }
    }
  });
});

/** The fixture's state of `net` (`generator` / `discriminator`; `group` "" before the step, "after." after) laid out
 * as `mlp`'s flat buffers. */
function load(mlp: NativeMlp, net: string): void {
  const layout = mlp.layout();
  for (
    const [which, table, n] of [["params", layout.params, layout.paramCount], [
      "running",
      layout.buffers,
      layout.bufferCount,
    ]] as const
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
  layout.params.forEach((e, k) => {
    const scale = maxAbs(want[k]), after = f32(`after.${net}.${e.name}`, e.shape);
    for (let i = 0; i < e.size; i++) {
      const dg = Math.abs(grads[e.offset + i] - want[k][i]);
      worst = Math.max(worst, dg / netMax);
      const tolG = 1e-4 * scale + 1e-3 * Math.abs(want[k][i]) + 1e-6 * netMax;
      assert.ok(dg <= tolG, `${label} grad ${e.name}[${i}]: ${grads[e.offset + i]} vs PyTorch ${want[k][i]}`);
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

testOnBackends("PyTorch parity of cgan: one step with label embeddings and dropout", (ctx, b) => {
  using g = new NativeMlp(ctx, G);
  using d = new NativeMlp(ctx, D);
  assert.equal(g.layout().params[0].name, "label_emb.weight");
  assert.equal(d.layout().params[0].name, "label_embedding.weight");
  load(g, "generator");
  load(d, "discriminator");
  const lr = 2e-4;
  using gan = new NativeGan(ctx, g, d, { batch_size: B, seed: 0, lr, b1: 0.5, b2: 0.999, eps: 1e-8, model: "cgan" });
  const aux = Float32Array.from([...i64("input.gen_labels"), ...i64("input.labels")]);
  const r = gan.stepExplicit(f32("input.z", [B, LATENT]), f32("input.real", [B, PIXELS]), B, aux);
  const close = (what: string, got: number, want: number) =>
    assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${what}: ours ${got}, PyTorch ${want}`);
  close("d_loss", r.dLoss, f32("out.d_loss", [])[0]);
  close("g_loss", r.gLoss, f32("out.g_loss", [])[0]);
  close("d_real", r.dReal, mean(f32("out.validity_real", [B, 1])));
  close("d_fake", r.dFake, mean(f32("out.validity_fake", [B, 1])));
  const wd = compare(`cgan [${b.name}] D`, d, "discriminator", lr);
  const wg = compare(`cgan [${b.name}] G`, g, "generator", lr);
  console.log(
    `  cgan [${b.name}]: D loss ${r.dLoss.toFixed(6)}, G loss ${r.gLoss.toFixed(6)}; worst grad diff / network's ` +
      `largest: D ${wd.toExponential(1)}, G ${wg.toExponential(1)}`,
  );
});
