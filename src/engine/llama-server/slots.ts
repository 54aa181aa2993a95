import type { KvCacheUsage } from "../engine.js";
import { isRecord, type ServerClient } from "./client.js";

/** One of llama-server's slots, as GET /slots shows it. */
export interface SlotState {
  id: number;
  /** Cells the slot may take (its context). */
  contextSize: number;
  /** Serving a request now. */
  processing: boolean;
  /** Tokens in its KV cache (the prompt read so far and what was generated after it). */
  tokens: number;
}

/**
 * GET /slots: every slot's id, context (`n_ctx`), whether it is serving a task (`is_processing`) and the tokens its
 * cache holds (`n_prompt_tokens`, the size of the slot's cached token list, absent before its first task).
 * llama-server answers it from its main loop between two decode steps, ahead of queued tasks (never the prompts'
 * text: only its metrics without --slots-debug).
 */
export async function readSlots(client: ServerClient, signal: AbortSignal): Promise<SlotState[]> {
  const answer = await client.post<unknown>("/slots", undefined, signal);
  if (!Array.isArray(answer)) return [];
  return answer.filter(isRecord).map((slot) => ({
    id: typeof slot.id === "number" ? slot.id : -1,
    contextSize: typeof slot.n_ctx === "number" ? slot.n_ctx : 0,
    processing: slot.is_processing === true,
    tokens: typeof slot.n_prompt_tokens === "number" ? slot.n_prompt_tokens : 0,
  }));
}

/** The KV cache of a model's slots: every slot's context, and the cells the slots serving a request hold. */
export function kvCacheOf(slots: readonly SlotState[]): KvCacheUsage {
  let used = 0;
  let size = 0;
  for (const slot of slots) {
    size += slot.contextSize;
    if (slot.processing) used += Math.min(slot.tokens, slot.contextSize);
  }
  return { used, size };
}

/** Longest a /slots read may take (a long prompt step delays it) before the caller goes on without it. */
export const SLOTS_READ_TIMEOUT_MS = 1000;
/** A read younger than this is reused: scrapes from several collectors, or close together, cost one read. */
const FRESH_MS = 1000;

/**
 * The KV cache usage of a llama-server model, read from /slots when asked (at scrape time), at most once a second:
 * concurrent refreshes share one read, and a read that fails or takes longer than SLOTS_READ_TIMEOUT_MS leaves the
 * previous value.
 */
export class KvCacheReading {
  private last?: { at: number; value: KvCacheUsage };
  private reading?: Promise<void>;

  constructor(private readonly client: ServerClient) {}

  /** The last value read (undefined before the first). */
  get value(): KvCacheUsage | undefined {
    return this.last?.value;
  }

  refresh(): Promise<void> {
    if (this.last && Date.now() - this.last.at < FRESH_MS) return Promise.resolve();
    this.reading ??= readSlots(this.client, AbortSignal.timeout(SLOTS_READ_TIMEOUT_MS))
      .then(
        (slots) => void (this.last = { at: Date.now(), value: kvCacheOf(slots) }),
        () => undefined,
      )
      .finally(() => (this.reading = undefined));
    return this.reading;
  }
}
