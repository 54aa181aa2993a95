import type { AppError } from "../domain/errors.js";

/** A load that failed, remembered so that requests fail fast instead of retrying it. */
export interface LoadFailure {
  /** Which weights and shape failed (the scheduler's load key). */
  key: string;
  /** The model name the failing load was for. */
  model: string;
  error: AppError;
  /** What failed, for the message during the cooldown: "load failed", "last crash". */
  what: string;
  failedAtMs: number;
  retryAtMs: number;
}

/**
 * Failed loads, each kept for a cooldown. While a failure is remembered, a request for the same load gets the
 * same error at once: a model that cannot load is not retried by every request in a storm.
 */
export class LoadFailures {
  private readonly failures = new Map<string, LoadFailure>();

  constructor(
    private readonly cooldownMs: number,
    private readonly now: () => number,
  ) {}

  record(key: string, model: string, error: AppError, what = "load failed"): void {
    if (this.cooldownMs <= 0) return;
    const failedAtMs = this.now();
    this.failures.set(key, { key, model, error, what, failedAtMs, retryAtMs: failedAtMs + this.cooldownMs });
  }

  /** The failure still cooling down for `key`, if any. */
  active(key: string): LoadFailure | undefined {
    const failure = this.failures.get(key);
    if (failure && failure.retryAtMs <= this.now()) {
      this.failures.delete(key);
      return undefined;
    }
    return failure;
  }

  /** Failures still cooling down, oldest first. */
  list(): LoadFailure[] {
    return [...this.failures.keys()].map((key) => this.active(key)).filter((f): f is LoadFailure => f !== undefined);
  }

  clear(key: string): void {
    this.failures.delete(key);
  }
}
