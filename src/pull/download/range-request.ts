import type { Readable } from "node:stream";
import { request as undiciRequest, type Dispatcher } from "undici";
import { UpstreamAccessError, UpstreamError, UpstreamNotFoundError } from "../../domain/errors.js";
import { isRedirect, MAX_REDIRECTS, rateLimitWaitMs } from "../upstream-http.js";
import { RangeNotSatisfiableError, RateLimitedError, RetryableError } from "./transfer-errors.js";

const ERROR_TEXT_LIMIT = 300;

/** How one ranged GET is made. */
export interface RangeRequestOptions {
  dispatcher: Dispatcher;
  url: string;
  /** Sent to the url's own origin only; a redirect to another origin drops them (and they stay dropped). */
  headers: Record<string, string> | undefined;
  /** First and last byte (inclusive) wanted. */
  first: number;
  last: number;
  /** The file's size, to tell a file that changed upstream from a range the server refuses. */
  size: number;
  stallTimeoutMs: number;
  signal: AbortSignal;
}

/** A 200 or 206 answer, its body not read yet. */
export interface RangeResponse {
  statusCode: number;
  headers: Dispatcher.ResponseData["headers"];
  body: Readable;
  /** Where the bytes came from after redirects (origin and path only: signed query strings stay out of messages). */
  source: string;
}

/**
 * GETs `bytes=first-last` of the url, following up to 10 redirects by hand (every call resolves them again, so an
 * expiring signed target is fresh on each attempt). Answers other than 200/206 become errors: 404/410
 * UpstreamNotFoundError, 401/403 UpstreamAccessError (with the server's error code and text), 416
 * RangeNotSatisfiableError (or UpstreamError when the server names another size), 429 RateLimitedError, 408/5xx and
 * network failures RetryableError, anything else UpstreamError.
 */
export async function requestRange(options: RangeRequestOptions): Promise<RangeResponse> {
  let url = new URL(options.url);
  let trusted = true;
  for (let hop = 0; ; hop++) {
    const headers = { ...(trusted ? options.headers : {}), range: `bytes=${options.first}-${options.last}`, "accept-encoding": "identity" };
    let response: Dispatcher.ResponseData;
    try {
      response = await undiciRequest(url, { dispatcher: options.dispatcher, method: "GET", headers, signal: options.signal, highWaterMark: 1 << 20 });
    } catch (error) {
      if (options.signal.aborted) throw error;
      throw new RetryableError(describeNetworkError(error, options.stallTimeoutMs));
    }
    const { statusCode, headers: answer, body } = response;
    const source = `${url.origin}${url.pathname}`;
    if (statusCode === 200 || statusCode === 206) return { statusCode, headers: answer, body, source };
    if (isRedirect(statusCode)) {
      await body.dump().catch(() => undefined);
      const location = single(answer.location);
      if (location === undefined) throw new UpstreamError(`${source} answered ${statusCode} without a Location`);
      if (hop >= MAX_REDIRECTS) throw new UpstreamError(`${options.url}: more than ${MAX_REDIRECTS} redirects`);
      const next = new URL(location, url);
      if (next.protocol !== "http:" && next.protocol !== "https:") throw new UpstreamError(`${source} redirects to an unsupported URL: ${next.protocol}`);
      if (next.origin !== url.origin) trusted = false;
      url = next;
      continue;
    }
    throw await failure(statusCode, answer, body, source, options);
  }
}

/** The error for an answer that carries no bytes. */
async function failure(status: number, headers: RangeResponse["headers"], body: Readable, source: string, options: RangeRequestOptions): Promise<Error> {
  const text = await readSome(body, ERROR_TEXT_LIMIT);
  if (status === 404 || status === 410) return new UpstreamNotFoundError(`${source} was not found upstream (HTTP ${status})`);
  if (status === 401 || status === 403) {
    const details = [single(headers["x-error-code"]), single(headers["x-error-message"]) ?? text].filter(Boolean).join(": ");
    return new UpstreamAccessError(`${source} refused access (HTTP ${status})${details ? `: ${details}` : ""}`);
  }
  if (status === 429) return new RateLimitedError(rateLimitWaitMs(headers), new URL(source).host);
  if (status === 416) {
    const total = contentRangeTotal(single(headers["content-range"]));
    if (total !== undefined && total !== options.size) return sizeChanged(source, options.size, total);
    return new RangeNotSatisfiableError(`${source} refused the range bytes=${options.first}-${options.last} (HTTP 416)`);
  }
  if (status === 408 || status >= 500) return new RetryableError(`${source} answered HTTP ${status}`);
  return new UpstreamError(`${source} answered HTTP ${status}${text ? `: ${text}` : ""}`);
}

/** The file upstream no longer has the size the caller expects: retrying cannot help. */
export function sizeChanged(source: string, expected: number, actual: number): UpstreamError {
  return new UpstreamError(`${source} changed upstream: expected ${expected} bytes, the server has ${actual}`);
}

/** "bytes 0-99/1234" → { first: 0, last: 99, total: 1234 } (total undefined for "*"). */
export function parseContentRange(value: string | undefined): { first: number; last: number; total: number | undefined } | undefined {
  const match = /^bytes (\d+)-(\d+)\/(\d+|\*)$/.exec(value?.trim() ?? "");
  if (!match) return undefined;
  return { first: Number(match[1]), last: Number(match[2]), total: match[3] === "*" ? undefined : Number(match[3]) };
}

function contentRangeTotal(value: string | undefined): number | undefined {
  const match = /\/(\d+)$/.exec(value?.trim() ?? "");
  return match ? Number(match[1]) : undefined;
}

/** A failed request or body, in words: stalls name the timeout, closed connections say so. */
export function describeNetworkError(error: unknown, stallTimeoutMs: number): string {
  const code = (error as { code?: string } | undefined)?.code;
  if (code === "UND_ERR_BODY_TIMEOUT" || code === "UND_ERR_HEADERS_TIMEOUT") return `stalled: no byte for ${stallTimeoutMs / 1000} s`;
  if (code === "UND_ERR_SOCKET") return "the server closed the connection";
  const message = error instanceof Error ? error.message : String(error);
  return code && !message.includes(code) ? `${message} (${code})` : message;
}

/** A header's value (the first one when it came several times). */
export function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

async function readSome(body: Readable, limit: number): Promise<string> {
  let text = "";
  try {
    for await (const chunk of body) {
      text += String(chunk);
      if (text.length >= limit) break;
    }
  } catch {
    // The text only decorates the error.
  }
  body.destroy();
  return text.trim().slice(0, limit);
}
