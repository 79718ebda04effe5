// The output folder (--out): one run at a time (a lock that real concurrent processes respect, taken over when its
// holder died, released at the end and on error), nothing written through a symbolic link planted in it, and what an
// interrupted run leaves (temporary files, metrics rows past the checkpoint, a torn line, a generator file behind the
// checkpoint) repaired at the next start.

import assert from "node:assert/strict";
import { GanTrainer, type TrainOptions } from "../src/train/trainer.ts";
import { generatorOf, smallRunOptions, SUBPROCESS_PERMS, syntheticImages } from "./small_gan.ts";

const data = syntheticImages(96);
const opts: TrainOptions = smallRunOptions({ nEpochs: 100, sampleInterval: 4, checkpointEvery: 3, stepsPerCall: 1 });
const PERMS = SUBPROCESS_PERMS;
const WORKER = new URL("./workers/crash_worker.ts", import.meta.url).pathname;
const decoder = new TextDecoder();

function exists(path: string): boolean {
  try {
    Deno.lstatSync(path);
    return true;
  } catch {
    return false;
  }
}

function cli(args: string[]) {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", ...PERMS, "src/cli/train.ts", "--backend", "cpu", "--log_format", "seed", ...args],
    stdout: "null",
    stderr: "piped",
  }).output();
}

Deno.test("out: a symbolic link planted in --out is refused, naming it and its target; the target is intact", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const name of ["metrics.jsonl", "run.json", "checkpoints/latest.safetensors", "images", "checkpoints"]) {
      const out = `${dir}/out-${name.replace("/", "-")}`;
      await Deno.mkdir(`${out}/checkpoints`, { recursive: true });
      if (name === "checkpoints") await Deno.remove(`${out}/checkpoints`);
      const isDir = name === "images" || name === "checkpoints";
      const target = `${dir}/target-${name.replace("/", "-")}`;
      if (isDir) await Deno.mkdir(target);
      else await Deno.writeTextFile(target, "precious\n");
      await Deno.symlink(target, `${out}/${name}`);
      using t = await GanTrainer.create(data, { ...opts, maxSteps: 5, outDir: out });
      await assert.rejects(t.run(), {
        message:
          `Cannot use output folder "${out}": "${name}" is a symbolic link (to "${target}"); deno-gan does not ` +
          `write through links in its output folder: remove the link`,
      });
      if (isDir) assert.deepEqual([...Deno.readDirSync(target)], [], `${name}: something was written through the link`);
      else assert.equal(await Deno.readTextFile(target), "precious\n", `${name}: the link's target was changed`);
      assert.ok(!exists(`${out}/run.lock`), `${name}: the lock was not released`);
    }
    // The command line: exit code 1, the message, the target intact (it used to be truncated).
    const out = `${dir}/cli`;
    await Deno.mkdir(out);
    await Deno.writeTextFile(`${dir}/precious.txt`, "precious\n");
    await Deno.symlink(`${dir}/precious.txt`, `${out}/metrics.jsonl`);
    const r = await cli(["--dataset", "embedded", "--out", out, "--max_steps", "2"]);
    assert.equal(r.code, 1);
    assert.match(decoder.decode(r.stderr), /"metrics.jsonl" is a symbolic link \(to ".*precious.txt"\)/);
    assert.equal(await Deno.readTextFile(`${dir}/precious.txt`), "precious\n");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name:
    "out: a run on a held --out exits 2 naming the folder and the holder's pid; a killed holder's lock is taken over",
  sanitizeResources: false,
  fn: async () => {
    const out = await Deno.makeTempDir();
    // The holder: a training process slowed down to 20 ms per step.
    const holder = new Deno.Command(Deno.execPath(), {
      args: ["run", ...PERMS, WORKER, out, "100000", "20"],
      stdout: "null",
      stderr: "null",
    }).spawn();
    try {
      const deadline = Date.now() + 60_000;
      while (!exists(`${out}/checkpoints/latest.safetensors`) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 50));
      }
      assert.ok(exists(`${out}/run.lock`), "the holder has no lock");
      const runJson = await Deno.readFile(`${out}/run.json`);
      // A second process on the same folder: exit code 2 before it writes anything.
      const second = await cli(["--dataset", "embedded", "--out", out, "--max_steps", "2", "--seed", "1"]);
      const err = decoder.decode(second.stderr);
      assert.equal(second.code, 2, err);
      assert.match(err, new RegExp(`Cannot use "${out}": another run holds it: pid ${holder.pid} on .*, started `));
      assert.deepEqual(await Deno.readFile(`${out}/run.json`), runJson, "the second run rewrote run.json");
      // The same in-process (the library).
      using t = await GanTrainer.create(data, { ...opts, maxSteps: 1, outDir: out });
      await assert.rejects(t.run(), { name: "DirLockedError" });
      // Killed, the holder leaves its lock file; nobody holds it any more, so the next run takes it over.
      holder.kill("SIGKILL");
      await holder.status;
      assert.ok(exists(`${out}/run.lock`));
      const { info } = await import("../src/train/checkpoint.ts").then((m) =>
        m.readCheckpoint(`${out}/checkpoints/latest.safetensors`)
      );
      const next = await new Deno.Command(Deno.execPath(), {
        args: ["run", ...PERMS, WORKER, out, `${info.step + 3}`, "0"],
        stdout: "null",
        stderr: "piped",
      }).output();
      const nextErr = decoder.decode(next.stderr);
      assert.equal(next.code, 0, nextErr);
      assert.match(
        nextErr,
        new RegExp(
          `deno-gan: took over the stale lock "${out}/run.lock" of pid ${holder.pid} on .* no process holds it`,
        ),
      );
      assert.ok(!exists(`${out}/run.lock`), "the lock was not released at the end");
    } finally {
      try {
        holder.kill("SIGKILL");
      } catch { /* already gone */ }
      await holder.status;
      await Deno.remove(out, { recursive: true });
    }
  },
});

Deno.test("out: of 4 processes racing for one folder exactly one gets it", async () => {
  const out = await Deno.makeTempDir();
  try {
    const lock = new URL("../src/io/lock.ts", import.meta.url).href;
    const code = `import { DirLock } from "${lock}";
      try { const l = DirLock.acquire(${
      JSON.stringify(out)
    }); console.log("got"); await new Promise((r) => setTimeout(r, 3000)); l.release(); }
      catch (e) { console.log(e.name === "DirLockedError" ? "locked" : String(e)); }`;
    const racers = Array.from(
      { length: 4 },
      () => new Deno.Command(Deno.execPath(), { args: ["eval", code], stdout: "piped", stderr: "piped" }).output(),
    );
    const said = (await Promise.all(racers)).map((r) => decoder.decode(r.stdout).trim()).sort();
    assert.deepEqual(said, ["got", "locked", "locked", "locked"]);
    assert.ok(!exists(`${out}/run.lock`));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("out: the lock is released when a run fails", async () => {
  const out = await Deno.makeTempDir();
  try {
    using t = await GanTrainer.create(data, { ...opts, lr: 1e38, maxSteps: 5, outDir: out });
    await assert.rejects(t.run(), { name: "DivergenceError" });
    assert.ok(!exists(`${out}/run.lock`));
    using again = await GanTrainer.create(data, { ...opts, maxSteps: 2, outDir: out });
    assert.equal((await again.run()).steps, 2);
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});

Deno.test("out: a start repairs what an interrupted run left: temporary files, metrics past the checkpoint, the generator file", async () => {
  const out = await Deno.makeTempDir();
  const ck = `${out}/checkpoints`;
  try {
    {
      using t = await GanTrainer.create(data, { ...opts, maxSteps: 3, outDir: out });
      await t.run();
    }
    const oldGenerator = await Deno.readFile(`${ck}/generator.safetensors`); // of step 3
    {
      using t = await GanTrainer.create(data, {
        ...opts,
        maxSteps: 6,
        outDir: out,
        resume: `${ck}/latest.safetensors`,
      });
      await t.run();
    }
    // What a kill at step 8 leaves, the generator file one checkpoint behind (killed between the two renames):
    await Deno.writeFile(`${ck}/generator.safetensors`, oldGenerator);
    const rows = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trimEnd().split("\n");
    assert.equal(rows.length, 6);
    await Deno.writeTextFile(`${out}/metrics.jsonl`, '{"step":6}\n{"step":7}\n{"step":8,"d_lo', { append: true });
    await Deno.writeFile(`${ck}/.latest.safetensors.1k2j3h4g.tmp`, new Uint8Array(1 << 20));
    await Deno.writeFile(`${out}/.run.json.zz9.tmp`, new Uint8Array(10));
    await Deno.writeFile(`${out}/images/.4.png.abc.tmp`, new Uint8Array(10));
    await Deno.writeTextFile(`${out}/run.lock`, '{"pid":4194305,"hostname":"h","started":"x","token":"t"}');
    await Deno.writeFile(`${out}/keep.tmp`, new Uint8Array(1)); // not a name of ours: kept
    let checked = false;
    using t = await GanTrainer.create(data, { ...opts, maxSteps: 9, outDir: out, resume: `${ck}/latest.safetensors` });
    await t.run({
      onStep: async (e) => {
        if (e.step !== 6) return;
        // The first step after the start: the repairs are done, no checkpoint has been written since.
        const names = (d: string) => [...Deno.readDirSync(d)].map((x) => x.name).sort();
        assert.deepEqual(names(ck), ["generator.safetensors", "latest.safetensors"]);
        assert.deepEqual(names(`${out}/images`), ["0.png", "4.png", "fixed_0.png", "fixed_4.png"]);
        assert.ok(names(out).includes("keep.tmp") && !names(out).some((n) => n.startsWith(".")));
        const want = await generatorOf(`${ck}/latest.safetensors`);
        assert.deepEqual(await Deno.readFile(`${ck}/generator.safetensors`), want);
        const steps = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trimEnd().split("\n").map((l) =>
          JSON.parse(l).step
        );
        assert.deepEqual(steps, [0, 1, 2, 3, 4, 5, 6]);
        checked = true;
      },
    });
    assert.ok(checked);
    const steps = (await Deno.readTextFile(`${out}/metrics.jsonl`)).trimEnd().split("\n").map((l) =>
      JSON.parse(l).step
    );
    assert.deepEqual(steps, [0, 1, 2, 3, 4, 5, 6, 7, 8]);
    assert.ok(!exists(`${out}/run.lock`));
  } finally {
    await Deno.remove(out, { recursive: true });
  }
});
