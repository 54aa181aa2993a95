import { Counter, Histogram, type Registry } from "prom-client";
import type { UpstreamEvents } from "../engine/upstream/upstream-engine.js";
import type { UpstreamOutcome } from "../engine/upstream/upstream-errors.js";

/** From a loopback hop's fraction of a millisecond to a long prompt read by a remote engine (seconds). */
const FIRST_BYTE_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

/**
 * The upstream engine's metrics, in the server's registry: each attempt on an endpoint by outcome, the time to an
 * answer's first byte, retries on another endpoint and cooldowns, labelled by model and endpoint URL (never a key).
 * The tokens and latencies of the generations themselves are counted as for any model (metrics.ts).
 */
export class UpstreamMetrics implements UpstreamEvents {
  private readonly requests: Counter<"model" | "endpoint" | "outcome">;
  private readonly firstBytes: Histogram<"model" | "endpoint">;
  private readonly retries: Counter<"model" | "endpoint">;
  private readonly cooldowns: Counter<"model" | "endpoint">;

  constructor(registry: Registry) {
    this.requests = new Counter({
      name: "ai_server_upstream_requests_total",
      help: "Requests sent to upstream endpoints, by how each attempt ended: ok, client_error (the request's own 4xx), cancelled, or the endpoint's failure (connect_error, timeout, server_error, rate_limited, refused, broken mid-answer).",
      labelNames: ["model", "endpoint", "outcome"],
      registers: [registry],
    });
    this.firstBytes = new Histogram({
      name: "ai_server_upstream_first_byte_seconds",
      help: "Time from sending a request to an upstream endpoint to the first byte of its answer.",
      labelNames: ["model", "endpoint"],
      buckets: FIRST_BYTE_BUCKETS,
      registers: [registry],
    });
    this.retries = new Counter({
      name: "ai_server_upstream_retries_total",
      help: "Requests sent to another endpoint after this one failed before answering.",
      labelNames: ["model", "endpoint"],
      registers: [registry],
    });
    this.cooldowns = new Counter({
      name: "ai_server_upstream_cooldowns_total",
      help: "Times an upstream endpoint failed and was given no traffic for a while (AI_SERVER_UPSTREAM_COOLDOWN, doubled per failure in a row).",
      labelNames: ["model", "endpoint"],
      registers: [registry],
    });
  }

  request(model: string, endpoint: string, outcome: UpstreamOutcome): void {
    this.requests.inc({ model, endpoint, outcome });
  }

  firstByte(model: string, endpoint: string, seconds: number): void {
    this.firstBytes.observe({ model, endpoint }, seconds);
  }

  retry(model: string, endpoint: string): void {
    this.retries.inc({ model, endpoint });
  }

  cooldown(model: string, endpoint: string): void {
    this.cooldowns.inc({ model, endpoint });
  }
}
