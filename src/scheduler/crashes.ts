/** How many crashes of one loaded model, within how long, mean that it keeps dying (the default). */
export const CRASH_LIMIT = { count: 3, windowMs: 5 * 60_000 };

/**
 * When a model's engine process crashed, by load key (weights and shape). The scheduler loads a crashed model again
 * on the next request, unless it crashed `limit.count` times within `limit.windowMs`: then it treats it as a failed
 * load (the cooldown) instead of loading it again and again.
 */
export class CrashHistory {
  private readonly crashes = new Map<string, number[]>();

  constructor(
    readonly limit: { count: number; windowMs: number },
    private readonly now: () => number,
  ) {}

  /** Records a crash of `key`; true when it reaches the limit (the count then starts over). */
  record(key: string): boolean {
    const now = this.now();
    const recent = (this.crashes.get(key) ?? []).filter((at) => now - at < this.limit.windowMs);
    recent.push(now);
    if (recent.length < this.limit.count) {
      this.crashes.set(key, recent);
      return false;
    }
    this.crashes.delete(key);
    return true;
  }
}
