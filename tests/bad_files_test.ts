// The corpus of malformed files in tests/fixtures/bad/ (made by make_bad.ts there): each is refused with an error
// that names the file and the problem, and none makes the reader allocate more than the file justifies.

import assert from "node:assert/strict";
import { loadIdxFile } from "../src/data/idx.ts";
import { Context, NativeMlp } from "../src/native/handles.ts";
import { loadCheckpoint, readCheckpoint } from "../src/train/checkpoint.ts";
import type { MlpSpec } from "../src/model/spec.ts";

const dir = new URL("./fixtures/bad/", import.meta.url).pathname;

const EXPECTED: Record<string, RegExp> = {
  "idx_wrong_magic.idx": /bad magic number 0x1f000803/,
  "idx_float_dtype.idx": /data type 0x0D \(float32\) is not supported/,
  "idx_truncated_header.idx": /truncated header: 3 dimensions need a 16-byte header but the file has 8 bytes/,
  "idx_truncated_data.idx": /header says 10 images of 28x28 \(7840 bytes\) but the file has 1000 bytes of data/,
  "idx_trailing_data.idx": /header says 2 images of 2x2 \(8 bytes\) but the file has 9 bytes of data/,
  "idx_dims_overflow.idx": /more than 2\^31 elements/,
  "idx_huge_dims.idx.gz": /header says 60000 images of 28x28 \(47040000 bytes\) but the file has 100 bytes of data/,
  "idx_zero_ndims.idx": /ndims 0 is out of the supported range 1..4/,
  "idx_corrupt.gz": /the gzip data is corrupt/,
  "st_header_longer_than_file.safetensors": /header length 1099511627776 is above the limit/,
  "st_header_past_end.safetensors": /header length 4096/,
  "st_header_not_json.safetensors": /the header is not valid JSON/,
  "st_unknown_dtype.safetensors": /tensor "a" has unsupported dtype "Q7"/,
  "st_wrong_dtype.safetensors": /tensor "train.step" has dtype F32, expected I64/,
  "st_size_mismatch.safetensors":
    /tensor "a" has shape \[3\] of F32 \(12 bytes\) but data_offsets \[0, 16\] span 16 bytes/,
  "st_overlapping_offsets.safetensors": /tensor "b" at \[8, 24\] overlaps tensor "a"/,
  "st_offsets_out_of_range.safetensors": /tensor "a" has data_offsets \[0, 256\] beyond the 16 bytes of data/,
  "st_truncated.safetensors": /tensor "a" has data_offsets \[0, 32\] beyond the 23 bytes of data/,
  "st_missing_tensors.safetensors": /tensor "generator.model.0.weight" is missing/,
  "st_wrong_format.safetensors": /metadata format is "something-else", expected "deno-gan\/1"/,
};

const g: MlpSpec = { input: 2, layers: [{ out: 3, bn: null, act: { kind: "tanh" } }] };
const d: MlpSpec = { input: 3, layers: [{ out: 1, bn: null, act: { kind: "sigmoid" } }] };

Deno.test("bad files: every file of the corpus is refused, naming the file and the problem", async () => {
  const names = [...Deno.readDirSync(dir)].map((e) => e.name).filter((n) => !n.endsWith(".ts")).sort();
  assert.deepEqual(names, Object.keys(EXPECTED).sort(), "the corpus and this table must list the same files");
  using ctx = new Context({ backend: "cpu", threads: 1 });
  using gm = new NativeMlp(ctx, g);
  using dm = new NativeMlp(ctx, d);
  const rssBefore = Deno.memoryUsage().rss;
  for (const name of names) {
    const path = dir + name;
    const load = name.startsWith("idx")
      ? () => loadIdxFile(path)
      : () => loadCheckpoint(path, { spec: g, net: gm }, { spec: d, net: dm });
    await assert.rejects(load, (e: unknown) => {
      const msg = (e as Error).message;
      assert.ok(msg.includes(path), `${name}: the message does not name the file: ${msg}`);
      assert.match(msg, EXPECTED[name], name);
      return true;
    });
  }
  // The readers check sizes before allocating: a header claiming 47 MB or 1 TB allocates nothing of the kind.
  const grown = (Deno.memoryUsage().rss - rssBefore) / 2 ** 20;
  console.log(`  ${names.length} files refused; RSS grew by ${grown.toFixed(1)} MiB`);
  assert.ok(grown < 40, `RSS grew by ${grown.toFixed(1)} MiB`);
  // The one readable-but-incomplete checkpoint reads, and fails only when loaded into networks.
  assert.equal((await readCheckpoint(dir + "st_missing_tensors.safetensors")).info.step, 0);
});
