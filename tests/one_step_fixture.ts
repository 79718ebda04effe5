// The one-step PyTorch fixtures of cgan and aae (tests/fixtures/family/<model>.safetensors, written by
// bench/reference/make_family_fixtures.py): reading a network's state before the step, and comparing the library's
// network after the step with PyTorch's. Used by tests/cgan_parity_test.ts and tests/aae_parity_test.ts.

import assert from "node:assert/strict";
import type { NativeMlp } from "../src/native/handles.ts";
import { expectTensor, readSafetensors, type TensorMap } from "../src/io/safetensors.ts";

/** A fixture file of one model with typed lookups. */
export class OneStepFixture {
  readonly t: TensorMap;
  readonly path: string;
  constructor(model: string) {
    this.path = `tests/fixtures/family/${model}.safetensors`;
    this.t = readSafetensors(
      Deno.readFileSync(new URL(`./fixtures/family/${model}.safetensors`, import.meta.url)),
      this.path,
    );
  }
  f32(name: string, shape: number[]): Float32Array<ArrayBuffer> {
    return expectTensor(this.t, name, "F32", shape, this.path) as Float32Array<ArrayBuffer>;
  }
  /** An I64 tensor of `n` values as numbers (labels). */
  i64(name: string, n: number): number[] {
    return Array.from(expectTensor(this.t, name, "I64", [n], this.path), Number);
  }
  /** The state of `net` (`generator`, `discriminator`, `encoder`, `decoder`) before the step, into `mlp`. */
  load(mlp: NativeMlp, net: string): void {
    const layout = mlp.layout();
    for (
      const [which, table, n] of [
        ["params", layout.params, layout.paramCount],
        ["running", layout.buffers, layout.bufferCount],
      ] as const
    ) {
      const out = new Float32Array(n);
      for (const e of table) out.set(this.f32(`${net}.${e.name}`, e.shape), e.offset);
      mlp.set(which, out);
    }
  }

  /**
   * One network after the step against PyTorch's; returns the worst gradient difference over the network's largest
   * gradient. The gradient the network was updated with (its grads buffer, PyTorch's `.grad`) to 1e-4 of the tensor's
   * largest value plus 1e-3 relative plus 1e-6 of the network's largest; a Linear bias right before a BatchNorm has
   * gradient 0 in exact arithmetic (the batch mean removes it), so there both sides are checked to be rounding noise,
   * below 1e-4 of the network's largest. The parameters to 2e-7 + 1e-6 |e| where PyTorch's gradient is above 1e-4 of
   * the network's largest, else within 2 lr (Adam's first move); the running statistics to 1e-6 + 1e-5 |e|.
   */
  compare(label: string, mlp: NativeMlp, net: string, lr: number): number {
    const layout = mlp.layout(), params = mlp.get("params"), grads = mlp.get("grads"), running = mlp.get("running");
    const want = layout.params.map((e) => this.f32(`grad.${net}.${e.name}`, e.shape));
    const netMax = Math.max(...want.map(maxAbs));
    const preBn = new Set(
      layout.buffers.map((e) => e.name.replace(/^model\.(\d+)\..*$/, (_, k) => `model.${Number(k) - 1}.bias`)),
    );
    let worst = 0;
    layout.params.forEach((e, k) => {
      const scale = maxAbs(want[k]), after = this.f32(`after.${net}.${e.name}`, e.shape);
      for (let i = 0; i < e.size; i++) {
        const got = grads[e.offset + i], w = want[k][i];
        if (preBn.has(e.name)) {
          assert.ok(
            Math.max(Math.abs(got), Math.abs(w)) <= 1e-4 * netMax,
            `${label} grad ${e.name}[${i}]: ${got}, ${w}`,
          );
        } else {
          const dg = Math.abs(got - w);
          worst = Math.max(worst, dg / netMax);
          const tol = 1e-4 * scale + 1e-3 * Math.abs(w) + 1e-6 * netMax;
          assert.ok(dg <= tol, `${label} grad ${e.name}[${i}]: ${got} vs PyTorch ${w}`);
        }
        const d = Math.abs(params[e.offset + i] - after[i]);
        const tol = Math.abs(w) > 1e-4 * netMax ? 2e-7 + 1e-6 * Math.abs(after[i]) : 2 * lr + 1e-6;
        assert.ok(d <= tol, `${label} ${e.name}[${i}]: ${params[e.offset + i]} vs PyTorch ${after[i]}`);
      }
    });
    for (const e of layout.buffers) {
      const after = this.f32(`after.${net}.${e.name}`, e.shape);
      for (let i = 0; i < e.size; i++) {
        const got = running[e.offset + i];
        assert.ok(Math.abs(got - after[i]) <= 1e-6 + 1e-5 * Math.abs(after[i]), `${label} ${e.name}[${i}]: ${got}`);
      }
    }
    return worst;
  }
}

export function maxAbs(a: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]));
  return m;
}

export function mean(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i];
  return s / a.length;
}

/** `|got - want| <= 1e-5 max(1, |want|)`, naming the value. */
export function closeTo(what: string, got: number, want: number): void {
  assert.ok(Math.abs(got - want) <= 1e-5 * Math.max(1, Math.abs(want)), `${what}: ours ${got}, PyTorch ${want}`);
}
