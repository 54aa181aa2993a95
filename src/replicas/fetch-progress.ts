import { formatBytes } from "../domain/byte-size.js";

/** How often a running fetch logs how far it got. */
export const PROGRESS_LOG_EVERY_MS = 5000;

/** A log line's level and text. */
export type FetchLog = (level: "info" | "warn", message: string) => void;

/**
 * The log lines of one blob fetched from one source: that it starts, how far it got (bytes, size, rate) every
 * PROGRESS_LOG_EVERY_MS, and how it ended. A weights fetch can take minutes, during which requests wait: the log is
 * where an operator sees why.
 */
export class FetchProgress {
  private readonly startedMs = Date.now();
  private loggedMs = this.startedMs;
  private bytes = 0;
  private total: number | undefined;

  /** `what`: the blob and its model (`weights sha256:0123…cdef of "qwen3:8b"`); `from`: the source's label. */
  constructor(
    private readonly what: string,
    private readonly from: string,
    private readonly log: FetchLog,
  ) {
    log("info", `${what}: fetching from ${from}`);
  }

  /** Bytes received so far, of `total` when known; logged now and then. */
  readonly update = (bytes: number, total: number | undefined): void => {
    this.bytes = bytes;
    this.total = total ?? this.total;
    const now = Date.now();
    if (now - this.loggedMs < PROGRESS_LOG_EVERY_MS) return;
    this.loggedMs = now;
    const share = this.total ? ` (${Math.floor((100 * bytes) / this.total)}%)` : "";
    this.log("info", `${this.what}: ${formatBytes(bytes)}${this.total ? ` of ${formatBytes(this.total)}` : ""}${share} from ${this.from}, ${this.rate()}`);
  };

  /** The blob is stored, verified. */
  done(bytes: number): void {
    const seconds = (Date.now() - this.startedMs) / 1000;
    this.bytes = bytes;
    this.log("info", `${this.what}: fetched ${formatBytes(bytes)} from ${this.from} in ${seconds.toFixed(1)} s (${this.rate()}), sha256 verified`);
  }

  /** This source failed; the next one is tried (or the request fails with every reason). */
  failed(reason: string, quiet: boolean): void {
    this.log(quiet ? "info" : "warn", `${this.what}: not from ${this.from}: ${reason}`);
  }

  private rate(): string {
    const seconds = Math.max(0.001, (Date.now() - this.startedMs) / 1000);
    return `${formatBytes(this.bytes / seconds)}/s`;
  }
}
