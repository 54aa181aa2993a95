/** Sessions a loaded model remembers (the least recently active forgotten first): many more than its slots. */
export const SESSIONS_KEPT = 1024;

/**
 * Which slot (a llama-server slot id, an in-process sequence) served each session last, so that the session's next
 * request goes back to it while it is free: that slot's KV cache holds the session's conversation, so only the new
 * turn is read. Bounded: at most `limit` sessions, the least recently active forgotten first. Both engines keep one
 * per loaded model.
 */
export class SessionSlots<S> {
  /** Session → its slot, least recently active first (a Map keeps insertion order). */
  private readonly slotOf = new Map<string, S>();
  /** Slot → the session it served last. */
  private readonly sessionOn = new Map<S, string>();

  constructor(private readonly limit = SESSIONS_KEPT) {}

  /** The slot that served `session` last, when it is among `free`. */
  ownFree(session: string, free: readonly S[]): S | undefined {
    const slot = this.slotOf.get(session);
    return slot !== undefined && free.includes(slot) ? slot : undefined;
  }

  /** Whether some remembered session was served on `slot` last. */
  holds(slot: S): boolean {
    return this.sessionOn.has(slot);
  }

  /** Whether `session` has a slot (free or not). */
  has(session: string): boolean {
    return this.slotOf.has(session);
  }

  /**
   * A free slot for a request whose session has none free: one that no remembered session was served on last (an
   * empty slot, or one a request without a session used), else the one whose session has been idle the longest, so
   * that the sessions in use keep their caches. Undefined when nothing is free.
   */
  spare(free: readonly S[]): S | undefined {
    const unowned = free.find((slot) => !this.holds(slot));
    if (unowned !== undefined) return unowned;
    for (const [, slot] of this.slotOf) if (free.includes(slot)) return slot;
    return undefined;
  }

  /** A request without a session was served on `slot`: the session served there before has lost its cache. */
  taken(slot: S): void {
    const previous = this.sessionOn.get(slot);
    if (previous === undefined) return;
    this.sessionOn.delete(slot);
    this.slotOf.delete(previous);
  }

  /**
   * Records that `slot` serves `session` now. A session served elsewhere because its own slot was busy keeps its own
   * (call only when it had none, or was given its own), so a side request does not move a session off its cache.
   */
  served(session: string, slot: S): void {
    const previous = this.sessionOn.get(slot);
    if (previous !== undefined && previous !== session) this.slotOf.delete(previous);
    const before = this.slotOf.get(session);
    if (before !== undefined && before !== slot && this.sessionOn.get(before) === session) this.sessionOn.delete(before);
    this.slotOf.delete(session);
    this.slotOf.set(session, slot);
    this.sessionOn.set(slot, session);
    if (this.slotOf.size > this.limit) {
      const [oldest, itsSlot] = this.slotOf.entries().next().value!;
      this.slotOf.delete(oldest);
      if (this.sessionOn.get(itsSlot) === oldest) this.sessionOn.delete(itsSlot);
    }
  }
}
