/**
 * Command line: download the MNIST files into a directory, checking their SHA-256.
 *
 * ```sh
 * deno run --allow-net --allow-read --allow-write src/cli/fetch_mnist.ts --dir data/mnist
 * ```
 *
 * Flags: `--dir DIR` (default `data/mnist`), `--base-url URL` (default PyTorch's mirror), `--help`.
 *
 * @example Run as a library call
 * ```ts
 * import { main } from "./fetch_mnist.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["--help"]), 0);
 * assert.equal(await main(["--bogus"]), 2);
 * ```
 *
 * @module
 */

import { parseArgs } from "node:util";
import { fetchMnist, type FetchMnistOptions, MNIST_BASE_URL } from "../data/fetch_mnist.ts";

const USAGE = `Usage: fetch_mnist [--dir DIR] [--base-url URL]

Downloads train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz and
t10k-labels-idx1-ubyte.gz, checks each against its known SHA-256, and writes it atomically into DIR.
Files already present with the right hash are kept.

  --dir DIR        destination directory (default: data/mnist)
  --base-url URL   mirror to download from (default: ${MNIST_BASE_URL})
  -h, --help       show this help
`;

/**
 * Runs the command with `args` (without the program name) and returns the exit code: 0 on success, 1 when a
 * download fails, 2 on bad usage. Messages go to stdout/stderr.
 *
 * @param args Command-line arguments.
 * @param options Passed to {@linkcode fetchMnist} (tests use `fetchImpl` and `files`).
 * @returns The exit code.
 *
 * @example
 * ```ts
 * import { main } from "./fetch_mnist.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(await main(["--dir"]), 2); // missing value
 * ```
 */
export async function main(args: string[], options: FetchMnistOptions = {}): Promise<number> {
  let values: { dir?: string; "base-url"?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args,
      options: {
        dir: { type: "string" },
        "base-url": { type: "string" },
        help: { type: "boolean", short: "h" },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`error: ${(e as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const dir = values.dir ?? "data/mnist";
  const baseUrl = values["base-url"] ?? options.baseUrl ?? MNIST_BASE_URL;
  try {
    await fetchMnist(dir, {
      ...options,
      baseUrl,
      onFile: (r) =>
        console.log(
          `${r.status === "present" ? "ok (present)" : "downloaded"}  ${r.path}  ${r.bytes} bytes  sha256 ${r.sha256}`,
        ),
    });
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    return 1;
  }
  console.log(`MNIST is in ${dir}; train with --dataset idx --data ${dir}`);
  return 0;
}

if (import.meta.main) {
  Deno.exit(await main(Deno.args));
}
