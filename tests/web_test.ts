// The exported page's runtime (src/web/runtime.js) in Deno, against the native library: its layout rule against the
// library's layout for every model's generator, its normal stream against the library's, its forward pass on both of
// its paths (JavaScript, and WebGPU through Deno's own WebGPU on lavapipe with the library's WGSL kernels) against
// the native eval-mode forward, float16 weights, and `deno task export` (the files, the F16 error, bad input).
// tests/web_page_test.ts runs the exported page in chromium.

import assert from "node:assert/strict";
import { oneErrorLine } from "./cli_output.ts";
import { Context, NativeMlp, nativeNormal } from "../src/native/handles.ts";
import { nativeContract } from "../src/native/ffi.ts";
import { GAN_MODELS, modelGenerator } from "../src/model/models.ts";
import type { MlpSpec } from "../src/model/spec.ts";
import { readSafetensorsFile } from "../src/io/safetensors.ts";
import { saveGenerator } from "../src/train/checkpoint.ts";
import {
  DOMAIN_SAMPLE,
  flatLayout,
  GEMM_WORDS,
  GEMMS,
  Generator,
  normals,
  readSafetensors,
  UNIFORM_WORDS,
} from "../src/web/runtime.js";
import { buildSite, exportSite, loadWebAssets } from "../src/web/site.ts";

const ROOT = new URL("../", import.meta.url);

Deno.test("the page's uniform buffer is linear.wgsl's LinearU: its words, counted from the WGSL struct", () => {
  const src = Deno.readTextFileSync(new URL("native/src/gpu/shaders/linear.wgsl", ROOT));
  const fields = (name: string) => {
    const body = src.match(new RegExp(`struct ${name} \\{([^}]*)\\}`))?.[1];
    assert.ok(body, `struct ${name} in linear.wgsl`);
    return body.split(/,(?![^<]*>)/).map((f) => f.trim()).filter((f) => f);
  };
  const gemm = fields("Gemm"), linear = fields("LinearU");
  assert.ok(gemm.every((f) => /: (u32|f32)$/.test(f)), gemm.join(" "));
  assert.equal(linear[0], `g: array<Gemm, ${GEMMS}>`);
  assert.ok(linear.slice(1).every((f) => /: (u32|f32)$/.test(f)), linear.join(" "));
  assert.equal(GEMM_WORDS, gemm.length);
  assert.equal(UNIFORM_WORDS, GEMMS * gemm.length + linear.length - 1);
  // The fields the page writes after the GEMMs, in the order it writes them.
  assert.deepEqual(linear.slice(1, 11).map((f) => f.split(":")[0]), [
    "act",
    "slope",
    "bias",
    "gamma",
    "beta",
    "rmean",
    "rvar",
    "xhat",
    "rstd",
    "eps",
  ]);
});

/** A generator with PyTorch's init of `seed` and running statistics moved off their defaults. */
function trainedLike(ctx: Context, spec: MlpSpec, seed: number): NativeMlp {
  const g = new NativeMlp(ctx, spec);
  g.init(seed, 0);
  const run = g.get("running");
  for (let i = 0; i < run.length; i++) run[i] = i % 2 ? 0.3 + (i % 11) / 10 : ((i % 7) - 3) / 10;
  // running_mean then running_var per layer: make every variance positive
  for (const t of g.layout().buffers) {
    if (t.name.endsWith("running_var")) {
      for (let i = 0; i < t.size; i++) run[t.offset + i] = 0.3 + ((i * 7) % 13) / 10;
    }
  }
  g.set("running", run);
  return g;
}

/** The tensors of a native MLP by name, as the site's weights file holds them. */
function tensorsOf(g: NativeMlp): Map<string, Float32Array> {
  const l = g.layout(), p = g.get("params"), r = g.get("running");
  const m = new Map<string, Float32Array>();
  for (const t of l.params) m.set(t.name, p.slice(t.offset, t.offset + t.size));
  for (const t of l.buffers) m.set(t.name, r.slice(t.offset, t.offset + t.size));
  return m;
}

function siteModel(g: NativeMlp, spec: MlpSpec) {
  const l = g.layout();
  return { spec, layout: { params: l.params, buffers: l.buffers }, image: { channels: 1, side: 28 } };
}

function maxDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length);
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return m;
}

const kernels = async () => {
  const w = await loadWebAssets();
  return { common: w.common, columns: w.columns, linear: w.linear };
};

Deno.test("web runtime: the layout rule is the library's, for the generator of every model", () => {
  using ctx = new Context({ backend: "cpu" });
  for (const model of GAN_MODELS) {
    const spec = modelGenerator(model);
    using g = new NativeMlp(ctx, spec);
    const native = g.layout(), ours = flatLayout(spec);
    assert.equal(ours.params, native.paramCount, model);
    assert.equal(ours.buffers, native.bufferCount, model);
    // The native entries in order: [table], then per block weight, bias, [gamma, beta]; running mean, var per BN.
    const p = native.params.map((t) => t.offset), r = native.buffers.map((t) => t.offset);
    const expected = [
      ...(ours.embedding ? [0] : []),
      ...ours.blocks.flatMap((b) => (b.bn ? [b.w, b.b, b.gamma, b.beta] : [b.w, b.b])),
    ];
    assert.deepEqual(p, expected, model);
    assert.deepEqual(r, ours.blocks.flatMap((b) => (b.bn ? [b.rmean, b.rvar] : [])), model);
  }
});

Deno.test("web runtime: the normal stream is the library's (the hash bit for bit, the floats to 1 ulp)", () => {
  assert.equal(DOMAIN_SAMPLE, nativeContract().rng_domains.sample);
  for (const [seed, stream, n] of [[0, 0, 10_001], [7, 3, 4096], [2 ** 40 + 5, 0, 999]]) {
    const ours = normals(seed, stream, n), lib = nativeNormal(seed, stream, n, "sample");
    let exact = 0;
    for (let i = 0; i < n; i++) {
      if (ours[i] === lib[i]) exact++;
      assert.ok(
        Math.abs(ours[i] - lib[i]) <= 2 ** -22 * Math.max(1, Math.abs(lib[i])),
        `${seed}/${i}: ${ours[i]} ${lib[i]}`,
      );
    }
    assert.ok(exact / n > 0.9, `${exact} of ${n} identical`);
  }
});

for (const backend of ["js", "webgpu"] as const) {
  Deno.test(`web runtime (${backend}): the forward of every model's generator matches the native eval forward`, async () => {
    using ctx = new Context({ backend: "cpu" });
    const k = await kernels();
    for (const model of GAN_MODELS) {
      const spec = modelGenerator(model);
      using g = trainedLike(ctx, spec, 11);
      const rows = model === "aae" ? 70 : 33; // 70: two row tiles on the GPU
      const z = nativeNormal(3, 0, rows * spec.input, "sample");
      const labels = spec.embedding ? Array.from({ length: rows }, (_, i) => (i * 7) % 10) : undefined;
      const want = g.forward(z, rows, false, labels ? Uint32Array.from(labels) : undefined);
      const gen = await Generator.create(siteModel(g, spec), tensorsOf(g), { backend, kernels: k, maxRows: 64 });
      try {
        assert.equal(gen.backend, backend, gen.reason);
        const got = await gen.generate(z, rows, labels);
        const d = maxDiff(got, want);
        assert.ok(d < 2e-5, `${model}: max |ours - native| = ${d}`);
      } finally {
        gen.destroy();
      }
    }
  });
}

Deno.test("web runtime: auto falls back to JavaScript without WebGPU and says why; bad input is refused", async () => {
  using ctx = new Context({ backend: "cpu" });
  const spec = modelGenerator("cgan");
  using g = trainedLike(ctx, spec, 2);
  const gen = await Generator.create(siteModel(g, spec), tensorsOf(g), { gpu: null, kernels: await kernels() });
  assert.equal(gen.backend, "js");
  assert.match(gen.reason, /no WebGPU in this browser/);
  await assert.rejects(() => Generator.create(siteModel(g, spec), tensorsOf(g), { backend: "webgpu", gpu: null }));
  await assert.rejects(async () => await gen.generate(new Float32Array(100), 1, [10]), /label 10 is not in \[0, 10\)/);
  await assert.rejects(async () => await gen.generate(new Float32Array(100), 1), /needs 1 labels/);
  const t = tensorsOf(g);
  t.delete("model.0.bias");
  assert.throws(() => new Generator(siteModel(g, spec), t), /lack tensor "model.0.bias"/);
  assert.throws(() => readSafetensors(new Uint8Array(4), "x.safetensors"), /Cannot read "x.safetensors": 4 bytes/);
});

/** A generator.safetensors of `model`'s generator in `dir`. */
async function checkpointOf(ctx: Context, dir: string, model: "gan" | "cgan", seed: number): Promise<string> {
  const spec = modelGenerator(model);
  using g = trainedLike(ctx, spec, seed);
  const path = `${dir}/${model}.safetensors`;
  await saveGenerator(path, g, { model, generator: spec, img_size: 28, channels: 1 });
  return path;
}

Deno.test("export: the site's files, its weights and model.json; float16 weights and their stated error", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using ctx = new Context({ backend: "cpu" });
    const ckpt = await checkpointOf(ctx, dir, "cgan", 4);
    const { model } = await exportSite(ckpt, `${dir}/site`);
    const names = [...Deno.readDirSync(`${dir}/site`)].map((e) => e.name).sort();
    assert.deepEqual(names, ["generator.safetensors", "index.html", "kernels", "model.json", "runtime.js"]);
    const w = await loadWebAssets();
    assert.equal(await Deno.readTextFile(`${dir}/site/kernels/linear.wgsl`), w.linear);
    assert.equal(
      await Deno.readTextFile(`${dir}/site/kernels/linear.wgsl`),
      await Deno.readTextFile(new URL("native/src/gpu/shaders/linear.wgsl", ROOT)),
    );
    assert.equal(await Deno.readTextFile(`${dir}/site/runtime.js`), w.runtime);
    assert.deepEqual(JSON.parse(await Deno.readTextFile(`${dir}/site/model.json`)), JSON.parse(JSON.stringify(model)));
    assert.equal(model.classes, 10);
    const stored = await readSafetensorsFile(`${dir}/site/generator.safetensors`);
    const source = await readSafetensorsFile(ckpt);
    for (const [name, t] of stored) assert.deepEqual(t.data, source.get(name)!.data, name);

    const half = await buildSite(ckpt, { f16: true });
    const e = half.model.weights.f16Error!;
    assert.equal(half.model.weights.dtype, "F16");
    assert.ok(e.maxAbsOutput > 0 && e.maxAbsOutput < 0.02, `${e.maxAbsOutput}`);
    assert.ok(e.maxPixel <= 8, `${e.maxPixel}`);
    const bytes = half.files.find((f) => f.path === "generator.safetensors")!.bytes;
    assert.ok(bytes.length < 0.55 * model.weights.bytes, `${bytes.length} of ${model.weights.bytes}`);
    const back = readSafetensors(bytes);
    for (const [name, t] of stored) {
      const a = t.data as Float32Array, b = back.get(name)!;
      for (let i = 0; i < a.length; i++) {
        assert.ok(Math.abs(a[i] - b[i]) <= Math.max(Math.abs(a[i]) * 2 ** -11, 2 ** -24), `${name}[${i}]`);
      }
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function exportCli(args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-ffi", "--allow-env", "src/cli/export.ts", ...args],
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("export CLI: writes the site; usage errors exit 2, bad files and foreign folders exit 1", async () => {
  const dir = await Deno.makeTempDir();
  try {
    using ctx = new Context({ backend: "cpu" });
    const ckpt = await checkpointOf(ctx, dir, "gan", 5);
    const ok = await exportCli(["--checkpoint", ckpt, "--out", `${dir}/site`, "--f16"]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stderr, /wrote .*site\/: index\.html \d+ KiB.*float16 weights: outputs within/);
    const again = await exportCli(["--checkpoint", ckpt, "--out", `${dir}/site`]);
    assert.equal(again.code, 0, `a previous export is replaced:\n${again.stderr}`);
    for (
      const [args, code, message] of [
        [[], 2, /^error: --checkpoint PATH is required/],
        [["--checkpoint", ckpt], 2, /^error: --out DIR is required/],
        [
          ["--checkpoint", ckpt, "--out", dir],
          1,
          /^error: Cannot export into ".*": it holds "[^"]+", which is not part/,
        ],
        [["--checkpoint", `${dir}/none.safetensors`, "--out", `${dir}/s2`], 1, /none\.safetensors/],
        [["--checkpoint", `${dir}/site/index.html`, "--out", `${dir}/s3`], 1, /index\.html/],
      ] as [string[], number, RegExp][]
    ) {
      const r = await exportCli(args);
      assert.equal(r.code, code, `${args.join(" ")}:\n${r.stderr}`);
      oneErrorLine(r.stderr, message);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
