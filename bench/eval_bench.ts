/**
 * What evaluation costs: `Evaluator.create` (the real side of the embedded digits, with the classifier from the cache),
 * `score(generator)` of 10,000 samples (median of rounds), a one-shot `evaluate()`, and training with and without
 * `evalEvery` side by side in this process (the same run twice: the difference is the evaluations' cost).
 *
 *   deno task bench:eval [--rounds 3] [--epochs 10] [--every 785]
 *
 * @module
 */

import os from "node:os";
import { parseArgs } from "node:util";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { loadOrTrainClassifier } from "../src/eval/classifier.ts";
import { evaluate, Evaluator } from "../src/eval/evaluate.ts";
import { Context, NativeMlp } from "../src/native/handles.ts";
import { seedGenerator } from "../src/model/spec.ts";
import { GanTrainer } from "../src/train/trainer.ts";

const { values } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "3" },
    epochs: { type: "string", default: "10" },
    every: { type: "string", default: "785" },
  },
});
const rounds = Number(values.rounds), epochs = Number(values.epochs), every = Number(values.every);
const load = () => Deno.loadavg().map((x) => x.toFixed(2)).join(" ");
console.log(
  `${os.cpus()[0]?.model}, ${navigator.hardwareConcurrency} threads, Deno ${Deno.version.deno}; load average ${load()}`,
);

const secondsOf = async <T>(f: () => Promise<T>): Promise<[number, T]> => {
  const t0 = performance.now();
  const r = await f();
  return [(performance.now() - t0) / 1000, r];
};
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];

const digits = await loadEmbeddedMnist();
{
  using ctx = new Context({ backend: "cpu" });
  const [tc, cached] = await secondsOf(() => loadOrTrainClassifier(ctx, digits));
  using classifier = cached.classifier;
  console.log(`classifier (${cached.source}): ${tc.toFixed(2)} s`);
  using g = new NativeMlp(ctx, seedGenerator());
  g.init(1, 0);
  const [tp, ev] = await secondsOf(() => Evaluator.create(digits, { context: ctx, classifier }));
  console.log(`Evaluator.create (10,000 real, reference rows): ${tp.toFixed(2)} s`);
  const scores: number[] = [];
  for (let i = 0; i < rounds; i++) scores.push((await secondsOf(() => ev.score(g)))[0]);
  console.log(
    `score(generator), 10,000 samples: median ${median(scores).toFixed(2)} s (${
      scores.map((s) => s.toFixed(2)).join(", ")
    })`,
  );
  ev.close();
  const [te] = await secondsOf(() => evaluate(g, digits, { context: ctx, classifier }));
  console.log(`evaluate() one-shot (create + score): ${te.toFixed(2)} s`);
}

async function train(evalEvery: number): Promise<{ seconds: number; evals: number[] }> {
  using t = await GanTrainer.create(digits, { backend: "cpu", nEpochs: epochs, evalEvery, sampleInterval: 1e9 });
  const evals: number[] = [];
  const [s] = await secondsOf(() => t.run({ onEval: (e) => void evals.push(e.seconds) }));
  return { seconds: s, evals };
}
await train(0); // warm-up (the library, the page cache)
const plain = await train(0);
const withEval = await train(every);
const steps = epochs * 157;
console.log(
  `training ${steps} steps: ${plain.seconds.toFixed(1)} s without evaluations, ${withEval.seconds.toFixed(1)} s with ` +
    `evalEvery ${every} (${withEval.evals.length} evaluations: ${
      withEval.evals.map((s) => s.toFixed(2)).join(", ")
    } s)`,
);
const perEval = median(withEval.evals.slice(1).length ? withEval.evals.slice(1) : withEval.evals);
const stepsPerSecond = steps / plain.seconds;
for (const interval of [1000, 5000, 20000, 50000]) {
  const cost = perEval / (interval / stepsPerSecond);
  console.log(
    `  at --eval_every ${interval}: +${(100 * cost).toFixed(1)}% (${perEval.toFixed(2)} s per evaluation, ${
      stepsPerSecond.toFixed(0)
    } steps/s)`,
  );
}
console.log(`load average after: ${load()}`);
