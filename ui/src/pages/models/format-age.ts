import { formatRelative } from "../../format.js";

/** When a model changed, for lists: "just now" within a minute, else "5 min ago" (formatRelative). */
export function formatAge(date: string, now = Date.now()): string {
  const ms = now - new Date(date).getTime();
  return Number.isFinite(ms) && ms >= 0 && ms < 60_000 ? "just now" : formatRelative(date, now);
}
