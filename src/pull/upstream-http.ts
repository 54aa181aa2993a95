import { setTimeout as sleep } from "node:timers/promises";
import { UpstreamError, type AppError } from "../domain/errors.js";

/** One request to the Hub or a registry (API calls and header reads; file bodies go through the downloader). */
export interface UpstreamRequest {
  url: string;
  method?: "GET" | "HEAD";
  /** Credentials among them (Authorization, cookies) go to the URL's own origin only: a CDN a redirect leads to must not see a token. */
  headers?: Record<string, string>;
  signal?: AbortSignal;
  /** Told when a rate limit or a failure makes the request wait and try again. */
  onNotice?: (message: string) => void;
  /**
   * Turns an answer that is not 2xx (after redirects, rate limits and retried 5xx) into the error to throw;
   * undefined falls back to a generic UpstreamError.
   */
  describeFailure?: (response: Response, body: string) => AppError | undefined;
  /** Follow redirects (default true); false returns the 3xx answer itself. */
  followRedirects?: boolean;
}

/** Redirects followed for one request, at most. */
export const MAX_REDIRECTS = 10;
const MAX_ATTEMPTS = 5;
const DEFAULT_RATE_LIMIT_WAIT_MS = 5000;
const LONGEST_RATE_LIMIT_WAIT_MS = 10 * 60_000;

/**
 * Fetches with the habits every upstream call needs: redirects followed by hand (so credentials never cross to
 * another origin), 429 answered by waiting as `Retry-After` or `RateLimit` say, 5xx and network errors retried with
 * backoff, and every other failure turned into a catalog error by `describeFailure`.
 */
export async function upstreamFetch(request: UpstreamRequest): Promise<Response> {
  let failure = "";
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    let response: Response;
    try {
      response = await fetchFollowing(request);
    } catch (error) {
      if (request.signal?.aborted) throw request.signal.reason;
      if (error instanceof UpstreamError) throw error;
      failure = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
      await backOff(request, attempt, `${hostOf(request.url)} could not be reached (${failure})`);
      continue;
    }
    if (response.ok || (request.followRedirects === false && isRedirect(response.status))) return response;
    const body = request.method === "HEAD" ? "" : await response.text().catch(() => "");
    if (response.status === 429) {
      const waitMs = rateLimitWaitMs(response.headers);
      request.onNotice?.(`${hostOf(request.url)} is rate-limiting requests: waiting ${Math.ceil(waitMs / 1000)} s`);
      await sleep(waitMs, undefined, { signal: request.signal });
      attempt--; // a rate limit is not a failure; the wait is what it asks for
      continue;
    }
    if (response.status >= 500) {
      failure = `${response.status} ${response.statusText}`;
      await backOff(request, attempt, `${hostOf(request.url)} answered ${failure}`);
      continue;
    }
    throw request.describeFailure?.(response, body) ?? new UpstreamError(`${request.url} answered ${response.status} ${response.statusText}${body ? `: ${body.slice(0, 300)}` : ""}`);
  }
  throw new UpstreamError(`${hostOf(request.url)} kept failing (${failure}) after ${MAX_ATTEMPTS} attempts`);
}

/** Fetches JSON, with upstreamFetch's habits; a body that is not JSON is an UpstreamError. */
export async function upstreamJson<T = unknown>(request: UpstreamRequest): Promise<{ value: T; response: Response }> {
  const response = await upstreamFetch(request);
  const text = await response.text();
  try {
    return { value: JSON.parse(text) as T, response };
  } catch {
    throw new UpstreamError(`${request.url} answered something that is not JSON: ${text.slice(0, 200)}`);
  }
}

async function fetchFollowing(request: UpstreamRequest): Promise<Response> {
  let url = request.url;
  let headers = request.headers ?? {};
  const origin = new URL(url).origin;
  for (let hop = 0; hop <= MAX_REDIRECTS; hop++) {
    const response = await fetch(url, { method: request.method ?? "GET", headers, redirect: "manual", ...(request.signal && { signal: request.signal }) });
    const location = response.headers.get("location");
    if (!isRedirect(response.status) || location === null || request.followRedirects === false) return response;
    await response.body?.cancel();
    url = new URL(location, url).toString();
    if (new URL(url).origin !== origin) headers = withoutCredentials(headers);
  }
  throw new UpstreamError(`${request.url}: more than ${MAX_REDIRECTS} redirects`);
}

/** Headers fit for another origin: no Authorization, no cookies (Range and the like stay). */
function withoutCredentials(headers: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(headers).filter(([name]) => !["authorization", "cookie", "proxy-authorization"].includes(name.toLowerCase())));
}

/** Whether an HTTP status is a redirect with a Location to follow. */
export function isRedirect(status: number): boolean {
  return status === 301 || status === 302 || status === 303 || status === 307 || status === 308;
}

async function backOff(request: UpstreamRequest, attempt: number, why: string): Promise<void> {
  if (attempt >= MAX_ATTEMPTS) return;
  const waitMs = 1000 * 2 ** (attempt - 1);
  request.onNotice?.(`${why}; trying again in ${waitMs / 1000} s`);
  await sleep(waitMs, undefined, { signal: request.signal });
}

/** How long to wait after a 429: what the answer asks (retryDelayMs), 5 s when it says nothing, 10 min at most. */
export function rateLimitWaitMs(headers: Parameters<typeof retryDelayMs>[0]): number {
  return Math.min(retryDelayMs(headers) ?? DEFAULT_RATE_LIMIT_WAIT_MS, LONGEST_RATE_LIMIT_WAIT_MS);
}

/**
 * How long a 429 asks to wait: `Retry-After` (seconds or an HTTP date), else the `t` (seconds to reset) of the
 * `RateLimit` header (`"api";r=0;t=55`), else undefined.
 */
export function retryDelayMs(headers: Headers | Record<string, string | string[] | undefined>, now = Date.now()): number | undefined {
  const get = (name: string): string | undefined => {
    if (headers instanceof Headers) return headers.get(name) ?? undefined;
    const value = headers[name];
    return Array.isArray(value) ? value[0] : value;
  };
  const retryAfter = get("retry-after")?.trim();
  if (retryAfter) {
    if (/^\d+(\.\d+)?$/.test(retryAfter)) return Number(retryAfter) * 1000;
    const date = Date.parse(retryAfter);
    if (!Number.isNaN(date)) return Math.max(0, date - now);
  }
  const reset = /(?:^|;)\s*t=(\d+)/.exec(get("ratelimit") ?? "")?.[1];
  return reset === undefined ? undefined : Number(reset) * 1000;
}

export function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return url;
  }
}
