// Crash safety: a training process killed with SIGKILL at random moments never leaves a checkpoint that does not
// load, and resuming after every kill ends with exactly the weights and losses of an uninterrupted run.

import assert from "node:assert/strict";
import { readCheckpoint } from "../src/train/checkpoint.ts";
import { mulberry32 } from "./check.ts";

const WORKER = new URL("./workers/crash_worker.ts", import.meta.url).pathname;
const TOTAL = 6000; // more than 20 kills can reach (at most about 250 steps each), so every kill lands mid-run
const KILLS = 20;

function worker(out: string, sleepMs: number) {
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
      `${TOTAL}`,
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

/** The last logged losses of every step (a step redone after a kill is logged twice; the redo counts). */
async function lossesByStep(out: string): Promise<Map<number, string>> {
  const m = new Map<number, string>();
  for (const line of (await Deno.readTextFile(`${out}/metrics.jsonl`)).split("\n")) {
    if (!line) continue;
    const r = JSON.parse(line);
    m.set(r.step, JSON.stringify([r.d_loss, r.g_loss, r.d_real, r.d_fake]));
  }
  return m;
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
      // Whatever moment the kill hit, the latest checkpoint (if any was written yet) loads and is whole.
      try {
        Deno.statSync(`${crashed}/checkpoints/latest.safetensors`);
      } catch {
        continue;
      }
      const { info } = await readCheckpoint(`${crashed}/checkpoints/latest.safetensors`);
      assert.equal(info.step % 3, 0, `checkpoint at step ${info.step}`);
      seen.add(info.step);
      // No temporary file is mistaken for a checkpoint: only finished files carry the checkpoint's name.
      for (const e of Deno.readDirSync(`${crashed}/checkpoints`)) {
        assert.ok(e.name.endsWith(".safetensors") || e.name.endsWith(".tmp"), e.name);
      }
    }
    const resumed = await finish(crashed);
    console.log(
      `  ${kills} kills survived; checkpoints seen at steps ${[...seen].sort((a, b) => a - b).join(", ")}`,
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
