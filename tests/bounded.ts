/**
 * Test helper: runs a Deno subprocess under a memory and time guard. The child's peak resident memory (VmHWM in
 * /proc/<pid>/status, Linux) is polled while it runs; a child that passes the memory bound or the time bound is killed
 * with SIGKILL, so a test of an allocation bomb or a hang fails quickly and harmlessly on code that has the bug.
 *
 * @module
 */

/** What {@linkcode runBounded} observed. */
export interface BoundedRun {
  /** The exit code (137 or the like when killed). */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** The largest VmHWM seen, in MiB (0 where /proc is not available). */
  peakMiB: number;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
  /** Why the guard killed the child, or null when it exited by itself. */
  killed: "memory" | "time" | null;
}

function vmHwmMiB(pid: number): number {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(Deno.readTextFileSync(`/proc/${pid}/status`));
    return m ? Number(m[1]) / 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs `deno <args>` and polls its peak RSS every 10 ms.
 *
 * @param args The arguments after the deno executable (e.g. `["run", "-A", "script.ts"]`).
 * @param limits `maxMiB`: kill above this peak RSS; `maxSeconds`: kill after this long.
 * @returns The outcome; `killed` says whether a guard fired.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runBounded } from "./bounded.ts";
 *
 * const r = await runBounded(["eval", "console.log(6 * 7)"], { maxMiB: 1024, maxSeconds: 30 });
 * assert.equal(r.stdout.trim(), "42");
 * assert.equal(r.killed, null);
 * ```
 */
export async function runBounded(
  args: string[],
  limits: { maxMiB: number; maxSeconds: number; cwd?: string },
): Promise<BoundedRun> {
  const t0 = performance.now();
  const child = new Deno.Command(Deno.execPath(), {
    args,
    cwd: limits.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const outText = new Response(child.stdout).text();
  const errText = new Response(child.stderr).text();
  let peak = 0;
  let killed: BoundedRun["killed"] = null;
  let done = false;
  const status = child.status.then((s) => (done = true, s));
  while (!done) {
    peak = Math.max(peak, vmHwmMiB(child.pid));
    const over = peak > limits.maxMiB ? "memory" : (performance.now() - t0) / 1000 > limits.maxSeconds ? "time" : null;
    if (over !== null && killed === null) {
      killed = over;
      try {
        child.kill("SIGKILL");
      } catch { /* it exited meanwhile */ }
    }
    await Promise.race([status, new Promise((r) => setTimeout(r, 10))]);
  }
  const s = await status;
  return {
    code: s.code,
    stdout: await outText,
    stderr: await errText,
    peakMiB: peak,
    seconds: (performance.now() - t0) / 1000,
    killed,
  };
}
