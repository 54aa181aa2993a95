import { SessionSlots } from "../session-slots.js";
import type { ServerClient } from "./client.js";
import { readSlots, SLOTS_READ_TIMEOUT_MS } from "./slots.js";

/** Where a request of a session goes: `slot` for llama-server's `id_slot` (undefined: llama-server chooses). */
export interface Placement {
  slot?: number;
  /** Call when the request has ended (its slot may be given to another session's request again). */
  release(): void;
}

const NOWHERE: Placement = { slot: undefined, release: () => {} };

/**
 * Steers the requests of a session (ChatRequest.session) to the llama-server slot that served the session last,
 * with the request's `id_slot`. llama-server holds a task that names a busy slot until that slot is free, even when
 * others are idle (server-context.cpp, "requested slot is unavailable, defer task"), so a slot is named only when
 * GET /slots shows it idle and no request placed here holds it: the session's own, else a spare one (one no other
 * remembered session holds). When no slot qualifies, /slots does not answer in time, or the request has no session,
 * nothing is named and llama-server picks a slot as usual (the longest common prefix, else the least recently used).
 * Requests without a session are placed by llama-server, unseen here: one may take an idle slot between the read and
 * the task, and a session's task then waits for that one request, never longer.
 */
export class SessionPlacement {
  private readonly sessions = new SessionSlots<number>();
  /** Slots named by requests still running (llama-server may not show them busy yet). */
  private readonly claimed = new Set<number>();

  constructor(private readonly client: ServerClient) {}

  async place(session: string | undefined, signal: AbortSignal): Promise<Placement> {
    if (session === undefined) return NOWHERE;
    let idle: number[];
    try {
      const slots = await readSlots(this.client, AbortSignal.any([signal, AbortSignal.timeout(SLOTS_READ_TIMEOUT_MS)]));
      idle = slots.filter((slot) => !slot.processing && slot.id >= 0 && !this.claimed.has(slot.id)).map((slot) => slot.id);
    } catch {
      return NOWHERE;
    }
    const own = this.sessions.ownFree(session, idle);
    const slot = own ?? this.sessions.spare(idle);
    if (slot === undefined) return NOWHERE;
    if (own !== undefined || !this.sessions.has(session)) this.sessions.served(session, slot);
    else this.sessions.taken(slot); // its own slot is busy: it borrows one, whose session loses its cache
    this.claimed.add(slot);
    let released = false;
    return {
      slot,
      release: () => {
        if (released) return;
        released = true;
        this.claimed.delete(slot);
      },
    };
  }
}
