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

export type JobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** What a pull takes, and why (the job's `choice`). */
export interface PullChoice {
  source: "huggingface" | "ollama";
  repo: string;
  revision?: string;
  requested: string;
  substituted_from?: string;
  file: string;
  files: string[];
  quantization?: string;
  quantize_to?: string;
  size: number;
  reason: string;
}

/** A file a pull fetches. */
export interface JobFile {
  name: string;
  digest: string;
  total: number;
  completed: number;
  state: "pending" | "downloading" | "verifying" | "done";
  source?: "download" | "hf-cache" | "store";
}

/** A background pull, as GET /api/jobs and its event stream give it. */
export interface Job {
  id: string;
  type: "pull";
  model: string;
  state: JobState;
  status: string;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  choice?: PullChoice;
  warnings: string[];
  notice?: string;
  files: JobFile[];
  completed: number;
  total: number;
  bytes_per_second: number;
  eta_seconds: number | null;
  quantize?: { completed: number; total: number };
  error?: { code: string; message: string };
}

/** Whether a job has ended (it changes no more). */
export function isFinished(job: Job): boolean {
  return job.state === "succeeded" || job.state === "failed" || job.state === "cancelled";
}
