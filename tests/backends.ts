// The backends the parity tests run on: the CPU always; the GPU when a Vulkan/Metal/DX12 adapter exists (lavapipe,
// Mesa's software Vulkan, counts: CI installs it). Without any adapter the GPU tests are reported as ignored, with
// the reason in their name; under CI (CI=true) a missing adapter is a failure instead.

import { Context } from "../src/native/handles.ts";
import { NativeError } from "../src/native/ffi.ts";

/** A backend to run a test on, or the reason it cannot run here. */
export interface TestBackend {
  name: "cpu" | "gpu";
  ctx: Context | null;
  reason: string;
}

function openGpu(): TestBackend {
  try {
    const ctx = new Context({ backend: "gpu", threads: 2 });
    const a = ctx.info().adapter;
    return { name: "gpu", ctx, reason: `${a?.name} (${a?.api}${a?.software ? ", software" : ""})` };
  } catch (e) {
    if (e instanceof NativeError && e.status === "Unavailable") {
      return { name: "gpu", ctx: null, reason: e.nativeMessage };
    }
    throw e;
  }
}

export const BACKENDS: TestBackend[] = [
  { name: "cpu", ctx: new Context({ backend: "cpu", threads: 2 }), reason: "" },
  openGpu(),
];

/** Registers `fn` once per backend: `name [cpu]`, `name [gpu]` (ignored, with the reason, when there is no GPU). */
export function testOnBackends(name: string, fn: (ctx: Context, b: TestBackend) => void | Promise<void>): void {
  for (const b of BACKENDS) {
    Deno.test({
      name: b.ctx ? `${name} [${b.name}]` : `${name} [${b.name}: ignored, ${b.reason}]`,
      ignore: b.ctx === null,
      fn: () => fn(b.ctx!, b),
    });
  }
}

if (Deno.env.get("CI") === "true") {
  Deno.test("CI runs the GPU tests (on lavapipe at least)", () => {
    const gpu = BACKENDS.find((b) => b.name === "gpu")!;
    if (!gpu.ctx) throw new Error(`no GPU adapter in CI: ${gpu.reason}; install mesa-vulkan-drivers`);
  });
}
