/**
 * The wire shapes of pull jobs (GET /api/jobs, /api/jobs/{id}, its events, and /api/pull's first line), snake_case
 * like the rest of the API. No imports: the server's mapping (job-mapping.ts) builds them, and the CLI and the
 * dashboard read them as types, so a field the server changes fails their typecheck instead of drifting.
 */

export type WireJobState = "queued" | "running" | "succeeded" | "failed" | "cancelled";

/** Bytes by memory pool. */
export interface WireMemory {
  ram: number;
  vram: number;
}

/** What a pull takes, and why. */
export interface WireChoice {
  source: "huggingface" | "ollama";
  repo: string;
  /** The Hub commit the files are taken at. */
  revision?: string;
  /** The name as asked. */
  requested: string;
  /** The repository asked for, when it had no GGUF file and `repo` (a GGUF quantization of it) is used instead. */
  substituted_from?: string;
  /** The file (the first part of a split model). */
  file: string;
  files: string[];
  quantization?: string;
  /** Set when the file is quantized here to this type. */
  quantize_to?: string;
  /** Bytes to download. */
  size: number;
  reason: string;
  alternatives: Array<{ quantization?: string; file: string; size: number; fits: boolean }>;
  budget: WireMemory;
  estimate: WireMemory;
}

/** A file a pull fetches, and where its bytes came from. */
export interface WireJobFile {
  name: string;
  digest: string;
  total: number;
  completed: number;
  state: "pending" | "downloading" | "verifying" | "done";
  source?: "download" | "hf-cache" | "store";
}

/** A background pull. */
export interface WireJob {
  id: string;
  type: "pull";
  model: string;
  state: WireJobState;
  /** What it is doing now, in words. */
  status: string;
  created_at: string;
  started_at?: string;
  finished_at?: string;
  /** The pull as asked. */
  request: { model: string; substitute: boolean; insecure: boolean };
  choice?: WireChoice;
  warnings: string[];
  /** The latest notice while it runs (a part retried, a wait for a rate limit). */
  notice?: string;
  files: WireJobFile[];
  completed: number;
  total: number;
  bytes_per_second: number;
  /** Seconds left at the current speed; null when unknown. */
  eta_seconds: number | null;
  /** Tensors done of a local quantization. */
  quantize?: { completed: number; total: number };
  error?: { code: string; message: string };
}

/** Ollama's progress line for one file of a pull (a type, not an interface: it is one of any-shaped NDJSON lines). */
export type WirePullingLine = {
  status: string;
  digest: string;
  total: number;
  completed: number;
};
