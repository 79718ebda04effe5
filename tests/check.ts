/**
 * Test helpers: a labelled tensor comparison in the style of llm.c's `check_tensor`, a seeded PRNG, and float64
 * central differences.
 *
 * @module
 */

/** The outcome of comparing two tensors. */
export interface CheckResult {
  /** Largest `|actual - expected|` (NaN when a value is NaN, or infinite on one side only). */
  maxAbs: number;
  /** Largest `|actual - expected| / |expected|` (0 where both are 0, Infinity where only `expected` is 0). */
  maxRel: number;
  /** Whether every element satisfies `|actual - expected| <= atol + rtol |expected|` (NaN never does). */
  ok: boolean;
  /** The element that misses its bound by the most (or the first NaN), -1 for empty tensors. */
  worst: number;
}

/**
 * Compares `actual` with `expected` elementwise: element i passes when `|a - e| <= atol + rtol |e|` (numpy's allclose).
 * NaN or infinite values fail unless both sides are the same infinity.
 *
 * @example Usage
 * ```ts
 * import { checkTensor } from "./check.ts";
 * import assert from "node:assert/strict";
 *
 * const r = checkTensor("dW", [1, 2.000001], [1, 2], 1e-8, 1e-5);
 * assert.ok(r.ok && r.worst === 1 && r.maxAbs < 1.1e-6);
 * ```
 */
export function checkTensor(
  label: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
): CheckResult {
  if (actual.length !== expected.length) {
    throw new RangeError(`${label}: actual has ${actual.length} elements, expected ${expected.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let ok = true;
  let nonFinite = false; // a NaN, or an infinity on one side only
  let worst = actual.length > 0 ? 0 : -1;
  let worstExcess = -Infinity;
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i];
    const e = expected[i];
    if (a === e) continue; // also equal infinities
    const diff = Math.abs(a - e);
    if (!Number.isFinite(diff)) {
      ok = false;
      if (!nonFinite) worst = i;
      nonFinite = true;
      continue;
    }
    maxAbs = Math.max(maxAbs, diff);
    maxRel = Math.max(maxRel, e === 0 ? Infinity : diff / Math.abs(e));
    const excess = diff - (atol + rtol * Math.abs(e));
    if (excess > 0) ok = false;
    if (!nonFinite && excess > worstExcess) {
      worstExcess = excess;
      worst = i;
    }
  }
  if (nonFinite) {
    maxAbs = NaN;
    maxRel = NaN;
  }
  return { maxAbs, maxRel, ok, worst };
}

/**
 * `checkTensor` that throws an `Error` naming the label, the worst index, both values there, the max abs/rel errors and
 * the tolerances when the tensors differ. Returns the result when they agree.
 *
 * @example Usage
 * ```ts
 * import { assertTensorClose } from "./check.ts";
 *
 * assertTensorClose("dW", [1, 2], [1, 2 + 1e-12], 1e-8, 1e-6);
 * ```
 */
export function assertTensorClose(
  label: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  atol: number,
  rtol: number,
): CheckResult {
  const r = checkTensor(label, actual, expected, atol, rtol);
  if (!r.ok) {
    const i = r.worst;
    throw new Error(
      `${label}: mismatch at [${i}] of ${actual.length}: actual ${actual[i]}, expected ${expected[i]}; ` +
        `max abs err ${r.maxAbs.toExponential(3)}, max rel err ${r.maxRel.toExponential(3)}; ` +
        `tolerance |a - e| <= ${atol} + ${rtol} |e|`,
    );
  }
  return r;
}

/** mulberry32, the tiny seeded PRNG of the tests; its one home is the metrics' KID subsets (src/eval/kid.ts). */
export { mulberry32 } from "../src/eval/kid.ts";

/**
 * A Float64Array of `n` uniform numbers in [lo, hi).
 *
 * @example Usage
 * ```ts
 * import { mulberry32, uniform } from "./check.ts";
 * import assert from "node:assert/strict";
 *
 * const x = uniform(mulberry32(1), 6, -1, 1);
 * assert.ok(x.every((v) => v >= -1 && v < 1));
 * ```
 */
export function uniform(rand: () => number, n: number, lo = -1, hi = 1): Float64Array {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) out[i] = lo + (hi - lo) * rand();
  return out;
}

/**
 * Float64 central differences: `g[i] = (f(x + h e_i) - f(x - h e_i)) / 2h`. `f` must read `x` (which is perturbed in
 * place and restored).
 *
 * @example Usage
 * ```ts
 * import { numericGradient } from "./check.ts";
 * import assert from "node:assert/strict";
 *
 * const x = Float64Array.of(1, 2);
 * const g = numericGradient(() => x[0] * x[0] + 3 * x[1], x);
 * assert.ok(Math.abs(g[0] - 2) < 1e-8 && Math.abs(g[1] - 3) < 1e-8);
 * ```
 */
export function numericGradient(f: () => number, x: Float64Array, h = 1e-5): Float64Array {
  const g = new Float64Array(x.length);
  for (let i = 0; i < x.length; i++) {
    const saved = x[i];
    x[i] = saved + h;
    const fp = f();
    x[i] = saved - h;
    const fm = f();
    x[i] = saved;
    g[i] = (fp - fm) / (2 * h);
  }
  return g;
}

/**
 * `sum_i out_i r_i`: the scalar loss used by gradient checks (its gradient wrt `out` is `r`).
 *
 * @example Usage
 * ```ts
 * import { dot } from "./check.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(dot([1, 2], [3, 4]), 11);
 * ```
 */
export function dot(out: ArrayLike<number>, r: ArrayLike<number>): number {
  if (out.length !== r.length) throw new RangeError(`dot: lengths ${out.length} and ${r.length} differ`);
  let s = 0;
  for (let i = 0; i < out.length; i++) s += out[i] * r[i];
  return s;
}
