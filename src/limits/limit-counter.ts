import type { Limits } from "../auth/principal.js";

/** The limit a request was refused for: requests per minute, tokens per minute, or requests running at once. */
export type LimitName = keyof Limits;

/** Where one per-minute limit stands for a principal, as the `x-ratelimit-*-requests|tokens` headers say it. */
export interface LimitState {
  /** The limit itself (per minute). */
  limit: number;
  /** What may still be spent now (whole requests or tokens; never negative). */
  remaining: number;
  /** Milliseconds until the budget is whole again. */
  resetMs: number;
}

/** The answer to a request's arrival: admitted (it now holds a slot until `release`), or refused and for how long. */
export type Admission = {
  /** The requests-per-minute budget after this request, when the principal has one. */
  requests?: LimitState;
  /** The tokens-per-minute budget, when the principal has one. */
  tokens?: LimitState;
} & (
  | {
      admitted: true;
      /** Names the parallel slot this request holds, when the counter tells slots apart (give it back to `release`). */
      holder?: string;
    }
  | { admitted: false; limit: LimitName; retryAfterMs: number }
);

/**
 * Counts what each principal (an API key, or a client address on an open server) spends, for the rate limits. Behind
 * this small interface so that a shared store (Redis, for several replicas) can replace the in-memory counter
 * (MemoryLimitCounter) without touching the HTTP hook.
 *
 * The hook calls `take` when a request arrives; an admitted request is `charge`d its tokens and `release`d when its
 * response ends (finished, failed or abandoned by the client). `charge` and `release` return nothing: an
 * implementation that does I/O handles its own failures.
 */
export interface LimitCounter {
  /** Admits one request of `principal` under `limits` (one request, and a parallel slot), or refuses it. */
  take(principal: string, limits: Limits): Admission | Promise<Admission>;
  /** Spends `tokens` (prompt + generated) of the principal's tokens-per-minute budget; the balance may go negative. */
  charge(principal: string, limits: Limits, tokens: number): void;
  /**
   * Frees the parallel slot an admitted request held: the one its admission's `holder` names, or (without one) any
   * of the principal's.
   */
  release(principal: string, holder?: string): void;
}
