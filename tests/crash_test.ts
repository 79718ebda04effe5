// Crash safety: a training process killed with SIGKILL at random moments never leaves a checkpoint that does not
// load, and resuming after every kill ends with exactly the weights and losses of an uninterrupted run. After every
// kill, the next start's recovery (run here on its own: a start that trains no step) leaves the folder clean: no
// temporary file, no lock, generator.safetensors holding the generator of latest.safetensors, and metrics.jsonl
// holding each step below the checkpoint's exactly once.

import assert from "node:assert/strict";
import { readCheckpoint } from "../src/train/checkpoint.ts";
import { generatorOf } from "./small_gan.ts";
import { mulberry32 } from "./check.ts";

const WORKER = new URL("./workers/crash_worker.ts", import.meta.url).pathname;
const TOTAL = 6000; // more than 20 kills can reach (at most about 250 steps each), so every kill lands mid-run
const KILLS = 20;

function worker(out: string, sleepMs: number, total = TOTAL) {
  return new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "--allow-read",
      "--allow-write",
      "--allow-ffi",
      "--allow-env",
      "--allow-run",
      WORKER,
      out,
      `${total}`,
      `${sleepMs}`,
    ],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

async function finish(out: string): Promise<{ step: number; params: number[] }> {
  const r = await worker(out, 0).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  return JSON.parse(new TextDecoder().decode(r.stdout).trim().split("\n").pop()!);
}

/** The logged losses of every step; each step must be logged once, in order (0, 1, 2, ...), every line whole. */
async function lossesByStep(out: string): Promise<Map<number, string>> {
  const m = new Map<number, string>();
  const text = await Deno.readTextFile(`${out}/metrics.jsonl`);
  assert.ok(text === "" || text.endsWith("\n"), "metrics.jsonl ends with a torn line");
  for (const line of text.split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line);
    assert.equal(r.step, m.size, `metrics.jsonl: step ${r.step} where step ${m.size} was due (a duplicate or a gap)`);
    m.set(r.step, JSON.stringify([r.d_loss, r.g_loss, r.d_real, r.d_fake]));
  }
  return m;
}

/** What the next start finds and repairs after a kill, checked: see the header comment. Returns the step. */
async function recoverAndCheck(out: string): Promise<number> {
  const latest = `${out}/checkpoints/latest.safetensors`;
  let step = 0;
  try {
    Deno.statSync(latest);
    step = (await readCheckpoint(latest)).info.step;
  } catch (e) {
    if (!(e instanceof Deno.errors.NotFound)) throw e;
  }
  // A start that resumes from the latest checkpoint and trains no step: the recovery alone, done by the real code.
  const r = await worker(out, 0, step).output();
  assert.equal(r.code, 0, new TextDecoder().decode(r.stderr));
  for (const sub of ["", "/checkpoints", "/images"]) {
    for (const e of Deno.readDirSync(out + sub)) {
      assert.ok(!/\.(tmp|stale)$/.test(e.name) && e.name !== "run.lock", `left behind: ${out}${sub}/${e.name}`);
    }
  }
  if (step > 0) {
    const want = await generatorOf(latest);
    const have = await Deno.readFile(`${out}/checkpoints/generator.safetensors`);
    assert.ok(
      have.length === want.length && have.every((b, i) => b === want[i]),
      `generator.safetensors is not the generator of latest.safetensors (step ${step})`,
    );
  }
  assert.equal((await lossesByStep(out)).size, step, "metrics.jsonl holds the steps below the checkpoint's");
  return step;
}

Deno.test({
  name: `crash safety: ${KILLS} SIGKILLs at random moments; the latest checkpoint always loads; resume is exact`,
  sanitizeResources: false,
  fn: async () => {
    const clean = await Deno.makeTempDir();
    const crashed = await Deno.makeTempDir();
    const uninterrupted = await finish(clean);
    assert.equal(uninterrupted.step, TOTAL);

    const rand = mulberry32(2024);
    const seen = new Set<number>();
    let kills = 0;
    let leftovers = 0; // temporary files found right after a kill (the recovery removes them)
    const deadline = Date.now() + 120_000;
    while (kills < KILLS && Date.now() < deadline) {
      const child = worker(crashed, 3);
      // Start-up (Deno, the library) takes a few hundred ms; the kill lands anywhere from start-up to late training.
      await new Promise((r) => setTimeout(r, 150 + rand() * 900));
      try {
        child.kill("SIGKILL");
      } catch { /* it may have finished already */ }
      const status = await child.status;
      await child.stdout.cancel();
      await child.stderr.cancel();
      if (status.success) break; // finished before the kill: nothing left to interrupt
      kills++;
      // No temporary file is mistaken for a checkpoint: only finished files carry the checkpoint's name.
      for (const e of Deno.readDirSync(`${crashed}/checkpoints`)) {
        if (e.name.endsWith(".tmp")) leftovers++;
        else assert.ok(e.name.endsWith(".safetensors"), e.name);
      }
      // Whatever moment the kill hit, the latest checkpoint (if any was written yet) loads and is whole, and the
      // next start's recovery leaves the folder clean.
      const step = await recoverAndCheck(crashed);
      assert.equal(step % 3, 0, `checkpoint at step ${step}`);
      if (step > 0) seen.add(step);
    }
    const resumed = await finish(crashed);
    console.log(
      `  ${kills} kills survived; checkpoints seen at steps ${[...seen].sort((a, b) => a - b).join(", ")}; ` +
        `${leftovers} temporary files left by kills, all removed by the next start`,
    );
    assert.equal(kills, KILLS, `only ${kills} kills landed before the run finished`);
    assert.equal(resumed.step, TOTAL);
    assert.deepEqual(resumed.params, uninterrupted.params);
    const a = await lossesByStep(clean), b = await lossesByStep(crashed);
    assert.equal(b.size, TOTAL);
    for (const [step, losses] of a) assert.equal(b.get(step), losses, `losses of step ${step}`);
    await Deno.remove(clean, { recursive: true });
    await Deno.remove(crashed, { recursive: true });
  },
});
