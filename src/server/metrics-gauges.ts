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
  /** Jobs by state. */
  jobs(): Record<JobState, number>;
}

/**
 * The gauges read from `sources` at each scrape: requests running and waiting, memory and counters of the loaded
 * models, jobs by state. Two instances of one name (a hot swap's old and new weights) add up under its label.
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
  const requests = (name: string, help: string, value: (r: ModelRequests) => number): void =>
    byModel(name, help, () => sources.requests(), (r) => r.model, value);

  requests("ai_server_num_requests_running", "Requests holding one of a model's slots now.", (r) => r.running);
  requests("ai_server_num_requests_waiting", "Requests waiting for one of a model's slots, or for its load, now.", (r) => r.waiting);
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
    collect() {
      this.reset();
      for (const [state, count] of Object.entries(sources.jobs())) this.set({ state }, count);
    },
  });
}
