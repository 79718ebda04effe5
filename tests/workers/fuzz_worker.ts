// FFI fuzzing: randomized calls across the whole C ABI (wrong lengths, null/freed/forged handles, double frees,
// NaN and Inf, zero and huge sizes, calls in the wrong order). Every call must return (no crash, no hang); every
// failure must carry a status code and a non-empty message; no call may panic. Buffers are always really as long as
// the length passed with them (a C ABI cannot check that), but that length is often not the one the call needs.
// Usage: fuzz_worker.ts CALLS SEED; prints a JSON summary.

import { lastError, lib, utf8 } from "../../src/native/ffi.ts";
import { mulberry32 } from "../check.ts";

const CALLS = Number(Deno.args[0] ?? 10000);
const rand = mulberry32(Number(Deno.args[1] ?? 1));
const s = lib();

const pick = <T>(a: readonly T[]): T => a[Math.floor(rand() * a.length)];
const int = (n: number) => Math.floor(rand() * n);
const live = { ctx: [] as number[], mlp: [] as number[], gan: [] as number[] };
const freed: number[] = [];
const sizes = new Map<number, { input: number; output: number; params: number; buffers: number }>();

function handle(kind: keyof typeof live): number {
  const r = rand();
  if (r < 0.7 && live[kind].length) return pick(live[kind]);
  if (r < 0.8 && freed.length) return pick(freed);
  if (r < 0.9) return 0;
  return pick([...live.ctx, ...live.mlp, ...live.gan, 0xffffffff, int(1 << 20)]);
}

function floats(n: number): Float32Array<ArrayBuffer> {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rand() * 2 - 1;
  if (n > 0 && rand() < 0.15) a[int(n)] = pick([NaN, Infinity, -Infinity, 3e38]);
  return a;
}

/** A length near `want` (often wrong) and a buffer really that long, or null. */
function buf(want: number): [Float32Array<ArrayBuffer> | null, bigint] {
  const r = rand();
  if (r < 0.08) return [null, BigInt(pick([0, want, 7]))];
  const n = r < 0.6 ? want : Math.max(0, want + pick([-1, 1, -want, 3, 100]));
  return [floats(n), BigInt(n)];
}

function spec(): string {
  const r = rand();
  if (r < 0.05) return "{not json";
  if (r < 0.1) return JSON.stringify({ input: pick([0, -1, 1e9, 2 ** 20, null]), layers: [] });
  const input = 1 + int(6);
  const layers = Array.from({ length: 1 + int(3) }, () => ({
    out: rand() < 0.05 ? pick([0, 2 ** 21, 1.5]) : 1 + int(6),
    bn: rand() < 0.5 ? null : { eps: rand() < 0.1 ? pick([NaN, -1, 0]) : 0.8, momentum: rand() < 0.05 ? 2 : 0.1 },
    act: rand() < 0.05 ? { kind: "relu6" } : pick([
      { kind: "none" },
      { kind: "tanh" },
      { kind: "sigmoid" },
      { kind: "leaky_relu", slope: rand() < 0.1 ? NaN : 0.2 },
    ]),
  }));
  return JSON.stringify({ input, layers });
}

const counts: Record<string, number> = {};
let failures = 0;
let successes = 0;
const problems: string[] = [];

function record(name: string, status: number) {
  counts[name] = (counts[name] ?? 0) + 1;
  if (status === 0) {
    successes++;
    return;
  }
  failures++;
  const msg = lastError();
  if (status === 6) problems.push(`${name}: panic: ${msg}`);
  else if (status < 1 || status > 7) problems.push(`${name}: unknown status ${status}`);
  else if (!msg || msg === "(no message)") problems.push(`${name}: status ${status} without a message`);
}

function json(name: string, f: (b: Uint8Array<ArrayBuffer> | null, n: bigint) => number | bigint) {
  const cap = pick([0, 1, 16, 4096]);
  const v = Number(f(cap ? new Uint8Array(cap) : null, BigInt(cap)));
  record(name, v < 0 ? -v : 0);
}

const calls: (() => void)[] = [
  () => {
    const name = rand() < 0.1 ? new Uint8Array([0xff, 0xfe]) : utf8(pick(["cpu", "auto", "gpu", "", "xyz"]));
    const h = s.gan_context_new(name, BigInt(name.length), pick([0, 1, 2, 5000]));
    if (h) live.ctx.push(h);
    record("context_new", h ? 0 : s.gan_last_status());
  },
  () => json("context_info", (b, n) => s.gan_context_info(handle("ctx"), b, n)),
  () => {
    const h = handle("ctx");
    record("context_free", s.gan_context_free(h));
    if (live.ctx.includes(h)) (live.ctx.splice(live.ctx.indexOf(h), 1), freed.push(h));
  },
  () => {
    const j = utf8(spec());
    const h = s.gan_mlp_new(handle("ctx"), j, BigInt(j.length));
    if (h) {
      live.mlp.push(h);
      const buf = new Uint8Array(65536);
      const n = Number(s.gan_mlp_info(h, buf, BigInt(buf.length)));
      const info = JSON.parse(new TextDecoder().decode(buf.subarray(0, n)));
      sizes.set(h, { input: info.input, output: info.output, params: info.param_count, buffers: info.buffer_count });
    }
    record("mlp_new", h ? 0 : s.gan_last_status());
  },
  () => json("mlp_info", (b, n) => s.gan_mlp_info(handle("mlp"), b, n)),
  () => {
    const h = handle("mlp"), which = pick([0, 1, 2, 3, 4, 5, 99]);
    const z = sizes.get(h);
    const [b, n] = buf(z ? (which === 4 ? z.buffers : z.params) : 4);
    record(rand() < 0.5 ? "mlp_get" : "mlp_set", (rand() < 0.5 ? s.gan_mlp_get : s.gan_mlp_set)(h, which, b, n));
  },
  () => record("mlp_set_counters", s.gan_mlp_set_counters(handle("mlp"), BigInt(int(100)), BigInt(int(100)))),
  () => {
    const h = handle("mlp");
    const z = sizes.get(h) ?? { input: 3, output: 2 };
    const rows = pick([0, 1, 2, 3, 7, 2 ** 31, 64]);
    const r = Math.min(rows, 64);
    const [x, xn] = buf(r * z.input), [y, yn] = buf(r * z.output);
    record("mlp_forward", s.gan_mlp_forward(h, x, xn, rows, pick([0, 1, 2]), y, yn));
  },
  () => {
    const h = handle("mlp");
    const z = sizes.get(h) ?? { input: 3, output: 2 };
    const rows = pick([1, 2, 3, 7]);
    const [dy, dyn] = buf(rows * z.output), [dx, dxn] = buf(rows * z.input);
    record("mlp_backward", s.gan_mlp_backward(h, dy, dyn, dx, dxn));
  },
  () => {
    const h = handle("mlp");
    const [o, n] = buf(int(20));
    record("mlp_output", s.gan_mlp_output(h, o, n));
  },
  () => {
    const v = () => (rand() < 0.1 ? pick([NaN, -1, 1, Infinity]) : rand() * 0.9);
    record("mlp_adam", s.gan_mlp_adam(handle("mlp"), v(), v(), v(), v()));
  },
  () => {
    const h = handle("mlp");
    record("mlp_free", s.gan_mlp_free(h));
    if (live.mlp.includes(h)) (live.mlp.splice(live.mlp.indexOf(h), 1), freed.push(h));
  },
  () => {
    const n = pick([0, 1, 5, 33]);
    const p = floats(n).map((v) => (rand() < 0.9 ? Math.abs(v) : v * 3)), y = floats(n).map(Math.abs);
    const [d, dn] = buf(n);
    const f = rand() < 0.5 ? s.gan_bce : s.gan_sigmoid_bce;
    record("bce", f(p, y, BigInt(n), rand() < 0.1 ? null : new Float32Array(1), d, dn));
  },
  () => {
    const n = int(50);
    const [p, pn] = buf(n);
    const t = BigInt(pick([0, 1, 2, 1e6]));
    record(
      "adam",
      s.gan_adam(
        p,
        floats(Number(pn)),
        floats(Number(pn)),
        floats(Number(pn)).map(Math.abs),
        pn,
        t,
        1e-3,
        0.9,
        0.999,
        1e-8,
      ),
    );
  },
  () => {
    const rows = int(5), classes = pick([0, 1, 3, 10]);
    const [z, zn] = buf(rows * classes);
    const labels = Uint32Array.from({ length: rows }, () => (rand() < 0.1 ? 99 : int(Math.max(classes, 1))));
    const [d, dn] = rand() < 0.3 ? [null, 0n] : buf(rows * classes);
    const loss = new Float32Array(1);
    record("softmax_ce", s.gan_softmax_ce(handle("ctx"), z, zn, labels, BigInt(rows), classes, loss, d, dn));
  },
  () => record("mlp_init", s.gan_mlp_init(handle("mlp"), BigInt(int(1e6)), pick([0, 1, int(1 << 30)]))),
  () => json("contract", (b, n) => s.gan_contract(b, n)),
  () => {
    const n = int(200);
    const buf = (x: Float32Array | Uint32Array) => (rand() < 0.05 ? null : x);
    if (rand() < 0.5) {
      // Any domain, valid (1, 4, 5) or not.
      const out = buf(new Float32Array(n));
      record("rng", s.gan_rng_normal(BigInt(int(1e6)), int(7), int(1e4), out, BigInt(n)));
    } else {
      record("rng", s.gan_rng_permutation(BigInt(int(1e6)), int(1e4), buf(new Uint32Array(n)), BigInt(n)));
    }
  },
  () => {
    const cfg = rand() < 0.1 ? "{}" : JSON.stringify({
      batch_size: pick([0, 1, 2, 4, 1e9]),
      seed: pick([0, 1, -1]),
      lr: pick([2e-4, NaN]),
      b1: 0.5,
      b2: pick([0.999, 1.5]),
      eps: 1e-8,
    });
    const j = utf8(cfg);
    const h = s.gan_gan_new(handle("ctx"), handle("mlp"), handle("mlp"), j, BigInt(j.length));
    if (h) live.gan.push(h);
    record("gan_new", h ? 0 : s.gan_last_status());
  },
  () => {
    const count = pick([0, 1, 5, 9, 30]);
    const feats = pick([1, 2, 3, 4, 5, 6]);
    const px = new Uint8Array(count * feats + (rand() < 0.2 ? 1 : 0));
    record("gan_set_data", s.gan_gan_set_data(handle("gan"), px, BigInt(px.length), count));
  },
  () => {
    const n = pick([0, 1, 2, 3]);
    const [o, on] = buf(4 * n);
    record("gan_step", s.gan_gan_step(handle("gan"), n, o, on));
  },
  () => {
    const rows = pick([0, 1, 2, 4]);
    const [z, zn] = buf(rows * (1 + int(6))), [x, xn] = buf(rows * (1 + int(6))), [o, on] = buf(4);
    const [aux, auxn] = buf(pick([0, rows]));
    record("gan_step_explicit", s.gan_gan_step_explicit(handle("gan"), z, zn, x, xn, aux, auxn, rows, o, on));
  },
  () => json("gan_info", (b, n) => s.gan_gan_info(handle("gan"), b, n)),
  () => record("gan_set_step", s.gan_gan_set_step(handle("gan"), BigInt(pick([0, 5, 2 ** 40])))),
  () => {
    const h = handle("gan");
    record("gan_free", s.gan_gan_free(h));
    if (live.gan.includes(h)) (live.gan.splice(live.gan.indexOf(h), 1), freed.push(h));
  },
];

// Start with something alive so that the valid paths get exercised too.
for (let i = 0; i < 3; i++) calls[0]();
for (let i = 0; i < CALLS; i++) pick(calls)();
console.log(
  JSON.stringify({
    calls: successes + failures,
    successes,
    failures,
    counts,
    problems: problems.slice(0, 20),
    live: s.gan_live_handles(),
  }),
);
