/**
 * Atomic file writes: a reader sees either the old file or the whole new one, never a half-written file.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/out.bin`, new Uint8Array([1, 2, 3]));
 * assert.deepEqual(await Deno.readFile(`${dir}/out.bin`), new Uint8Array([1, 2, 3]));
 * await Deno.remove(dir, { recursive: true });
 * ```
 *
 * @module
 */

function dirAndBase(path: string): { dir: string; base: string } {
  const cut = Math.max(path.lastIndexOf("/"), Deno.build.os === "windows" ? path.lastIndexOf("\\") : -1);
  return cut < 0 ? { dir: ".", base: path } : { dir: path.slice(0, cut) || "/", base: path.slice(cut + 1) };
}

/**
 * Writes `bytes` to `path` atomically: the bytes go to a temporary file in the same directory
 * (`.<name>.<random>.tmp`), which is flushed to disk (fsync) and then renamed over `path`. On any failure the
 * temporary file is removed and the error is rethrown with the path in its message; `path` is left as it was.
 *
 * @param path The destination file; its directory must exist.
 * @param bytes The complete new contents.
 *
 * @example
 * ```ts
 * import { writeFileAtomic } from "./atomic.ts";
 * import assert from "node:assert/strict";
 *
 * const dir = await Deno.makeTempDir();
 * await writeFileAtomic(`${dir}/a.txt`, new TextEncoder().encode("old"));
 * await writeFileAtomic(`${dir}/a.txt`, new TextEncoder().encode("new"));
 * assert.equal(await Deno.readTextFile(`${dir}/a.txt`), "new");
 * assert.deepEqual([...Deno.readDirSync(dir)].map((e) => e.name), ["a.txt"]);
 * await Deno.remove(dir, { recursive: true });
 * ```
 */
export async function writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const { dir, base } = dirAndBase(path);
  const suffix = crypto.getRandomValues(new Uint32Array(2)).reduce((s, v) => s + v.toString(36), "");
  const tmp = `${dir}/.${base}.${suffix}.tmp`;
  let file: Deno.FsFile | null = null;
  try {
    file = await Deno.open(tmp, { write: true, createNew: true, mode: 0o644 });
    let written = 0;
    while (written < bytes.length) written += await file.write(bytes.subarray(written));
    try {
      await file.syncData();
    } catch {
      // Some file systems cannot fsync; the rename is still atomic there.
    }
    file.close();
    file = null;
    await Deno.rename(tmp, path);
  } catch (e) {
    if (file !== null) {
      try {
        file.close();
      } catch {
        // already closed
      }
    }
    await Deno.remove(tmp).catch(() => {});
    throw new Error(`Cannot write "${path}": ${(e as Error).message}`, { cause: e });
  }
}
