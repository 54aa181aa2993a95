import { fits, shortPools, subtract, total, type Memory } from "./memory.js";

/** A loaded (or loading) model, as admission sees it. */
export interface Resident {
  key: string;
  /** Memory booked for it. */
  memory: Memory;
  /** Nothing runs on it or waits for it: it may be unloaded. */
  idle: boolean;
  /** When its last request finished (or it loaded): larger is more recent. */
  lastUsed: number;
  /** No model name refers to its weights any more (replaced by a re-create or re-pull, or deleted). */
  stale: boolean;
}

export type Admission =
  /** Unload `victims` (in this order), then load. */
  | { kind: "admit"; victims: string[] }
  /** Models in use hold what it needs: wait until one goes idle, then ask again. */
  | { kind: "wait"; reason: string }
  /** It needs more than the whole budget: it can never be loaded. */
  | { kind: "never"; pools: Array<keyof Memory> };

/**
 * Decides whether a model needing `need` can be loaded beside `residents` within `budget` and `maxLoaded` models
 * (0 = no cap), and which idle models to unload first. Victims are idle models only, stale ones first, then the
 * least recently used; a model that frees nothing in a pool that is short is skipped unless the count cap needs it.
 */
export function planAdmission(need: Memory, residents: readonly Resident[], budget: Memory, maxLoaded: number): Admission {
  if (!fits(need, budget)) return { kind: "never", pools: shortPools(need, budget) };
  const candidates = residents.filter((r) => r.idle).sort((a, b) => Number(b.stale) - Number(a.stale) || a.lastUsed - b.lastUsed);
  const victims: Resident[] = [];
  let used = total(residents.map((r) => r.memory));
  let count = residents.length;
  const overCount = (): boolean => maxLoaded > 0 && count + 1 > maxLoaded;
  for (const candidate of candidates) {
    const short = shortPools(need, subtract(budget, used));
    if (short.length === 0 && !overCount()) break;
    if (!overCount() && !short.some((pool) => candidate.memory[pool] > 0)) continue;
    victims.push(candidate);
    used = subtract(used, candidate.memory);
    count--;
  }
  if (fits(need, subtract(budget, used)) && !overCount()) return { kind: "admit", victims: victims.map((v) => v.key) };
  const busy = residents.filter((r) => !r.idle).length;
  const reason = overCount()
    ? `${busy} model(s) in use already make the limit of ${maxLoaded} loaded models`
    : `models in use hold the memory it needs`;
  return { kind: "wait", reason };
}

