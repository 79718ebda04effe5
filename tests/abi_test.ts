// The FFI symbol table (src/native/ffi.ts) against the Rust exports (native/src/ffi.rs): every `extern "C"` function
// is declared with the same name, parameter types and result type, and nothing is declared that Rust does not export.
// Read from the sources, so the two can never drift (the ABI version only says that they should agree).

import assert from "node:assert/strict";
import { SYMBOLS } from "../src/native/ffi.ts";

const FFI_RS = new URL("../native/src/ffi.rs", import.meta.url);

/** Deno's FFI type for a Rust parameter or result type of the C ABI. */
function denoType(rust: string): string {
  const t = rust.trim();
  if (/^\*(const|mut) /.test(t)) return "buffer";
  const scalar: Record<string, string> = {
    u8: "u8",
    i8: "i8",
    u16: "u16",
    i16: "i16",
    u32: "u32",
    i32: "i32",
    u64: "u64",
    i64: "i64",
    usize: "usize",
    isize: "isize",
    f32: "f32",
    f64: "f64",
    bool: "bool",
  };
  const d = scalar[t];
  if (d === undefined) throw new Error(`unmapped Rust type in the C ABI: "${t}"`);
  return d;
}

interface Signature {
  parameters: string[];
  result: string;
}

/** Every `#[no_mangle] pub extern "C" fn` of ffi.rs, outside its test module, with Deno's types. */
export function rustExports(source: string): Map<string, Signature> {
  const body = source.split(/#\[cfg\(test\)\]/)[0];
  const out = new Map<string, Signature>();
  const re = /#\[no_mangle\]\s*(?:#\[[^\]]*\]\s*)*pub extern "C" fn (\w+)\s*\(([^)]*)\)\s*(?:->\s*([\w\s*]+?))?\s*\{/g;
  for (const m of body.matchAll(re)) {
    const params = m[2].split(",").map((p) => p.trim()).filter((p) => p.length > 0);
    out.set(m[1], {
      parameters: params.map((p) => denoType(p.slice(p.indexOf(":") + 1))),
      result: m[3] === undefined ? "void" : denoType(m[3]),
    });
  }
  return out;
}

Deno.test('abi: the symbol table matches every extern "C" function of native/src/ffi.rs', async () => {
  const source = await Deno.readTextFile(FFI_RS);
  const rust = rustExports(source);
  const externs = source.split(/#\[cfg\(test\)\]/)[0].match(/extern "C" fn/g)?.length ?? 0;
  assert.equal(rust.size, externs, 'every extern "C" fn is #[no_mangle] and parsed');
  assert.ok(rust.size >= 20, `found only ${rust.size} exports: the parser is broken`);
  const declared = new Map<string, { parameters: readonly string[]; result: string }>(Object.entries(SYMBOLS));
  assert.deepEqual([...declared.keys()].sort(), [...rust.keys()].sort(), "the same function names");
  for (const [name, sig] of rust) {
    const d = declared.get(name)!;
    assert.deepEqual(
      { parameters: [...d.parameters], result: d.result },
      sig,
      `${name}: src/native/ffi.ts declares ${JSON.stringify(d)}, native/src/ffi.rs exports ${JSON.stringify(sig)}`,
    );
  }
});

Deno.test("abi: the parser sees a changed signature", () => {
  const src =
    `#[no_mangle]\n#[allow(clippy::too_many_arguments)]\npub extern "C" fn gan_x(a: u32, p: *const f32, n: usize) -> i64 {\n}\n` +
    `#[no_mangle]\npub extern "C" fn gan_y() {\n}\n#[cfg(test)]\n#[no_mangle]\npub extern "C" fn gan_z() {}`;
  const got = rustExports(src);
  assert.deepEqual(Object.fromEntries(got), {
    gan_x: { parameters: ["u32", "buffer", "usize"], result: "i64" },
    gan_y: { parameters: [], result: "void" },
  });
  assert.throws(() => rustExports(`#[no_mangle]\npub extern "C" fn gan_w(s: String) {\n}`), /unmapped Rust type/);
});
