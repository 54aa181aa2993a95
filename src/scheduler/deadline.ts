import { RequestCancelledError, RequestTimeoutError, type AppError } from "../domain/errors.js";

/** What a request is doing, for the timeout message. */
export type Phase = "waiting for the model to load" | "waiting for memory" | "waiting for a slot" | "generating";

/**
 * One request's end: its client's signal or its timeout, whichever comes first. `signal` fires on either; after
 * it fired, `error()` says which (RequestTimeoutError naming what the request was doing, or RequestCancelledError).
 */
export class RequestDeadline implements Disposable {
  readonly signal: AbortSignal;
  phase: Phase = "waiting for a slot";
  private readonly timeout = new AbortController();
  private readonly timer?: NodeJS.Timeout;
  private timedOutIn?: Phase;

  constructor(
    client: AbortSignal,
    private readonly timeoutMs: number,
  ) {
    this.signal = timeoutMs > 0 ? AbortSignal.any([client, this.timeout.signal]) : client;
    if (timeoutMs > 0 && !client.aborted) {
      this.timer = setTimeout(() => {
        this.timedOutIn = this.phase;
        this.timeout.abort();
      }, timeoutMs);
      this.timer.unref();
    }
  }

  get timedOut(): boolean {
    return this.timedOutIn !== undefined;
  }

  /** The error for a request that ended through this deadline. */
  error(): AppError {
    if (this.timedOutIn === undefined) return new RequestCancelledError();
    return new RequestTimeoutError(`request timed out after ${formatDuration(this.timeoutMs)} (${this.timedOutIn})`);
  }

  /** `error` when the deadline fired, else `error` itself: errors raised by the abort become the deadline's. */
  explain(error: unknown): unknown {
    return this.signal.aborted ? this.error() : error;
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
