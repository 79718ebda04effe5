// What the CLI tests ask of a failed command's stderr: exactly one `error: ...` line, matching, and no stack trace.

import assert from "node:assert/strict";

/** Asserts one line starting with `error: ` that matches `message`, and no stack trace, in `stderr`. */
export function oneErrorLine(stderr: string, message: RegExp): void {
  const errors = stderr.split("\n").filter((l) => l.startsWith("error: "));
  assert.equal(errors.length, 1, `one "error: " line expected:\n${stderr}`);
  assert.match(errors[0], message);
  assert.doesNotMatch(stderr, /^\s+at /m, `no stack trace expected:\n${stderr}`);
}
