// The markdown tables of `bench/gemm_shapes/run.sh` (issue 17) from its JSON lines: the FMA peaks, the whole step's
// GEMMs per library (GFLOP/s and share of the peak of the same vector width and thread count), and every GEMM.
//
//   deno run --allow-read bench/gemm_table.ts bench/results/gemm_shapes.jsonl

interface Peak {
  kind: "peak";
  width: string;
  threads: number;
  gflops: number;
}
interface Row {
  kind: "gemm" | "step";
  isa: string;
  threads: number;
  batch: number;
  lib: string;
  gflops: number;
  seconds: number;
  net?: string;
  op?: string;
  rows?: number;
  in?: number;
  out?: number;
}

const path = Deno.args[0] ?? "bench/results/gemm_shapes.jsonl";
const lines = Deno.readTextFileSync(path).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l));
const peaks = lines.filter((l): l is Peak => l.kind === "peak");
const rows = lines.filter((l): l is Row => l.kind === "gemm" || l.kind === "step");
const uniq = <T>(xs: T[]) => [...new Set(xs)];
const libs = uniq(rows.map((r) => r.lib));
const threadCounts = uniq(rows.map((r) => r.threads)).sort((a, b) => a - b);
const isas = uniq(rows.map((r) => r.isa));
/** The peak of a width at a thread count (the best reading: each build measures it again). */
const peakOf = (width: string, threads: number) =>
  Math.max(...peaks.filter((p) => p.width === width && p.threads === threads).map((p) => p.gflops));

function table(head: string[], body: (string | number)[][]): string {
  const cells = [head, ...body.map((r) => r.map(String))];
  const w = head.map((_, i) => Math.max(...cells.map((r) => r[i].length), 3));
  const line = (r: string[]) => `| ${r.map((c, i) => (i < 1 ? c.padEnd(w[i]) : c.padStart(w[i]))).join(" | ")} |`;
  return [line(head), `| ${w.map((n, i) => (i < 1 ? "-".repeat(n) : "-".repeat(n - 1) + ":")).join(" | ")} |`]
    .concat(body.map((r) => line(r.map(String)))).join("\n");
}

const widths = uniq(peaks.map((p) => p.width));
console.log("FMA peak (GFLOP/s; independent FMAs, best of the builds' readings):\n");
console.log(table(
  ["vector width", ...threadCounts.map((t) => `${t} thread${t > 1 ? "s" : ""}`)],
  widths.map((w) => [w, ...threadCounts.map((t) => peakOf(w, t).toFixed(1))]),
));

console.log(
  "\nThe whole step's GEMMs (their FLOPs over the sum of their times), GFLOP/s; ours' and gemm's share of the FMA peak",
);
console.log("of its build's vectors at that thread count in brackets:\n");
const steps = rows.filter((r) => r.kind === "step");
console.log(table(
  ["gemm build", "threads", "batch", ...widths.map((w) => `${w} peak`), ...libs],
  uniq(steps.map((r) => `${r.isa}|${r.threads}|${r.batch}`)).map((k) => {
    const [isa, t, b] = k.split("|");
    return [
      isa,
      t,
      b,
      ...widths.map((w) => peakOf(w, Number(t)).toFixed(1)),
      ...libs.map((l) => {
        const r = steps.find((s) => `${s.isa}|${s.threads}|${s.batch}` === k && s.lib === l);
        if (!r) return "-";
        return l === "ours" || l.startsWith("gemm")
          ? `${r.gflops.toFixed(1)} (${(100 * r.gflops / peakOf(isa, r.threads)).toFixed(0)}%)`
          : r.gflops.toFixed(1);
      }),
    ];
  }),
));

for (const t of threadCounts) {
  console.log(
    `\nEvery GEMM of the step, ${t} thread${t > 1 ? "s" : ""}, GFLOP/s (in the strides the library calls them with):\n`,
  );
  const gemms = rows.filter((r) => r.kind === "gemm" && r.threads === t);
  const cols = isas.flatMap((isa) => libs.map((l) => ({ isa, l })))
    .filter((c) => gemms.some((r) => r.isa === c.isa && r.lib === c.l));
  const keyOf = (r: Row) => `${r.batch}|${r.net}|${r.op}|${r.rows}|${r.in}>${r.out}`;
  console.log(table(
    ["batch net op rows in>out", ...cols.map((c) => `${c.l} (${c.isa})`)],
    uniq(gemms.map(keyOf)).map((k) => [
      k.replaceAll("|", " "),
      ...cols.map((c) =>
        gemms.find((r) => keyOf(r) === k && r.isa === c.isa && r.lib === c.l)?.gflops.toFixed(1) ?? "-"
      ),
    ]),
  ));
}
