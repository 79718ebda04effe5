// The TypeScript mirror of the native random streams: integers bit-identical, normals to float rounding.

import assert from "node:assert/strict";
import { nativeNormal, nativePermutation } from "../src/native/handles.ts";
import { normal, permutation } from "./reference/rng.ts";
import { assertTensorClose } from "./check.ts";

Deno.test("rng: permutations are bit-identical to the native library's, across seeds and epochs", () => {
  for (const [seed, epoch, n] of [[0, 0, 1], [1, 0, 10], [7, 3, 1000], [2 ** 40 + 5, 17, 60000]]) {
    assert.deepEqual(permutation(seed, epoch, n), nativePermutation(seed, epoch, n), `seed ${seed} epoch ${epoch}`);
  }
});

Deno.test("rng: normals agree with the native library to float rounding; moments are standard", () => {
  const n = 100001;
  const a = normal(42, 9, n), b = nativeNormal(42, 9, n);
  const r = assertTensorClose("normals", a, b, 1e-5, 1e-5);
  console.log(`  max abs difference over ${n} normals: ${r.maxAbs.toExponential(2)}`);
  let mean = 0, sq = 0;
  for (const x of b) mean += x / n;
  for (const x of b) sq += (x - mean) ** 2 / n;
  assert.ok(Math.abs(mean) < 0.01 && Math.abs(sq - 1) < 0.02, `mean ${mean} var ${sq}`);
  assert.notDeepEqual(nativeNormal(42, 10, 8), nativeNormal(42, 9, 8));
});
