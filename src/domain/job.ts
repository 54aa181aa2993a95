/** Background jobs (pulls): what the job API, `/api/pull` and the CLI show of them. */

export const JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"] as const;

export type JobState = (typeof JOB_STATES)[number];

export function isFinal(state: JobState): boolean {
  return state === "succeeded" || state === "failed" || state === "cancelled";
}

/** What a pull asked for. */
export interface PullRequest {
  /** The name as the client gave it. */
  model: string;
  /** Whether a repository without GGUF files may be served by a GGUF quantization of it (default true). */
  substitute: boolean;
  /** Plain HTTP for a registry of its own (Ollama's `insecure`). */
  insecure: boolean;
}

/** The bytes a model needs or a budget allows, by pool. */
export interface MemoryAmount {
  ram: number;
  vram: number;
}

/** What a pull takes, and why: shown by the CLI, in the job, and in `/api/pull`'s first line. */
export interface PullChoice {
  source: "huggingface" | "ollama";
  /** The repository (or registry model) the files come from. */
  repo: string;
  /** The Hub commit the files are taken at. */
  revision?: string;
  /** The name as asked. */
  requested: string;
  /** The repository asked for, when it had no GGUF file and `repo` (a GGUF quantization of it) was used instead. */
  substitutedFrom?: string;
  /** The file (the first part of a split model). */
  file: string;
  files: string[];
  quantization?: string;
  /** Set when the file is quantized here to this type. */
  quantizeTo?: string;
  /** Bytes to download. */
  size: number;
  reason: string;
  alternatives: Array<{ quantization?: string; file: string; size: number; fits: boolean }>;
  budget: MemoryAmount;
  estimate: MemoryAmount;
}

export type JobFileState = "pending" | "downloading" | "verifying" | "done";

/** A file a pull fetches. */
export interface JobFile {
  name: string;
  digest: string;
  total: number;
  completed: number;
  state: JobFileState;
  /** Where its bytes came from: downloaded, imported from the local Hugging Face cache, or already stored. */
  source?: "download" | "hf-cache" | "store";
}

export interface Job {
  id: string;
  type: "pull";
  /** The name the model is stored under. */
  model: string;
  state: JobState;
  /** What it is doing now, in words ("resolving", "downloading", "verifying sha256 digest", …). */
  status: string;
  createdAt: Date;
  startedAt?: Date;
  finishedAt?: Date;
  request: PullRequest;
  choice?: PullChoice;
  warnings: string[];
  files: JobFile[];
  /** The latest notice while it runs: a part retried, a wait for a rate limit. */
  notice?: string;
  /** Tensors done of a local quantization. */
  quantize?: { completed: number; total: number };
  error?: { code: string; message: string };
  /** Download speed over the last seconds. */
  bytesPerSecond: number;
  /** Seconds left at that speed; null when unknown. */
  etaSeconds: number | null;
}
