/**
 * `LiveView`: the training side of `deno task train --serve`. It starts the live view's worker (the server and the
 * state live there, see `worker.ts`) and feeds it from the trainer's callbacks without ever waiting: a step is
 * written into a buffer (O(1)), and the buffer goes to the worker (transferred, not copied) every 250 ms or every
 * 1,024 steps; an evaluation sends its scores, a sample the path of its fixed-noise grid.
 *
 * @example
 * ```ts ignore
 * import { LiveView } from "./live.ts";
 * using live = await LiveView.start(0, "runs/mnist");
 * console.error(`serving the live view at ${live.url}`);
 * // await trainer.run(live.callbacks({ onStep: (e) => {} }));
 * await live.finish({ steps: 0 });
 * ```
 *
 * @module
 */

import type { EvalEvent, SampleEvent, StepEvent, TrainCallbacks } from "../train/trainer.ts";
import { qualityRecord } from "../eval/evaluate.ts";
import { EVAL_FIELDS } from "../report/run_files.ts";
import { type FinishState, STEP_STRIDE } from "./state.ts";

/** Steps buffered before they go to the worker, at the latest. */
const BUFFER_ROWS = 1024;
/** Milliseconds between sends of the buffered steps, at the most. */
const SEND_MS = 250;

/** Options of {@linkcode LiveView.start}. */
export interface LiveViewOptions {
  /** How long the server stays up after the end when a page is connected, to push the end (default 2,000 ms). */
  lingerMs?: number;
}

/** The training side of the live view (see the module docs). */
export class LiveView implements Disposable {
  readonly #worker: Worker;
  #rows = new Float64Array(BUFFER_ROWS * STEP_STRIDE);
  #count = 0;
  #sent = performance.now();
  #closed = false;
  /** The port on 127.0.0.1. */
  readonly port: number;
  /** `http://127.0.0.1:PORT/`. */
  readonly url: string;

  private constructor(worker: Worker, port: number, url: string) {
    this.#worker = worker;
    this.port = port;
    this.url = url;
  }

  /**
   * Starts the worker and its server on 127.0.0.1:`port` (0: a free one).
   *
   * @param port The port.
   * @param name The run's name, shown by the page until the settings come.
   * @param o The linger time.
   * @returns The view, once the server listens.
   * @throws Error naming the port when it is in use.
   */
  static start(port: number, name: string, o: LiveViewOptions = {}): Promise<LiveView> {
    const worker = new Worker(new URL("./worker.ts", import.meta.url).href, { type: "module" });
    return new Promise((resolve, reject) => {
      worker.onmessage = (ev: MessageEvent) => {
        if (ev.data.type === "listening") resolve(new LiveView(worker, ev.data.port, ev.data.url));
        else if (ev.data.type === "error") {
          worker.terminate();
          reject(new Error(ev.data.message));
        }
      };
      worker.onerror = (ev: ErrorEvent) => {
        ev.preventDefault();
        worker.terminate();
        reject(new Error(`Cannot start the live view: ${ev.message}`));
      };
      worker.postMessage({ type: "start", port, name, lingerMs: o.lingerMs });
    });
  }

  /** Sends the run's settings (a flat record, shown as a table). */
  setSettings(settings: Record<string, unknown>): void {
    this.#post({ type: "settings", settings });
  }

  /** Records a step: O(1), no waiting; the buffer is sent every 250 ms or when full. */
  step(e: StepEvent): void {
    const o = this.#count * STEP_STRIDE, r = this.#rows;
    r[o] = e.step;
    r[o + 1] = e.dLoss;
    r[o + 2] = e.gLoss;
    r[o + 3] = e.dReal;
    r[o + 4] = e.dFake;
    r[o + 5] = e.time;
    if (++this.#count === BUFFER_ROWS || performance.now() - this.#sent >= SEND_MS) this.#flush();
  }

  /** Sends an evaluation's scores (the report's eval fields). */
  eval(e: EvalEvent): void {
    const q = qualityRecord(e.result) as unknown as Record<string, unknown>;
    const row: Record<string, number | null> = { step: e.step, seconds: e.seconds };
    for (const k of EVAL_FIELDS) row[k] = typeof q[k] === "number" ? q[k] as number : null;
    this.#flush();
    this.#post({ type: "eval", row });
  }

  /** Sends the fixed-noise grid's path (the worker reads the file); nothing when none was written. */
  sample(e: SampleEvent): void {
    const path = e.paths.find((p) => /\/fixed_\d+\.png$/.test(p));
    this.#flush();
    if (path) this.#post({ type: "grid", step: e.step, path });
  }

  /** The trainer's callbacks `cb`, each after the view's own. */
  callbacks(cb: TrainCallbacks): TrainCallbacks {
    return {
      ...cb,
      onStep: (e) => {
        this.step(e);
        return cb.onStep?.(e);
      },
      onEval: (e) => {
        this.eval(e);
        return cb.onEval?.(e);
      },
      onSample: (e) => {
        this.sample(e);
        return cb.onSample?.(e);
      },
    };
  }

  /**
   * Sends the last steps and the end, and waits until the worker has published it (and lingered while a page is
   * connected, see {@linkcode LiveViewOptions.lingerMs}) and stopped its server; then ends the worker.
   *
   * @param info How the run ended.
   */
  async finish(info: FinishState): Promise<void> {
    if (this.#closed) return;
    this.#flush();
    const closed = new Promise<void>((ok) => {
      this.#worker.onmessage = (ev: MessageEvent) => ev.data.type === "closed" && ok();
    });
    this.#post({ type: "finish", info });
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([closed, new Promise((ok) => timer = setTimeout(ok, 10_000))]);
    clearTimeout(timer);
    this.close();
  }

  #flush(): void {
    this.#sent = performance.now();
    if (this.#count === 0) return;
    const rows = this.#rows;
    this.#post({ type: "steps", rows, count: this.#count }, [rows.buffer]);
    this.#rows = new Float64Array(BUFFER_ROWS * STEP_STRIDE);
    this.#count = 0;
  }

  #post(m: unknown, transfer: Transferable[] = []): void {
    if (!this.#closed) this.#worker.postMessage(m, transfer);
  }

  /** Ends the worker (and its server) at once. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#worker.terminate();
  }

  /** Same as {@link close}. */
  [Symbol.dispose](): void {
    this.close();
  }
}
