/**
 * What every command does with its command line and its errors: flags parsed strictly (an unknown, repeated or
 * valueless flag is a usage error), and any error printed as one line `error: ...` with exit code 1 (2 for usage
 * errors), never a stack trace unless asked for with `--debug` or `DENO_GAN_DEBUG=1`.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./run.ts";
 * const v = parseFlags(["--n", "4", "--seed", "-1"], { n: "string", seed: "string", help: "boolean" });
 * assert.deepEqual(v, { n: "4", seed: "-1" });
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";

/** A bad command line: the message names the flag and the value (exit code 2). */
export class UsageError extends Error {
  /** Makes the error. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/**
 * Parses `--name value` and `--name=value` flags of the given kinds, strictly: an unknown flag, a flag given twice,
 * a positional argument or a missing value is a {@link UsageError}. A value that starts with `-` (e.g. `--seed -1`)
 * is taken as the value. `--debug` is accepted everywhere (see {@link runCommand}).
 *
 * @param args The command line (without the program).
 * @param kinds Each flag's kind: `string` (takes a value) or `boolean`.
 * @returns The values given, by flag name (booleans as `true`).
 *
 * @example A repeated flag is refused
 * ```ts
 * import assert from "node:assert/strict";
 * import { parseFlags } from "./run.ts";
 * assert.throws(() => parseFlags(["--n", "1", "--n=2"], { n: "string" }), /--n is given twice/);
 * ```
 */
export function parseFlags(
  args: string[],
  kinds: Record<string, "string" | "boolean">,
): Record<string, string | boolean> {
  const options: Record<string, { type: "string" | "boolean" }> = { debug: { type: "boolean" } };
  for (const [name, type] of Object.entries(kinds)) options[name] = { type };
  const joined: string[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const name = a.startsWith("--") ? a.slice(2).split("=")[0] : undefined;
    if (name !== undefined && options[name] !== undefined) {
      if (seen.has(name)) throw new UsageError(`--${name} is given twice; give each flag once`);
      seen.add(name);
    }
    // `--lr -1` is a flag followed by its (negative) value: join them so that parseArgs sees `--lr=-1`.
    if (name !== undefined && !a.includes("=") && options[name]?.type === "string" && i + 1 < args.length) {
      joined.push(`${a}=${args[++i]}`);
    } else joined.push(a);
  }
  try {
    const { values } = parseArgs({ args: joined, options, strict: true, allowPositionals: false });
    const { debug: _, ...rest } = values;
    return { ...rest } as Record<string, string | boolean>;
  } catch (e) {
    throw new UsageError((e as Error).message.replace(/\. To specify a positional argument.*$/s, ""));
  }
}

function debugRequested(args: string[]): boolean {
  if (args.includes("--debug")) return true;
  try {
    return Deno.env.get("DENO_GAN_DEBUG") === "1";
  } catch {
    return false; // no permission to read it: not asked for
  }
}

/**
 * Runs a command's `main` and turns every error into one line on stderr: `error: <message>`, exit code 2 for a
 * {@link UsageError} (followed by a hint to run `--help`), the error's own `exitCode` when it has one (2 for an
 * output folder held by another run), and 1 for anything else. With `--debug` (or
 * `DENO_GAN_DEBUG=1`) the stack trace follows.
 *
 * @param command The command's name, for the usage hint (e.g. `train`).
 * @param main The command: takes the arguments, returns the exit code.
 * @param args The command line (default `Deno.args`).
 * @returns The exit code.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { runCommand } from "./run.ts";
 * const code = await runCommand("demo", () => Promise.reject(new Error("no such file")), []);
 * assert.equal(code, 1); // and stderr has "error: no such file"
 * ```
 */
export async function runCommand(
  command: string,
  main: (args: string[]) => Promise<number>,
  args: string[] = Deno.args,
): Promise<number> {
  try {
    return await main(args.filter((a) => a !== "--debug"));
  } catch (e) {
    const err = e instanceof Error ? e : new Error(String(e));
    console.error(`error: ${err.message}`);
    if (e instanceof UsageError) console.error(`Run "deno task ${command} --help" for the flags.`);
    if (debugRequested(args)) console.error(err.stack);
    // A usage error exits 2, as does an error that says so (`exitCode`, e.g. an output folder in use).
    const own = (e as { exitCode?: unknown }).exitCode;
    return e instanceof UsageError ? 2 : typeof own === "number" ? own : 1;
  }
}
