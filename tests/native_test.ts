// Native (float32) kernels against the float64 reference: every block type and activation, with and without BN,
// in train and eval mode, at the batch sizes of the core issue; whole MLPs; losses; Adam; a whole GAN step.
//
// Tolerances. The native side computes in float32 (unit roundoff u = 6e-8). A dot product of length k has a worst-case
// relative error of about k u, and a typical one of sqrt(k) u; our fan-ins reach 1024, so outputs and gradients are held
// to |a - e| <= atol + rtol |e| with rtol = 2e-4 and an atol scaled to the tensor's magnitude (1e-5 of its max-norm).
// BatchNorm in train mode divides by sqrt(var + eps); with the seed's eps = 0.8 this is well conditioned, with
// eps = 1e-5 at batch 2 the normalized values are exactly +-1 and gradients cancel to rounding noise, hence the atol.

import assert from "node:assert/strict";
import { Context, NativeGan, NativeMlp, nativeNormal, nativePermutation } from "../src/native/handles.ts";
import {
  adamStep,
  bceBackward,
  bceForward,
  ganStepReference,
  initBuffers,
  initParams,
  mlpBackward,
  mlpForward,
  sigmoidBceBackward,
  sigmoidBceForward,
} from "./reference/reference.ts";
import type { Activation, BatchNormSpec, GanLoss, MlpSpec } from "../src/model/spec.ts";
import { GAN_LOSSES, seedDiscriminator, seedGenerator } from "../src/model/spec.ts";
import { nativeContract } from "../src/native/ffi.ts";
import { nativeAdam, nativeBce, nativeSigmoidBce, nativeSoftmaxCrossEntropy } from "../src/native/handles.ts";
import { softmaxCeBackward, softmaxCeForward } from "./reference/reference.ts";
import { assertTensorClose, mulberry32 } from "./check.ts";
import { BACKENDS, testOnBackends } from "./backends.ts";

const cpuCtx = BACKENDS[0].ctx!;

const f32 = (a: ArrayLike<number>) => Float32Array.from(a);
const f64 = (a: ArrayLike<number>) => Float64Array.from(a);
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};
/** Compares a float32 tensor to its float64 reference with the tolerances explained at the top of this file. */
function close(label: string, actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 2e-4) {
  return assertTensorClose(label, actual, expected, 1e-5 * Math.max(maxAbs(expected), 1e-3), rtol);
}

function randomState(spec: MlpSpec, rand: () => number) {
  // Round the float64 parameters to float32 so both sides start from the same values.
  const params = f64(f32(initParams(spec, rand)));
  // Perturb BN gamma/beta off their defaults so their gradients matter.
  const buffers = initBuffers(spec);
  let p = 0, q = 0, inp = spec.input;
  for (const l of spec.layers) {
    p += l.out * inp + l.out;
    if (l.bn) {
      for (let j = 0; j < l.out; j++) {
        params[p + j] = Math.fround(0.5 + rand());
        params[p + l.out + j] = Math.fround(rand() - 0.5);
        buffers[q + j] = Math.fround(rand() - 0.5);
        buffers[q + l.out + j] = Math.fround(0.5 + rand());
      }
      p += 2 * l.out;
      q += 2 * l.out;
    }
    inp = l.out;
  }
  return { params, buffers };
}

/** Runs forward + backward natively and in the reference, from the same state, and compares everything. */
function compareMlp(ctx: Context, label: string, spec: MlpSpec, B: number, train: boolean, seed: number) {
  const rand = mulberry32(seed);
  const { params, buffers } = randomState(spec, rand);
  const x = f64(f32(Array.from({ length: B * spec.input }, () => 2 * rand() - 1)));
  const out = spec.layers[spec.layers.length - 1].out;
  const dy = f64(f32(Array.from({ length: B * out }, () => 2 * rand() - 1)));

  using mlp = new NativeMlp(ctx, spec);
  mlp.set("params", f32(params));
  mlp.set("running", f32(buffers));
  const y = mlp.forward(f32(x), B, train);
  const dx = mlp.backward(f32(dy));

  const ref = mlpForward(spec, params, buffers, x, B, train);
  const refB = mlpBackward(spec, params, ref.cache, dy);
  // In train-mode BN the input gradient is a difference of terms of size |dy| * rstd * |gamma| * |W| that cancel
  // (exactly, at batch 2); float32 rounding of those terms, not of the result, sets the absolute error.
  const cancel = ref.cache.blocks.reduce(
    (s, b) => Math.max(s, b.rstd && train ? maxAbs(dy) * maxAbs(b.rstd) * 2 * maxAbs(params) : 0),
    0,
  );
  const closeGrad = (what: string, a: ArrayLike<number>, e: ArrayLike<number>) =>
    assertTensorClose(what, a, e, 1e-5 * Math.max(maxAbs(e), cancel, 1e-3), 2e-4);
  const r = [
    close(`${label} forward`, y, ref.out),
    closeGrad(`${label} dx`, dx, refB.dx),
    closeGrad(`${label} param grads`, mlp.get("grads"), refB.grads),
    close(`${label} running stats`, mlp.get("running"), ref.buffers),
  ];
  return Math.max(...r.map((c) => c.maxAbs));
}

const ACTS: Activation[] = [
  { kind: "none" },
  { kind: "leaky_relu", slope: 0.2 },
  { kind: "tanh" },
  { kind: "sigmoid" },
];
const BNS: (BatchNormSpec | null)[] = [null, { eps: 0.8, momentum: 0.1 }, { eps: 1e-5, momentum: 0.1 }];
const BATCHES = [2, 3, 32, 64, 65, 200];

for (const act of ACTS) {
  testOnBackends(
    `block ${act.kind}: native fused block matches the f64 reference (BN off/on, train/eval, 6 batch sizes)`,
    (ctx) => {
      let seed = 1, worst = 0;
      for (const bn of BNS) {
        for (const train of [true, false]) {
          for (const B of BATCHES) {
            const spec: MlpSpec = { input: 37, layers: [{ out: 29, bn, act }] };
            const label = `block ${act.kind} bn=${bn ? bn.eps : "off"} ${train ? "train" : "eval"} B=${B}`;
            worst = Math.max(worst, compareMlp(ctx, label, spec, B, train, seed++));
          }
        }
      }
      console.log(`  ${act.kind}: 36 configurations, max abs error ${worst.toExponential(2)}`);
    },
  );
}

testOnBackends("whole MLPs: a 4-layer mixed MLP at every batch size, and the seed's G and D at batch 64", (ctx) => {
  const mixed: MlpSpec = {
    input: 11,
    layers: [
      { out: 17, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 23, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 13, bn: { eps: 1e-5, momentum: 0.3 }, act: { kind: "tanh" } },
      { out: 5, bn: null, act: { kind: "sigmoid" } },
    ],
  };
  for (const B of BATCHES) {
    for (const train of [true, false]) compareMlp(ctx, `mixed B=${B} ${train ? "train" : "eval"}`, mixed, B, train, B);
  }
  compareMlp(ctx, "seed G", seedGenerator(), 64, true, 7);
  compareMlp(ctx, "seed D", seedDiscriminator(), 64, true, 8);
});

Deno.test("BCE and fused sigmoid+BCE match PyTorch's semantics, including the clamps", () => {
  const p = f32([0.5, 0.1, 0.9, 0, 1, 1e-30, 0.999999]);
  const y = f32([1, 0, 1, 1, 0, 1, 0.3]);
  const n = nativeBce(p, y);
  assert.ok(Math.abs(n.loss - bceForward(p, y)) <= 1e-6 * bceForward(p, y), `BCE ${n.loss} vs ${bceForward(p, y)}`);
  close("BCE grad", n.grad!, bceBackward(p, y));
  const z = f32([0, 3, -3, 40, -40, 120, -120]);
  const s = nativeSigmoidBce(z, y);
  const want = sigmoidBceForward(z, y);
  assert.ok(Math.abs(s.loss - want) <= 1e-5 * want, `sigmoid BCE ${s.loss} vs ${want}`);
  close("sigmoid+BCE grad", s.grad!, sigmoidBceBackward(z, y));
});

// Softmax cross-entropy runs on the context's backend. Its gradient is `scale * (p - onehot)` with `scale = 1 / rows`
// and `p` in [0, 1]; float32 rounds `p` to a few ulp of 1 (the CPU from float64, the GPU computes `exp(z - m) / s` in
// float32), so the gradient is held to an absolute 16 ulp(1) * scale = 2e-6 / rows (plus the usual rtol). The loss is a
// mean of per-row losses (float64 on the CPU, float32 rows summed in float64 on the GPU), held to 2e-6 relative.
const SOFTMAX_SHAPES: [number, number][] = [
  ...[1, 2, 63, 64, 65, 257].flatMap((rows) => [1, 10, 1000].map((classes): [number, number] => [rows, classes])),
  [200, 3],
  [3, 4096],
];

testOnBackends(
  "softmax cross-entropy matches the float64 reference: rows 1 to 257, classes 1 to 4096, logits up to +-80",
  (ctx) => {
    const rand = mulberry32(5);
    let worst = 0;
    for (const range of [6, 80]) {
      for (const [rows, classes] of SOFTMAX_SHAPES) {
        const label = `softmax ce ${rows}x${classes} (logits in +-${range})`;
        const z = f32(Array.from({ length: rows * classes }, () => 2 * range * (rand() - 0.5)));
        const y = Uint32Array.from({ length: rows }, () => Math.floor(rand() * classes));
        const got = nativeSoftmaxCrossEntropy(ctx, z, y, classes);
        const want = softmaxCeForward(z, y, classes);
        assert.ok(Math.abs(got.loss - want) <= 2e-6 * Math.max(1, want), `${label}: loss ${got.loss} vs ${want}`);
        const r = assertTensorClose(`${label} grad`, got.grad!, softmaxCeBackward(z, y, classes), 2e-6 / rows, 2e-4);
        worst = Math.max(worst, r.maxAbs * rows);
        const lossOnly = nativeSoftmaxCrossEntropy(ctx, z, y, classes, false);
        assert.equal(lossOnly.grad, null);
        assert.equal(lossOnly.loss, got.loss, `${label}: the same loss without the gradient`);
      }
    }
    // No overflow: each row is shifted by its maximum.
    const big = f32([1000, 0, -1000, -1000, 0, 1000]);
    const r = nativeSoftmaxCrossEntropy(ctx, big, Uint32Array.of(0, 0), 3);
    assert.ok(Math.abs(r.loss - 1000) < 1e-3, `${r.loss}`);
    assert.ok(r.grad!.every(Number.isFinite));
    console.log(`  ${2 * SOFTMAX_SHAPES.length} shapes, max abs error of rows * grad ${worst.toExponential(2)}`);
  },
);

// Central differences of the native (float32) loss itself. With a step h = 2^-5 (the step taken is the float32
// difference actually made), the truncation error is h^2 |L'''| / 6 <= 1e-3 * 0.1 / rows / 6 < 1e-5 and the rounding
// error is about |dL| / h, with the float32 loss (~2) good to ~3e-7: ~1e-5. A check passes at 1e-4 + 1e-3 |numeric|,
// while a wrong factor, sign or term errs by the order of the gradient itself (0.01 to 0.5 here).
testOnBackends("softmax cross-entropy: the native gradient matches central differences of the native loss", (ctx) => {
  const rand = mulberry32(29);
  const h = 2 ** -5;
  let worst = 0;
  for (const [rows, classes] of [[2, 5], [3, 10], [4, 1], [1, 40]]) {
    const z = f32(Array.from({ length: rows * classes }, () => 4 * (rand() - 0.5)));
    const y = Uint32Array.from({ length: rows }, () => Math.floor(rand() * classes));
    const loss = () => nativeSoftmaxCrossEntropy(ctx, z, y, classes, false).loss;
    const numeric = new Float64Array(z.length);
    for (let i = 0; i < z.length; i++) {
      const saved = z[i];
      z[i] = saved + h;
      const [up, lp] = [z[i], loss()];
      z[i] = saved - h;
      const [down, lm] = [z[i], loss()];
      z[i] = saved;
      numeric[i] = (lp - lm) / (up - down);
    }
    const { grad } = nativeSoftmaxCrossEntropy(ctx, z, y, classes);
    const r = assertTensorClose(
      `softmax ce ${rows}x${classes} grad vs central differences`,
      grad!,
      numeric,
      1e-4,
      1e-3,
    );
    worst = Math.max(worst, r.maxAbs);
  }
  console.log(`  4 shapes, max abs error ${worst.toExponential(2)} (tolerance 1e-4 + 1e-3 |numeric|)`);
});

testOnBackends("softmax cross-entropy: bad arguments are refused before any work, naming the row and value", (ctx) => {
  assert.throws(
    () => nativeSoftmaxCrossEntropy(ctx, f32([0, 0, 0, 0, 0, 0]), Uint32Array.of(1, 2, 9), 2),
    /labels\[1\] \(row 1\) is 2, expected a class below 2/,
  );
  assert.throws(
    () => nativeSoftmaxCrossEntropy(ctx, f32([0, 0, 0]), Uint32Array.of(1), 2),
    /logits have 3 values, expected 1 rows x 2 classes/,
  );
  assert.throws(
    () => nativeSoftmaxCrossEntropy(ctx, f32([0, 0, 0, NaN]), Uint32Array.of(1, 0), 2),
    /logits\[3\] \(row 1, class 1\) is NaN, expected a finite number/,
  );
  assert.throws(
    () => nativeSoftmaxCrossEntropy(ctx, f32([]), Uint32Array.of(), 2),
    /over 0 rows of 2 classes: both must be at least 1/,
  );
  assert.throws(
    () => nativeSoftmaxCrossEntropy(ctx, f32([0]), Uint32Array.of(0), 0),
    /over 1 rows of 0 classes: both must be at least 1/,
  );
  assert.throws(() => nativeSoftmaxCrossEntropy(ctx, f32([0, 0]), Int32Array.of(1) as never, 2), TypeError);
});

Deno.test("softmax cross-entropy: a closed context is refused", () => {
  const ctx = new Context({ backend: "cpu", threads: 1 });
  ctx.close();
  assert.throws(() => nativeSoftmaxCrossEntropy(ctx, f32([0, 0]), Uint32Array.of(1), 2), /null context handle \(0\)/);
});

Deno.test("Adam matches PyTorch's update over three steps", () => {
  const rand = mulberry32(3);
  const n = 1000;
  const p = f64(f32(Array.from({ length: n }, () => rand() - 0.5)));
  const [m, v] = [new Float64Array(n), new Float64Array(n)];
  const [pn, mn, vn] = [f32(p), new Float32Array(n), new Float32Array(n)];
  const o = { lr: 1e-3, b1: 0.5, b2: 0.999, eps: 1e-8 };
  for (let t = 1; t <= 3; t++) {
    // Gradients well away from 0, where Adam's update (about lr * sign(g)) is well conditioned.
    const g = f64(f32(Array.from({ length: n }, () => (rand() < 0.5 ? -1 : 1) * (0.01 + rand()))));
    adamStep(p, g, m, v, t, o.lr, o.b1, o.b2, o.eps);
    nativeAdam(pn, f32(g), mn, vn, t, o);
  }
  assertTensorClose("adam params", pn, p, 1e-7, 1e-6);
  close("adam m", mn, m);
  close("adam v", vn, v);
});

/** A small GAN: its whole step native vs. the naive five-pass reference, from the same parameters, batch and noise. */
function compareGanStep(
  ctx: Context,
  gSpec: MlpSpec,
  dSpec: MlpSpec,
  count: number,
  B: number,
  seed: number,
  loss: GanLoss = "bce",
) {
  const rand = mulberry32(seed);
  const g0 = randomState(gSpec, rand), d0 = randomState(dSpec, rand);
  const features = dSpec.input;
  const pixels = new Uint8Array(count * features).map(() => Math.floor(rand() * 256));
  using g = new NativeMlp(ctx, gSpec);
  using d = new NativeMlp(ctx, dSpec);
  g.set("params", f32(g0.params));
  g.set("running", f32(g0.buffers));
  d.set("params", f32(d0.params));
  const o = { lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 };
  using gan = new NativeGan(ctx, g, d, { batch_size: B, seed, ...o, loss });
  gan.setData(pixels, count);
  const [step] = gan.step(1);

  // The same batch and noise, drawn from the library's streams.
  const order = nativePermutation(seed, 0, count);
  const xReal = new Float64Array(B * features);
  for (let r = 0; r < B; r++) {
    for (let c = 0; c < features; c++) xReal[r * features + c] = (pixels[order[r] * features + c] / 255 - 0.5) / 0.5;
  }
  const z = f64(nativeNormal(seed, 0, B * gSpec.input));
  const adam = (n: number) => ({ m: new Float64Array(n), v: new Float64Array(n), t: 0 });
  const ref = ganStepReference({
    gSpec,
    gParams: g0.params,
    gBuffers: g0.buffers,
    gAdam: adam(g0.params.length),
    dSpec,
    dParams: d0.params,
    dAdam: adam(d0.params.length),
    xReal: f64(f32(xReal)),
    z,
    ...o,
    loss,
  });
  for (const k of ["dLoss", "gLoss", "dReal", "dFake"] as const) {
    const ok = Math.abs(step[k] - ref[k]) <= 1e-5 * Math.max(1, Math.abs(ref[k]));
    assert.ok(ok, `${loss} ${k}: ${step[k]} vs ${ref[k]}`);
  }
  close("G grads", g.get("grads"), ref.gGrads);
  close("D grads", d.get("grads"), ref.dGrads);
  close("G running stats", g.get("running"), ref.gBuffers);
  // Adam's first step moves each parameter by lr * g / (|g| + eps): about lr * sign(g). Where |g| is far above
  // float32 noise the new parameters must agree closely; where g is within noise of 0 the sign may differ, and the
  // parameter may then differ by up to 2 lr.
  for (
    const [name, net, want, grads] of [["G", g, ref.gParams, ref.gGrads], ["D", d, ref.dParams, ref.dGrads]] as const
  ) {
    const got = net.get("params");
    const noise = 1e-4 * maxAbs(grads);
    for (let i = 0; i < got.length; i++) {
      const tol = Math.abs(grads[i]) > noise ? 2e-7 + 1e-6 * Math.abs(want[i]) : 2 * o.lr + 1e-6;
      if (!(Math.abs(got[i] - want[i]) <= tol)) {
        throw new Error(`${name} params[${i}]: ${got[i]} vs ${want[i]} (grad ${grads[i]}, tolerance ${tol})`);
      }
    }
  }
  return step;
}

/** The small G of the step tests: one BatchNorm block between two plain ones, 8 -> 12. */
const SMALL_G: MlpSpec = {
  input: 8,
  layers: [
    { out: 16, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
    { out: 32, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.2 } },
    { out: 12, bn: null, act: { kind: "tanh" } },
  ],
};

/** The small D of the step tests, 12 -> 10 -> 1, ending in `last` (sigmoid for bce, none for the other losses). */
function smallD(last: "sigmoid" | "none"): MlpSpec {
  return {
    input: 12,
    layers: [
      { out: 10, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 1, bn: null, act: { kind: last } },
    ],
  };
}

testOnBackends(
  "GAN step: native fused step equals the seed's five-pass reference (small model, several batches)",
  (ctx) => {
    for (const B of [2, 3, 32, 64]) compareGanStep(ctx, SMALL_G, smallD("sigmoid"), 3 * B + 2, B, 100 + B);
  },
);

testOnBackends(
  "GAN step, every loss: the fused step equals the reference (the losses' definitions, gradients by differences)",
  (ctx) => {
    const [gSpec, linearD] = [SMALL_G, smallD("none")];
    for (const loss of GAN_LOSSES.filter((l) => l !== "bce")) {
      for (const B of [3, 32]) compareGanStep(ctx, gSpec, linearD, 3 * B + 2, B, 200 + B, loss);
    }
    // The library refuses a D whose last activation does not suit the loss.
    using g = new NativeMlp(ctx, gSpec);
    using d = new NativeMlp(ctx, linearD);
    assert.throws(
      () => new NativeGan(ctx, g, d, { batch_size: 4, seed: 0, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 }),
      /discriminator must end in a sigmoid for the bce loss/,
    );
    const bad = { batch_size: 4, seed: 0, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8, loss: "wasserstein" as GanLoss };
    assert.throws(() => new NativeGan(ctx, g, d, bad), /loss must be one of bce, mse, hinge/);
  },
);

Deno.test("GAN losses: the library's list is GAN_LOSSES", () => {
  assert.deepEqual(nativeContract().gan_losses, [...GAN_LOSSES]);
});

testOnBackends("GAN step: the seed's full-size G and D at batch 64", (ctx) => {
  const s = compareGanStep(ctx, seedGenerator(), seedDiscriminator(), 200, 64, 5);
  console.log(`  losses: D ${s.dLoss.toFixed(6)}, G ${s.gLoss.toFixed(6)}`);
});

testOnBackends("determinism: the same seed gives bitwise-identical losses over 20 steps", (ctx) => {
  const run = () => {
    using g = new NativeMlp(ctx, seedGenerator(16, 8));
    using d = new NativeMlp(ctx, seedDiscriminator(8));
    const rand = mulberry32(11);
    g.set("params", f32(initParams(g.spec, rand)));
    d.set("params", f32(initParams(d.spec, rand)));
    using gan = new NativeGan(ctx, g, d, { batch_size: 16, seed: 3, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 });
    gan.setData(new Uint8Array(100 * 64).map((_, i) => (i * 37) % 256), 100);
    return [...gan.stepRaw(20), ...g.get("params")];
  };
  const a = run(), b = run();
  assert.equal(a.length, b.length);
  for (let i = 0; i < a.length; i++) {
    if (!Object.is(a[i], b[i])) throw new Error(`run differs at ${i}: ${a[i]} vs ${b[i]}`);
  }
});

testOnBackends(
  "GAN info: the last step call's GPU cost (dispatches, barriers, recording time; 0 on the CPU)",
  (ctx, b) => {
    using g = new NativeMlp(ctx, seedGenerator(16, 8));
    using d = new NativeMlp(ctx, seedDiscriminator(8));
    g.init(1, 0);
    d.init(1, 1);
    using gan = new NativeGan(ctx, g, d, { batch_size: 16, seed: 3, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 });
    gan.setData(new Uint8Array(100 * 64).map((_, i) => (i * 37) % 256), 100);
    const before = gan.info();
    assert.deepEqual(
      [before.dispatches_per_step, before.barriers_per_step, before.record_us_per_step, before.submissions],
      [0, 0, 0, 0],
    );
    gan.stepRaw(10);
    const c = gan.info();
    if (b.name === "cpu") {
      const zero = [c.dispatches_per_step, c.barriers_per_step, c.workgroups_per_step, c.record_us_per_step];
      assert.deepEqual([...zero, c.submissions], [0, 0, 0, 0, 0]);
      return;
    }
    // The seed's order (gpu/gan.rs): 5 + 4 G blocks + 3 + 2 D blocks = 14 dispatches on every adapter (split-K
    // GEMMs are finished by their last slice; at 16 rows each BatchNorm block's column pass and G's block 0 backward
    // run in the dx GEMM above them, D's top block backward in the GEMMs below it, and Adam in the backward's
    // epilogues, with no dispatch of their own).
    assert.equal(c.dispatches_per_step, 14);
    assert.ok(c.submissions >= 2, `10 steps in submissions of 8: ${c.submissions}`);
    // Every dispatch but the first of each submission waits on the one before (all bindings are read_write).
    assert.equal(Math.round(c.barriers_per_step * 10), c.dispatches_per_step * 10 - c.submissions);
    assert.ok(c.record_us_per_step > 0 && c.submit_us_per_step >= 0);
    // At least one workgroup per dispatch; with Adam in the epilogues, no more than the GEMM tiles need (Adam's own
    // dispatch launched one workgroup per 256 parameters of both networks).
    const params = g.info().param_count + d.info().param_count;
    assert.ok(c.workgroups_per_step >= c.dispatches_per_step, `${c.workgroups_per_step}`);
    assert.ok(c.workgroups_per_step < Math.ceil(params / 256), `${c.workgroups_per_step} for ${params} parameters`);
  },
);

Deno.test({
  name: "GPU and CPU agree on whole GAN steps from the same parameters, data and seed",
  ignore: BACKENDS[1].ctx === null,
  fn: () => {
    const run = (ctx: Context) => {
      using g = new NativeMlp(ctx, seedGenerator(16, 8));
      using d = new NativeMlp(ctx, seedDiscriminator(8));
      const rand = mulberry32(21);
      g.set("params", f32(initParams(g.spec, rand)));
      d.set("params", f32(initParams(d.spec, rand)));
      using gan = new NativeGan(ctx, g, d, { batch_size: 16, seed: 3, lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 });
      gan.setData(new Uint8Array(40 * 64).map((_, i) => (i * 37) % 256), 40);
      const losses = gan.stepRaw(5); // 40 images at batch 16: crosses an epoch, with short last batches
      return { losses, g: g.get("params"), d: d.get("params"), running: g.get("running") };
    };
    const c = run(cpuCtx), gp = run(BACKENDS[1].ctx!);
    // The noise agrees to float rounding (log/cos/sin differ by ulps between CPU and GPU), GEMM sums differ in order:
    // after 5 steps losses agree to 1e-5 relative; parameters to 2 lr per step where the gradient is rounding noise.
    assertTensorClose("losses", gp.losses, c.losses, 1e-5, 1e-4);
    assertTensorClose("running stats", gp.running, c.running, 1e-4, 1e-3);
    assertTensorClose("G params", gp.g, c.g, 5 * 2 * 2e-4, 0);
    assertTensorClose("D params", gp.d, c.d, 5 * 2 * 2e-4, 0);
  },
});

Deno.test({
  name: "the CPU backend reports the kernels it runs: AVX-512 where the CPU has it (the default build), else AVX2+FMA",
  ignore: Deno.build.os !== "linux" || Deno.build.arch !== "x86_64",
  async fn() {
    // Deno reads /proc only with --allow-all: bash reads the first CPU's flags (the tests may run bash).
    const out = await new Deno.Command("bash", { args: ["-c", "grep -m1 '^flags' /proc/cpuinfo"] }).output();
    const line = new TextDecoder().decode(out.stdout);
    const flags = new Set(/^flags\s*:(.*)$/m.exec(line)![1].trim().split(/\s+/));
    const has = (...f: string[]) => f.every((x) => flags.has(x));
    const want = has("avx512f", "avx512bw", "avx512dq", "avx512vl")
      ? "avx512"
      : has("avx2", "fma")
      ? "avx2"
      : "baseline";
    using ctx = new Context({ backend: "cpu", threads: 1 });
    const info = ctx.info();
    assert.equal(info.cpu_kernels, want, `CPU flags ${[...flags].filter((f) => /avx|fma/.test(f)).join(" ")}`);
    assert.equal(info.simd.includes("avx512f"), flags.has("avx512f"));
  },
});
