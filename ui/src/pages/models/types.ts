/** The wire shapes the models page reads (docs/api.md: /api/tags, /api/show, Jobs). */

/** A model's details, as /api/tags and /api/show give them. */
export interface ModelDetails {
  parent_model?: string;
  format?: string;
  family?: string;
  families?: string[] | null;
  parameter_size?: string;
  quantization_level?: string;
}

/** One local model of GET /api/tags. */
export interface ModelSummary {
  name: string;
  model: string;
  modified_at: string;
  size: number;
  digest: string;
  details?: ModelDetails;
}

/** POST /api/show's answer. */
export interface ShowResponse {
  modelfile?: string;
  parameters?: string;
  template?: string;
  system?: string;
  license?: string;
  details?: ModelDetails;
  model_info?: Record<string, unknown>;
  capabilities?: string[];
  modified_at?: string;
}

export type { WireJobState as JobState, WireChoice as PullChoice, WireJobFile as JobFile, WireJob as Job } from "../../../../src/api/ollama/job-wire.js";
import type { WireJob } from "../../../../src/api/ollama/job-wire.js";

/** Whether a job has ended (it changes no more). */
export function isFinished(job: WireJob): boolean {
  return job.state === "succeeded" || job.state === "failed" || job.state === "cancelled";
}
