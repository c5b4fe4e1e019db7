/**
 * Progress of a run for people and tools. On a terminal, one line a stage redrawn in place
 * (rows in, rows out, rows per second); elsewhere, plain log lines at most once a second a
 * stage; with `--output json`, every event as one JSON line on stdout. Failures and
 * quarantined rows are always reported as they happen.
 */
import { eventErrorMessage, type RunEvent } from "../runtime/protocol/mod.ts";
import { jsonLine, type OutputFormat, type Terminal } from "./_terminal.ts";

interface StageLine {
  label: string;
  rowsIn: number;
  rowsOut: number;
  rowsPerSecond: number;
  lastLogged: number;
}

const LOG_INTERVAL_MS = 1000;
const REDRAW_INTERVAL_MS = 100;

export class Progress {
  #stages = new Map<string, StageLine>();
  #drawnLines = 0;
  #lastDraw = 0;

  constructor(readonly term: Terminal, readonly format: OutputFormat) {}

  /** Takes one event of the run. */
  event(event: RunEvent): void {
    if (this.format === "json") {
      this.term.out(
        jsonLine({ ...event.detail, kind: event.kind, stage: event.stage, time: event.time }),
      );
      return;
    }
    const d = event.detail;
    switch (event.kind) {
      case "stage-progress": {
        const line = this.#stages.get(event.stage) ??
          { label: String(d.label), rowsIn: 0, rowsOut: 0, rowsPerSecond: 0, lastLogged: 0 };
        line.rowsIn = Number(d.rowsIn);
        line.rowsOut = Number(d.rowsOut);
        line.rowsPerSecond = Number(d.rowsPerSecond);
        this.#stages.set(event.stage, line);
        if (this.term.interactive) this.#redraw(false);
        else if (event.time - line.lastLogged >= LOG_INTERVAL_MS) {
          line.lastLogged = event.time;
          this.term.err(`${stageText(event.stage, line)}\n`);
        }
        break;
      }
      case "attempt-failed":
        this.#message(
          `${event.stage}: attempt ${d.attempt} failed on ${d.rows} rows: ${eventErrorMessage(d)}` +
            (d.retryInMs === null ? "" : ` (retrying in ${d.retryInMs} ms)`),
        );
        break;
      case "rows-quarantined":
        this.#message(
          `${event.stage}: ${d.rows} rows ${
            d.handler ? `sent to handler ${d.handler}` : "failed"
          }: ${eventErrorMessage(d)}`,
        );
        break;
    }
  }

  /** Removes the live lines: the run's summary, printed next, replaces them. */
  finish(): void {
    if (this.format !== "json" && this.term.interactive) this.#clear();
  }

  #message(text: string): void {
    this.#clear();
    this.term.err(`${this.#paint("33", "warning")}: ${text}\n`);
    this.#redraw(true);
  }

  #clear(): void {
    if (this.#drawnLines > 0) this.term.err(`\x1b[${this.#drawnLines}F\x1b[0J`);
    this.#drawnLines = 0;
  }

  #redraw(force: boolean): void {
    if (!this.term.interactive) return;
    const now = Date.now();
    if (!force && now - this.#lastDraw < REDRAW_INTERVAL_MS) return;
    this.#lastDraw = now;
    this.#clear();
    const lines = [...this.#stages].sort(([a], [b]) => a.localeCompare(b, "en", { numeric: true }))
      .map(([id, line]) => stageText(id, line));
    if (lines.length > 0) this.term.err(lines.join("\n") + "\n");
    this.#drawnLines = lines.length;
  }

  #paint(code: string, text: string): string {
    return this.term.color ? `\x1b[${code}m${text}\x1b[0m` : text;
  }
}

/**
 * An integer with `,` between thousands, as `toLocaleString("en-US")` writes it: that call
 * loads ICU's number formatting on first use, 35-70 ms of a short run's start-up.
 */
function thousands(n: number): string {
  return String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ",");
}

function stageText(id: string, line: StageLine): string {
  const rate = thousands(Math.round(line.rowsPerSecond));
  return `${id} ${line.label}: ${line.rowsIn} in, ${line.rowsOut} out, ${rate} rows/s`;
}
