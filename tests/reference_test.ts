// Float64 gradient checks of the reference (tests/reference/reference.ts) and checks of the spec helpers
// (src/model/spec.ts).
//
// Tolerance of every central-difference check (unless a test says otherwise): with h = 1e-5 in float64 the
// truncation error is ~h^2 |f'''| / 6 ~ 1e-11 and the rounding error ~1e-16 |L| / h ~ 1e-11 |L|; with the scalar
// losses here (|L| < ~20) the numerical gradient is good to ~1e-9 absolute. A check passes when
// |analytic - numeric| <= 1e-8 + 1e-6 |numeric|: a 100x margin over that error, while any real bug (a missing
// term, a wrong sign, a wrong factor) makes errors of order the gradient itself.
//
// The scalar loss for an op with output `out` is L = sum(out * R) with a random R, so dL/dout = R.

import assert from "node:assert/strict";
import {
  activationBackward,
  activationForward,
  adamStep,
  batchNormBackward,
  batchNormForward,
  bceBackward,
  bceForward,
  blockBackward,
  blockForward,
  type BlockWeights,
  type GanStepArgs,
  ganStepReference,
  initBuffers,
  initParams,
  linearBackward,
  linearForward,
  mlpBackward,
  type MlpCache,
  mlpForward,
  type RunningStats,
  sigmoidBceBackward,
  sigmoidBceForward,
  softmaxCeBackward,
  softmaxCeForward,
  tensorLayout,
} from "./reference/reference.ts";
import {
  type Activation,
  type BatchNormSpec,
  type LayerSpec,
  type MlpSpec,
  seedDiscriminator,
  seedGenerator,
  type TensorInfo,
  type TensorLayout,
} from "../src/model/spec.ts";
import { describeSpec } from "../src/native/handles.ts";
import { NativeError } from "../src/native/ffi.ts";

/**
 * The layout of `spec` as the library reports it (the production source) and as the reference computes it from the
 * contract: the layout tests check both, which ties the two together.
 */
function bothLayouts(spec: MlpSpec, prefix = "model"): [string, TensorLayout][] {
  const lib = describeSpec(spec);
  const rename = (t: TensorInfo): TensorInfo => ({ ...t, name: t.name.replace(/^model\./, `${prefix}.`) });
  return [
    ["reference", tensorLayout(spec, prefix)],
    ["library", { ...lib, params: lib.params.map(rename), buffers: lib.buffers.map(rename) }],
  ];
}
import { assertTensorClose, checkTensor, dot, mulberry32, numericGradient, uniform } from "./check.ts";

const H = 1e-5;
const NO_BUFFERS = new Float64Array(0); // D has no BatchNorm
const GRAD_ATOL = 1e-8;
const GRAD_RTOL = 1e-6;
const BATCHES = [2, 3, 5];

/** Central differences of `f` wrt `x`, compared with `analytic` at the gradient-check tolerance. */
function checkGrad(label: string, f: () => number, x: Float64Array, analytic: Float64Array): void {
  const numeric = numericGradient(f, x, H);
  assertTensorClose(label, analytic, numeric, GRAD_ATOL, GRAD_RTOL);
}

const ACTIVATIONS: Activation[] = [
  { kind: "none" },
  { kind: "leaky_relu", slope: 0.2 },
  { kind: "leaky_relu", slope: 0 },
  { kind: "tanh" },
  { kind: "sigmoid" },
];
const BNS: (BatchNormSpec | null)[] = [null, { eps: 1e-5, momentum: 0.1 }, { eps: 0.8, momentum: 0.1 }];

function actName(act: Activation): string {
  return act.kind === "leaky_relu" ? `leaky_relu(${act.slope})` : act.kind;
}

/**
 * Leaky ReLU has a kink at 0: central differences across it are meaningless. An input is "away" from the kink when
 * |z| > 1e-3, 100x the step h (a step of h in one input moves z by ~h |w| (rstd gamma with BN), well below 1e-3).
 */
function awayFromKink(z: ArrayLike<number>): boolean {
  for (let i = 0; i < z.length; i++) if (Math.abs(z[i]) <= 1e-3) return false;
  return true;
}

/** Draws with `draw` until `ok` holds (at most 20 tries): seeded data that lands on a kink is redrawn, not skipped. */
function drawUntil<T>(label: string, draw: () => T, ok: (t: T) => boolean): T {
  for (let i = 0; i < 20; i++) {
    const t = draw();
    if (ok(t)) return t;
  }
  throw new Error(`${label}: 20 random draws all landed near the leaky_relu kink`);
}

// ---------------------------------------------------------------------------------------------------------------------
// Spec helpers

Deno.test("layout: seed generator names and shapes match PyTorch's state_dict (minus num_batches_tracked)", () => {
  for (const [who, layout] of bothLayouts(seedGenerator())) seedGeneratorLayout(who, layout);
});

function seedGeneratorLayout(who: string, layout: TensorLayout) {
  assert.deepEqual(layout.params.map((t) => [t.name, t.shape]), [
    ["model.0.weight", [128, 100]],
    ["model.0.bias", [128]],
    ["model.2.weight", [256, 128]],
    ["model.2.bias", [256]],
    ["model.3.weight", [256]],
    ["model.3.bias", [256]],
    ["model.5.weight", [512, 256]],
    ["model.5.bias", [512]],
    ["model.6.weight", [512]],
    ["model.6.bias", [512]],
    ["model.8.weight", [1024, 512]],
    ["model.8.bias", [1024]],
    ["model.9.weight", [1024]],
    ["model.9.bias", [1024]],
    ["model.11.weight", [784, 1024]],
    ["model.11.bias", [784]],
  ]);
  assert.deepEqual(layout.buffers.map((t) => [t.name, t.shape]), [
    ["model.3.running_mean", [256]],
    ["model.3.running_var", [256]],
    ["model.6.running_mean", [512]],
    ["model.6.running_var", [512]],
    ["model.9.running_mean", [1024]],
    ["model.9.running_var", [1024]],
  ]);
  // Offsets are contiguous in that order, sizes are the shape products.
  for (const table of [layout.params, layout.buffers]) {
    let offset = 0;
    for (const t of table) {
      assert.equal(t.offset, offset, t.name);
      assert.equal(t.size, t.shape.reduce((a, b) => a * b, 1), t.name);
      offset += t.size;
    }
  }
  assert.equal(layout.paramCount, 1_510_032, who);
  assert.equal(layout.bufferCount, 2 * (256 + 512 + 1024), who);
}

Deno.test("layout: seed discriminator names and shapes match PyTorch's state_dict", () => {
  for (const [who, layout] of bothLayouts(seedDiscriminator())) {
    assert.deepEqual(layout.params.map((t) => [t.name, t.shape, t.offset]), [
      ["model.0.weight", [512, 784], 0],
      ["model.0.bias", [512], 401_408],
      ["model.2.weight", [256, 512], 401_920],
      ["model.2.bias", [256], 532_992],
      ["model.4.weight", [1, 256], 533_248],
      ["model.4.bias", [1], 533_504],
    ], who);
    assert.deepEqual(layout.buffers, [], who);
    assert.equal(layout.paramCount, 533_505, who); // 401920 + 131328 + 257
    assert.equal(layout.bufferCount, 0, who);
  }
});

Deno.test("layout: 'none' activations take no module index; prefix is applied", () => {
  const spec: MlpSpec = {
    input: 3,
    layers: [
      { out: 4, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "none" } }, // model.0 Linear, model.1 BN
      { out: 2, bn: null, act: { kind: "none" } }, // netG.2
      { out: 1, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "sigmoid" } }, // netG.3 Linear, netG.4 BN, 5 sigmoid
    ],
  };
  for (const [who, layout] of bothLayouts(spec, "netG")) noneLayout(who, layout);
});

function noneLayout(who: string, layout: TensorLayout) {
  assert.deepEqual(layout.params.map((t) => t.name), [
    "netG.0.weight",
    "netG.0.bias",
    "netG.1.weight",
    "netG.1.bias",
    "netG.2.weight",
    "netG.2.bias",
    "netG.3.weight",
    "netG.3.bias",
    "netG.4.weight",
    "netG.4.bias",
  ]);
  assert.deepEqual(layout.buffers.map((t) => t.name), [
    "netG.1.running_mean",
    "netG.1.running_var",
    "netG.4.running_mean",
    "netG.4.running_var",
  ], who);
}

Deno.test("seedGenerator / seedDiscriminator: options", () => {
  const g = seedGenerator(64, 32, 3, 1e-5);
  assert.equal(g.input, 64);
  assert.equal(g.layers[4].out, 3 * 32 * 32);
  assert.deepEqual(g.layers.map((l) => l.bn?.eps ?? null), [null, 1e-5, 1e-5, 1e-5, null]);
  assert.deepEqual(g.layers.map((l) => l.bn?.momentum ?? null), [null, 0.1, 0.1, 0.1, null]);
  assert.deepEqual(g.layers.map((l) => actName(l.act)), [
    "leaky_relu(0.2)",
    "leaky_relu(0.2)",
    "leaky_relu(0.2)",
    "leaky_relu(0.2)",
    "tanh",
  ]);
  const d = seedDiscriminator(32, 3);
  assert.equal(d.input, 3072);
  assert.throws(() => seedGenerator(0), RangeError);
  assert.throws(() => seedGenerator(100, 28, 1, 0), RangeError);
});

Deno.test("spec validation (the library's): errors name the field and the value", () => {
  const good = (): MlpSpec => ({
    input: 4,
    layers: [
      { out: 3, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
      { out: 3, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "tanh" } },
      { out: 2, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "sigmoid" } },
    ],
  });
  describeSpec(good());
  // deno-lint-ignore no-explicit-any
  type Mutate = (s: any) => unknown;
  const cases: [Mutate, string][] = [
    [() => null, "the spec must be an object {input, layers}, got null"],
    [(s) => (s.input = 0), "input must be an integer in [1, 1048576], got 0"],
    [(s) => (s.input = 2.5), "input must be an integer in [1, 1048576], got 2.5"],
    [(s) => (s.input = (1 << 20) + 1), "input must be an integer in [1, 1048576], got 1048577"],
    [(s) => (s.input = "4"), 'input must be an integer in [1, 1048576], got "4"'],
    [(s) => (s.layers = []), "layers must be a non-empty array, got []"],
    [(s) => (s.layers = "x"), 'layers must be an array, got "x"'],
    [(s) => (s.layers[1] = 7), "layers[1] must be an object {out, bn, act}, got 7"],
    [(s) => (s.layers[1].out = -3), "layers[1].out must be an integer in [1, 1048576], got -3"],
    [(s) => (s.layers[1].out = NaN), "layers[1].out must be an integer in [1, 1048576], got NaN"],
    [(s) => (s.layers[2].bn.eps = NaN), "layers[2].bn.eps must be a positive finite number, got NaN"],
    [(s) => (s.layers[2].bn.eps = 0), "layers[2].bn.eps must be a positive finite number, got 0"],
    [
      (s) => (s.layers[1].bn.eps = Infinity),
      "layers[1].bn.eps must be a positive finite number, got Infinity",
    ],
    [
      (s) => (s.layers[1].bn.momentum = 1.5),
      "layers[1].bn.momentum must be a finite number in [0, 1], got 1.5",
    ],
    [
      (s) => (s.layers[1].bn.momentum = -0.1),
      "layers[1].bn.momentum must be a finite number in [0, 1], got -0.1",
    ],
    [
      (s) => delete s.layers[1].bn.momentum,
      "layers[1].bn.momentum must be a finite number in [0, 1], got no value",
    ],
    [
      (s) => (s.layers[0].bn = undefined),
      "layers[0].bn must be null or an object {eps, momentum}, got no value",
    ],
    [
      (s) => (s.layers[0].act = { kind: "relu" }),
      'layers[0].act.kind must be one of none, leaky_relu, tanh, sigmoid, got "relu"',
    ],
    [(s) => (s.layers[0].act = "tanh"), 'layers[0].act must be an object {kind}, got "tanh"'],
    [(s) => (s.layers[0].act.slope = NaN), "layers[0].act.slope must be a finite number >= 0, got NaN"],
    [(s) => (s.layers[0].act.slope = -0.2), "layers[0].act.slope must be a finite number >= 0, got -0.2"],
    [
      (s) => delete s.layers[0].act.slope,
      "layers[0].act.slope must be a finite number >= 0, got no value",
    ],
    [
      (s) => (s.input = 1 << 20, s.layers[0].out = 1 << 20),
      "more than 2^31 parameters (1099512676352 after layers[0])",
    ],
  ];
  for (const [mutate, message] of cases) {
    const spec = good();
    const result = mutate(spec);
    const bad = result === null ? null : spec;
    assert.throws(
      () => describeSpec(bad as MlpSpec),
      (e: unknown) => {
        assert.ok(e instanceof NativeError && e.status === "InvalidArgument", `for "${message}", got ${e}`);
        assert.equal(e.nativeMessage, `Invalid MLP spec: ${message}`);
        return true;
      },
    );
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// Linear

Deno.test("linear: backward matches central differences (B = 2, 3, 5); backward overwrites", () => {
  const rand = mulberry32(1);
  const [inF, outF] = [4, 3];
  for (const B of BATCHES) {
    const x = uniform(rand, B * inF); // [B, inF]
    const w = uniform(rand, outF * inF); // [outF, inF]
    const b = uniform(rand, outF); // [outF]
    const R = uniform(rand, B * outF); // [B, outF]
    const out = new Float64Array(B * outF);
    const loss = () => (linearForward(out, x, w, b, B, inF, outF), dot(out, R));
    // Stale values in the gradient buffers must not leak into the result.
    const dx = new Float64Array(B * inF).fill(NaN);
    const dw = new Float64Array(outF * inF).fill(NaN);
    const db = new Float64Array(outF).fill(NaN);
    linearBackward(dx, dw, db, R, x, w, B, inF, outF);
    checkGrad(`linear B=${B} dx`, loss, x, dx);
    checkGrad(`linear B=${B} dW`, loss, w, dw);
    checkGrad(`linear B=${B} db`, loss, b, db);
  }
});

// ---------------------------------------------------------------------------------------------------------------------
// BatchNorm

function bnForward(
  x: Float64Array,
  gamma: Float64Array,
  beta: Float64Array,
  stats: RunningStats,
  B: number,
  C: number,
  bn: BatchNormSpec,
  train: boolean,
) {
  const out = new Float64Array(B * C); // [B, C]
  const xhat = new Float64Array(B * C); // [B, C]
  const mean = new Float64Array(C); // [C]
  const rstd = new Float64Array(C); // [C]
  const runMean = new Float64Array(C); // [C]
  const runVar = new Float64Array(C); // [C]
  batchNormForward(out, xhat, mean, rstd, runMean, runVar, x, gamma, beta, stats.mean, stats.var, B, C, bn, train);
  return { out, xhat, mean, rstd, runMean, runVar };
}

Deno.test("batchNorm: backward matches central differences, train and eval, eps 1e-5 and 0.8 (B = 2, 3, 5)", () => {
  const rand = mulberry32(2);
  const C = 3;
  for (const B of BATCHES) {
    for (const bn of [{ eps: 1e-5, momentum: 0.1 }, { eps: 0.8, momentum: 0.1 }]) {
      for (const train of [true, false]) {
        const label = `batchNorm B=${B} eps=${bn.eps} ${train ? "train" : "eval"}`;
        const x = uniform(rand, B * C, -2, 2); // [B, C]
        const gamma = uniform(rand, C, 0.5, 1.5); // [C]
        const beta = uniform(rand, C); // [C]
        const stats = { mean: uniform(rand, C), var: uniform(rand, C, 0.5, 1.5) }; // [C] each
        const R = uniform(rand, B * C); // [B, C]
        const loss = () => dot(bnForward(x, gamma, beta, stats, B, C, bn, train).out, R);
        const f = bnForward(x, gamma, beta, stats, B, C, bn, train);
        const dx = new Float64Array(B * C).fill(NaN);
        const dgamma = new Float64Array(C).fill(NaN);
        const dbeta = new Float64Array(C).fill(NaN);
        batchNormBackward(dx, dgamma, dbeta, R, f.xhat, f.rstd, gamma, B, C, train);
        checkGrad(`${label} dx`, loss, x, dx);
        checkGrad(`${label} dgamma`, loss, gamma, dgamma);
        checkGrad(`${label} dbeta`, loss, beta, dbeta);
      }
    }
  }
});

Deno.test("batchNorm: forward statistics and running-statistics update by hand", () => {
  const rand = mulberry32(3);
  const [B, C] = [5, 2];
  const bn = { eps: 0.8, momentum: 0.1 };
  const x = uniform(rand, B * C, -3, 3);
  const gamma = Float64Array.of(1.5, -0.5);
  const beta = Float64Array.of(0.25, 2);
  const stats = { mean: Float64Array.of(0.3, -0.2), var: Float64Array.of(1.2, 0.7) };
  const before = { mean: stats.mean.slice(), var: stats.var.slice() };
  const f = bnForward(x, gamma, beta, stats, B, C, bn, true);
  for (let c = 0; c < C; c++) {
    const col = Array.from({ length: B }, (_, i) => x[i * C + c]);
    const mu = col.reduce((s, v) => s + v, 0) / B;
    const biased = col.reduce((s, v) => s + (v - mu) ** 2, 0) / B;
    const expectedOut = col.map((v) => gamma[c] * (v - mu) / Math.sqrt(biased + 0.8) + beta[c]);
    // Tolerance: the same float64 arithmetic in another order, so ~1e-15 relative.
    assertTensorClose(`bn out[:, ${c}]`, Array.from({ length: B }, (_, i) => f.out[i * C + c]), expectedOut, 0, 1e-13);
    assert.ok(Math.abs(f.runMean[c] - (0.9 * before.mean[c] + 0.1 * mu)) < 1e-15);
    assert.ok(Math.abs(f.runVar[c] - (0.9 * before.var[c] + 0.1 * biased * B / (B - 1))) < 1e-15); // unbiased
  }
  assert.deepEqual(stats, before); // the inputs were not touched
  // Eval mode: running statistics, no update.
  const e = bnForward(x, gamma, beta, stats, B, C, bn, false);
  assert.deepEqual([...e.runMean, ...e.runVar], [...stats.mean, ...stats.var]);
  assert.equal(e.out[1], gamma[1] * (x[1] - stats.mean[1]) / Math.sqrt(stats.var[1] + 0.8) + beta[1]);
  // In place (runMeanOut === runningMean) works.
  const inPlace = { mean: before.mean.slice(), var: before.var.slice() };
  const o = new Float64Array(B * C), xh = new Float64Array(B * C), mu = new Float64Array(C), rs = new Float64Array(C);
  batchNormForward(o, xh, mu, rs, inPlace.mean, inPlace.var, x, gamma, beta, inPlace.mean, inPlace.var, B, C, bn, true);
  assert.deepEqual([...inPlace.mean, ...inPlace.var], [...f.runMean, ...f.runVar]);
});

Deno.test("batchNorm: B = 1 is an error in train mode, fine in eval mode", () => {
  const one = Float64Array.of(1);
  const stats = { mean: Float64Array.of(0), var: Float64Array.of(1) };
  assert.throws(
    () => bnForward(Float64Array.of(2), one, Float64Array.of(0), stats, 1, 1, { eps: 1e-5, momentum: 0.1 }, true),
    { name: "RangeError", message: "Expected more than 1 value per channel when training, got input size [1, 1]" },
  );
  const e = bnForward(Float64Array.of(2), one, Float64Array.of(0), stats, 1, 1, { eps: 0, momentum: 0.1 }, false);
  assert.equal(e.out[0], 2);
});

// ---------------------------------------------------------------------------------------------------------------------
// Activations

Deno.test("activations: forward values and backward (from the saved output) match central differences", () => {
  const rand = mulberry32(4);
  const n = 24;
  for (const act of ACTIVATIONS) {
    const z = drawUntil(actName(act), () => uniform(rand, n, -3, 3), awayFromKink); // [n]
    const R = uniform(rand, n); // [n]
    const a = new Float64Array(n);
    const loss = () => (activationForward(a, z, act, n), dot(a, R));
    loss();
    const dz = new Float64Array(n).fill(NaN);
    activationBackward(dz, R, a.slice(), act, n);
    checkGrad(`activation ${actName(act)} dz`, loss, z, dz);
  }
  const a = new Float64Array(3);
  const z = Float64Array.of(-2, 0, 3);
  activationForward(a, z, { kind: "leaky_relu", slope: 0.2 }, 3);
  assert.deepEqual([...a], [-0.4, 0, 3]);
  activationForward(a, z, { kind: "sigmoid" }, 3);
  assert.deepEqual([...a], [1 / (1 + Math.exp(2)), 0.5, 1 / (1 + Math.exp(-3))]);
  activationForward(a, z, { kind: "tanh" }, 3);
  assert.deepEqual([...a], [Math.tanh(-2), 0, Math.tanh(3)]);
  // At z = 0 exactly, leaky_relu' is the slope (a = 0 is not > 0), as PyTorch's `x > 0 ? 1 : slope`.
  const dz = new Float64Array(1);
  activationBackward(dz, Float64Array.of(1), Float64Array.of(0), { kind: "leaky_relu", slope: 0.2 }, 1);
  assert.equal(dz[0], 0.2);
});

// ---------------------------------------------------------------------------------------------------------------------
// Blocks

function randomBlock(
  rand: () => number,
  layer: LayerSpec,
  inF: number,
): { weights: BlockWeights; stats: RunningStats | null } {
  const out = layer.out;
  const weights: BlockWeights = {
    w: uniform(rand, out * inF, -0.8, 0.8), // [out, inF]
    b: uniform(rand, out, -0.5, 0.5), // [out]
    gamma: layer.bn ? uniform(rand, out, 0.5, 1.5) : null, // [out]
    beta: layer.bn ? uniform(rand, out, -0.5, 0.5) : null, // [out]
  };
  const stats = layer.bn ? { mean: uniform(rand, out, -0.5, 0.5), var: uniform(rand, out, 0.5, 1.5) } : null;
  return { weights, stats };
}

Deno.test("block: every BN x activation x mode x batch (2, 3, 5) matches central differences", () => {
  const rand = mulberry32(5);
  const [inF, outF] = [4, 3];
  let checked = 0;
  for (const bn of BNS) {
    for (const act of ACTIVATIONS) {
      for (const train of [true, false]) {
        for (const B of BATCHES) {
          const layer: LayerSpec = { out: outF, bn, act };
          const label = `block bn=${bn ? bn.eps : "none"} ${actName(act)} ${train ? "train" : "eval"} B=${B}`;
          const { weights, stats, x, fwd } = drawUntil(label, () => {
            const { weights, stats } = randomBlock(rand, layer, inF);
            const x = uniform(rand, B * inF); // [B, inF]
            return { weights, stats, x, fwd: blockForward(layer, inF, x, B, weights, stats, train) };
          }, ({ weights, fwd }) => {
            if (act.kind !== "leaky_relu") return true;
            // The activation input: the Linear output without BN, gamma * xhat + beta with BN.
            const z = bn
              ? fwd.cache.xhat!.map((v, i) => weights.gamma![i % outF] * v + weights.beta![i % outF])
              : fwd.cache.pre;
            return awayFromKink(z);
          });
          const R = uniform(rand, B * outF); // [B, outF]
          const loss = () => dot(blockForward(layer, inF, x, B, weights, stats, train).out, R);
          const { dx, grads } = blockBackward(layer, R, fwd.cache, weights);
          checkGrad(`${label} dx`, loss, x, dx);
          checkGrad(`${label} dW`, loss, weights.w, grads.w);
          checkGrad(`${label} db`, loss, weights.b, grads.b);
          if (bn) {
            checkGrad(`${label} dgamma`, loss, weights.gamma!, grads.gamma!);
            checkGrad(`${label} dbeta`, loss, weights.beta!, grads.beta!);
          } else {
            assert.equal(grads.gamma, null);
            assert.equal(grads.beta, null);
          }
          checked++;
        }
      }
    }
  }
  assert.equal(checked, BNS.length * ACTIVATIONS.length * 2 * BATCHES.length);
});

Deno.test("block: forward is pure; train mode returns updated running statistics, eval mode copies", () => {
  const rand = mulberry32(6);
  const layer: LayerSpec = { out: 3, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.2 } };
  const { weights, stats } = randomBlock(rand, layer, 4);
  const x = uniform(rand, 5 * 4);
  const saved = { x: x.slice(), mean: stats!.mean.slice(), var: stats!.var.slice(), w: weights.w.slice() };
  const train = blockForward(layer, 4, x, 5, weights, stats, true);
  assert.deepEqual([x, stats!.mean, stats!.var, weights.w], [saved.x, saved.mean, saved.var, saved.w]);
  const pre = train.cache.pre;
  for (let c = 0; c < 3; c++) {
    const col = [0, 1, 2, 3, 4].map((i) => pre[i * 3 + c]);
    const mu = col.reduce((s, v) => s + v, 0) / 5;
    const unbiased = col.reduce((s, v) => s + (v - mu) ** 2, 0) / 4;
    assert.ok(Math.abs(train.stats!.mean[c] - (0.9 * saved.mean[c] + 0.1 * mu)) < 1e-15);
    assert.ok(Math.abs(train.stats!.var[c] - (0.9 * saved.var[c] + 0.1 * unbiased)) < 1e-15);
  }
  const evalRun = blockForward(layer, 4, x, 5, weights, stats, false);
  assert.deepEqual(evalRun.stats, { mean: saved.mean, var: saved.var });
  assert.notEqual(evalRun.stats!.mean, stats!.mean); // a copy
  assert.throws(() => blockForward(layer, 4, x.subarray(0, 4), 1, weights, stats, true), RangeError);
  assert.equal(
    blockForward({ ...layer, bn: null }, 4, x, 5, { ...weights, gamma: null, beta: null }, null, true).stats,
    null,
  );
});

// ---------------------------------------------------------------------------------------------------------------------
// Whole MLPs

/** Random parameters (init range scaled up so that BN and activations are exercised) and random running stats. */
function randomMlp(rand: () => number, spec: MlpSpec): { params: Float64Array; buffers: Float64Array } {
  const layout = tensorLayout(spec);
  const params = initParams(spec, rand).map((v) => 1.5 * v); // [paramCount]
  // Non-trivial BN gamma and beta (init gives 1 and 0).
  let j = 0;
  for (const layer of spec.layers) {
    j += 2; // weight, bias
    if (layer.bn === null) continue;
    const gamma = layout.params[j++];
    const beta = layout.params[j++];
    params.set(uniform(rand, gamma.size, 0.5, 1.5), gamma.offset);
    params.set(uniform(rand, beta.size, -0.5, 0.5), beta.offset);
  }
  const buffers = initBuffers(spec); // [bufferCount]
  for (const t of layout.buffers) {
    const running = t.name.endsWith("running_var") ? uniform(rand, t.size, 0.5, 1.5) : uniform(rand, t.size, -0.3, 0.3);
    buffers.set(running, t.offset);
  }
  return { params, buffers };
}

/** Whether every leaky_relu input of a forward is away from the kink (recovered from the output: z = a / slope). */
function mlpAwayFromKink(spec: MlpSpec, cache: MlpCache): boolean {
  return spec.layers.every((layer, l) => {
    const act = layer.act;
    if (act.kind !== "leaky_relu") return true;
    assert.ok(act.slope > 0, "these tests use positive slopes");
    return awayFromKink(cache.blocks[l].a.map((a) => (a > 0 ? a : a / act.slope)));
  });
}

function checkMlp(
  label: string,
  spec: MlpSpec,
  params: Float64Array,
  buffers: Float64Array,
  B: number,
  train: boolean,
  rand: () => number,
) {
  const { x, fwd } = drawUntil(label, () => {
    const x = uniform(rand, B * spec.input); // [B, input]
    return { x, fwd: mlpForward(spec, params, buffers, x, B, train) };
  }, ({ fwd }) => mlpAwayFromKink(spec, fwd.cache));
  const outF = spec.layers[spec.layers.length - 1].out;
  const R = uniform(rand, B * outF); // [B, outF]
  const loss = () => dot(mlpForward(spec, params, buffers, x, B, train).out, R);
  const { dx, grads } = mlpBackward(spec, params, fwd.cache, R);
  checkGrad(`${label} dx`, loss, x, dx);
  // Tensor by tensor, so that a failure names the tensor.
  const numeric = numericGradient(loss, params, H);
  for (const t of tensorLayout(spec).params) {
    assertTensorClose(
      `${label} ${t.name}`,
      grads.subarray(t.offset, t.offset + t.size),
      numeric.subarray(t.offset, t.offset + t.size),
      GRAD_ATOL,
      GRAD_RTOL,
    );
  }
  return fwd;
}

const SMALL_MIXED: MlpSpec = {
  input: 5,
  layers: [
    { out: 7, bn: { eps: 1e-5, momentum: 0.1 }, act: { kind: "leaky_relu", slope: 0.1 } },
    { out: 6, bn: { eps: 0.5, momentum: 0.3 }, act: { kind: "none" } },
    { out: 4, bn: null, act: { kind: "tanh" } },
    { out: 3, bn: { eps: 1e-3, momentum: 0.1 }, act: { kind: "sigmoid" } },
  ],
};
const SMALL_G = seedLikeGenerator(5, 9);
const SMALL_D: MlpSpec = {
  input: 9,
  layers: [
    { out: 8, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
    { out: 6, bn: null, act: { kind: "leaky_relu", slope: 0.2 } },
    { out: 1, bn: null, act: { kind: "sigmoid" } },
  ],
};

/** The seed generator's structure at toy sizes: latent -> 8 -> 10 (BN) -> 12 (BN) -> out, eps 0.8. */
function seedLikeGenerator(latent: number, out: number): MlpSpec {
  const lrelu: Activation = { kind: "leaky_relu", slope: 0.2 };
  return {
    input: latent,
    layers: [
      { out: 8, bn: null, act: lrelu },
      { out: 10, bn: { eps: 0.8, momentum: 0.1 }, act: lrelu },
      { out: 12, bn: { eps: 0.8, momentum: 0.1 }, act: lrelu },
      { out, bn: null, act: { kind: "tanh" } },
    ],
  };
}

Deno.test("mlp: a small mixed spec, train and eval (B = 2, 3, 5), matches central differences", () => {
  const rand = mulberry32(7);
  for (const train of [true, false]) {
    for (const B of BATCHES) {
      const { params, buffers } = randomMlp(rand, SMALL_MIXED);
      checkMlp(`mixed ${train ? "train" : "eval"} B=${B}`, SMALL_MIXED, params, buffers, B, train, rand);
    }
  }
});

Deno.test("mlp: seed-like G (BN eps 0.8) and D at toy sizes match central differences", () => {
  const rand = mulberry32(8);
  for (const B of BATCHES) {
    const g = randomMlp(rand, SMALL_G);
    checkMlp(`seed-like G train B=${B}`, SMALL_G, g.params, g.buffers, B, true, rand);
    checkMlp(`seed-like G eval B=${B}`, SMALL_G, g.params, g.buffers, B, false, rand);
    const d = randomMlp(rand, SMALL_D);
    checkMlp(`seed-like D B=${B}`, SMALL_D, d.params, d.buffers, B, true, rand);
  }
});

Deno.test("mlp: forward is pure and returns running statistics equal to the per-block update", () => {
  const rand = mulberry32(9);
  const { params, buffers } = randomMlp(rand, SMALL_MIXED);
  const before = buffers.slice();
  const paramsBefore = params.slice();
  const B = 3;
  const x = uniform(rand, B * SMALL_MIXED.input);
  const fwd = mlpForward(SMALL_MIXED, params, buffers, x, B, true);
  assert.deepEqual(buffers, before);
  assert.deepEqual(params, paramsBefore);
  // Recompute the first BN layer's update by hand from the first block's Linear output.
  const pre = fwd.cache.blocks[0].pre; // [B, 7]
  for (let c = 0; c < 7; c++) {
    const col = [0, 1, 2].map((i) => pre[i * 7 + c]);
    const mu = col.reduce((s, v) => s + v, 0) / B;
    const unbiased = col.reduce((s, v) => s + (v - mu) ** 2, 0) / (B - 1);
    assert.ok(Math.abs(fwd.buffers[c] - (0.9 * before[c] + 0.1 * mu)) < 1e-15, `running_mean[${c}]`);
    assert.ok(Math.abs(fwd.buffers[7 + c] - (0.9 * before[7 + c] + 0.1 * unbiased)) < 1e-15, `running_var[${c}]`);
  }
  // The layer without BN in between does not shift the next BN layer's buffer (momentum 0.3 on layer 1).
  const pre1 = fwd.cache.blocks[1].pre;
  const mu0 = [0, 1, 2].reduce((s, i) => s + pre1[i * 6], 0) / B;
  assert.ok(Math.abs(fwd.buffers[14] - (0.7 * before[14] + 0.3 * mu0)) < 1e-15);
  const evalRun = mlpForward(SMALL_MIXED, params, buffers, x, B, false);
  assert.deepEqual(evalRun.buffers, before);
  assert.throws(() => mlpForward(SMALL_MIXED, params.subarray(1), buffers, x, B, true), {
    name: "RangeError",
    message: `mlpForward params has ${params.length - 1} elements, expected ${params.length}`,
  });
  assert.throws(() => mlpForward(SMALL_MIXED, params, buffers, x.subarray(1), B, true), RangeError);
});

// ---------------------------------------------------------------------------------------------------------------------
// Losses

Deno.test("bce: values (with the -100 clamp) and gradient vs central differences", () => {
  assert.equal(bceForward(Float64Array.of(0.5), 1), Math.LN2);
  assert.equal(bceForward(Float64Array.of(0.25, 0.75), Float64Array.of(0, 1)), -Math.log(0.75));
  assert.equal(bceForward(Float64Array.of(0), 1), 100); // log 0 = -inf, clamped at -100
  assert.equal(bceForward(Float64Array.of(1), 0), 100);
  assert.equal(bceForward(Float64Array.of(0, 1), Float64Array.of(0, 1)), 0); // 0 * clamped(-inf) = 0, not NaN
  assert.equal(bceForward(Float64Array.of(1e-50), 1), 100); // log(1e-50) = -115.1 clamped
  assert.throws(() => bceForward(Float64Array.of(1.5), 1), RangeError);
  assert.throws(() => bceForward(Float64Array.of(NaN), 1), RangeError);
  assert.throws(() => bceForward(Float64Array.of(0.5, 0.5), Float64Array.of(1)), RangeError);
  const rand = mulberry32(10);
  const N = 12;
  for (const y of [Float64Array.from({ length: N }, () => 1), new Float64Array(N), uniform(rand, N, 0, 1)]) {
    const p = uniform(rand, N, 0.05, 0.95);
    checkGrad(`bce dp (y[0] = ${y[0].toFixed(2)})`, () => bceForward(p, y), p, bceBackward(p, y));
  }
  // A scalar target broadcasts.
  const p = uniform(rand, 4, 0.1, 0.9);
  assert.deepEqual(bceBackward(p, 0), bceBackward(p, new Float64Array(4)));
  assert.equal(bceForward(p, 1), bceForward(p, Float64Array.of(1, 1, 1, 1)));
});

Deno.test("bce: the gradient is PyTorch's clamped formula where p (1 - p) < 1e-12", () => {
  const p = Float64Array.of(0, 1e-14, 1 - 1e-15, 1, 0.5);
  const y = Float64Array.of(1, 1, 0, 0, 1);
  const N = p.length;
  const dp = bceBackward(p, y);
  const clamped = [...p].map((pi, i) => (pi - y[i]) / Math.max(pi * (1 - pi), 1e-12) / N);
  const unclamped = [...p].map((pi, i) => (pi - y[i]) / (pi * (1 - pi)) / N);
  assert.deepEqual([...dp], clamped);
  assert.equal(dp[0], -1e12 / N); // unclamped: -Infinity
  assert.equal(unclamped[0], -Infinity);
  assert.ok(Math.abs(dp[1] / unclamped[1] - 1e-2) < 1e-12); // 1e-14 / 1e-12: the clamp shrinks it 100x
});

Deno.test("sigmoid+bce: equals the composition; gradient vs central differences for moderate logits", () => {
  const rand = mulberry32(11);
  const N = 10;
  const logits = uniform(rand, N, -6, 6);
  const y = Float64Array.from({ length: N }, (_, i) => (i % 3 === 0 ? 0 : 1));
  const p = logits.map((l) => 1 / (1 + Math.exp(-l)));
  assert.equal(sigmoidBceForward(logits, y), bceForward(p, y));
  const composed = bceBackward(p, y).map((d, i) => d * (p[i] * (1 - p[i])));
  assert.deepEqual(sigmoidBceBackward(logits, y), composed);
  checkGrad("sigmoid+bce dlogits", () => sigmoidBceForward(logits, y), logits, sigmoidBceBackward(logits, y));
  // Away from saturation it is the textbook (p - y) / N. Tolerance: float64 rounding of the two forms, ~1e-15 relative.
  assertTensorClose(
    "sigmoid+bce vs (p - y) / N",
    sigmoidBceBackward(logits, y),
    p.map((pi, i) => (pi - y[i]) / N),
    1e-15,
    1e-12,
  );
});

Deno.test("sigmoid+bce: saturated logits follow PyTorch's clamps, not the unclamped formula", () => {
  const logits = Float64Array.of(-30, -40, 40, -200, 200, -800, 30);
  const y = Float64Array.of(1, 1, 0, 1, 0, 1, 0);
  const N = logits.length;
  const p = logits.map((l) => 1 / (1 + Math.exp(-l)));
  const clamped = [...p].map((pi, i) => (pi - y[i]) / Math.max(pi * (1 - pi), 1e-12) / N * (pi * (1 - pi)));
  const unclamped = [...p].map((pi, i) => (pi - y[i]) / N); // the true derivative of the unclamped loss
  const g = sigmoidBceBackward(logits, y);
  assert.deepEqual([...g], clamped);
  // logit -30, y = 1: p = 9.4e-14, p (1 - p) < 1e-12, so PyTorch's gradient is p / 1e-12 = 0.094 of the true one.
  assert.ok(Math.abs(g[0] / unclamped[0] - p[0] / 1e-12) < 1e-12);
  assert.ok(Math.abs(g[0] - unclamped[0]) > 0.5 / N);
  // logit 40: p rounds to exactly 1 in float64, so p (1 - p) = 0 and the gradient vanishes (true: 1/N).
  assert.equal(p[2], 1);
  assert.equal(g[2], 0);
  assert.equal(unclamped[2], 1 / N);
  // logit -800: p = 0 exactly, gradient 0; the loss term is clamped at 100 instead of 800.
  assert.ok(g[5] === 0); // -0: dp < 0 times p (1 - p) = 0
  assert.equal(sigmoidBceForward(Float64Array.of(-800), 1), 100);
  assert.equal(sigmoidBceForward(Float64Array.of(-200), 1), 100); // -log(sigmoid(-200)) = 200, clamped
  assert.equal(sigmoidBceForward(Float64Array.of(200), 0), 100); // log(1 - 1) = -inf, clamped
  // logit 30, y = 0: 1 - p = 9.4e-14 (rounded), p (1 - p) < 1e-12: clamped again.
  assert.ok(g[6] > 0 && g[6] < 0.1 / N);
});

// ---------------------------------------------------------------------------------------------------------------------
// Adam

Deno.test("adam: two steps against a hand computation", () => {
  // lr 0.1, b1 0.9, b2 0.999, eps 1e-8.
  const p = Float64Array.of(1, -2, 0.5);
  const m = new Float64Array(3);
  const v = new Float64Array(3);
  const [lr, b1, b2, eps] = [0.1, 0.9, 0.999, 1e-8];
  // Step 1 (t = 1), g = [0.5, -0.1, 0]: m = 0.1 g = [0.05, -0.01, 0], v = 0.001 g^2 = [2.5e-4, 1e-5, 0],
  // bc1 = 0.1, bc2 = 0.001 so m / bc1 = g and sqrt(v / bc2) = |g|: p -= 0.1 g / (|g| + 1e-8).
  adamStep(p, Float64Array.of(0.5, -0.1, 0), m, v, 1, lr, b1, b2, eps);
  // Tolerance 1e-15 absolute: float64 rounding of a handful of operations on numbers of order 1.
  assertTensorClose("adam m1", m, [0.05, -0.01, 0], 1e-17, 1e-14);
  assertTensorClose("adam v1", v, [2.5e-4, 1e-5, 0], 1e-19, 1e-14);
  // 1 - 0.05 / 0.50000001 and -2 + 0.01 / 0.10000001, to 16 digits (decimal long division).
  assertTensorClose("adam p1", p, [0.90000000199999996, -1.900000009999999, 0.5], 1e-15, 0);
  // Step 2 (t = 2), g = [0.2, 0.3, 0]: m = 0.9 m + 0.1 g = [0.065, 0.021, 0];
  // v = 0.999 v + 0.001 g^2 = [2.4975e-4 + 4e-5, 9.99e-6 + 9e-5, 0] = [2.8975e-4, 9.999e-5, 0];
  // bc1 = 1 - 0.81 = 0.19, bc2 = 1 - 0.998001 = 0.001999;
  // p -= (0.1 / 0.19) m / (sqrt(v / 0.001999) + 1e-8):
  //   p[0] = 0.900000002 - 0.5263157895 * 0.065 / (0.3807189 + 1e-8) = 0.8101424839029276
  //   p[1] = -1.90000001 - 0.5263157895 * 0.021 / (0.2236508 + 1e-8) = -1.9494189911200658
  adamStep(p, Float64Array.of(0.2, 0.3, 0), m, v, 2, lr, b1, b2, eps);
  assertTensorClose("adam m2", m, [0.065, 0.021, 0], 1e-17, 1e-14);
  assertTensorClose("adam v2", v, [2.8975e-4, 9.999e-5, 0], 1e-19, 1e-14);
  assertTensorClose("adam p2", p, [0.8101424839029276, -1.9494189911200658, 0.5], 1e-15, 0);
  assert.throws(() => adamStep(p, Float64Array.of(1, 2, 3), m, v, 0, lr, b1, b2, eps), RangeError); // t is 1-based
  assert.throws(() => adamStep(p, Float64Array.of(1), m, v, 3, lr, b1, b2, eps), RangeError);
});

// ---------------------------------------------------------------------------------------------------------------------
// Init

Deno.test("init: Linear weight and bias in U(-1/sqrt(in), 1/sqrt(in)), gamma 1, beta 0, running mean 0, var 1", () => {
  const spec = seedGenerator(100, 8, 1); // small output layer (64) keeps it quick
  const layout = tensorLayout(spec);
  const params = initParams(spec, mulberry32(12));
  const buffers = initBuffers(spec);
  const inOf = new Map<string, number>();
  let inF = spec.input;
  let j = 0;
  for (const layer of spec.layers) {
    inOf.set(layout.params[j++].name, inF);
    inOf.set(layout.params[j++].name, inF);
    if (layer.bn) j += 2;
    inF = layer.out;
  }
  for (const t of layout.params) {
    const values = params.subarray(t.offset, t.offset + t.size);
    const fanIn = inOf.get(t.name);
    if (fanIn === undefined) {
      // BatchNorm: gamma (`.weight`) 1, beta (`.bias`) 0.
      assert.ok(values.every((x) => x === (t.name.endsWith(".weight") ? 1 : 0)), t.name);
      continue;
    }
    const bound = 1 / Math.sqrt(fanIn);
    const max = values.reduce((a, b) => Math.max(a, b), -Infinity);
    const min = values.reduce((a, b) => Math.min(a, b), Infinity);
    assert.ok(min >= -bound && max < bound, `${t.name}: [${min}, ${max}] outside +-${bound}`);
    if (t.size >= 1000) {
      // Spans the range and is centred (a loose statistical check: 1000+ uniform draws).
      assert.ok(max > 0.95 * bound && min < -0.95 * bound, `${t.name}: [${min}, ${max}] does not span +-${bound}`);
      const mean = values.reduce((a, b) => a + b, 0) / t.size;
      assert.ok(Math.abs(mean) < 0.1 * bound, `${t.name}: mean ${mean}`);
    }
  }
  for (const t of layout.buffers) {
    const expected = t.name.endsWith("running_var") ? 1 : 0;
    assert.ok(buffers.subarray(t.offset, t.offset + t.size).every((x) => x === expected), t.name);
  }
  // Draw order: one draw per Linear element, in the flat order (weight row-major, then bias, layer by layer);
  // BatchNorm parameters draw nothing. Draw k returns k / 1000 (mod 1).
  const small = seedLikeGenerator(5, 9);
  let k = 0;
  const p = initParams(small, () => (k++ % 1000) / 1000);
  const smallLayout = tensorLayout(small);
  let draw = 0;
  let fanIn = small.input;
  j = 0;
  for (const layer of small.layers) {
    const bound = 1 / Math.sqrt(fanIn);
    for (const t of [smallLayout.params[j++], smallLayout.params[j++]]) {
      for (let i = 0; i < t.size; i++) {
        assert.equal(p[t.offset + i], -bound + 2 * bound * ((draw++ % 1000) / 1000), `${t.name}[${i}]`);
      }
    }
    if (layer.bn) j += 2;
    fanIn = layer.out;
  }
  assert.equal(k, draw);
});

// ---------------------------------------------------------------------------------------------------------------------
// The whole GAN step

function ganArgs(rand: () => number, B: number): GanStepArgs {
  const gParams = initParams(SMALL_G, rand).map((v) => 1.5 * v);
  const dParams = initParams(SMALL_D, rand).map((v) => 1.5 * v);
  const gBuffers = initBuffers(SMALL_G).map((v, i) => v + 0.1 * Math.sin(i));
  const adam = (n: number, t: number) => ({ m: uniform(rand, n, -0.01, 0.01), v: uniform(rand, n, 0, 1e-4), t });
  const { xReal, z } = drawUntil("ganArgs", () => ({
    xReal: uniform(rand, B * SMALL_D.input), // [B, 9] in [-1, 1]
    z: uniform(rand, B * SMALL_G.input, -2, 2), // [B, 5]
  }), ({ xReal, z }) => {
    const g = mlpForward(SMALL_G, gParams, gBuffers, z, B, true);
    return mlpAwayFromKink(SMALL_G, g.cache) &&
      mlpAwayFromKink(SMALL_D, mlpForward(SMALL_D, dParams, NO_BUFFERS, g.out, B, true).cache) &&
      mlpAwayFromKink(SMALL_D, mlpForward(SMALL_D, dParams, NO_BUFFERS, xReal, B, true).cache);
  });
  return {
    gSpec: SMALL_G,
    gParams,
    gBuffers,
    gAdam: adam(gParams.length, 3),
    dSpec: SMALL_D,
    dParams,
    dAdam: adam(dParams.length, 3),
    xReal,
    z,
    lr: 2e-4,
    b1: 0.5,
    b2: 0.999,
    eps: 1e-8,
  };
}

Deno.test("gan step: g_loss gradient wrt G params (through D) matches central differences (B = 2, 3, 5)", () => {
  const rand = mulberry32(13);
  for (const B of BATCHES) {
    const args = ganArgs(rand, B);
    const gParams = args.gParams.slice();
    const gLossOf = () => {
      const fake = mlpForward(SMALL_G, gParams, args.gBuffers, args.z, B, true).out;
      return bceForward(mlpForward(SMALL_D, args.dParams, NO_BUFFERS, fake, B, true).out, 1);
    };
    const r = ganStepReference(args);
    assert.equal(r.gLoss, gLossOf());
    checkGrad(`g_loss dG B=${B}`, gLossOf, gParams, r.gGrads);
  }
});

Deno.test("gan step: d_loss gradient wrt D params matches central differences (B = 2, 3, 5)", () => {
  const rand = mulberry32(14);
  for (const B of BATCHES) {
    const args = ganArgs(rand, B);
    const r = ganStepReference(args);
    const dParams = args.dParams.slice();
    const dLossOf = () => {
      const real = bceForward(mlpForward(SMALL_D, dParams, NO_BUFFERS, args.xReal, B, true).out, 1);
      const fake = bceForward(mlpForward(SMALL_D, dParams, NO_BUFFERS, r.fake, B, true).out, 0);
      return (real + fake) / 2;
    };
    assert.equal(r.dLoss, dLossOf());
    // Only d_loss's gradient: the D gradients of the G pass were dropped (the seed zeroes them).
    checkGrad(`d_loss dD B=${B}`, dLossOf, dParams, r.dGrads);
  }
});

Deno.test("gan step: state updates (Adam on both, G running stats once, D means) and purity", () => {
  const rand = mulberry32(15);
  const B = 5;
  const args = ganArgs(rand, B);
  const copy = structuredClone(args);
  const r = ganStepReference(args);
  assert.deepEqual(args, copy); // nothing mutated
  const g = mlpForward(SMALL_G, args.gParams, args.gBuffers, args.z, B, true);
  assert.deepEqual(r.fake, g.out);
  assert.deepEqual(r.gBuffers, g.buffers); // one train-mode forward of G
  const dReal = mlpForward(SMALL_D, args.dParams, NO_BUFFERS, args.xReal, B, true).out;
  const dFake = mlpForward(SMALL_D, args.dParams, NO_BUFFERS, g.out, B, true).out;
  assert.equal(r.dReal, dReal.reduce((a, b) => a + b, 0) / B);
  assert.equal(r.dFake, dFake.reduce((a, b) => a + b, 0) / B);
  assert.equal(r.gLoss, bceForward(dFake, 1));
  assert.equal(r.dLoss, (bceForward(dReal, 1) + bceForward(dFake, 0)) / 2);
  for (
    const [name, params, adam, grads, newParams, newAdam] of [
      ["G", args.gParams, args.gAdam, r.gGrads, r.gParams, r.gAdam],
      ["D", args.dParams, args.dAdam, r.dGrads, r.dParams, r.dAdam],
    ] as const
  ) {
    const p = params.slice(), m = adam.m.slice(), v = adam.v.slice();
    adamStep(p, grads, m, v, adam.t + 1, args.lr, args.b1, args.b2, args.eps);
    assert.deepEqual(newParams, p, `${name} params`);
    assert.deepEqual(newAdam, { m, v, t: adam.t + 1 }, `${name} Adam state`);
    assert.ok(checkTensor(`${name} moved`, newParams, params, 0, 0).maxAbs > 0);
  }
  assert.throws(() => ganStepReference({ ...args, z: args.z.subarray(1) }), RangeError);
  assert.throws(() => ganStepReference({ ...args, xReal: args.xReal.subarray(1) }), RangeError);
  const bnD: MlpSpec = { ...SMALL_D, layers: SMALL_D.layers.map((l) => ({ ...l, bn: { eps: 1e-5, momentum: 0.1 } })) };
  assert.throws(() => ganStepReference({ ...args, dSpec: bnD }), RangeError);
});

// ---------------------------------------------------------------------------------------------------------------------
// The check helper itself

Deno.test("checkTensor / assertTensorClose: report the worst element, NaN fails", () => {
  const r = checkTensor("t", [1, 2, 3], [1, 2.5, 3.0001], 1e-3, 1e-3);
  assert.equal(r.ok, false);
  assert.equal(r.worst, 1);
  assert.equal(r.maxAbs, 0.5);
  assert.equal(r.maxRel, 0.2);
  assert.equal(checkTensor("t", [1, NaN], [1, 1], 1, 1).ok, false);
  assert.equal(checkTensor("t", [Infinity], [Infinity], 0, 0).ok, true);
  assert.equal(checkTensor("t", [0], [0], 0, 0).maxRel, 0);
  assert.throws(
    () => assertTensorClose("dW", [1, 2, 3], [1, 2.5, 3], 1e-8, 1e-6),
    {
      message: "dW: mismatch at [1] of 3: actual 2, expected 2.5; max abs err 5.000e-1, max rel err 2.000e-1; " +
        "tolerance |a - e| <= 1e-8 + 0.000001 |e|",
    },
  );
  assert.throws(() => checkTensor("t", [1], [1, 2], 0, 0), RangeError);
});

Deno.test("softmax cross-entropy: gradient vs central differences; large logits stay finite; uniform logits give log C", () => {
  const rand = mulberry32(23);
  const rows = 5, classes = 7;
  const logits = uniform(rand, rows * classes, -4, 4);
  const labels = [0, 6, 3, 3, 1];
  checkGrad(
    "softmax ce dlogits",
    () => softmaxCeForward(logits, labels, classes),
    logits,
    softmaxCeBackward(logits, labels, classes),
  );
  // Each row's gradient sums to 0 (softmax sums to 1, minus the one-hot).
  const g = softmaxCeBackward(logits, labels, classes);
  for (let r = 0; r < rows; r++) {
    assert.ok(Math.abs(g.slice(r * classes, (r + 1) * classes).reduce((a, b) => a + b)) < 1e-15);
  }
  assert.ok(Math.abs(softmaxCeForward(new Float64Array(3 * 10), [0, 4, 9], 10) - Math.log(10)) < 1e-15);
  const big = Float64Array.of(1000, 0, -1000);
  assert.equal(softmaxCeForward(big, [0], 3), 0);
  assert.equal(softmaxCeForward(big, [1], 3), 1000);
});
