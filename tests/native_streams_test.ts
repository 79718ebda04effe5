// The library's seeded streams against their TypeScript mirror (ABI v2): PyTorch's default init drawn natively
// (gan_mlp_init) is bit-identical to initialState on every backend; the normals of every noise domain
// (gan_rng_normal) agree with normal() to float rounding (Rust computes log/cos/sin in float32, JavaScript in float64).

import assert from "node:assert/strict";
import { Context, NativeGan, NativeMlp, nativeNormal, nativePermutation } from "../src/native/handles.ts";
import {
  DOMAIN_ALPHA,
  DOMAIN_DROPOUT,
  DOMAIN_EPS,
  DOMAIN_FIXED,
  DOMAIN_INIT,
  DOMAIN_LABELS,
  DOMAIN_NOISE,
  DOMAIN_SAMPLE,
  DOMAIN_SHUFFLE,
  dropoutKept,
  labelDraws,
  normal,
  uniformStream,
} from "./reference/rng.ts";
import { initBuffers, initParams } from "./reference/reference.ts";
import { type MlpSpec, seedDiscriminator, seedGenerator } from "../src/model/spec.ts";
import { check, lib, nativeContract, NativeError } from "../src/native/ffi.ts";

/** The TypeScript mirror's initial state: PyTorch's init drawn from the init stream, rounded to float32. */
function mirrorInit(spec: MlpSpec, seed: number, stream: number) {
  return {
    params: Float32Array.from(initParams(spec, uniformStream(seed, DOMAIN_INIT, stream))),
    buffers: Float32Array.from(initBuffers(spec)),
  };
}
import { assertTensorClose } from "./check.ts";
import { testOnBackends } from "./backends.ts";

/** The index of the first element whose bits differ, or -1. */
function firstBitDifference(a: Float32Array, b: Float32Array): number {
  assert.equal(a.length, b.length);
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length), y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return i;
  return -1;
}

testOnBackends(
  "gan_mlp_init is bit-identical to the TypeScript mirror (G stream 0, D stream 1, seeds up to 2^40)",
  (ctx) => {
    for (const [spec, stream] of [[seedGenerator(), 0], [seedDiscriminator(), 1]] as const) {
      for (const seed of [0, 1, 2 ** 40 + 3]) {
        using m = new NativeMlp(ctx, spec);
        m.init(seed, stream);
        const want = mirrorInit(spec, seed, stream);
        const p = m.get("params"), r = m.get("running");
        assert.equal(firstBitDifference(p, want.params), -1, `params, seed ${seed} stream ${stream}`);
        assert.equal(firstBitDifference(r, want.buffers), -1, `running statistics, seed ${seed} stream ${stream}`);
      }
    }
  },
);

Deno.test("gan_rng_normal: domains 1, 4 and 5 agree with normal() to float rounding; other domains are refused", () => {
  const draw = (seed: number, domain: number, stream: number, n: number) => {
    const out = new Float32Array(n);
    check(lib().gan_rng_normal(BigInt(seed), domain, stream, out, BigInt(n)), "gan_rng_normal");
    return out;
  };
  for (const domain of [DOMAIN_NOISE, DOMAIN_FIXED, DOMAIN_SAMPLE]) {
    for (const [seed, stream, n] of [[42, 9, 20001], [2 ** 40 + 5, 123456, 1001]]) {
      assertTensorClose(
        `domain ${domain} seed ${seed} stream ${stream}`,
        draw(seed, domain, stream, n),
        normal(seed, stream, n, domain),
        1e-5,
        1e-5,
      );
    }
  }
  assert.notDeepEqual(draw(1, DOMAIN_NOISE, 0, 8), draw(1, DOMAIN_FIXED, 0, 8));
  assert.notDeepEqual(draw(1, DOMAIN_FIXED, 0, 8), draw(1, DOMAIN_SAMPLE, 0, 8));
  for (const domain of [DOMAIN_SHUFFLE, 3, 99]) {
    assert.throws(() => draw(1, domain, 0, 4), (e: unknown) => {
      assert.ok(e instanceof NativeError && e.status === "InvalidArgument", String(e));
      assert.match(e.nativeMessage, new RegExp(`^rng domain ${domain} is not a noise domain`));
      return true;
    });
  }
});

Deno.test("the library's rng domains are the mirror's; nativeNormal names them", () => {
  assert.deepEqual(nativeContract().rng_domains, {
    noise: DOMAIN_NOISE,
    shuffle: DOMAIN_SHUFFLE,
    init: DOMAIN_INIT,
    fixed: DOMAIN_FIXED,
    sample: DOMAIN_SAMPLE,
    alpha: DOMAIN_ALPHA,
    dropout: DOMAIN_DROPOUT,
    labels: DOMAIN_LABELS,
    eps: DOMAIN_EPS,
  });
  for (const [name, domain] of [["noise", DOMAIN_NOISE], ["fixed", DOMAIN_FIXED], ["sample", DOMAIN_SAMPLE]] as const) {
    assertTensorClose(`nativeNormal ${name}`, nativeNormal(5, 2, 101, name), normal(5, 2, 101, domain), 1e-5, 1e-5);
  }
});

testOnBackends("dropout masks: a train-mode forward drops exactly the mirror's elements, scaled by 1 / 0.6f", (ctx) => {
  // One Linear(3 -> 50) with dropout 0.4 and weights that make every pre-activation positive: an output is 0 exactly
  // where the mask dropped it. A forward of the FFI draws the default stream (seed 0, stream 0, pass 0).
  const spec: MlpSpec = { input: 3, layers: [{ out: 50, bn: null, act: { kind: "none" }, dropout: 0.4 }] };
  using m = new NativeMlp(ctx, spec);
  const params = new Float32Array(m.layout().paramCount).fill(0.5);
  m.set("params", params);
  const rows = 40;
  const x = new Float32Array(rows * 3).fill(1);
  const train = m.forward(x, rows, true), evalOut = m.forward(x, rows, false);
  const scale = Math.fround(1 / Math.fround(0.6));
  for (let i = 0; i < rows * 50; i++) {
    const kept = dropoutKept(0, 0, 0, 0, i, 0.4);
    assert.equal(train[i], kept ? Math.fround(evalOut[i] * scale) : 0, `element ${i}`);
  }
});

Deno.test("cgan's labels of the fakes are the mirror's (domain labels, stream = step): the step over the library's data equals the explicit step fed the mirror's labels, bitwise", () => {
  using ctx = new Context({ backend: "cpu", threads: 1 });
  const lrelu = { kind: "leaky_relu" as const, slope: 0.2 };
  const g: MlpSpec = {
    input: 4,
    embedding: { classes: 5, dim: 3, at: "first", name: "label_emb" },
    layers: [{ out: 8, bn: { eps: 0.8, momentum: 0.1 }, act: lrelu }, { out: 16, bn: null, act: { kind: "tanh" } }],
  };
  const d: MlpSpec = {
    input: 16,
    embedding: { classes: 5, dim: 3, at: "last", name: "label_embedding" },
    layers: [{ out: 8, bn: null, act: lrelu, dropout: 0.4 }, { out: 1, bn: null, act: { kind: "none" } }],
  };
  const count = 24, B = 8, seed = 11;
  const pixels = new Uint8Array(count * 16).map((_, i) => (i * 2654435761) >>> 24);
  const labels = Uint32Array.from({ length: count }, (_, i) => (i * 7) % 5);
  const config = { batch_size: B, seed, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8, model: "cgan", loss: "mse" } as const;
  const make = () => {
    const [gm, dm] = [new NativeMlp(ctx, g), new NativeMlp(ctx, d)];
    gm.init(seed, 0);
    dm.init(seed, 1);
    const gan = new NativeGan(ctx, gm, dm, config);
    gan.setData(pixels, count);
    gan.setLabels(labels);
    return { gm, dm, gan, [Symbol.dispose]: () => [gan, dm, gm].forEach((h) => h.close()) };
  };
  using a = make();
  using b = make();
  const fromData = a.gan.step(3);
  const order = nativePermutation(seed, 0, count); // epoch 0
  for (let step = 0; step < 3; step++) {
    const idx = order.subarray(step * B, (step + 1) * B);
    const x = new Float32Array(B * 16);
    idx.forEach((k, r) => {
      for (let j = 0; j < 16; j++) x[r * 16 + j] = Math.fround(Math.fround(pixels[k * 16 + j] / 255) - 0.5) / 0.5;
    });
    const aux = Float32Array.from([...labelDraws(seed, step, B, 5), ...Array.from(idx, (k) => labels[k])]);
    const r = b.gan.stepExplicit(nativeNormal(seed, step, B * 4, "noise"), x, B, aux);
    for (const [k, v] of Object.entries(r)) {
      assert.ok(
        Object.is(v, fromData[step][k as keyof typeof r]),
        `step ${step} ${k}: ${v} vs ${fromData[step][k as keyof typeof r]}`,
      );
    }
  }
  assert.deepEqual(b.gm.get("params"), a.gm.get("params"));
  assert.deepEqual(b.dm.get("params"), a.dm.get("params"));
  // Another draw of the fakes' labels would give other records: the comparison above can fail.
  using c = make();
  const shifted = Float32Array.from([
    ...labelDraws(seed, 0, B, 5).map((k) => (k + 1) % 5),
    ...Array.from(order.subarray(0, B), (k) => labels[k]),
  ]);
  const x0 = Float32Array.from(
    { length: B * 16 },
    (_, i) => Math.fround(Math.fround(pixels[order[Math.floor(i / 16)] * 16 + (i % 16)] / 255) - 0.5) / 0.5,
  );
  const other = c.gan.stepExplicit(nativeNormal(seed, 0, B * 4, "noise"), x0, B, shifted);
  assert.notEqual(other.gLoss, fromData[0].gLoss);
});

Deno.test("aae's reparameterization noise is the mirror's (domain eps, stream = step, element b * latent + c): the step over the library's data equals the explicit step fed the prior noise and the mirror's eps", () => {
  using ctx = new Context({ backend: "cpu", threads: 1 });
  const lrelu = { kind: "leaky_relu" as const, slope: 0.2 };
  const bn = { eps: 1e-5, momentum: 0.1 };
  const latent = 3, features = 16;
  const g: MlpSpec = {
    input: latent,
    layers: [{ out: 8, bn, act: lrelu }, { out: features, bn: null, act: { kind: "tanh" } }],
  };
  const d: MlpSpec = {
    input: latent,
    layers: [{ out: 8, bn: null, act: lrelu }, { out: 1, bn: null, act: { kind: "sigmoid" } }],
  };
  const e: MlpSpec = {
    input: features,
    layers: [
      { out: 8, bn, act: lrelu },
      {
        out: 2 * latent,
        bn: null,
        act: { kind: "none" },
        heads: [{ name: "mu", out: latent }, { name: "logvar", out: latent }],
      },
    ],
  };
  const count = 24, B = 8, seed = 13;
  const pixels = new Uint8Array(count * features).map((_, i) => (i * 2654435761) >>> 24);
  const config = { batch_size: B, seed, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8, model: "aae" } as const;
  const make = () => {
    const [gm, dm, em] = [new NativeMlp(ctx, g), new NativeMlp(ctx, d), new NativeMlp(ctx, e)];
    gm.init(seed, 0);
    dm.init(seed, 1);
    em.init(seed, 2);
    const gan = new NativeGan(ctx, gm, dm, config, em);
    gan.setData(pixels, count);
    return { gm, dm, em, gan, [Symbol.dispose]: () => [gan, em, dm, gm].forEach((h) => h.close()) };
  };
  const batch = (order: Uint32Array, step: number) =>
    Float32Array.from({ length: B * features }, (_, i) => {
      const k = order[step * B + Math.floor(i / features)];
      return Math.fround(Math.fround(pixels[k * features + (i % features)] / 255) - 0.5) / 0.5;
    });
  // The mirror's normals agree with the library's to float rounding (about 1.4% differ by one rounding): the records
  // agree to about 1e-6, a shifted or misplaced eps moves them by far more.
  const close = (a: number, b: number) => Math.abs(a - b) <= 2e-5 * Math.max(1, Math.abs(b));
  using a = make();
  using b = make();
  const fromData = a.gan.step(3);
  const order = nativePermutation(seed, 0, count); // epoch 0
  for (let step = 0; step < 3; step++) {
    const eps = normal(seed, step, B * latent, DOMAIN_EPS);
    const r = b.gan.stepExplicit(nativeNormal(seed, step, B * latent, "noise"), batch(order, step), B, eps);
    for (const [k, v] of Object.entries(r)) {
      const want = fromData[step][k as keyof typeof r];
      assert.ok(close(v, want), `step ${step} ${k}: ${v} vs ${want}`);
    }
  }
  assertTensorClose("decoder", b.gm.get("params"), a.gm.get("params"), 1e-5, 1e-4);
  assertTensorClose("encoder", b.em.get("params"), a.em.get("params"), 1e-5, 1e-4);
  assertTensorClose("D", b.dm.get("params"), a.dm.get("params"), 1e-5, 1e-4);
  // The comparison can fail: eps of the next step, or the noise domain's draws in place of eps, give other records.
  for (const eps of [normal(seed, 1, B * latent, DOMAIN_EPS), normal(seed, 0, B * latent, DOMAIN_NOISE)]) {
    using c = make();
    const other = c.gan.stepExplicit(nativeNormal(seed, 0, B * latent, "noise"), batch(order, 0), B, eps);
    assert.ok(!close(other.gLoss, fromData[0].gLoss), `${other.gLoss} vs ${fromData[0].gLoss}`);
  }
});
