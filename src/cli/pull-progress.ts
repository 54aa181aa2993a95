import { MultiBar, Presets, type SingleBar } from "cli-progress";
import { formatBytes } from "../domain/byte-size.js";
import { formatEta, formatSpeed, percent } from "./format.js";

/** A stream the display writes to; a TTY gets live bars, anything else plain lines. */
export type Output = NodeJS.WritableStream & { isTTY?: boolean };

/** A file's progress as a pull reports it. `key` tells files apart (their digest). */
export interface FileProgress {
  key: string;
  total: number;
  completed: number;
}

/**
 * The progress of a pull: on a terminal one bar per file (name or short digest, bytes done/total, smoothed speed,
 * ETA) and a bar for local quantization; elsewhere a line per file per 10 % (logs stay readable). Status lines
 * print above the bars.
 */
export class PullProgress {
  private readonly bars = new Map<string, SingleBar>();
  private readonly printedTenth = new Map<string, number>();
  private readonly names = new Map<string, string>();
  private readonly rates = new Map<string, RateMeter>();
  private multibar: MultiBar | undefined;
  private lastNote: string | undefined;

  constructor(private readonly out: Output) {}

  /** Shows `name` for the file `key` (a digest) instead of its short digest from now on. */
  setName(key: string, name: string): void {
    this.names.set(key, name);
    this.bars.get(key)?.update({ name: this.label(key) });
  }

  /** Whether a name was set for `key`. */
  hasName(key: string): boolean {
    return this.names.has(key);
  }

  /** A file's bytes. */
  file(progress: FileProgress): void {
    if (this.out.isTTY) this.fileBar(progress);
    else this.fileLine(progress);
  }

  /** Local quantization: `completed` of `total` tensors. */
  quantizing(status: string, completed: number, total: number): void {
    if (!this.out.isTTY) {
      const tenth = Math.floor((10 * completed) / Math.max(total, 1));
      if ((this.printedTenth.get("quantize") ?? -1) < tenth) {
        this.printedTenth.set("quantize", tenth);
        this.write(`${status}: ${percent(completed, total)} (${completed}/${total} tensors)\n`);
      }
      return;
    }
    const existing = this.bars.get("quantize");
    if (existing) existing.update(completed, { name: status });
    else this.bars.set("quantize", this.multiBar().create(total, completed, { name: status }, { format: "{name} {bar} {percentage}% | {value}/{total} tensors" }));
  }

  /**
   * A status line (consecutive repeats are shown once): above the bars while some still run, else below them (the
   * finished bars stay as they are and the next file gets a new set).
   */
  note(text: string): void {
    if (text === this.lastNote) return;
    this.lastNote = text;
    if (this.multibar && [...this.bars.values()].every((bar) => bar.getProgress() >= 1)) {
      this.stop();
      this.bars.clear();
    }
    if (this.multibar) this.multibar.log(`${text}\n`);
    else this.write(`${text}\n`);
  }

  /** Ends the bars (they stay on screen as they last were). */
  stop(): void {
    this.multibar?.update(); // a final redraw prints the status lines still held for the next one
    this.multibar?.stop();
    this.multibar = undefined;
  }

  private fileBar({ key, total, completed }: FileProgress): void {
    const speed = this.rate(key, completed);
    let bar = this.bars.get(key);
    if (!bar) {
      bar = this.multiBar().create(total, 0, this.payload(key, 0, total, undefined));
      this.bars.set(key, bar);
    }
    if (bar.getTotal() !== total) bar.setTotal(total);
    bar.update(completed, this.payload(key, completed, total, speed));
  }

  /** The file's smoothed speed, after this update. */
  private rate(key: string, completed: number): number | undefined {
    let meter = this.rates.get(key);
    if (!meter) this.rates.set(key, (meter = new RateMeter()));
    return meter.update(completed);
  }

  private payload(key: string, completed: number, total: number, speed: number | undefined): Record<string, string> {
    const eta = completed >= total ? 0 : speed ? (total - completed) / speed : undefined;
    return {
      name: this.label(key),
      done: formatBytes(completed),
      size: formatBytes(total),
      speed: completed >= total && !speed ? "-" : formatSpeed(speed),
      left: formatEta(eta),
    };
  }

  private fileLine({ key, total, completed }: FileProgress): void {
    const tenth = total > 0 ? Math.floor((10 * Math.min(completed, total)) / total) : 10;
    const speed = this.rate(key, completed);
    if ((this.printedTenth.get(key) ?? -1) >= tenth) return;
    this.printedTenth.set(key, tenth);
    const rate = tenth < 10 && speed ? `, ${formatSpeed(speed)}` : "";
    this.lastNote = undefined;
    this.write(`pulling ${this.label(key)}: ${percent(completed, total)} (${formatBytes(completed)} of ${formatBytes(total)}${rate})\n`);
  }

  private label(key: string): string {
    const name = this.names.get(key) ?? key.replace(/^sha256:/, "").slice(0, 12);
    return name.length > 40 ? `${name.slice(0, 39)}…` : name;
  }

  private multiBar(): MultiBar {
    this.multibar ??= new MultiBar(
      {
        stream: this.out as NodeJS.WriteStream,
        format: "{name} {bar} {percentage}% | {done}/{size} | {speed} | ETA {left}",
        hideCursor: true,
        autopadding: true,
        barsize: 25,
        clearOnComplete: false,
        stopOnComplete: false,
        emptyOnZero: true,
      },
      Presets.shades_classic,
    );
    return this.multibar;
  }

  private write(text: string): void {
    this.out.write(text);
  }
}

/** Bytes per second, smoothed (an exponential moving average over updates at least 200 ms apart). */
class RateMeter {
  private last: { at: number; completed: number } | undefined;
  private rate: number | undefined;

  update(completed: number, now: number = performance.now()): number | undefined {
    if (!this.last) {
      this.last = { at: now, completed };
      return this.rate;
    }
    const seconds = (now - this.last.at) / 1000;
    if (seconds < 0.2) return this.rate;
    const instant = Math.max(0, completed - this.last.completed) / seconds;
    this.rate = this.rate === undefined ? instant : 0.3 * instant + 0.7 * this.rate;
    this.last = { at: now, completed };
    return this.rate;
  }
}
