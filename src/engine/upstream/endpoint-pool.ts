import type { UpstreamEndpoint, UpstreamEndpointStatus } from "../../domain/upstream.js";

/** The longest cooldown, however many failures in a row (unless the base cooldown is longer). */
const MAX_COOLDOWN_MS = 5 * 60_000;

/** Which API dialect an endpoint speaks beside OpenAI's, as its GET /models says (for tokenize and count). */
export type Dialect = "llama.cpp" | "vllm" | "openai";

/** One endpoint and what this server knows of it now. */
export interface Endpoint extends UpstreamEndpoint {
  /** Its position in the configuration (for messages and metrics labels). */
  readonly index: number;
  /** Learnt from its health checks; "openai" until one answers. */
  dialect: Dialect;
  /** The last health check or request succeeded. */
  healthy: boolean;
  failures: number;
  coolingUntilMs: number;
  lastError?: string;
  inFlight: number;
  /** Smooth weighted round-robin's running score. */
  current: number;
}

/** What the pool reports as it works (the metrics and the log). */
export interface PoolEvents {
  /** `endpoint` failed and starts a cooldown of `ms` (not called while it is already cooling down). */
  cooldown(endpoint: Endpoint, ms: number, reason: string): void;
}

/**
 * The endpoints of one upstream model: which one serves the next request (smooth weighted round-robin over those
 * not cooling down, so weights 2:1 send exactly two of every three requests to the first), and their health.
 *
 * A failure (of a request before its answer began, or of a health check) puts an endpoint in a cooldown during which
 * it gets no traffic while another endpoint is left: the base cooldown, doubled for each failure in a row (up to
 * five minutes); failing again while cooling down changes nothing. A success (a request, or a health check once the
 * cooldown is over) resets the count.
 */
export class EndpointPool {
  readonly endpoints: Endpoint[];

  constructor(
    endpoints: readonly UpstreamEndpoint[],
    private readonly cooldownMs: number,
    private readonly events: PoolEvents,
    private readonly now: () => number = Date.now,
  ) {
    this.endpoints = endpoints.map((endpoint, index) => ({ ...endpoint, index, dialect: "openai", healthy: true, failures: 0, coolingUntilMs: 0, inFlight: 0, current: 0 }));
  }

  /**
   * The endpoint for a request's next attempt, skipping those it tried already: by weight among those not cooling
   * down, else (none left) the one whose cooldown ends first; undefined when every endpoint was tried.
   */
  pick(tried: ReadonlySet<Endpoint> = new Set()): Endpoint | undefined {
    const untried = this.endpoints.filter((endpoint) => !tried.has(endpoint));
    const ready = untried.filter((endpoint) => !this.cooling(endpoint));
    if (ready.length === 0) return untried.sort((a, b) => a.coolingUntilMs - b.coolingUntilMs)[0];
    let total = 0;
    let best: Endpoint | undefined;
    for (const endpoint of ready) {
      endpoint.current += endpoint.weight;
      total += endpoint.weight;
      if (!best || endpoint.current > best.current) best = endpoint;
    }
    if (best) best.current -= total;
    return best;
  }

  /** Whether `endpoint` is in its cooldown now. */
  cooling(endpoint: Endpoint): boolean {
    return endpoint.coolingUntilMs > this.now();
  }

  succeeded(endpoint: Endpoint): void {
    endpoint.healthy = true;
    endpoint.failures = 0;
    endpoint.coolingUntilMs = 0;
  }

  /** A health check answered: like a success, except that a cooldown in progress runs to its end. */
  answered(endpoint: Endpoint): void {
    if (!this.cooling(endpoint)) this.succeeded(endpoint);
  }

  failed(endpoint: Endpoint, reason: string): void {
    endpoint.healthy = false;
    endpoint.lastError = reason;
    if (this.cooling(endpoint)) return;
    endpoint.failures++;
    const ms = Math.min(Math.max(this.cooldownMs, MAX_COOLDOWN_MS), this.cooldownMs * 2 ** Math.min(endpoint.failures - 1, 20));
    endpoint.coolingUntilMs = this.now() + ms;
    if (ms > 0) this.events.cooldown(endpoint, ms, reason);
  }

  /** Every endpoint's state, as /api/ps shows it (no key: the configuration has only the variable's name). */
  status(): UpstreamEndpointStatus[] {
    return this.endpoints.map((endpoint) => {
      const cooling = this.cooling(endpoint);
      return {
        url: endpoint.url,
        model: endpoint.model,
        weight: endpoint.weight,
        healthy: endpoint.healthy && !cooling,
        coolingUntil: cooling ? new Date(endpoint.coolingUntilMs) : null,
        failures: endpoint.failures,
        ...(endpoint.lastError !== undefined && { lastError: endpoint.lastError }),
        inFlight: endpoint.inFlight,
      };
    });
  }
}

/** Path of an OpenAI route under the endpoint's base URL (`/v1` + `/chat/completions`). */
export function routeOf(endpoint: UpstreamEndpoint, route: string): string {
  return `${new URL(endpoint.url).pathname.replace(/\/+$/, "")}${route}`;
}

/** Path of a route at the server's root, where llama.cpp and vLLM put /tokenize and /detokenize: the base URL less its `/v1`. */
export function rootRouteOf(endpoint: UpstreamEndpoint, route: string): string {
  return `${new URL(endpoint.url).pathname.replace(/\/+$/, "").replace(/\/v1$/, "")}${route}`;
}
