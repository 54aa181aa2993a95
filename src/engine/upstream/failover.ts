import { CapabilityError, RequestCancelledError, UpstreamError } from "../../domain/errors.js";
import type { Endpoint, EndpointPool } from "./endpoint-pool.js";
import type { UpstreamClient } from "./http-client.js";
import { EndpointFailure, type UpstreamOutcome } from "./upstream-errors.js";

/** Endpoints one request tries at most (each at most once). */
export const MAX_ATTEMPTS = 3;

/** What the upstream engine reports as it works (the metrics); called synchronously, so cheap and never throwing. */
export interface UpstreamEvents {
  /** One attempt on an endpoint ended so. */
  request(model: string, endpoint: string, outcome: UpstreamOutcome): void;
  /** Seconds from sending a request to its answer's first byte (headers). */
  firstByte(model: string, endpoint: string, seconds: number): void;
  /** A request that `endpoint` failed before answering was sent to another endpoint. */
  retry(model: string, endpoint: string): void;
  /** `endpoint` failed and gets no traffic for `seconds` while another endpoint is left. */
  cooldown(model: string, endpoint: string, seconds: number, reason: string): void;
}

/** Everything a request on one upstream model needs. */
export interface UpstreamContext {
  /** The model's name (messages, metrics). */
  model: string;
  pool: EndpointPool;
  client: UpstreamClient;
  events: UpstreamEvents;
}

/**
 * The endpoints one request tries, in the pool's order (weights, cooldowns), each once, at most MAX_ATTEMPTS: each
 * failure is counted (the endpoint cools down) and remembered for the final error, and a move to another endpoint is
 * reported as a retry.
 */
export class Attempts {
  private readonly tried = new Set<Endpoint>();
  private readonly reasons: string[] = [];
  private attempts = 0;
  private lastFailed?: Endpoint;
  /** Endpoints that do not offer the route (optional routes only). */
  private readonly lacking: string[] = [];

  constructor(private readonly context: UpstreamContext) {}

  /** The next endpoint to try, or undefined when none is left (then `exhausted` says why). */
  next(): Endpoint | undefined {
    if (this.attempts >= MAX_ATTEMPTS) return undefined;
    const endpoint = this.context.pool.pick(this.tried);
    if (!endpoint) return undefined;
    this.tried.add(endpoint);
    this.attempts++;
    if (this.lastFailed) this.context.events.retry(this.context.model, this.lastFailed.url);
    this.lastFailed = undefined;
    return endpoint;
  }

  /** The endpoint answered (or refused the request itself, a 4xx: it is healthy). */
  answered(endpoint: Endpoint, outcome: "ok" | "client_error"): void {
    this.context.pool.succeeded(endpoint);
    this.context.events.request(this.context.model, endpoint.url, outcome);
  }

  failed(endpoint: Endpoint, failure: EndpointFailure): void {
    this.context.pool.failed(endpoint, failure.message);
    this.context.events.request(this.context.model, endpoint.url, failure.outcome);
    this.reasons.push(failure.message);
    this.lastFailed = endpoint;
  }

  /** `endpoint` does not offer an optional route: not its failure; the next one is asked. */
  lacks(endpoint: Endpoint, why: string): void {
    this.lacking.push(why);
    this.attempts--;
  }

  /** The error when no endpoint answered: an UpstreamError with each one's reason, or the capability none offers. */
  exhausted(what?: string): Error {
    if (what !== undefined && this.reasons.length === 0) {
      const detail = this.lacking.length > 0 ? `: ${this.lacking.join("; ")}` : "";
      return new CapabilityError(this.context.model, `${what} (none of its upstream endpoints offers it${detail})`);
    }
    return new UpstreamError(`no endpoint of upstream model "${this.context.model}" answered: ${this.reasons.join("; ") || "none is configured"}`);
  }
}

/**
 * One request that is not streamed (embeddings, rerank, tokenize, count): sent to an endpoint, and to the next one
 * when it fails; `path` says where the endpoint offers it (undefined: its dialect has no such route), and a 404, 405
 * or 501 also means the route is not offered there. `what` names the operation for the error when no endpoint offers
 * it. A 4xx for the request itself is final.
 */
export async function callOnEndpoints<T>(
  context: UpstreamContext,
  what: string,
  request: { path: (endpoint: Endpoint) => string | undefined; body: (endpoint: Endpoint) => unknown },
  read: (answer: unknown, endpoint: Endpoint) => T,
  signal: AbortSignal,
): Promise<T> {
  const attempts = new Attempts(context);
  for (let endpoint = attempts.next(); endpoint; endpoint = attempts.next()) {
    const path = request.path(endpoint);
    if (path === undefined) {
      attempts.lacks(endpoint, `${endpoint.url} is ${endpoint.dialect === "openai" ? "a plain OpenAI-compatible server" : endpoint.dialect}`);
      continue;
    }
    endpoint.inFlight++;
    try {
      const started = performance.now();
      const answer = await context.client.send(endpoint, "POST", path, request.body(endpoint), signal);
      context.events.firstByte(context.model, endpoint.url, (performance.now() - started) / 1000);
      const result = read(await answer.read(), endpoint);
      attempts.answered(endpoint, "ok");
      return result;
    } catch (error) {
      if (signal.aborted) throw new RequestCancelledError();
      if (error instanceof EndpointFailure && error.missingRoute) attempts.lacks(endpoint, error.message);
      else if (error instanceof EndpointFailure) attempts.failed(endpoint, error);
      else {
        if (!(error instanceof RequestCancelledError)) attempts.answered(endpoint, "client_error");
        throw error;
      }
    } finally {
      endpoint.inFlight--;
    }
  }
  throw attempts.exhausted(what);
}
