// The time of computeMetrics (FID, KID, precision, recall, density, coverage) on N real against N generated
// features of d dimensions (seeded Gaussians: the fakes scaled by 1.1 and shifted by 0.05), and of its parts run
// alone: FID (two float64 covariances and two eigen-decompositions; computeMetrics runs it in a worker beside the
// GEMM passes), the three GEMM passes with nothing kept (the native work), the k-NN metrics alone and KID alone (each
// three passes of their own; computeMetrics shares one set of passes between them). Wall and process CPU time (all
// threads), the median over rounds; peak RSS of the process (getrusage); the load average before and after (the
// machine may be shared: other jobs inflate the wall times).
//
//   deno task bench:metrics [--n 10000] [--d 256] [--block 1024] [--rounds 3] [--threads 0]

import os from "node:os";
import process from "node:process";
import { parseArgs } from "node:util";
import { computeMetrics, type Metrics } from "../src/eval/metrics.ts";
import { frechetDistance, gaussianStats } from "../src/eval/fid.ts";
import { manifoldMetrics } from "../src/eval/knn.ts";
import { kernelInceptionDistance, mulberry32 } from "../src/eval/kid.ts";
import { DEFAULT_BLOCK_SIZE, DotTiles, tileBytes } from "../src/eval/pairwise.ts";
import type { Features } from "../src/eval/features.ts";
import { Context } from "../src/native/handles.ts";

const { values } = parseArgs({
  options: {
    n: { type: "string", default: "10000" },
    d: { type: "string", default: "256" },
    block: { type: "string", default: String(DEFAULT_BLOCK_SIZE) },
    rounds: { type: "string", default: "3" },
    threads: { type: "string", default: "0" },
  },
});
const [n, d, blockSize, rounds] = [values.n, values.d, values.block, values.rounds].map(Number);

function gaussian(seed: number, scale: number, shift: number): Features {
  const rand = mulberry32(seed);
  const data = new Float32Array(n * d);
  for (let i = 0; i < n * d; i++) {
    data[i] = shift + scale * Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
  }
  return { data, n, d };
}

/** Wall and CPU milliseconds of `f`. */
async function timed(f: () => unknown): Promise<{ wall: number; cpu: number }> {
  const [t0, c0] = [performance.now(), process.cpuUsage()];
  await f();
  const c = process.cpuUsage(c0);
  return { wall: performance.now() - t0, cpu: (c.user + c.system) / 1000 };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const [real, fake] = [gaussian(1, 1, 0), gaussian(2, 1.1, 0.05)];
using ctx = new Context({ backend: "cpu", threads: Number(values.threads) });
const small = { data: real.data.subarray(0, 500 * d), n: 500, d };
await computeMetrics(small, small, { context: ctx, kidSubsetSize: 100, kidSubsets: 5 }); // warm-up: JIT, ml-matrix
const load0 = os.loadavg()[0];

const parts: [string, () => unknown][] = [
  [
    "computeMetrics (all six metrics)",
    () => computeMetrics(real, fake, { context: ctx, blockSize }).then((m) => last = m),
  ],
  ["  the same with fidWorker: false", () => computeMetrics(real, fake, { context: ctx, blockSize, fidWorker: false })],
  ["  FID alone (covariances, eigen-decompositions)", () => frechetDistance(gaussianStats(real), gaussianStats(fake))],
  ["  the three GEMM passes, nothing kept", () => {
    using tiles = new DotTiles({ context: ctx, blockSize });
    tiles.forEachSelf(real, () => {});
    tiles.forEachSelf(fake, () => {});
    tiles.forEachCross(real, fake, () => {});
  }],
  ["  k-NN metrics alone (3 passes)", () => manifoldMetrics(real, fake, 3, { context: ctx, blockSize })],
  ["  KID alone (3 passes)", () => kernelInceptionDistance(real, fake, { context: ctx, blockSize })],
];
let last: Metrics | null = null;
const times = parts.map(() => ({ wall: [] as number[], cpu: [] as number[] }));
for (let r = 0; r < rounds; r++) {
  for (const [i, [, f]] of parts.entries()) {
    const t = await timed(f);
    times[i].wall.push(t.wall);
    times[i].cpu.push(t.cpu);
  }
}

const info = ctx.info();
console.log(`${os.cpus()[0]?.model}, ${info.threads} threads (${info.simd.join("/")}), Deno ${Deno.version.deno}`);
console.log(
  `N = M = ${n}, d = ${d}, tiles of ${blockSize} (${(tileBytes(blockSize, d) / 1e6).toFixed(0)} MB), ` +
    `median of ${rounds} rounds, ms:`,
);
for (const [i, [name]] of parts.entries()) {
  const [wall, cpu] = [median(times[i].wall), median(times[i].cpu)];
  console.log(`${name.padEnd(50)} wall ${wall.toFixed(0).padStart(6)}   cpu ${cpu.toFixed(0).padStart(6)}`);
}
const rss = process.resourceUsage().maxRSS / 1024;
console.log(
  `peak RSS ${rss.toFixed(0)} MB; load average ${load0.toFixed(2)} before, ${os.loadavg()[0].toFixed(2)} after`,
);
console.log(JSON.stringify(last));
