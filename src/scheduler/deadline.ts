import { AppError, RequestCancelledError, RequestTimeoutError } from "../domain/errors.js";

/**
 * One request's end: its client's signal or its timeout, whichever comes first. `signal` fires on either; after
 * it fired, `error()` says which (RequestTimeoutError naming what the request was doing, or RequestCancelledError).
 * A client signal aborted with an AppError as its reason was stopped by the server (shutting down), not by its
 * client: `error()` is that reason, and like a timeout the request must not end as if it were complete.
 */
export class RequestDeadline implements Disposable {
  readonly signal: AbortSignal;
  /** What the request is doing, for the timeout message ("waiting for a slot", "generating", …). */
  phase = "waiting for a slot";
  /** Why it was waiting, when known (e.g. what holds the memory a load needs); added to the timeout message. */
  note?: string;
  private readonly timeout = new AbortController();
  private readonly timer?: NodeJS.Timeout;
  private timedOutIn?: string;

  constructor(
    client: AbortSignal,
    private readonly timeoutMs: number,
  ) {
    this.signal = timeoutMs > 0 ? AbortSignal.any([client, this.timeout.signal]) : client;
    if (timeoutMs > 0 && !client.aborted) {
      this.timer = setTimeout(() => {
        this.timedOutIn = this.phase;
        this.timeout.abort();
      }, timeoutMs); // not unref'd: a waiting request keeps the process alive; dispose clears it
    }
  }

  get timedOut(): boolean {
    return this.timedOutIn !== undefined;
  }

  /** Whether the request was cut short by the server (its timeout, or a shutdown), not by its client leaving. */
  get cutShort(): boolean {
    return this.timedOut || this.stoppedWith() !== undefined;
  }

  /** The error for a request that ended through this deadline. */
  error(): AppError {
    if (this.timedOutIn === undefined) return this.stoppedWith() ?? new RequestCancelledError();
    const note = this.note === undefined ? "" : `: ${this.note}`;
    return new RequestTimeoutError(`request timed out after ${formatDuration(this.timeoutMs)} (${this.timedOutIn}${note})`);
  }

  /** `error` when the deadline fired, else `error` itself: errors raised by the abort become the deadline's. */
  explain(error: unknown): unknown {
    return this.signal.aborted ? this.error() : error;
  }

  /** The AppError the client signal was aborted with, when the server stopped the request. */
  private stoppedWith(): AppError | undefined {
    const reason: unknown = this.signal.aborted ? this.signal.reason : undefined;
    return reason instanceof AppError ? reason : undefined;
  }

  [Symbol.dispose](): void {
    clearTimeout(this.timer);
  }
}

/** "250ms", "30s", "10m", "1h30m". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  const seconds = Math.round(ms / 1000);
  const [h, m, s] = [Math.floor(seconds / 3600), Math.floor((seconds % 3600) / 60), seconds % 60];
  return `${h > 0 ? `${h}h` : ""}${m > 0 ? `${m}m` : ""}${s > 0 || seconds === 0 ? `${s}s` : ""}`;
}
