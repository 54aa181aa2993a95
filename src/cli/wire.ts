import type { ChatChunk } from "../api/ollama/mapping.js";
import type { WireChoice } from "../api/ollama/job-wire.js";

/** The API's JSON shapes the CLI reads beyond Ollama's (pulls and jobs, docs/api.md), as a client sees them. */

export type { PsModel, ShowResponse } from "../api/ollama/model-mapping.js";

export type { WireChoice as PullChoice, WireJob as Job } from "../api/ollama/job-wire.js";

/** One NDJSON line of POST /api/pull (an `{"error"}` line never reaches here: the client throws it). */
export interface PullLine {
  status: string;
  job?: string;
  choice?: WireChoice;
  digest?: string;
  total?: number;
  completed?: number;
}

/** One NDJSON line of POST /api/chat; `thinking` comes from models that think. */
export type ChatLine = Omit<ChatChunk, "message"> & { message?: { role: string; content?: string; thinking?: string } };
