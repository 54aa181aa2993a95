import { type AppError, ContextOverflowError, InvalidRequestError } from "../../domain/errors.js";
import type { Endpoint } from "./endpoint-pool.js";

/**
 * How one attempt on an endpoint ended (the `outcome` label of ai_server_upstream_requests_total): `ok`;
 * `client_error` (its 4xx for a bad request: the request's fault, passed on); `cancelled` (the client left); or a
 * failure of the endpoint — `connect_error` (refused, reset, unreachable), `timeout`, `server_error` (5xx or an
 * unusable answer), `rate_limited` (429), `refused` (credentials refused or missing, unknown model or route), `broken`
 * (it failed after the answer had begun).
 */
export type UpstreamOutcome = "ok" | "client_error" | "cancelled" | "connect_error" | "timeout" | "server_error" | "rate_limited" | "refused" | "broken";

/**
 * An endpoint failed (not the request): the request may be sent to another endpoint if nothing of the answer was
 * passed on yet, and the endpoint cools down. `missingRoute`: it does not offer the route (404, 405, 501), which for
 * an optional route (tokenize, rerank…) only means asking another endpoint.
 */
export class EndpointFailure extends Error {
  constructor(
    message: string,
    readonly outcome: Exclude<UpstreamOutcome, "ok" | "client_error" | "cancelled">,
    readonly missingRoute = false,
  ) {
    super(message);
    this.name = "EndpointFailure";
  }
}

/** An error of undici's (or the socket's) before or during an answer → EndpointFailure with what happened. */
export function transportFailure(endpoint: Endpoint, error: unknown): EndpointFailure {
  const code = errorCode(error);
  const message = error instanceof Error ? error.message : String(error);
  if (code === "UND_ERR_CONNECT_TIMEOUT") return new EndpointFailure(`${endpoint.url}: no connection within the connect timeout`, "timeout");
  if (code === "UND_ERR_HEADERS_TIMEOUT") return new EndpointFailure(`${endpoint.url}: its answer did not begin within the first-byte timeout`, "timeout");
  if (code === "UND_ERR_BODY_TIMEOUT") return new EndpointFailure(`${endpoint.url}: its answer stalled for longer than the first-byte timeout`, "timeout");
  const what = code === "ECONNREFUSED" ? "connection refused" : code === "ECONNRESET" || code === "UND_ERR_SOCKET" ? "connection closed" : message;
  return new EndpointFailure(`${endpoint.url}: ${what}${code && !what.includes(code) ? ` (${code})` : ""}`, "connect_error");
}

function errorCode(error: unknown): string | undefined {
  for (let e: unknown = error, depth = 0; e instanceof Error && depth < 4; e = e.cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === "string") return code;
  }
  return undefined;
}

/** A non-2xx answer → the request's own error (a bad request, passed on with the endpoint's message) or EndpointFailure. */
export function answerError(endpoint: Endpoint, status: number, body: string): AppError | EndpointFailure {
  const message = messageOf(body) || `HTTP ${status}`;
  const where = `${endpoint.url} (HTTP ${status})`;
  if (status === 429) return new EndpointFailure(`${where}: rate limited: ${message}`, "rate_limited");
  if (status === 401 || status === 403) return new EndpointFailure(`${where}: refused this server's credentials: ${message}`, "refused");
  if (status === 404 || status === 405 || status === 501) return new EndpointFailure(`${where}: ${message}`, "refused", true);
  if (status === 408 || status >= 500 || status < 400) return new EndpointFailure(`${where}: ${message}`, status === 408 || status === 504 ? "timeout" : "server_error");
  return requestError(message);
}

/** The upstream's refusal of a request (a 4xx, or a 4xx error event in a stream) → the catalog error for it. */
export function requestError(message: string): AppError {
  if (/context (size|length|window)|exceed_context_size|maximum context|too many tokens|prompt is too long|too large to process/i.test(message)) {
    return new ContextOverflowError(`input does not fit in the upstream model's context window: ${message}`);
  }
  return new InvalidRequestError(`the upstream model refused the request: ${message}`);
}

/** The message of an error body: OpenAI's `{error: {message}}`, vLLM's `{message}`, FastAPI's `{detail}`, or the text. */
export function messageOf(body: string): string {
  try {
    const parsed = JSON.parse(body) as unknown;
    const found = pick(parsed);
    if (found !== undefined) return found.slice(0, 1000);
  } catch {
    // not JSON: the text itself
  }
  return body.trim().slice(0, 500);
}

function pick(value: unknown): string | undefined {
  if (typeof value === "string") return value;
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  for (const key of ["error", "message", "detail"]) {
    const found = pick(record[key]);
    if (found !== undefined) return found;
  }
  return Array.isArray(record.detail) ? JSON.stringify(record.detail) : undefined;
}
