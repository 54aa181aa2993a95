import type { UpstreamCapability, UpstreamConfig, UpstreamEndpointStatus } from "../../domain/upstream.js";
import { rfc3339 } from "./mapping.js";

/**
 * An upstream model's configuration as /api/show returns it (ours): what /api/create took, in its shape (timeouts in
 * seconds), so it can be sent back. Each endpoint's key is named by its variable, never shown.
 */
export interface WireUpstream {
  endpoints: Array<{ url: string; model: string; weight: number; api_key_env?: string }>;
  capabilities: UpstreamCapability[];
  max_parallel?: number;
  context_length?: number;
  connect_timeout?: number;
  first_byte_timeout?: number;
}

/** How each endpoint of a loaded upstream model is doing, as /api/ps returns it (ours). */
export interface WireUpstreamStatus {
  endpoints: Array<{
    url: string;
    model: string;
    weight: number;
    /** Its last health check or request succeeded, and it is not cooling down. */
    healthy: boolean;
    /** Until when it gets no traffic while another endpoint is left (RFC 3339); absent when it is not cooling down. */
    cooling_until?: string;
    /** Failures in a row. */
    failures: number;
    last_error?: string;
    /** Requests it serves now. */
    in_flight: number;
  }>;
}

export function toWireUpstream(config: UpstreamConfig): WireUpstream {
  return {
    endpoints: config.endpoints.map((e) => ({ url: e.url, model: e.model, weight: e.weight, ...(e.apiKeyEnv !== undefined && { api_key_env: e.apiKeyEnv }) })),
    capabilities: [...config.capabilities],
    ...(config.maxParallel !== undefined && { max_parallel: config.maxParallel }),
    ...(config.contextLength !== undefined && { context_length: config.contextLength }),
    ...(config.connectTimeoutMs !== undefined && { connect_timeout: config.connectTimeoutMs / 1000 }),
    ...(config.firstByteTimeoutMs !== undefined && { first_byte_timeout: config.firstByteTimeoutMs / 1000 }),
  };
}

export function toWireUpstreamStatus(endpoints: readonly UpstreamEndpointStatus[]): WireUpstreamStatus {
  return {
    endpoints: endpoints.map((e) => ({
      url: e.url,
      model: e.model,
      weight: e.weight,
      healthy: e.healthy,
      ...(e.coolingUntil !== null && { cooling_until: rfc3339(e.coolingUntil) }),
      failures: e.failures,
      ...(e.lastError !== undefined && { last_error: e.lastError }),
      in_flight: e.inFlight,
    })),
  };
}
