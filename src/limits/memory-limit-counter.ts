import type { Limits } from "../auth/principal.js";
import type { Admission, LimitCounter, LimitName, LimitState } from "./limit-counter.js";

/** The period the limits are counted over: requests and tokens per minute. */
export const MINUTE_MS = 60_000;

/**
 * How long a request refused for max_parallel is told to wait: a slot frees when one of the principal's requests ends,
 * which nothing can foresee; long enough that a retrying client does not hammer the server.
 */
export const PARALLEL_RETRY_MS = 1000;

/** Entries looked at for idleness per `take` (more than the one a `take` may add, so idle entries cannot pile up). */
const SWEEP_PER_TAKE = 2;

export interface MemoryLimitCounterOptions {
  /** The period "per minute" means (default a minute; tests use seconds). */
  windowMs?: number;
  /** The clock, in milliseconds (default Date.now; tests drive their own). */
  now?: () => number;
}

/**
 * One principal's budgets: two token buckets (levels at time `at`), and its requests running. Levels are kept in
 * units of a request (or token) times the window in ms: a bucket then refills by `limit` units a millisecond and
 * everything stays in exact integers (no request refused for a rounding error after waiting its Retry-After).
 */
interface Entry {
  /** Requests that may start now × windowMs (Infinity until a requests-per-minute limit applies). */
  requests: number;
  /** Tokens that may be spent now × windowMs; negative after a request that spent more than was left (a debt). */
  tokens: number;
  /** When the levels were computed. */
  at: number;
  inFlight: number;
  /** When both buckets are full again: from then on, with nothing in flight, the entry says nothing and may go. */
  fullAt: number;
}

/**
 * The in-memory LimitCounter of one server process: a token bucket per limit and principal. A bucket holds the
 * per-minute limit and refills continuously at limit/minute, so a client may burst up to its limit and then proceeds
 * at the limit's pace, and a window never lets twice the limit through at its edge (as fixed per-minute windows do).
 * Buckets are refilled lazily from the time elapsed when they are next touched: O(1) per request, no timers.
 *
 * A request is admitted when a whole request and at least one token are left and fewer than max_parallel of the
 * principal's requests are running. Tokens are charged when a request ends, once counted; a request may overdraw the
 * bucket (the tokens are spent), and the principal then waits until the debt is repaid.
 *
 * Memory: an entry whose buckets are full again and that has nothing running carries no information (a fresh entry
 * starts full) and is dropped; each `take` examines two entries, so idle ones never outnumber those that were active
 * within about a minute.
 */
export class MemoryLimitCounter implements LimitCounter {
  private readonly entries = new Map<string, Entry>();
  private readonly windowMs: number;
  private readonly now: () => number;
  private sweeper: Iterator<[string, Entry]> | undefined;

  constructor(options: MemoryLimitCounterOptions = {}) {
    this.windowMs = options.windowMs ?? MINUTE_MS;
    this.now = options.now ?? Date.now;
  }

  /** Principals tracked now (for tests of the memory bound). */
  get size(): number {
    return this.entries.size;
  }

  take(principal: string, limits: Limits): Admission {
    const now = this.now();
    this.sweep(now);
    const entry = this.entry(principal, limits, now);
    const refusal = this.refusal(entry, limits);
    if (refusal === undefined) {
      if (limits.rpm !== undefined) entry.requests -= this.windowMs;
      entry.inFlight++;
    }
    this.settle(entry, limits, now);
    // Built field by field: object spreads cost more than the rest of a take
    const admission: Admission = refusal === undefined ? { admitted: true } : { admitted: false, limit: refusal.limit, retryAfterMs: refusal.retryAfterMs };
    if (limits.rpm !== undefined) admission.requests = this.state(entry.requests, limits.rpm);
    if (limits.tpm !== undefined) admission.tokens = this.state(entry.tokens, limits.tpm);
    return admission;
  }

  charge(principal: string, limits: Limits, tokens: number): void {
    if (limits.tpm === undefined || !(tokens > 0)) return;
    const now = this.now();
    const entry = this.entry(principal, limits, now);
    entry.tokens -= tokens * this.windowMs;
    this.settle(entry, limits, now);
  }

  release(principal: string): void {
    const entry = this.entries.get(principal);
    if (entry !== undefined && entry.inFlight > 0) entry.inFlight--;
  }

  /** The principal's entry with its buckets refilled up to `now` (a new one is full). */
  private entry(principal: string, limits: Limits, now: number): Entry {
    let entry = this.entries.get(principal);
    if (entry === undefined) {
      entry = { requests: Infinity, tokens: Infinity, at: now, inFlight: 0, fullAt: now };
      this.entries.set(principal, entry);
    }
    const elapsed = Math.max(0, now - entry.at);
    // Infinity (no limit applied yet) becomes the limit: a bucket starts full
    if (limits.rpm !== undefined) entry.requests = Math.min(limits.rpm * this.windowMs, entry.requests + elapsed * limits.rpm);
    if (limits.tpm !== undefined) entry.tokens = Math.min(limits.tpm * this.windowMs, entry.tokens + elapsed * limits.tpm);
    entry.at = Math.max(entry.at, now);
    return entry;
  }

  /** Why the entry cannot start a request now, and until when: the per-minute limits first, the longer wait winning. */
  private refusal(entry: Entry, limits: Limits): { limit: LimitName; retryAfterMs: number } | undefined {
    let refusal: { limit: LimitName; retryAfterMs: number } | undefined;
    if (limits.rpm !== undefined && entry.requests < this.windowMs) refusal = { limit: "rpm", retryAfterMs: untilLevel(entry.requests, this.windowMs, limits.rpm) };
    if (limits.tpm !== undefined && entry.tokens < this.windowMs) {
      const wait = untilLevel(entry.tokens, this.windowMs, limits.tpm);
      if (refusal === undefined || wait > refusal.retryAfterMs) refusal = { limit: "tpm", retryAfterMs: wait };
    }
    if (refusal === undefined && limits.maxParallel !== undefined && entry.inFlight >= limits.maxParallel) {
      refusal = { limit: "maxParallel", retryAfterMs: PARALLEL_RETRY_MS };
    }
    return refusal;
  }

  /** Records when the entry's buckets are full again. */
  private settle(entry: Entry, limits: Limits, now: number): void {
    let fullAt = now;
    if (limits.rpm !== undefined) fullAt = Math.max(fullAt, now + untilLevel(entry.requests, limits.rpm * this.windowMs, limits.rpm));
    if (limits.tpm !== undefined) fullAt = Math.max(fullAt, now + untilLevel(entry.tokens, limits.tpm * this.windowMs, limits.tpm));
    entry.fullAt = fullAt;
  }

  private state(level: number, limit: number): LimitState {
    return { limit, remaining: Math.max(0, Math.floor(level / this.windowMs)), resetMs: untilLevel(level, limit * this.windowMs, limit) };
  }

  /** Drops up to SWEEP_PER_TAKE idle entries, going round the map a few entries per call. */
  private sweep(now: number): void {
    for (let i = 0; i < SWEEP_PER_TAKE; i++) {
      this.sweeper ??= this.entries.entries();
      const next = this.sweeper.next();
      if (next.done === true) {
        this.sweeper = undefined;
        if (this.entries.size === 0) return;
        continue;
      }
      const [principal, entry] = next.value;
      if (entry.inFlight === 0 && now >= entry.fullAt) this.entries.delete(principal);
    }
  }
}

/** Whole milliseconds until a bucket refilling by `rate` units a millisecond climbs from `level` to `target` (0 if there). */
function untilLevel(level: number, target: number, rate: number): number {
  return level >= target ? 0 : Math.ceil((target - level) / rate);
}
