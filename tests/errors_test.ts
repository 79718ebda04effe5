// Bad input through the FFI: every error path gives a typed NativeError with a message that names the problem and the
// value, and the process survives.

import assert from "node:assert/strict";
import { Context, liveHandles, nativeAdam, nativeBce, NativeGan, NativeMlp } from "../src/native/handles.ts";
import { lib, NativeError, utf8 } from "../src/native/ffi.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { testOnBackends } from "./backends.ts";

const ctx = new Context({ backend: "cpu", threads: 1 });
const small: MlpSpec = { input: 3, layers: [{ out: 2, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "tanh" } }] };
const adam = { lr: 2e-4, b1: 0.5, b2: 0.999, eps: 1e-8 };

function throwsNative(f: () => unknown, status: string, includes: string | RegExp) {
  assert.throws(f, (e: unknown) => {
    assert.ok(e instanceof NativeError, `expected a NativeError, got ${e}`);
    assert.equal(e.status, status, e.message);
    if (typeof includes === "string") assert.ok(e.message.includes(includes), `"${e.message}" lacks "${includes}"`);
    else assert.match(e.message, includes);
    return true;
  });
}

Deno.test("context: unknown backend, unavailable backend, bad thread count", () => {
  throwsNative(() => new Context({ backend: "tpu" as "cpu" }), "InvalidArgument", 'unknown backend "tpu"');
  throwsNative(() => new Context({ threads: 100000 }), "InvalidArgument", "threads must be in [0, 4096], got 100000");
  assert.throws(() => new Context({ threads: -1 }), /threads must be a non-negative integer, got -1/);
});

Deno.test("MLP spec: NaN, zero sizes, unknown activation, empty layers", () => {
  throwsNative(
    () =>
      new NativeMlp(ctx, { input: 3, layers: [{ out: 2, bn: { eps: NaN, momentum: 0.1 }, act: { kind: "none" } }] }),
    "InvalidArgument",
    "layers[0].bn.eps must be a positive finite number, got NaN",
  );
  throwsNative(
    () => new NativeMlp(ctx, { input: 0, layers: [{ out: 2, bn: null, act: { kind: "none" } }] }),
    "InvalidArgument",
    "input must be an integer in [1, 1048576], got 0",
  );
  throwsNative(
    () => new NativeMlp(ctx, { input: 3, layers: [{ out: 2, bn: null, act: { kind: "relu6" } as never }] }),
    "InvalidArgument",
    'act.kind must be one of none, leaky_relu, tanh, sigmoid, got "relu6"',
  );
  throwsNative(
    () => new NativeMlp(ctx, { input: 3, layers: [] }),
    "InvalidArgument",
    "layers must be a non-empty array, got []",
  );
  throwsNative(
    () =>
      new NativeMlp(ctx, {
        input: 3,
        layers: [{ out: 2, bn: null, act: { kind: "leaky_relu", slope: Infinity } }],
      }),
    "InvalidArgument",
    "layers[0].act.slope must be a finite number >= 0, got Infinity",
  );
});

testOnBackends(
  "MLP calls: wrong sizes, NaN parameters, batch 1 with BN in train mode, backward before forward",
  (ctx) => {
    using m = new NativeMlp(ctx, small);
    throwsNative(() => m.forward(new Float32Array(5), 2, true), "InvalidArgument", "input has 5 values, expected 6");
    throwsNative(
      () => m.forward(new Float32Array(0), 0, true),
      "InvalidArgument",
      "batch size must be at least 1, got 0",
    );
    throwsNative(
      () => m.forward(new Float32Array(3), 1, true),
      "InvalidArgument",
      "batch size 1 in train mode: BatchNorm needs more than 1 value per channel",
    );
    assert.equal(m.forward(new Float32Array(3), 1, false).length, 2); // eval mode takes batch 1
    throwsNative(
      () => new NativeMlp(ctx, small).backward(new Float32Array(2)),
      "InvalidState",
      "backward called before",
    );
    throwsNative(() => m.backward(new Float32Array(3)), "InvalidArgument", "output gradient has 3 values, expected 2");
    const p = m.get("params");
    p[4] = NaN;
    throwsNative(() => m.set("params", p), "InvalidArgument", "params[4] is NaN, expected a finite number");
    throwsNative(() => m.set("running", new Float32Array(3)), "InvalidArgument", "running stats has 4 values, got 3");
    throwsNative(() => m.adam({ ...adam, b1: 1.5 }), "InvalidArgument", "betas must be in [0, 1), got (1.5, 0.999)");
    throwsNative(() => m.adam({ ...adam, lr: NaN }), "InvalidArgument", "lr must be a finite number, got NaN");
  },
);

Deno.test("handles: null, freed, double free, wrong kind", () => {
  const s = lib();
  const m = new NativeMlp(ctx, small);
  const h = m.handle;
  m.close();
  m.close(); // closing twice through the class is harmless
  assert.equal(s.gan_mlp_free(h), 2); // a raw double free is an InvalidHandle error, not a crash
  throwsNative(() => m.get("params"), "InvalidHandle", "null mlp handle (0)");
  const out = new Float32Array(1);
  assert.equal(s.gan_mlp_get(h, 0, out, 1n), 2);
  assert.equal(s.gan_mlp_get(ctx.handle, 0, out, 1n), 2); // a context handle where an MLP is expected
  assert.equal(s.gan_mlp_get(0xffff_fff0, 0, out, 1n), 2);
  assert.equal(s.gan_context_free(0), 2);
  assert.equal(s.gan_mlp_new(424242, utf8("{}"), 2n), 0);
  assert.equal(s.gan_last_status(), 2);
});

Deno.test("raw pointers: null buffers with non-zero lengths, bad selectors, bad UTF-8, bad JSON", () => {
  const s = lib();
  using m = new NativeMlp(ctx, small);
  assert.equal(s.gan_mlp_get(m.handle, 0, null, 14n), 1);
  assert.equal(s.gan_mlp_get(m.handle, 9, new Float32Array(14), 14n), 1);
  assert.equal(s.gan_mlp_forward(m.handle, null, 6n, 2, 1, new Float32Array(4), 4n), 1);
  assert.equal(s.gan_mlp_forward(m.handle, new Float32Array(6), 6n, 2, 7, new Float32Array(4), 4n), 1);
  assert.equal(s.gan_context_new(new Uint8Array([0xff, 0xfe]), 2n, 0), 0);
  assert.equal(s.gan_mlp_new(ctx.handle, utf8("{not json"), 9n), 0);
  assert.equal(s.gan_bce(null, null, 0n, null, null, 0n), 1);
});

Deno.test("losses and Adam: probabilities outside [0, 1], bad targets, t = 0, mismatched lengths", () => {
  throwsNative(() => nativeBce(Float32Array.of(1.5), Float32Array.of(1)), "InvalidArgument", "input[0] is 1.5");
  throwsNative(() => nativeBce(Float32Array.of(0.5), Float32Array.of(2)), "InvalidArgument", "target[0] is 2");
  const one = () => new Float32Array(1);
  throwsNative(() => nativeAdam(one(), one(), one(), one(), 0, adam), "InvalidArgument", "t counts from 1, got 0");
  assert.throws(() => nativeAdam(one(), new Float32Array(2), one(), one(), 1, adam), /lengths differ/);
});

Deno.test("GAN: mismatched G/D, D with BN, no data, wrong dataset size, a last batch of 1 with BN", () => {
  const g: MlpSpec = {
    input: 2,
    layers: [{ out: 4, bn: { eps: 0.8, momentum: 0.1 }, act: { kind: "tanh" } }],
  };
  const d: MlpSpec = { input: 4, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] };
  using gm = new NativeMlp(ctx, g);
  using dm = new NativeMlp(ctx, d);
  using other = new NativeMlp(ctx, { input: 5, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] });
  using bnD = new NativeMlp(ctx, {
    input: 4,
    layers: [{ out: 1, bn: { eps: 1, momentum: 0.1 }, act: { kind: "sigmoid" } }],
  });
  const cfg = { batch_size: 4, seed: 1, ...adam };
  throwsNative(
    () => new NativeGan(ctx, gm, other, cfg),
    "InvalidArgument",
    "discriminator input (5) must equal generator output (4)",
  );
  throwsNative(() => new NativeGan(ctx, gm, bnD, cfg), "InvalidArgument", "needs a discriminator without BatchNorm");
  throwsNative(() => new NativeGan(ctx, gm, gm, cfg), "InvalidArgument", "two different MLPs");
  throwsNative(() => new NativeGan(ctx, gm, dm, { ...cfg, batch_size: 0 }), "InvalidArgument", "batch_size must be in");
  throwsNative(
    () => new NativeGan(ctx, gm, dm, { ...cfg, lr: NaN }),
    "InvalidArgument",
    "lr must be a finite number, got null",
  );
  using gan = new NativeGan(ctx, gm, dm, cfg);
  throwsNative(() => gan.step(1), "InvalidState", "no dataset: call set_data before training");
  throwsNative(
    () => gan.setData(new Uint8Array(10), 3),
    "InvalidArgument",
    "dataset has 10 bytes, expected 3 images x 4 pixels = 12",
  );
  throwsNative(
    () => gan.setData(new Uint8Array(20), 5),
    "InvalidArgument",
    "the last batch of every epoch would hold 1 image",
  );
  gan.setData(new Uint8Array(24), 6);
  throwsNative(() => gan.stepRaw(2, new Float32Array(4)), "InvalidArgument", "step output has 4 values, expected 8");
  assert.equal(gan.step(3).length, 3);
});

Deno.test("handles are released: closing everything returns the live count to where it was", () => {
  const before = liveHandles();
  {
    using c = new Context({ backend: "cpu", threads: 1 });
    using g = new NativeMlp(c, { input: 2, layers: [{ out: 4, bn: null, act: { kind: "tanh" } }] });
    using d = new NativeMlp(c, { input: 4, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] });
    using _gan = new NativeGan(c, g, d, { batch_size: 2, seed: 0, ...adam });
    assert.equal(liveHandles(), before + 4);
  }
  assert.equal(liveHandles(), before);
});
