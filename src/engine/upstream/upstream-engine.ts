import os from "node:os";
import { InternalError, RequestCancelledError, UpstreamError } from "../../domain/errors.js";
import type { Engine, LoadedModel, LoadSpec, MemoryEstimate } from "../engine.js";
import { EndpointPool } from "./endpoint-pool.js";
import type { UpstreamContext, UpstreamEvents } from "./failover.js";
import { HealthChecks } from "./health.js";
import { UpstreamClient } from "./http-client.js";
import { UpstreamModel } from "./loaded-model.js";

export type { UpstreamEvents } from "./failover.js";

/** The settings an upstream model falls back on where its configuration says nothing (AI_SERVER_UPSTREAM_*). */
export interface UpstreamEngineOptions {
  connectTimeoutMs: number;
  firstByteTimeoutMs: number;
  cooldownMs: number;
  /** Between two health checks of a loaded model's endpoints; 0 = only at load. */
  healthIntervalMs: number;
  /** An endpoint's bearer key from the variable its `api_key_env` names (src/config's upstreamSecret). */
  secret: (variable: string) => string | undefined;
  events: UpstreamEvents;
  /** Where an endpoint's cooldown is said (the server's log); never given a key. */
  warn?: (message: string) => void;
}

/**
 * The third engine of the fallback chain (a local llama-server process, the in-process llama.cpp, then this): a model
 * whose weights live on remote OpenAI-compatible servers — vLLM with Ray, TGI, a llama.cpp server on another host,
 * another ai-server — served through the same domain model as local ones. Loading checks its endpoints (it fails only
 * when none answers) and starts their periodic checks; it needs no memory here. This folder is the only place that
 * speaks to those servers.
 */
export class UpstreamEngine implements Engine {
  readonly name = "upstream";

  constructor(private readonly options: UpstreamEngineOptions) {}

  async load(spec: LoadSpec, signal?: AbortSignal): Promise<LoadedModel> {
    const upstream = spec.upstream;
    if (!upstream) throw new InternalError("the upstream engine was asked to load a model that has no upstream");
    const { model, config } = upstream;
    const { events, warn } = this.options;
    const pool = new EndpointPool(config.endpoints, this.options.cooldownMs, {
      cooldown: (endpoint, ms, reason) => {
        events.cooldown(model, endpoint.url, ms / 1000, reason);
        warn?.(`upstream model ${model}: endpoint ${endpoint.url} gets no traffic for ${Math.round(ms / 1000)} s: ${reason}`);
      },
    });
    const client = new UpstreamClient({
      connectTimeoutMs: config.connectTimeoutMs ?? this.options.connectTimeoutMs,
      firstByteTimeoutMs: config.firstByteTimeoutMs ?? this.options.firstByteTimeoutMs,
      secret: this.options.secret,
    });
    const context: UpstreamContext = { model, pool, client, events };
    const health = new HealthChecks(context, this.options.healthIntervalMs);
    const failures = await health.checkAll(signal);
    if (signal?.aborted || failures.size === pool.endpoints.length) {
      await health.stop();
      await client.close();
      if (signal?.aborted) throw new RequestCancelledError();
      throw new UpstreamError(`no endpoint of upstream model "${model}" answers: ${[...failures.values()].join("; ")}`);
    }
    health.start();
    return new UpstreamModel(spec, context, health);
  }

  /** Nothing: the weights are on the endpoints' machines. */
  async estimateMemory(): Promise<MemoryEstimate> {
    return { ram: 0, vram: 0 };
  }

  /** Not the machine its models run on; the scheduler never asks it (the router answers for the local engine). */
  async capacity(): Promise<MemoryEstimate> {
    return { ram: os.totalmem(), vram: 0 };
  }

  async close(): Promise<void> {}
}
