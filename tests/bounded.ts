/**
 * Test helper: runs a Deno subprocess under a memory and time guard. A small bash loop starts the child, polls its
 * peak resident memory (VmHWM in /proc/<pid>/status, Linux) every 10 ms, and kills it with SIGKILL when it passes the
 * memory bound or the time bound, so a test of an allocation bomb or a hang fails quickly and harmlessly on code that
 * has the bug. (The loop runs in bash because Deno lets a process read /proc only with --allow-all.)
 *
 * @module
 */

/** What {@linkcode runBounded} observed. */
export interface BoundedRun {
  /** The exit code (137 when killed). */
  code: number;
  /** Standard output. */
  stdout: string;
  /** Standard error. */
  stderr: string;
  /** The largest VmHWM seen, in MiB. */
  peakMiB: number;
  /** Wall-clock seconds from spawn to exit. */
  seconds: number;
  /** Why the guard killed the child, or null when it exited by itself. */
  killed: "memory" | "time" | null;
}

// $1 max KiB, $2 max seconds, $3 report file, then the command. Writes "<peak KiB> <memory|time|none>" to the report.
const GUARD = `
max=$1; secs=$2; report=$3; shift 3
"$@" & pid=$!
peak=0; why=none; start=$EPOCHREALTIME
while kill -0 "$pid" 2>/dev/null; do
  while read -r key value _; do
    if [ "$key" = "VmHWM:" ] && [ "$value" -gt "$peak" ]; then peak=$value; fi
  done < "/proc/$pid/status" 2>/dev/null
  if [ "$why" = none ]; then
    if [ "$peak" -gt "$max" ]; then why=memory; kill -9 "$pid" 2>/dev/null
    elif [ "$(( \${EPOCHREALTIME/./} - \${start/./} ))" -gt "$(( secs * 1000000 ))" ]; then why=time; kill -9 "$pid" 2>/dev/null
    fi
  fi
  sleep 0.01
done
wait "$pid"; code=$?
echo "$peak $why" > "$report"
exit $code
`;

/**
 * Runs `deno <args>` under the guard.
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
 * assert.ok(r.peakMiB > 10, `peak ${r.peakMiB} MiB`); // a Deno process takes tens of MiB
 * ```
 */
export async function runBounded(
  args: string[],
  limits: { maxMiB: number; maxSeconds: number; cwd?: string },
): Promise<BoundedRun> {
  const report = await Deno.makeTempFile({ prefix: "bounded-" });
  try {
    const t0 = performance.now();
    const maxKiB = String(Math.round(limits.maxMiB * 1024));
    const r = await new Deno.Command("bash", {
      args: ["-c", GUARD, "guard", maxKiB, String(limits.maxSeconds), report, Deno.execPath(), ...args],
      cwd: limits.cwd,
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const seconds = (performance.now() - t0) / 1000;
    const [peak, why] = (await Deno.readTextFile(report)).trim().split(" ");
    return {
      code: r.code,
      stdout: new TextDecoder().decode(r.stdout),
      stderr: new TextDecoder().decode(r.stderr),
      peakMiB: Number(peak) / 1024,
      seconds,
      killed: why === "memory" || why === "time" ? why : null,
    };
  } finally {
    await Deno.remove(report);
  }
}
