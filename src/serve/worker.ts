/**
 * The live view's worker: it owns the {@linkcode LiveState} and the server (see `server.ts`), so that the training
 * loop, which blocks its own thread in native calls, never waits on the network and the page is answered even
 * while a step or an evaluation runs. It is driven by {@linkcode LiveView} (`live.ts`) through these messages:
 *
 * - in: `start` {port, name, lingerMs}, `settings` {settings}, `steps` {rows, count} (rows transferred),
 *   `eval` {row}, `grid` {step, path} (the fixed-noise PNG, read here), `finish` {info};
 * - out: `listening` {port, url} or `error` {message}, after `start`; `closed` after `finish`.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { loadChartAssets } from "../report/write.ts";
import { buildLivePage } from "./page.ts";
import { type LiveServer, serveLive } from "./server.ts";
import { LiveState } from "./state.ts";

const state = new LiveState();
let server: LiveServer | null = null;
let chain: Promise<void> = Promise.resolve(); // grid reads, in order, before the end
let lingerMs = 2000;

/** Reads a fixed-noise grid into the state; a grid that cannot be read is skipped (the next one will do). */
async function readGrid(step: number, path: string): Promise<void> {
  try {
    const bytes = await Deno.readFile(path);
    state.setGrid({ step, src: `data:image/png;base64,${bytes.toBase64()}` });
  } catch { /* removed meanwhile: skipped */ }
}

async function start(m: { port: number; name: string; lingerMs?: number }): Promise<void> {
  try {
    lingerMs = m.lingerMs ?? lingerMs;
    const page = buildLivePage(await loadChartAssets(), m.name);
    server = serveLive({ port: m.port, state, page });
    self.postMessage({ type: "listening", port: server.port, url: server.url });
  } catch (e) {
    self.postMessage({ type: "error", message: (e as Error).message });
  }
}

/** Publishes the end, keeps serving `lingerMs` when a client is connected (to push it), then stops. */
async function finish(info: Record<string, unknown>): Promise<void> {
  await chain;
  state.finish(info);
  if (server) {
    server.publish();
    if (server.clients() > 0) await new Promise((ok) => setTimeout(ok, lingerMs));
    await server.close();
  }
  self.postMessage({ type: "closed" });
}

self.onmessage = (ev: MessageEvent) => {
  const m = ev.data;
  switch (m.type) {
    case "start":
      return void start(m);
    case "settings":
      return state.setSettings(m.settings);
    case "steps":
      return state.addSteps(m.rows, m.count);
    case "eval":
      return state.addEval(m.row);
    case "grid":
      chain = chain.then(() => readGrid(m.step, m.path));
      return;
    case "finish":
      return void finish(m.info);
  }
};
