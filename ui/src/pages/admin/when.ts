import { formatRelative } from "../../format.js";

const MINUTE = 60_000;
const TWO_DAYS = 48 * 3600_000;

/** A date in a table: "just now", "5 min ago" / "in 3 h 10 min" within two days, else the date itself. */
export function formatWhen(iso: string, now = Date.now()): string {
  const at = new Date(iso).getTime();
  if (!Number.isFinite(at)) return "–";
  const distance = Math.abs(at - now);
  if (distance < MINUTE) return "just now";
  if (distance < TWO_DAYS) return formatRelative(iso, now);
  return new Date(at).toLocaleDateString();
}
