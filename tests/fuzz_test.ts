// FFI fuzzing in subprocesses (a crash there cannot take the test runner down): 3 x 10,000 randomized calls.

import assert from "node:assert/strict";

const WORKER = new URL("./workers/fuzz_worker.ts", import.meta.url).pathname;

Deno.test("FFI fuzz: 30,000 randomized calls; no crash, no hang, no panic, every failure with a code and a message", async () => {
  let total = 0, failures = 0, successes = 0;
  for (const seed of [1, 2, 3]) {
    const child = new Deno.Command(Deno.execPath(), {
      args: ["run", "--allow-read", "--allow-ffi", "--allow-env", "--allow-run", WORKER, "10000", `${seed}`],
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
    const r = await child.output();
    clearTimeout(timer);
    const err = new TextDecoder().decode(r.stderr);
    assert.equal(r.code, 0, `fuzz worker (seed ${seed}) exited with ${r.code} (signal ${r.signal}):\n${err}`);
    const summary = JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!);
    assert.deepEqual(summary.problems, [], `seed ${seed}`);
    assert.ok(summary.calls >= 10000, `only ${summary.calls} calls made`);
    assert.ok(summary.successes > 500, `too few valid calls exercised: ${summary.successes}`);
    total += summary.calls;
    failures += summary.failures;
    successes += summary.successes;
  }
  console.log(`  ${total} calls: ${failures} rejected with a clear error, ${successes} valid and succeeded`);
});
