import { Gauge, type Registry } from "prom-client";
import type { JobState } from "../domain/job.js";
import type { ModelStats } from "../engine/engine.js";
import type { ModelRequests } from "../scheduler/scheduler.js";

/** A loaded model, as the gauges read it at scrape time. */
export interface ModelGaugeSource {
  name: string;
  active: number;
  queued: number;
  ram: number;
  vram: number;
  stats: ModelStats;
}

/** What the metrics read when scraped (so that nothing of it costs a request anything). */
export interface MetricSources {
  /** Loaded models. */
  models(): ModelGaugeSource[];
  /** Requests on every model loaded or loading. */
  requests(): ModelRequests[];
  /** Jobs by state (read from the database: every replica's). */
  jobs(): Promise<Record<JobState, number>>;
  /** Brings the loaded models' engine counters up to date before a scrape (KV cache usage kept in a llama-server). */
  refresh?(): Promise<void>;
}

/**
 * The gauges read from `sources` at each scrape: requests running and waiting, memory and counters of the loaded
 * models, jobs by state. Two instances of one name (a hot swap's old and new weights) add up under its label.
 *
 * The three a router reads to pick a replica (requests waiting, requests running, KV cache usage: what vLLM exports as
 * `vllm:num_requests_waiting`, `vllm:num_requests_running` and `vllm:kv_cache_usage_perc`, and what the Kubernetes
 * Gateway API Inference Extension's endpoint picker scrapes) carry vLLM's `model_name` label beside our `model`.
 */
export function registerScrapeGauges(registry: Registry, sources: MetricSources): void {
  const byModel = <T>(name: string, help: string, read: () => T[], nameOf: (item: T) => string, value: (item: T) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ["model"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const item of read()) this.inc({ model: nameOf(item) }, value(item));
      },
    });
  };
  const model = (name: string, help: string, value: (m: ModelGaugeSource) => number): void =>
    byModel(name, help, () => sources.models(), (m) => m.name, value);

  registerRouterGauges(registry, sources);
  new Gauge({
    name: "ai_server_loaded_models",
    help: "Models loaded now.",
    registers: [registry],
    collect() {
      this.set(sources.models().length);
    },
  });
  model("ai_server_model_active_requests", "Requests a loaded model is serving now.", (m) => m.active);
  model("ai_server_model_queued_requests", "Requests waiting for a slot on a loaded model.", (m) => m.queued);
  model("ai_server_model_ram_bytes", "RAM a loaded model and its context take.", (m) => m.ram);
  model("ai_server_model_vram_bytes", "VRAM a loaded model and its context take.", (m) => m.vram);
  model("ai_server_speculative_drafted_tokens", "Speculative tokens checked since the model was loaded.", (m) => m.stats.speculative.drafted);
  model("ai_server_speculative_accepted_tokens", "Speculative tokens accepted since the model was loaded.", (m) => m.stats.speculative.accepted);
  new Gauge({
    name: "ai_server_speculative_acceptance_ratio",
    help: "Accepted / drafted speculative tokens since load (0 when none).",
    labelNames: ["model"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const m of sources.models()) {
        const { drafted, accepted } = m.stats.speculative;
        this.set({ model: m.name }, drafted > 0 ? accepted / drafted : 0);
      }
    },
  });
  new Gauge({
    name: "ai_server_jobs",
    help: "Jobs (pulls) by state, as /api/jobs lists them.",
    labelNames: ["state"] as const,
    registers: [registry],
    async collect() {
      const counts = await sources.jobs();
      this.reset();
      for (const [state, count] of Object.entries(counts)) this.set({ state }, count);
    },
  });
}

/**
 * Per model, read at each scrape: requests running and waiting (loads included), and the fraction of its KV cache the
 * running requests hold (the cells of both instances of one name during a hot swap added up before dividing).
 */
function registerRouterGauges(registry: Registry, sources: MetricSources): void {
  const gauge = (name: string, help: string, read: () => Map<string, number>): void => {
    new Gauge({
      name,
      help,
      labelNames: ["model", "model_name"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const [model, value] of read()) this.set({ model, model_name: model }, value);
      },
    });
  };
  const requests = (value: (r: ModelRequests) => number) => (): Map<string, number> => {
    const byName = new Map<string, number>();
    for (const r of sources.requests()) byName.set(r.model, (byName.get(r.model) ?? 0) + value(r));
    return byName;
  };
  gauge("ai_server_num_requests_running", "Requests holding one of a model's slots now.", requests((r) => r.running));
  gauge("ai_server_num_requests_waiting", "Requests waiting for one of a model's slots, or for its load, now.", requests((r) => r.waiting));
  gauge("ai_server_kv_cache_usage_perc", "Fraction of a loaded model's KV cache (all its slots' cells) held by the requests running now, from 0 to 1.", () => {
    const cells = new Map<string, { used: number; size: number }>();
    for (const m of sources.models()) {
      const kv = m.stats.kvCache;
      if (kv === undefined) continue;
      const sum = cells.get(m.name) ?? { used: 0, size: 0 };
      cells.set(m.name, { used: sum.used + kv.used, size: sum.size + kv.size });
    }
    return new Map([...cells].filter(([, kv]) => kv.size > 0).map(([name, kv]) => [name, kv.used / kv.size]));
  });
}
