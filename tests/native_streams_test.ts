// The library's seeded streams against their TypeScript mirror (ABI v2): PyTorch's default init drawn natively
// (gan_mlp_init) is bit-identical to initialState on every backend; the normals of every noise domain
// (gan_rng_normal) agree with normal() to float rounding (Rust computes log/cos/sin in float32, JavaScript in float64).

import assert from "node:assert/strict";
import { NativeMlp, nativeNormal } from "../src/native/handles.ts";
import {
  DOMAIN_ALPHA,
  DOMAIN_DROPOUT,
  DOMAIN_FIXED,
  DOMAIN_INIT,
  DOMAIN_LABELS,
  DOMAIN_NOISE,
  DOMAIN_SAMPLE,
  DOMAIN_SHUFFLE,
  dropoutKept,
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
