// The metrics' classifier with its default recipe: held-out accuracy and training time on the embedded digits and
// (when Debian's dataset-fashion-mnist is installed) Fashion-MNIST's 60,000 training images.
// Usage: deno run --allow-read --allow-ffi --allow-env bench/classifier_bench.ts [--backend cpu|gpu]

import { parseArgs } from "node:util";
import { trainClassifier } from "../src/eval/classifier.ts";
import { type Dataset, loadEmbeddedMnist, loadIdxDataset } from "../src/data/dataset.ts";
import { Context } from "../src/native/handles.ts";

const { values } = parseArgs({ args: Deno.args, options: { backend: { type: "string", default: "cpu" } } });
using ctx = new Context({ backend: values.backend as "cpu" | "gpu" });
const sets: Dataset[] = [await loadEmbeddedMnist()];
try {
  sets.push(await loadIdxDataset("/usr/share/datasets/fashion-mnist", "fashion-mnist"));
} catch (e) {
  console.log(`fashion-mnist skipped: ${(e as Error).message}`);
}
for (const ds of sets) {
  const t0 = performance.now();
  using c = trainClassifier(ctx, ds);
  const s = (performance.now() - t0) / 1000;
  console.log(`${ds.name}: ${ds.count} images, held-out accuracy ${(100 * c.accuracy).toFixed(2)}%, ${s.toFixed(1)} s`);
}
