// Bad input on the command line ends in one clear line `error: ...` and exit code 1 (2 for usage), never a stack
// trace unless asked for (--debug or DENO_GAN_DEBUG=1); a repeated flag is an error; `sample --seed -1` names the
// value instead of "argument is ambiguous".

import assert from "node:assert/strict";
import { oneErrorLine } from "./cli_output.ts";

const ROOT = new URL("../", import.meta.url);

async function cli(command: "train" | "sample", args: string[], env: Record<string, string> = {}) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--allow-read", "--allow-write", "--allow-ffi", "--allow-env", `src/cli/${command}.ts`, ...args],
    cwd: ROOT,
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  return { code: out.code, stderr: new TextDecoder().decode(out.stderr) };
}

Deno.test("cli errors: usage errors exit 2 with one line naming the flag and the value", async () => {
  const cases: [("train" | "sample"), string[], RegExp][] = [
    ["train", ["--n_epochs", "5", "--n_epochs", "6"], /^error: --n_epochs is given twice/],
    ["train", ["--lr=1", "--lr", "2"], /^error: --lr is given twice/],
    ["train", ["--bogus", "1"], /^error: Unknown option '--bogus'/],
    ["train", ["--batch_size", "-3"], /^error: --batch_size must be a positive integer, got "-3"/],
    [
      "sample",
      ["--checkpoint", "x.safetensors", "--seed", "-1"],
      /^error: --seed must be a non-negative integer, got "-1"/,
    ],
    ["sample", ["--n", "3", "--n", "4", "--checkpoint", "x"], /^error: --n is given twice/],
    ["sample", [], /^error: --checkpoint PATH is required/],
  ];
  for (const [command, args, message] of cases) {
    const r = await cli(command, args);
    assert.equal(r.code, 2, `${command} ${args.join(" ")}:\n${r.stderr}`);
    oneErrorLine(r.stderr, message);
    assert.match(r.stderr, new RegExp(`deno task ${command} --help`));
  }
});

Deno.test("cli errors: a missing file exits 1 with one line and no stack trace; --debug adds the trace", async () => {
  const missing = "/nonexistent/deno-gan/latest.safetensors";
  const cases: [("train" | "sample"), string[]][] = [
    ["sample", ["--checkpoint", missing]],
    ["train", ["--resume", missing, "--dataset", "embedded", "--out", await Deno.makeTempDir()]],
    ["train", ["--dataset", "idx", "--data", "/nonexistent/idx"]],
  ];
  for (const [command, args] of cases) {
    const r = await cli(command, args);
    assert.equal(r.code, 1, `${command} ${args.join(" ")}:\n${r.stderr}`);
    oneErrorLine(r.stderr, /\/nonexistent\//);
  }
  const debug = await cli("sample", ["--checkpoint", missing, "--debug"]);
  assert.equal(debug.code, 1);
  assert.match(debug.stderr, /^\s+at /m, "--debug prints the stack trace");
  const env = await cli("sample", ["--checkpoint", missing], { DENO_GAN_DEBUG: "1" });
  assert.match(env.stderr, /^\s+at /m, "DENO_GAN_DEBUG=1 prints the stack trace");
});
