// bench/ab.ts, the side-by-side benchmark of two builds: run on the same library twice (a few short steps), it prints
// a row per round and finds the losses the same bit for bit; bad command lines get one line and their exit code.
// Timing is not checked (a benchmark, not a test).

import assert from "node:assert/strict";
import { main } from "../bench/ab.ts";

const LIB = new URL("../native/target/release/libgan_native.so", import.meta.url).pathname;
const SCRIPT = new URL("../bench/ab.ts", import.meta.url).pathname;

async function ab(args: string[]) {
  const cmd = new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-env", "--allow-run", SCRIPT, ...args],
    stdout: "piped",
    stderr: "piped",
  });
  const out = await cmd.output();
  const text = (b: Uint8Array) => new TextDecoder().decode(b);
  return { code: out.code, stdout: text(out.stdout), stderr: text(out.stderr) };
}

Deno.test({
  name: "bench:ab: the same library twice gives one row per round and the same losses bit for bit",
  ignore: Deno.build.os !== "linux",
  async fn() {
    const r = await ab(["--lib", LIB, "--lib", LIB, "--steps", "6", "--batch", "8", "--rounds", "2", "--threads", "1"]);
    assert.equal(r.code, 0, r.stderr);
    const rows = r.stdout.split("\n").filter((l) => /^\| \d+ \|/.test(l));
    assert.equal(rows.length, 2, r.stdout);
    // p10 / median for both libraries, then one ratio
    assert.match(rows[0], /^\| 1 \| [\d.]+ \/ [\d.]+ \| [\d.]+ \/ [\d.]+ \| [\d.]+ \|$/);
    assert.match(r.stdout, /losses: the same bits in every run \(D [\d.e-]+, G [\d.e-]+\)/);
  },
});

Deno.test("bench:ab: bad command lines are refused with one line", async () => {
  const quiet = console.error;
  const said: string[] = [];
  console.error = (m: string) => said.push(m);
  try {
    assert.equal(await main(["--lib", LIB]), 2);
    assert.equal(await main(["--lib", LIB, "--lib", LIB, "--rounds", "0"]), 2);
    assert.equal(await main(["--lib", LIB, "--lib", LIB, "--backend", "tpu"]), 2);
    assert.equal(await main(["--lib", LIB, "--lib", "/no/such/lib.so"]), 1);
  } finally {
    console.error = quiet;
  }
  assert.match(said[0], /^error: give at least two libraries \(--lib\), not 1\n/);
  assert.match(said[1], /^error: --rounds must be a positive integer, not 0\n/);
  assert.match(said[2], /^error: --backend must be cpu or gpu, not tpu\n/);
  assert.equal(said[3], "error: no library at /no/such/lib.so");
});
