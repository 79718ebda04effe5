/**
 * The live view's state: what a browser that connects mid-run must see (the settings, the step series downsampled,
 * the eval rows, the latest fixed-noise grid, whether the run ended), and the updates since the last publication.
 * Its memory is bounded for any run length: the series is a {@linkcode Downsampler} of at most `maxPoints` points,
 * the updates since the last publication another of at most `maxPending`, the eval rows at most `maxEvals` (thinned
 * evenly, the last kept), and only the latest grid is kept.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { LiveState, STEP_STRIDE } from "./state.ts";
 *
 * const s = new LiveState();
 * s.track(true); // a client is connected: keep the updates since the last publication
 * const rows = new Float64Array(3 * STEP_STRIDE);
 * for (let i = 0; i < 3; i++) rows.set([i, 0.7, 0.8, 0.6, 0.4, i / 10], i * STEP_STRIDE);
 * s.addSteps(rows, 3);
 * const [steps] = s.takeUpdates();
 * assert.equal(steps.event, "steps");
 * assert.deepEqual((steps.data as { x: number[] }).x, [0, 1, 2]);
 * assert.deepEqual(s.takeUpdates(), []); // nothing new
 * assert.equal(s.snapshot().steps.rows, 3);
 * ```
 *
 * @module
 */

import { type DownsampledSeries, Downsampler } from "../report/series.ts";

/** The step fields, as metrics.jsonl and the report name them. */
export const STEP_FIELDS = ["d_loss", "g_loss", "d_real", "d_fake"] as const;

/** Numbers per step row in {@linkcode LiveState.addSteps}: step, d_loss, g_loss, d_real, d_fake, time (s). */
export const STEP_STRIDE = 6;

/** One evaluation's scores (the report's eval field names), with its step. */
export type EvalRow = { step: number } & Record<string, number | null>;

/** The latest fixed-noise grid, as a `data:` URI. */
export interface GridState {
  /** Its step. */
  step: number;
  /** `data:image/png;base64,...`. */
  src: string;
}

/** How the run ended. */
export interface FinishState {
  /** Steps run by this process. */
  steps?: number;
  /** Training's wall-clock seconds. */
  seconds?: number;
  /** steps / seconds. */
  stepsPerSecond?: number;
  /** Why it stopped, when it failed. */
  error?: string;
}

/** A series as sent: the points' x and means, and the steps in each point (`n`), for the page's own merging. */
export interface SeriesMessage {
  /** Mean step of each point. */
  x: (number | null)[];
  /** Steps averaged into each point. */
  n: number[];
  /** Steps in all. */
  rows: number;
  /** The last step's step and time, or null. */
  last: { step: number; time: number } | null;
  /** The means of each field (see {@linkcode STEP_FIELDS}). */
  [field: string]: unknown;
}

/** The first message a client gets: everything so far. */
export interface Snapshot {
  /** The run's settings (free-form; shown as a table). */
  settings: Record<string, unknown> | null;
  /** The step series so far. */
  steps: SeriesMessage;
  /** The eval rows so far. */
  evals: EvalRow[];
  /** The latest grid, or null. */
  grid: GridState | null;
  /** How the run ended, or null while it runs. */
  finished: FinishState | null;
}

/** One server-sent event: its name and its JSON data. */
export interface LiveMessage {
  /** `state`, `settings`, `steps`, `eval`, `grid` or `finished`. */
  event: string;
  /** The data (sent as JSON). */
  data: unknown;
}

/** Options of {@linkcode LiveState}. */
export interface LiveStateOptions {
  /** The most points of the series (even; default 2,000). */
  maxPoints?: number;
  /** The most points of one `steps` update (even; default 256). */
  maxPending?: number;
  /** The most eval rows kept (default 500). */
  maxEvals?: number;
}

/** Six significant digits: enough for a chart. */
function r6(v: number | null): number | null {
  return v === null ? null : Number(v.toPrecision(6));
}

/** The live view's state (see the module docs). */
export class LiveState {
  readonly #maxPoints: number;
  readonly #maxPending: number;
  readonly #maxEvals: number;
  #series: Downsampler;
  #pending: Downsampler | null = null; // only while clients are connected
  #last: { step: number; time: number } | null = null;
  #settings: Record<string, unknown> | null = null;
  #evals: EvalRow[] = [];
  #grid: GridState | null = null;
  #finished: FinishState | null = null;
  #news: LiveMessage[] = []; // settings, eval, grid, finished since the last publication (coalesced)

  /** Makes an empty state. */
  constructor(o: LiveStateOptions = {}) {
    this.#maxPoints = o.maxPoints ?? 2000;
    this.#maxPending = o.maxPending ?? 256;
    this.#maxEvals = o.maxEvals ?? 500;
    this.#series = new Downsampler(STEP_FIELDS, this.#maxPoints);
  }

  /** Whether to keep the updates since the last publication (true while a client is connected). */
  track(on: boolean): void {
    if (!on) this.#news = [];
    this.#pending = on ? (this.#pending ?? new Downsampler(STEP_FIELDS, this.#maxPending)) : null;
  }

  /** Adds `count` step rows of {@linkcode STEP_STRIDE} numbers each (see there). O(1) per row. */
  addSteps(rows: Float64Array, count: number): void {
    for (let i = 0; i < count; i++) {
      const o = i * STEP_STRIDE;
      const values = [rows[o + 1], rows[o + 2], rows[o + 3], rows[o + 4]];
      this.#series.add(rows[o], values);
      this.#pending?.add(rows[o], values);
    }
    if (count > 0) this.#last = { step: rows[(count - 1) * STEP_STRIDE], time: rows[count * STEP_STRIDE - 1] };
  }

  /** Sets the run's settings. */
  setSettings(settings: Record<string, unknown>): void {
    this.#settings = settings;
    this.#news = this.#news.filter((m) => m.event !== "settings");
    this.#queue({ event: "settings", data: settings });
  }

  /** Adds an eval row (thinned to every other row when there would be more than `maxEvals`). */
  addEval(row: EvalRow): void {
    const clean = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, typeof v === "number" ? r6(v) : null]));
    this.#evals.push(clean as EvalRow);
    if (this.#evals.length > this.#maxEvals) {
      this.#evals = this.#evals.filter((_, i, a) => (a.length - 1 - i) % 2 === 0); // every other, the last kept
    }
    this.#queue({ event: "eval", data: clean });
  }

  /** Sets the latest grid (an older one waiting to be published is replaced). */
  setGrid(grid: GridState): void {
    this.#grid = grid;
    this.#news = this.#news.filter((m) => m.event !== "grid");
    this.#queue({ event: "grid", data: grid });
  }

  /** Records the run's end. */
  finish(info: FinishState): void {
    this.#finished = info;
    this.#queue({ event: "finished", data: info });
  }

  /** Whether the run ended. */
  get finished(): FinishState | null {
    return this.#finished;
  }

  #queue(m: LiveMessage): void {
    if (this.#pending !== null) this.#news.push(m);
  }

  /** The whole state: the first message of a client. */
  snapshot(): Snapshot {
    return {
      settings: this.#settings,
      steps: this.#message(this.#series.result()),
      evals: [...this.#evals],
      grid: this.#grid,
      finished: this.#finished,
    };
  }

  /** The updates since the last call (empty when nothing happened, or while not tracking), oldest first. */
  takeUpdates(): LiveMessage[] {
    if (this.#pending === null) return [];
    const out: LiveMessage[] = [];
    const r = this.#pending.result();
    if (r.rows > 0) {
      out.push({ event: "steps", data: this.#message(r) });
      this.#pending = new Downsampler(STEP_FIELDS, this.#maxPending);
    }
    const finished = this.#news.filter((m) => m.event === "finished");
    out.push(...this.#news.filter((m) => m.event !== "finished"), ...finished.slice(-1)); // the end last
    this.#news = [];
    return out;
  }

  #message(r: DownsampledSeries): SeriesMessage {
    const n = r.x.map((_, b) => Math.min(r.rowsPerPoint, r.rows - b * r.rowsPerPoint));
    const fields = Object.fromEntries(STEP_FIELDS.map((f) => [f, r.values[f].map(r6)]));
    return { x: r.x.map(r6), n, rows: r.rows, last: this.#last, ...fields };
  }
}
