// Parity with PyTorch: one training step of the seed GAN computed by PyTorch 2.x (float32, CPU) and stored in
// tests/fixtures/torch_parity.safetensors by bench/reference/make_parity_fixture.py (which documents every tensor), run
// again here by our native trainer (NativeGan.stepExplicit on the same weights, noise and real batch) and compared.
// No PyTorch is needed to run this test.
//
// Tolerances (float32 on both sides; unit roundoff u = 6e-8; the two sides sum in different orders, so they agree to
// rounding, not bit for bit):
// - Losses and mean D outputs are forward results: a dot product of length k has a typical relative error of
//   sqrt(k) u (k <= 1024 here, so ~2e-6) and the BCE mean adds little: |a - e| <= LOSS_TOL.
// - Adam's moments after step 1 are (1 - b1) g and (1 - b2) g^2. Gradients are sums of products whose terms cancel, so
//   the error scales with the network's largest gradient, not with each element: |a - e| <= 1e-5 max|e| + 2e-4 |e|
//   with the max over the whole network (the rule of tests/native_test.ts). A per-tensor max would not do: the bias
//   of a Linear that feeds a BatchNorm has a gradient of exactly 0 in exact arithmetic (BN subtracts the batch mean),
//   so both sides hold only rounding noise there (~1e-11), with different signs.
// - Parameters after step 1 moved by lr g / (|g| + eps), about lr sign(g). Where |g| is well above float32 noise
//   (> 1e-4 of the network's largest gradient) both sides move the same way and agree to rounding:
//   |a - e| <= 2e-7 + 1e-6 |e|. Where g is within noise of 0 the signs may differ, so the parameter may differ by up to
//   2 lr: |a - e| <= 2 lr + 1e-6. The test reports how many elements needed the loose bound.
// - BatchNorm running statistics are 0.9 old + 0.1 batch statistic: |a - e| <= 1e-6 + 1e-5 |e|.
// - The full-size model stores only float64 sums of each updated tensor. Per element the two sides differ by rounding
//   (~1 ulp, random in sign: the sums differ by ~1e-6 over 500k elements), or by 2 lr where a gradient's sign is
//   within noise. CHECKSUM_TOL = 2 * 2 lr + 1e-5 (two such elements) holds every sum of parameters and running
//   statistics; a systematic slip (a wrong eps, bias correction, momentum, or biased/unbiased variance) moves these
//   sums by 1e-2 or more. The sums of Adam's moments are held to ADAM_SUM_RTOL of sum |exp_avg| (resp. sum
//   exp_avg_sq). The biases that feed a BatchNorm (gradient 0 up to rounding) are checked only to have barely moved.

import assert from "node:assert/strict";
import { Context, NativeGan, NativeMlp } from "../src/native/handles.ts";
import { expectTensor, readSafetensors } from "../src/io/safetensors.ts";
import { type MlpSpec, seedDiscriminator, seedGenerator } from "../src/model/spec.ts";
import { assertTensorClose } from "./check.ts";
import { tensorLayout } from "./reference/reference.ts";

const FIXTURE = "tests/fixtures/torch_parity.safetensors";
const fixture = readSafetensors(
  await Deno.readFile(new URL("./fixtures/torch_parity.safetensors", import.meta.url)),
  FIXTURE,
);
const ADAM = { lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 };
const LOSS_TOL = 1e-5;
const CHECKSUM_TOL = 4 * 2e-4 + 1e-5;
const ADAM_SUM_RTOL = 5e-5;

const lrelu = { kind: "leaky_relu", slope: 0.2 } as const;
const bn = { eps: 0.8, momentum: 0.1 };
/** The reduced model of the fixture, with the seed's block structure (so the same state_dict name pattern). */
const SMALL_G: MlpSpec = {
  input: 8,
  layers: [
    { out: 16, bn: null, act: lrelu },
    { out: 32, bn, act: lrelu },
    { out: 48, bn, act: lrelu },
    { out: 49, bn: null, act: { kind: "tanh" } },
  ],
};
const SMALL_D: MlpSpec = {
  input: 49,
  layers: [
    { out: 32, bn: null, act: lrelu },
    { out: 16, bn: null, act: lrelu },
    { out: 1, bn: null, act: { kind: "sigmoid" } },
  ],
};

const f32 = (name: string, shape: number[]) => expectTensor(fixture, name, "F32", shape, FIXTURE) as Float32Array;
const scalar = (name: string) => f32(name, [])[0];
const maxAbs = (a: ArrayLike<number>) => {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
};

type Net = "generator" | "discriminator";
type Which = "params" | "running";

/** Gathers `<prefix>.<state_dict name>` tensors into a flat buffer laid out as our MLP's `params` or `running`. */
function flat(spec: MlpSpec, which: Which, prefix: string, suffix = ""): Float32Array<ArrayBuffer> {
  const layout = tensorLayout(spec);
  const table = which === "params" ? layout.params : layout.buffers;
  const out = new Float32Array(which === "params" ? layout.paramCount : layout.bufferCount);
  for (const t of table) out.set(f32(`${prefix}.${t.name}${suffix}`, t.shape), t.offset);
  return out;
}

/** A view of tensor `name` of a flat buffer. */
function slice(spec: MlpSpec, which: Which, buf: Float32Array, name: string): Float32Array {
  const layout = tensorLayout(spec);
  const t = (which === "params" ? layout.params : layout.buffers).find((x) => x.name === name)!;
  return buf.subarray(t.offset, t.offset + t.size);
}

interface Worst {
  tight: number;
  loose: number;
  looseCount: number;
  adam: number;
  running: number;
}

/**
 * Compares every updated tensor of one network with the fixture: params (tight where |g| is above noise), Adam
 * moments, running statistics. `g` is PyTorch's gradient (2 exp_avg, exactly, after step 1).
 */
function compareNet(
  label: string,
  spec: MlpSpec,
  mlp: NativeMlp,
  after: string,
  adam: string,
  withV: boolean,
  worst: Worst,
): void {
  const layout = tensorLayout(spec);
  const params = mlp.get("params"), m = mlp.get("adam_m"), v = mlp.get("adam_v"), running = mlp.get("running");
  const wantM = flat(spec, "params", adam, ".exp_avg");
  const wantV = withV ? flat(spec, "params", adam, ".exp_avg_sq") : null;
  const noise = 1e-4 * 2 * maxAbs(wantM);
  const [maxM, maxV] = [maxAbs(wantM), wantV ? maxAbs(wantV) : 0];
  for (const t of layout.params) {
    const got = slice(spec, "params", params, t.name);
    const want = f32(`${after}.${t.name}`, t.shape);
    const em = slice(spec, "params", wantM, t.name);
    for (let i = 0; i < got.length; i++) {
      const d = Math.abs(got[i] - want[i]);
      const tight = Math.abs(2 * em[i]) > noise;
      const tol = tight ? 2e-7 + 1e-6 * Math.abs(want[i]) : 2 * ADAM.lr + 1e-6;
      if (!(d <= tol)) {
        throw new Error(
          `${label} ${t.name}[${i}]: ${got[i]} vs PyTorch ${want[i]} (grad ${2 * em[i]}, tolerance ${tol})`,
        );
      }
      if (tight) worst.tight = Math.max(worst.tight, d);
      else {
        worst.loose = Math.max(worst.loose, d);
        worst.looseCount++;
      }
    }
    const gm = slice(spec, "params", m, t.name);
    const r = assertTensorClose(`${label} ${t.name} exp_avg`, gm, em, 1e-5 * maxM, 2e-4);
    worst.adam = Math.max(worst.adam, r.maxAbs / maxM);
    if (wantV) {
      const ev = slice(spec, "params", wantV, t.name);
      const r2 = assertTensorClose(
        `${label} ${t.name} exp_avg_sq`,
        slice(spec, "params", v, t.name),
        ev,
        1e-5 * maxV,
        2e-4,
      );
      worst.adam = Math.max(worst.adam, r2.maxAbs / maxV);
    }
  }
  for (const t of layout.buffers) {
    const r = assertTensorClose(
      `${label} ${t.name}`,
      slice(spec, "running", running, t.name),
      f32(`${after}.${t.name}`, t.shape),
      1e-6,
      1e-5,
    );
    worst.running = Math.max(worst.running, r.maxAbs);
  }
}

function checkLosses(label: string, got: Record<string, number>, prefix: string): number {
  let worst = 0;
  for (const [ours, theirs] of [["dLoss", "d_loss"], ["gLoss", "g_loss"], ["dReal", "d_real"], ["dFake", "d_fake"]]) {
    const want = scalar(`${prefix}.loss.${theirs}`);
    const d = Math.abs(got[ours] - want);
    assert.ok(d <= LOSS_TOL, `${label} ${theirs}: ours ${got[ours]}, PyTorch ${want} (|diff| ${d} > ${LOSS_TOL})`);
    worst = Math.max(worst, d);
  }
  return worst;
}

const nbt = (prefix: string, spec: MlpSpec): bigint[] => {
  // Every BatchNorm layer of the generator tracked the same number of batches.
  const names = tensorLayout(spec).buffers.filter((t) => t.name.endsWith("running_mean"))
    .map((t) => t.name.replace("running_mean", "num_batches_tracked"));
  return names.map((n) => (expectTensor(fixture, `${prefix}.${n}`, "I64", [], FIXTURE) as BigInt64Array)[0]);
};

for (const [kase, B] of [["b16", 16], ["b5", 5]] as const) {
  Deno.test(`PyTorch parity: one seed step of a reduced GAN at batch ${B} (every tensor)`, () => {
    using ctx = new Context({ backend: "cpu", threads: 2 });
    using g = new NativeMlp(ctx, SMALL_G);
    using d = new NativeMlp(ctx, SMALL_D);
    g.set("params", flat(SMALL_G, "params", "init.generator"));
    g.set("running", flat(SMALL_G, "running", "init.generator"));
    d.set("params", flat(SMALL_D, "params", "init.discriminator"));
    using gan = new NativeGan(ctx, g, d, { batch_size: B, seed: 1, ...ADAM });
    const step = gan.stepExplicit(
      f32(`${kase}.z`, [B, SMALL_G.input]) as Float32Array<ArrayBuffer>,
      f32(`${kase}.x_real`, [B, SMALL_D.input]) as Float32Array<ArrayBuffer>,
      B,
    );
    const lossErr = checkLosses(kase, { ...step }, kase);
    const worst: Worst = { tight: 0, loose: 0, looseCount: 0, adam: 0, running: 0 };
    compareNet(`${kase} G`, SMALL_G, g, `${kase}.after.generator`, `${kase}.adam.generator`, kase === "b16", worst);
    compareNet(
      `${kase} D`,
      SMALL_D,
      d,
      `${kase}.after.discriminator`,
      `${kase}.adam.discriminator`,
      kase === "b16",
      worst,
    );
    const info = g.info();
    for (const n of nbt(`${kase}.after.generator`, SMALL_G)) assert.equal(BigInt(info.num_batches_tracked), n);
    assert.equal(info.adam_step, 1);
    assert.equal(d.info().adam_step, 1);
    console.log(
      `  ${kase}: max |diff| losses ${lossErr.toExponential(2)}, params (|g| above noise) ${
        worst.tight.toExponential(2)
      }, params (|g| at noise: ${worst.looseCount} elements) ${worst.loose.toExponential(2)}, Adam moments ${
        worst.adam.toExponential(2)
      } of the network's max, running stats ${worst.running.toExponential(2)}`,
    );
  });
}

/** lowbias32 (Chris Wellons' integer hash), as make_parity_fixture.py. */
function lowbias32(x: number): number {
  x ^= x >>> 16;
  x = Math.imul(x, 0x7feb352d);
  x ^= x >>> 15;
  x = Math.imul(x, 0x846ca68b);
  x ^= x >>> 16;
  return x >>> 0;
}

/** The fixture's formula init of network `n` (0 = G, 1 = D): each Linear's weight and bias ~ hashed U(-b, b). */
function formulaParams(spec: MlpSpec, n: number): Float32Array<ArrayBuffer> {
  const { params, paramCount } = tensorLayout(spec);
  const out = new Float32Array(paramCount);
  let p = 0, inFeatures = spec.input;
  spec.layers.forEach((layer, l) => {
    const bound = 1 / Math.sqrt(inFeatures);
    for (let t = 0; t < 2; t++) { // weight, then bias
      const tensor = params[p++];
      const base = Math.imul(64 * n + 2 * l + t, 0x9e3779b9) >>> 0;
      for (let i = 0; i < tensor.size; i++) {
        out[tensor.offset + i] = (lowbias32((i + base) >>> 0) / 2 ** 31 + 2 ** -32 - 1) * bound;
      }
    }
    if (layer.bn) {
      const gamma = params[p];
      out.fill(1, gamma.offset, gamma.offset + gamma.size); // BN weight 1, bias 0
      p += 2;
    }
    inFeatures = layer.out;
  });
  return out;
}

/** The biases of Linear layers followed by a BatchNorm: their gradient is exactly 0 in exact arithmetic. */
function preBnBiases(spec: MlpSpec): Set<string> {
  const { params } = tensorLayout(spec);
  const out = new Set<string>();
  let p = 0;
  for (const layer of spec.layers) {
    if (layer.bn) out.add(params[p + 1].name);
    p += layer.bn ? 4 : 2;
  }
  return out;
}

const SUMS = ["sum(after)", "sum(after^2)", "sum(after - init)", "sum(|after - init|)"];
const ADAM_SUMS = ["sum(exp_avg)", "sum(|exp_avg|)", "sum(exp_avg_sq)"];

Deno.test("PyTorch parity: one seed step of the full-size GAN at batch 64 (losses and checksums)", () => {
  const gSpec = seedGenerator(), dSpec = seedDiscriminator();
  const B = 64;
  using ctx = new Context({ backend: "cpu", threads: 2 });
  using g = new NativeMlp(ctx, gSpec);
  using d = new NativeMlp(ctx, dSpec);
  const g0 = formulaParams(gSpec, 0), d0 = formulaParams(dSpec, 1);
  const g0Running = new Float32Array(tensorLayout(gSpec).bufferCount);
  for (const t of tensorLayout(gSpec).buffers) {
    if (t.name.endsWith("running_var")) g0Running.fill(1, t.offset, t.offset + t.size);
  }
  g.set("params", g0);
  g.set("running", g0Running);
  d.set("params", d0);
  // ToTensor (p / 255 in float32) then Normalize(0.5, 0.5), each op rounded to float32 as PyTorch does.
  const u8 = expectTensor(fixture, "full.x_real_u8", "U8", [B, 784], FIXTURE) as Uint8Array;
  const x = Float32Array.from(u8, (p) => Math.fround(Math.fround(p / 255) - 0.5) / 0.5);
  using gan = new NativeGan(ctx, g, d, { batch_size: B, seed: 1, ...ADAM });
  const step = gan.stepExplicit(f32("full.z", [B, 100]) as Float32Array<ArrayBuffer>, x, B);
  const lossErr = checkLosses("full", { ...step }, "full");

  let worstSum = 0, worstAdam = 0;
  const checks = (net: Net, spec: MlpSpec, mlp: NativeMlp, init: Float32Array, initRunning: Float32Array | null) => {
    const layout = tensorLayout(spec);
    const preBn = preBnBiases(spec);
    const bufs = { params: mlp.get("params"), running: mlp.get("running") };
    const m = mlp.get("adam_m"), v = mlp.get("adam_v");
    const entries = [
      ...layout.params.map((t) => ({ t, which: "params" as const, base: init })),
      ...layout.buffers.map((t) => ({ t, which: "running" as const, base: initRunning! })),
    ];
    for (const { t, which, base } of entries) {
      const a = slice(spec, which, bufs[which], t.name);
      const a0 = slice(spec, which, base, t.name);
      const want = expectTensor(fixture, `full.sums.${net}.${t.name}`, "F64", [4], FIXTURE) as Float64Array;
      let s = 0, s2 = 0, ds = 0, dabs = 0;
      for (let i = 0; i < a.length; i++) {
        s += a[i];
        s2 += a[i] * a[i];
        ds += a[i] - a0[i];
        dabs += Math.abs(a[i] - a0[i]);
      }
      const got = [s, s2, ds, dabs];
      if (preBn.has(t.name)) {
        // A gradient of exactly 0 up to rounding: both sides moved each element by lr |g| / (|g| + eps) << lr.
        const limit = 0.05 * ADAM.lr * t.size;
        assert.ok(
          dabs <= limit && want[3] <= limit,
          `${net}.${t.name}: sum |after - init| ours ${dabs}, PyTorch ${
            want[3]
          }, expected both <= ${limit} (its gradient is 0 up to rounding)`,
        );
        continue;
      }
      got.forEach((x, k) => {
        const diff = Math.abs(x - want[k]);
        assert.ok(
          diff <= CHECKSUM_TOL,
          `${net}.${t.name} ${SUMS[k]}: ours ${x}, PyTorch ${want[k]} (|diff| ${diff} > ${CHECKSUM_TOL})`,
        );
        worstSum = Math.max(worstSum, diff);
      });
    }
    for (const t of layout.params) {
      if (preBn.has(t.name)) continue;
      const want = expectTensor(fixture, `full.adam_sums.${net}.${t.name}`, "F64", [3], FIXTURE) as Float64Array;
      const gm = slice(spec, "params", m, t.name), gv = slice(spec, "params", v, t.name);
      let sm = 0, sa = 0, sv = 0;
      for (let i = 0; i < gm.length; i++) {
        sm += gm[i];
        sa += Math.abs(gm[i]);
        sv += gv[i];
      }
      [sm, sa, sv].forEach((x, k) => {
        const rel = Math.abs(x - want[k]) / (k === 2 ? want[2] : want[1]);
        assert.ok(
          rel <= ADAM_SUM_RTOL,
          `${net}.${t.name} ${ADAM_SUMS[k]}: ours ${x}, PyTorch ${want[k]} (relative diff ${rel} > ${ADAM_SUM_RTOL})`,
        );
        worstAdam = Math.max(worstAdam, rel);
      });
    }
  };
  checks("generator", gSpec, g, g0, g0Running);
  checks("discriminator", dSpec, d, d0, null);
  console.log(
    `  full: max |diff| losses ${lossErr.toExponential(2)}, parameter/running-stat sums ${
      worstSum.toExponential(2)
    }, Adam moment sums ${worstAdam.toExponential(2)} (relative)`,
  );
});
