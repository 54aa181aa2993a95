import { formatSeconds } from "../../format.js";

/** Beyond this, expires_at is Ollama's "never" (Go's longest duration, ~292 years, from now). */
const NEVER_AFTER_MS = 100 * 365 * 24 * 3600 * 1000;

/**
 * How long a loaded model stays once idle, as a countdown: "4 min 10 s"; "while busy" when requests hold it (its
 * countdown starts when the last one ends); "never" when its keep-alive is negative; "unloading" once it ran out.
 */
export function keepAliveText(expiresAt: string, busy: boolean, now: number): string {
  const left = new Date(expiresAt).getTime() - now;
  if (!Number.isFinite(left)) return "–";
  if (left > NEVER_AFTER_MS) return busy ? "while busy" : "never";
  if (left <= 0) return "unloading";
  const seconds = Math.ceil(left / 1000);
  return seconds < 60 ? `${seconds} s` : formatSeconds(seconds);
}
