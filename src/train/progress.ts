/**
 * A one-line progress display for training: epoch, step, smoothed losses, steps/s and ETA. On a terminal it redraws
 * in place (at most 10 times a second); elsewhere it prints a plain line every few seconds.
 *
 * @module
 */

/** What the bar shows for one step. */
export interface ProgressState {
  /** Steps done in the whole run. */
  step: number;
  /** Steps in the whole run. */
  total: number;
  /** Current epoch (1-based) and the epoch count. */
  epoch: number;
  nEpochs: number;
  /** Latest losses (smoothed by the bar). */
  dLoss: number;
  gLoss: number;
  /** The latest FID, when the run evaluates (shown after the losses). */
  fid?: number;
}

/** Formats seconds as `1h02m`, `3m05s` or `12s`. */
export function formatDuration(s: number): string {
  if (!Number.isFinite(s) || s < 0) return "?";
  s = Math.round(s);
  const h = Math.floor(s / 3600), m = Math.floor((s % 3600) / 60), sec = s % 60;
  if (h > 0) return `${h}h${String(m).padStart(2, "0")}m`;
  if (m > 0) return `${m}m${String(sec).padStart(2, "0")}s`;
  return `${sec}s`;
}

/**
 * The progress bar.
 *
 * @example
 * ```ts
 * import assert from "node:assert/strict";
 * import { ProgressBar } from "./progress.ts";
 * const lines: string[] = [];
 * const bar = new ProgressBar({ write: (s) => lines.push(s), isTerminal: false, width: 10 });
 * bar.update({ step: 5, total: 10, epoch: 1, nEpochs: 1, dLoss: 0.7, gLoss: 0.69 });
 * bar.finish();
 * assert.ok(lines.join("").includes("5/10"));
 * ```
 */
export class ProgressBar {
  #write: (s: string) => void;
  #tty: boolean;
  #width: number;
  #start = performance.now();
  #last = -Infinity;
  #first?: { t: number; step: number };
  #d = NaN;
  #g = NaN;
  #line = "";

  /** `write` receives the text; `isTerminal` picks in-place redraws. */
  constructor(
    opts: { write?: (s: string) => void; isTerminal?: boolean; width?: number } = {},
  ) {
    const enc = new TextEncoder();
    this.#write = opts.write ?? ((s) => Deno.stderr.writeSync(enc.encode(s)));
    this.#tty = opts.isTerminal ?? Deno.stderr.isTerminal();
    this.#width = opts.width ?? 24;
  }

  /** Records a step; redraws when due. */
  update(s: ProgressState): void {
    const a = 0.05; // exponential smoothing of the losses
    this.#d = Number.isNaN(this.#d) ? s.dLoss : (1 - a) * this.#d + a * s.dLoss;
    this.#g = Number.isNaN(this.#g) ? s.gLoss : (1 - a) * this.#g + a * s.gLoss;
    const now = performance.now();
    this.#first ??= { t: now, step: s.step };
    const due = this.#tty ? now - this.#last >= 100 : now - this.#last >= 5000 || s.step === s.total;
    if (!due) return;
    this.#last = now;
    const secs = (now - this.#first.t) / 1000;
    const rate = secs > 0 ? (s.step - this.#first.step) / secs : 0;
    const frac = s.total > 0 ? s.step / s.total : 1;
    const fill = Math.round(frac * this.#width);
    const bar = "█".repeat(fill) + "░".repeat(this.#width - fill);
    this.#line = `epoch ${s.epoch}/${s.nEpochs} ${bar} ${s.step}/${s.total} ` +
      `D ${this.#d.toFixed(3)} G ${this.#g.toFixed(3)} ${s.fid === undefined ? "" : `FID ${s.fid.toFixed(1)} `}` +
      `${rate.toFixed(1)} steps/s ` +
      `ETA ${formatDuration(rate > 0 ? (s.total - s.step) / rate : NaN)}`;
    this.#write(this.#tty ? `\r\x1b[2K${this.#line}` : `${this.#line}\n`);
  }

  /** Prints a message above the bar. */
  log(msg: string): void {
    this.#write(this.#tty ? `\r\x1b[2K${msg}\n${this.#line}` : `${msg}\n`);
  }

  /** Ends the bar with a newline and the elapsed time. */
  finish(): void {
    const secs = (performance.now() - this.#start) / 1000;
    this.#write(`${this.#tty ? "\r\x1b[2K" : ""}${this.#line} (${formatDuration(secs)})\n`);
  }
}
