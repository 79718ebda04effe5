/**
 * The live view's HTTP server: `Deno.serve` on 127.0.0.1 only (never another interface), answering requests whose
 * `Host` is 127.0.0.1 or localhost at its port (a page elsewhere cannot reach it through DNS rebinding):
 *
 * - `GET /`: the page (see `page.ts`), with its Content-Security-Policy;
 * - `GET /events`: server-sent events: first `state` (everything so far, see {@linkcode LiveState.snapshot}), then
 *   the updates (`steps`, `settings`, `eval`, `grid`, `finished`), published at most every `publishMs` (250 ms: at
 *   most 4 messages a second of each kind, the steps in between merged into one message);
 * - anything else: 404 (405 for a method other than GET or HEAD, 403 for another Host).
 *
 * A client whose unsent messages pass `maxQueuedBytes` (1 MiB) has them dropped and its stream ended: its browser
 * reconnects by itself and gets the whole state afresh. With no client connected the publishing timer does not run and no update is kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LiveState } from "./state.ts";
 * import { serveLive } from "./server.ts";
 *
 * const server = serveLive({ port: 0, state: new LiveState(), page: "<!doctype html><title>live</title>" });
 * const res = await fetch(`${server.url}`);
 * assert.equal(res.status, 200);
 * assert.match(await res.text(), /<title>live<\/title>/);
 * await server.close();
 * ```
 *
 * @module
 */

import { LIVE_CSP } from "./page.ts";
import type { LiveMessage, LiveState } from "./state.ts";

/** Options of {@linkcode serveLive}. */
export interface ServeLiveOptions {
  /** The port on 127.0.0.1 (0: a free one). */
  port: number;
  /** The state to serve. */
  state: LiveState;
  /** The page's HTML. */
  page: string;
  /** Milliseconds between publications (default 250). */
  publishMs?: number;
  /** Unsent bytes past which a client is closed (default 1 MiB). */
  maxQueuedBytes?: number;
}

/** A running live-view server. */
export interface LiveServer {
  /** The port it listens on. */
  readonly port: number;
  /** `http://127.0.0.1:PORT/`. */
  readonly url: string;
  /** Clients connected to `/events`. */
  clients(): number;
  /** Clients closed for being too far behind, so far. */
  dropped(): number;
  /** Publishes the updates now (also done every `publishMs` while clients are connected). */
  publish(): void;
  /** Ends every event stream (after its queued messages) and stops the server (waiting at most 1.5 s for them). */
  close(): Promise<void>;
}

interface Client {
  controller: ReadableStreamDefaultController<Uint8Array>;
  /** Messages not yet taken by the response (bounded by `maxQueuedBytes`). */
  queue: Uint8Array[];
  bytes: number;
  /** The response asked for data while the queue was empty. */
  waiting: boolean;
  /** The server is closing: end the stream once the queue is taken. */
  closing?: boolean;
}

const enc = new TextEncoder();

/** One event in the SSE format. */
export function sseEvent(m: LiveMessage): Uint8Array {
  return enc.encode(`event: ${m.event}\ndata: ${JSON.stringify(m.data)}\n\n`);
}

/** Whether a Host header names this server (127.0.0.1 or localhost, at its port). */
function hostAllowed(host: string | null, port: number): boolean {
  return host === `127.0.0.1:${port}` || host === `localhost:${port}`;
}

/**
 * Serves the live view on 127.0.0.1 (see the module docs).
 *
 * @param o The port, the state, the page and the bounds.
 * @returns The running server.
 * @throws Error naming the port when it is in use (or cannot be listened on).
 */
export function serveLive(o: ServeLiveOptions): LiveServer {
  const clients = new Set<Client>();
  const limit = o.maxQueuedBytes ?? 1 << 20;
  let timer: ReturnType<typeof setInterval> | undefined, dropped = 0, port = o.port;

  const send = (c: Client, bytes: Uint8Array) => {
    if (c.waiting) {
      c.waiting = false;
      c.controller.enqueue(bytes);
      return;
    }
    c.queue.push(bytes);
    c.bytes += bytes.byteLength;
    if (c.bytes <= limit) return;
    // Too far behind: its messages are dropped and its stream ended; its browser reconnects and gets the state.
    dropped++;
    remove(c);
    c.queue = [];
    c.bytes = 0;
    try {
      c.controller.close();
    } catch { /* closed meanwhile */ }
  };
  const publish = () => {
    const updates = o.state.takeUpdates();
    for (const m of updates) {
      const bytes = sseEvent(m);
      for (const c of [...clients]) send(c, bytes);
    }
  };
  const remove = (c: Client) => {
    if (!clients.delete(c) || clients.size > 0) return;
    clearInterval(timer);
    timer = undefined;
    o.state.track(false);
  };
  const events = () => {
    let client: Client;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        client = { controller, queue: [], bytes: 0, waiting: false };
        if (clients.size > 0) publish(); // the others first, so that the snapshot and the updates do not overlap
        else o.state.track(true);
        clients.add(client);
        timer ??= setInterval(publish, o.publishMs ?? 250);
        send(client, enc.encode(`retry: 2000\n\n`));
        send(client, sseEvent({ event: "state", data: o.state.snapshot() }));
      },
      pull(controller) {
        const chunk = client.queue.shift();
        if (chunk === undefined) client.waiting = true;
        else {
          client.bytes -= chunk.byteLength;
          controller.enqueue(chunk);
          if (client.closing && client.queue.length === 0) controller.close();
        }
      },
      cancel() {
        remove(client);
      },
    }, { highWaterMark: 0 });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
      },
    });
  };
  const handler = (req: Request): Response => {
    if (!hostAllowed(req.headers.get("host"), port)) return new Response("forbidden host\n", { status: 403 });
    if (req.method !== "GET" && req.method !== "HEAD") return new Response("method not allowed\n", { status: 405 });
    const path = new URL(req.url).pathname;
    if (path === "/events") return events();
    if (path !== "/") return new Response("not found\n", { status: 404 });
    return new Response(o.page, {
      headers: {
        "content-type": "text/html; charset=utf-8",
        "content-security-policy": o.page.includes(LIVE_CSP) ? LIVE_CSP : "default-src 'none'",
        "cache-control": "no-store",
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",
      },
    });
  };
  let server: Deno.HttpServer<Deno.NetAddr>;
  try {
    server = Deno.serve({ hostname: "127.0.0.1", port: o.port, onListen: () => {} }, handler);
  } catch (e) {
    const why = e instanceof Deno.errors.AddrInUse ? "the port is in use" : (e as Error).message;
    throw new Error(`Cannot serve the live view on 127.0.0.1:${o.port}: ${why}`, { cause: e });
  }
  port = server.addr.port;
  return {
    port,
    url: `http://127.0.0.1:${port}/`,
    clients: () => clients.size,
    dropped: () => dropped,
    publish,
    async close() {
      publish();
      for (const c of [...clients]) {
        remove(c);
        c.closing = true;
        if (c.queue.length === 0) c.controller.close(); // else once the queue is taken
      }
      // A stuck client's response never drains: stop waiting for it after a while (the sockets go with the process).
      let wait: ReturnType<typeof setTimeout> | undefined;
      const late = new Promise<void>((ok) => wait = setTimeout(ok, 1500));
      await Promise.race([server.shutdown(), late]);
      clearTimeout(wait);
    },
  };
}
