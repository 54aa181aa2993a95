import type { ChatChunk } from "../api/ollama/mapping.js";
import type { JobState } from "../domain/job.js";

/** The API's JSON shapes the CLI reads beyond Ollama's (pulls and jobs, docs/api.md), as a client sees them. */

export type { PsModel, ShowResponse } from "../api/ollama/model-mapping.js";

/** What a pull chose to download, and why (in /api/pull's first line and in the job). */
export interface PullChoice {
  source: "huggingface" | "ollama";
  repo: string;
  requested?: string;
  /** The repo the name pointed at, when a GGUF repo of its base model is pulled instead. */
  substituted_from?: string;
  file?: string;
  files?: string[];
  quantization?: string;
  /** Set when a higher-precision file is downloaded and quantized to this type locally. */
  quantize_to?: string;
  size?: number;
  reason: string;
}

/** One NDJSON line of POST /api/pull (an `{"error"}` line never reaches here: the client throws it). */
export interface PullLine {
  status: string;
  job?: string;
  choice?: PullChoice;
  digest?: string;
  total?: number;
  completed?: number;
}

/** A background job (GET /api/jobs). */
export interface Job {
  id: string;
  type: string;
  model: string;
  state: JobState;
  status: string;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  choice?: PullChoice;
  warnings?: string[];
  files?: Array<{ name: string; digest: string; total: number; completed: number; state: string }>;
  completed: number;
  total: number;
  bytes_per_second?: number;
  eta_seconds?: number | null;
  quantize?: { completed: number; total: number };
  /** The latest notice while it runs (a part retried, a wait for a rate limit). */
  notice?: string;
  error?: { code: string; message: string };
}

/** One NDJSON line of POST /api/chat; `thinking` comes from models that think. */
export type ChatLine = Omit<ChatChunk, "message"> & { message?: { role: string; content?: string; thinking?: string } };
