/** The server's answers this page reads (docs/api.md "GET /api/ps" and "GET /health"). */

/** A loaded model, as GET /api/ps lists it. */
export interface LoadedModel {
  name: string;
  /** Bytes in RAM and VRAM together. */
  size: number;
  /** The part of `size` in VRAM (all of it, or 0). */
  size_vram: number;
  /** Context length per slot. */
  context_length: number;
  /** When its keep-alive ends; ~292 years ahead while busy or when kept for ever. */
  expires_at: string;
  /** Requests being served now. */
  active: number;
  /** Requests waiting for a slot. */
  queued: number;
  /** Requests it serves at once. */
  slots?: number;
  /** "llama-cpp" (in process) or "llama-server". */
  engine: string;
  details?: { parameter_size?: string; quantization_level?: string; family?: string };
}

export interface PsResponse {
  models: LoadedModel[];
}

/** RAM and VRAM, in bytes. */
export interface Memory {
  ram: number;
  vram: number;
}

/** The part of GET /health this page shows. */
export interface HealthResponse {
  loaded: number;
  loading: { model: string; waiting?: string } | null;
  queue: { waiting: number; max: number };
  /** What models may take and what the loaded ones booked; null until the first load measured the machine. */
  memory: { budget: Memory; booked: Memory } | null;
}
