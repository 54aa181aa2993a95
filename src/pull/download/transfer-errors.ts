/**
 * Outcomes of one ranged request that the part loop acts on. They never leave the downloader: a part that keeps
 * failing ends in a catalog error (UpstreamError) carrying the last reason.
 */

/** Worth another attempt after a backoff: 5xx, a network error, a stall, a connection closed early. */
export class RetryableError extends Error {}

/** 416: the server refuses the range; the part starts over from its first byte. */
export class RangeNotSatisfiableError extends RetryableError {}

/** 429: wait this long and ask again; not a failed attempt. */
export class RateLimitedError extends Error {
  constructor(readonly waitMs: number, readonly host: string) {
    super(`${host} is rate-limiting requests (HTTP 429)`);
  }
}

/** 200 to a ranged request: the server ignores Range, so the whole file must come over one connection. */
export class RangeIgnoredError extends Error {
  constructor() {
    super("the server ignores Range requests");
  }
}
