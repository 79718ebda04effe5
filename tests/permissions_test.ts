// The permission sets of deno.json (`deno run -P=<set>`): the train, sample, export, eval, report and prefetch tasks use
// theirs and spell out no permission of their own, and each set grants what it says and nothing more, as Deno 2.9
// reads it: a probe run with `-P=<set>` asks Deno for the state of a list of permissions (paths in a set are relative
// to deno.json, whatever the working directory).

import assert from "node:assert/strict";

const ROOT = decodeURIComponent(new URL("../", import.meta.url).pathname);
const config = JSON.parse(await Deno.readTextFile(`${ROOT}deno.json`)) as {
  tasks: Record<string, string | { command: string }>;
  permissions: Record<string, Record<string, boolean | string[]>>;
};

const PROBES: Record<string, Deno.PermissionDescriptor> = {
  "read any": { name: "read", path: "/etc/hostname" },
  "write any": { name: "write", path: "/tmp/gan-probe" },
  "ffi checkout": { name: "ffi", path: `${ROOT}native/target/release/libgan_native.so` },
  "ffi elsewhere": { name: "ffi", path: "/tmp/libgan_native.so" },
  "sys memory": { name: "sys", kind: "systemMemoryInfo" },
  "sys cpus": { name: "sys", kind: "cpus" },
  "env GAN_NATIVE_LIB": { name: "env", variable: "GAN_NATIVE_LIB" },
  "env HOME": { name: "env", variable: "HOME" },
  "env DENO_GAN_DEBUG": { name: "env", variable: "DENO_GAN_DEBUG" },
  "env PATH": { name: "env", variable: "PATH" },
  "net": { name: "net" },
  "net 127.0.0.1": { name: "net", host: "127.0.0.1:8080" },
  "net 0.0.0.0": { name: "net", host: "0.0.0.0:8080" },
  "run": { name: "run" },
  "import": { name: "import", host: "example.com" },
};

/** The probes granted under `-P=<set>`, run from a folder other than the checkout. */
async function granted(set: string): Promise<string[]> {
  const probe = `const probes = ${JSON.stringify(PROBES)};
const out = [];
for (const [k, d] of Object.entries(probes)) if ((await Deno.permissions.query(d)).state === "granted") out.push(k);
console.log(JSON.stringify(out));`;
  const dir = await Deno.makeTempDir({ prefix: "gan-perm-" });
  try {
    await Deno.writeTextFile(`${dir}/probe.js`, probe);
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", `--config=${ROOT}deno.json`, `-P=${set}`, "--no-prompt", "--no-lock", `${dir}/probe.js`],
      cwd: dir,
      env: { NO_COLOR: "1" },
      stdout: "piped",
      stderr: "piped",
    }).output();
    const stderr = new TextDecoder().decode(out.stderr);
    assert.equal(out.code, 0, stderr);
    return JSON.parse(new TextDecoder().decode(out.stdout).trim());
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const NATIVE = ["read any", "write any", "ffi checkout", "sys memory", "env GAN_NATIVE_LIB"];
const EXPECTED: Record<string, string[]> = {
  train: [...NATIVE, "env HOME", "env DENO_GAN_DEBUG", "net 127.0.0.1"], // --serve's live view, on 127.0.0.1 only
  sample: [...NATIVE, "env DENO_GAN_DEBUG"],
  export: [...NATIVE, "env DENO_GAN_DEBUG"],
  eval: [...NATIVE, "env HOME", "env DENO_GAN_DEBUG"],
  report: ["read any", "write any", "env DENO_GAN_DEBUG"],
  lib: [...NATIVE, "env HOME"],
  prefetch: ["read any", "write any", "net", "net 127.0.0.1", "net 0.0.0.0", "env HOME", "env DENO_GAN_DEBUG"],
};

Deno.test("permission sets: the tasks use -P=<set> and grant nothing else on their command line", () => {
  for (const task of ["train", "sample", "export", "eval", "report", "prefetch"]) {
    const t = config.tasks[task];
    const command = typeof t === "string" ? t : t.command;
    assert.match(command, new RegExp(`deno run -P=${task} src/cli/${task}\\.ts$`), command);
    assert.doesNotMatch(command, /--allow-|-A\b/, command);
  }
  assert.deepEqual(Object.keys(config.permissions).sort(), Object.keys(EXPECTED).sort());
});

for (const [set, expected] of Object.entries(EXPECTED)) {
  Deno.test(`permission sets: -P=${set} grants ${expected.length} of the ${Object.keys(PROBES).length} probes`, async () => {
    assert.deepEqual((await granted(set)).sort(), [...expected].sort());
  });
}
