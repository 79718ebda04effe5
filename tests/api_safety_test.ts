// The public TypeScript API cannot make the library read or write outside a buffer: every entry point that hands
// memory to the library checks the array's type (a TypeError naming the parameter and the type), refuses detached
// and shared buffers, and passes the true length, so that the library's own checks see the real size. Views with an
// offset work, and the library writes only inside them (sentinels around the view stay untouched).
//
// Before these checks, `nativeAdam` given Uint8Arrays ended in SIGSEGV, `gan.stepRaw(16, <64-byte Uint8Array view>)`
// wrote 192 bytes past the view, and `mlp.set("params", <4 MB Uint8Array>)` read 16.8 MB from a 4 MB buffer. Each
// case runs in this process: a regression is a crash of the test run, not a silent pass.

import assert from "node:assert/strict";
import {
  Context,
  nativeAdam,
  nativeBce,
  NativeGan,
  NativeMlp,
  nativeNormal,
  nativePermutation,
  nativeSigmoidBce,
} from "../src/native/handles.ts";
import { NativeError } from "../src/native/ffi.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { mulberry32 } from "./check.ts";

const G: MlpSpec = { input: 2, layers: [{ out: 4, bn: null, act: { kind: "tanh" } }] };
const D: MlpSpec = { input: 4, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] };
const ADAM = { lr: 0.1, b1: 0.9, b2: 0.999, eps: 1e-8 };

/** Arrays of every wrong kind for a float32 parameter of `n` elements' worth of bytes. */
function wrongFloatArrays(n: number): [string, unknown][] {
  const detached = new Float32Array(n);
  structuredClone(detached.buffer, { transfer: [detached.buffer] });
  return [
    ["a Uint8Array", new Uint8Array(4 * n)],
    ["a Float64Array", new Float64Array(n)],
    ["an Int32Array", new Int32Array(n)],
    ["a DataView", new DataView(new ArrayBuffer(4 * n))],
    ["an Array", new Array(n).fill(0)],
    ["null", null],
    ["a number", 3],
    ["a detached buffer", detached],
    ["a shared buffer", new Float32Array(new SharedArrayBuffer(4 * n))],
  ];
}

function refused(f: () => unknown, param: string, what: string) {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof TypeError, `${what}: expected a TypeError, got ${e}`);
    assert.match((e as Error).message, new RegExp(`${param} (must|is)`), `${what}: ${(e as Error).message}`);
    return true;
  });
}

/** A Float32Array view of `n` floats inside a larger buffer filled with a sentinel. */
function guarded(n: number, pad = 8): { view: Float32Array<ArrayBuffer>; intact: () => boolean } {
  const all = new Float32Array(n + 2 * pad).fill(-12345);
  const view = all.subarray(pad, pad + n);
  view.fill(0);
  const intact = () =>
    all.subarray(0, pad).every((x) => x === -12345) && all.subarray(pad + n).every((x) => x === -12345);
  return { view, intact };
}

Deno.test("api safety: wrong array types are TypeErrors naming the parameter, on every entry point", () => {
  using ctx = new Context({ backend: "cpu", threads: 1 });
  using g = new NativeMlp(ctx, G);
  using d = new NativeMlp(ctx, D);
  using gan = new NativeGan(ctx, g, d, { batch_size: 2, seed: 1, ...ADAM });
  const params = g.info().param_count;
  gan.setData(new Uint8Array(8 * 4).fill(7), 8);
  const one = () => new Float32Array(1);
  let cases = 0;
  for (const [what, bad] of wrongFloatArrays(params)) {
    const b = bad as Float32Array<ArrayBuffer>;
    refused(() => g.set("params", b), "values", `set(${what})`);
    refused(() => g.forward(b, 1, false), "x", `forward(${what})`);
    refused(() => gan.stepRaw(1, b), "out", `stepRaw(${what})`);
    refused(() => gan.stepExplicit(b, new Float32Array(8), 2), "z", `stepExplicit(${what})`);
    refused(() => nativeAdam(b, one(), one(), one(), 1, ADAM), "params", `nativeAdam(${what})`);
    refused(() => nativeAdam(one(), one(), one(), b, 1, ADAM), "v", `nativeAdam(v: ${what})`);
    refused(() => nativeBce(b, one()), "input", `nativeBce(${what})`);
    refused(() => nativeSigmoidBce(one(), b), "target", `nativeSigmoidBce(${what})`);
    g.forward(new Float32Array(4), 2, true);
    refused(() => g.backward(b), "dy", `backward(${what})`);
    cases += 10;
  }
  for (const bad of [new Float32Array(32), [1, 2, 3], new Uint8Array(new SharedArrayBuffer(32))]) {
    refused(() => gan.setData(bad as unknown as Uint8Array<ArrayBuffer>, 8), "pixels", "setData");
    cases++;
  }
  assert.ok(cases >= 90);
});

Deno.test("api safety: integers out of range are RangeErrors before any allocation", () => {
  using ctx = new Context({ backend: "cpu", threads: 1 });
  using g = new NativeMlp(ctx, G);
  using d = new NativeMlp(ctx, D);
  using gan = new NativeGan(ctx, g, d, { batch_size: 2, seed: 1, ...ADAM });
  gan.setData(new Uint8Array(8 * 4), 8);
  assert.throws(() => gan.stepRaw(1e12), /n must be an integer in \[1, 1048576\], got 1000000000000/);
  assert.throws(() => gan.stepRaw(0.5), RangeError);
  assert.throws(() => g.init(-1, 0), /seed must be an integer/);
  assert.throws(() => g.init(0, 2 ** 32), /stream must be an integer/);
  assert.throws(() => nativeNormal(0, 0, 2 ** 40), /n must be an integer in \[0, 268435456\]/);
  assert.throws(() => nativePermutation(0, -1, 4), /epoch must be an integer/);
  assert.throws(() => gan.setStep(Number.NaN), /step must be an integer/);
  // rows alone never sizes an allocation: a short x is refused by the library, which names both sizes.
  assert.throws(() => g.forward(new Float32Array(2), 4194304, false), NativeError);
});

Deno.test("api safety: views with an offset are read and written only inside the view", () => {
  using ctx = new Context({ backend: "cpu", threads: 1 });
  using g = new NativeMlp(ctx, G);
  using d = new NativeMlp(ctx, D);
  g.init(3, 0);
  d.init(3, 1);
  using gan = new NativeGan(ctx, g, d, { batch_size: 2, seed: 1, ...ADAM });
  gan.setData(new Uint8Array(8 * 4).fill(200).subarray(0, 8 * 4), 8);
  const rec = guarded(4 * 3);
  gan.stepRaw(3, rec.view);
  assert.ok(rec.intact(), "stepRaw wrote outside its view");
  assert.ok(rec.view.every(Number.isFinite) && rec.view.some((x) => x !== 0));
  // A wrong-length view is refused by the library (true length passed), and nothing around it is touched.
  const short = guarded(4);
  assert.throws(() => gan.stepRaw(3, short.view), /step output has 4 values, expected 12/);
  assert.ok(short.intact());
  const p = guarded(g.info().param_count);
  p.view.set(g.get("params"));
  g.set("params", p.view);
  assert.deepEqual(g.get("params"), p.view.slice());
  const [pp, gg, m, v] = [guarded(5), guarded(5), guarded(5), guarded(5)];
  pp.view.fill(1);
  gg.view.fill(0.5);
  nativeAdam(pp.view, gg.view, m.view, v.view, 1, ADAM);
  assert.ok([pp, gg, m, v].every((x) => x.intact()), "nativeAdam wrote outside its views");
  assert.ok(Math.abs(pp.view[0] - 0.9) < 1e-6);
  const x = guarded(4);
  x.view.set([0.1, 0.2, 0.3, 0.4]);
  const y = g.forward(x.view, 2, false);
  assert.equal(y.length, 8);
  assert.ok(x.intact());
});

Deno.test("api safety: 3000 randomized public calls with arrays of every kind: typed errors only, views respected", () => {
  const rand = mulberry32(11);
  const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
  using ctx = new Context({ backend: "cpu", threads: 1 });
  using g = new NativeMlp(ctx, G);
  using d = new NativeMlp(ctx, D);
  g.init(1, 0);
  d.init(1, 1);
  using gan = new NativeGan(ctx, g, d, { batch_size: 2, seed: 1, ...ADAM });
  gan.setData(new Uint8Array(8 * 4).fill(9), 8);
  const sizes = { params: g.info().param_count, x: 4, record: 4 };
  /** An argument for a float32 parameter that wants `n` values: right, wrong length, offset view, or wrong kind. */
  const arg = (n: number): { value: unknown; guard?: ReturnType<typeof guarded> } => {
    const r = rand();
    if (r < 0.3) return { value: new Float32Array(n).fill(0.25) };
    if (r < 0.5) {
      const guard = guarded(n + pick([-1, 0, 0, 1, 5]) * (n > 1 ? 1 : 0));
      guard.view.fill(0.25);
      return { value: guard.view, guard };
    }
    if (r < 0.6) return { value: new Float32Array(Math.max(0, n + pick([-n, -1, 1, 1000]))) };
    return { value: pick(wrongFloatArrays(n))[1] };
  };
  const calls: [string, (a: unknown) => unknown, number][] = [
    ["set", (a) => g.set("params", a as Float32Array<ArrayBuffer>), sizes.params],
    ["forward", (a) => g.forward(a as Float32Array<ArrayBuffer>, 2, rand() < 0.5), sizes.x],
    ["stepRaw", (a) => gan.stepRaw(1, a as Float32Array<ArrayBuffer>), sizes.record],
    ["nativeBce", (a) => nativeBce(a as Float32Array<ArrayBuffer>, new Float32Array(3).fill(1)), 3],
    ["nativeAdam", (a) => nativeAdam(a as Float32Array<ArrayBuffer>, one(3), one(3), one(3), 1, ADAM), 3],
  ];
  const one = (n: number) => new Float32Array(n).fill(0.5);
  const outcomes: Record<string, number> = {};
  for (let i = 0; i < 3000; i++) {
    const [name, call, n] = pick(calls);
    const { value, guard } = arg(n);
    let outcome = "ok";
    try {
      call(value);
    } catch (e) {
      assert.ok(e instanceof TypeError || e instanceof RangeError || e instanceof NativeError, `${name}: ${e}`);
      outcome = (e as Error).name;
    }
    if (guard) assert.ok(guard.intact(), `${name} wrote outside a view of ${guard.view.length}`);
    outcomes[outcome] = (outcomes[outcome] ?? 0) + 1;
  }
  assert.ok((outcomes.ok ?? 0) > 300 && (outcomes.TypeError ?? 0) > 300 && (outcomes.NativeError ?? 0) > 100);
  console.log(`outcomes of 3000 calls: ${JSON.stringify(outcomes)}`);
});
