import { routeOf, type Dialect, type Endpoint } from "./endpoint-pool.js";
import type { UpstreamContext } from "./failover.js";
import { isRecord } from "./stream-answer.js";
import { EndpointFailure } from "./upstream-errors.js";

/** Longest a health check waits for its answer (whatever the first-byte timeout: /models answers at once). */
const HEALTH_TIMEOUT_MS = 5000;

/**
 * Asks one endpoint GET {url}/models: an answer (2xx JSON) counts as healthy, and its models' `owned_by` tells which
 * server it is ("llamacpp": llama.cpp's llama-server, "vllm": vLLM), which says where it offers tokenize and count.
 * Resolves to the failure's reason, or undefined when it answered; the pool is told either way.
 */
export async function checkEndpoint(context: UpstreamContext, endpoint: Endpoint, signal: AbortSignal): Promise<string | undefined> {
  try {
    const answer = await context.client.send(endpoint, "GET", routeOf(endpoint, "/models"), undefined, signal, HEALTH_TIMEOUT_MS);
    endpoint.dialect = dialectOf(await answer.read());
    context.pool.answered(endpoint);
    return undefined;
  } catch (error) {
    if (signal.aborted) return "cancelled";
    const reason = error instanceof Error ? error.message : String(error);
    const failure = error instanceof EndpointFailure ? error : new EndpointFailure(`${endpoint.url}: GET /models: ${reason}`, "server_error");
    context.pool.failed(endpoint, failure.message);
    return failure.message;
  }
}

function dialectOf(models: unknown): Dialect {
  const data = isRecord(models) && Array.isArray(models.data) ? models.data : [];
  const owners = data.map((model) => (isRecord(model) ? model.owned_by : undefined));
  if (owners.includes("llamacpp")) return "llama.cpp";
  if (owners.includes("vllm")) return "vllm";
  return "openai";
}

/**
 * The health checks of a loaded upstream model: every endpoint at once when it loads, then every `intervalMs`
 * (0: never again) until it is unloaded; a check never overlaps the previous one.
 */
export class HealthChecks {
  private timer?: NodeJS.Timeout;
  private running?: Promise<unknown>;
  private readonly stopped = new AbortController();

  constructor(
    private readonly context: UpstreamContext,
    private readonly intervalMs: number,
  ) {}

  /** Checks every endpoint now; resolves to the reasons of those that failed, by endpoint. */
  async checkAll(signal?: AbortSignal): Promise<Map<Endpoint, string>> {
    const abort = signal ? AbortSignal.any([signal, this.stopped.signal]) : this.stopped.signal;
    const results = await Promise.all(this.context.pool.endpoints.map(async (endpoint) => [endpoint, await checkEndpoint(this.context, endpoint, abort)] as const));
    return new Map(results.filter((entry): entry is readonly [Endpoint, string] => entry[1] !== undefined));
  }

  start(): void {
    if (this.intervalMs <= 0) return;
    this.timer = setInterval(() => {
      this.running ??= this.checkAll().finally(() => (this.running = undefined));
    }, this.intervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopped.abort();
    await this.running;
  }
}
