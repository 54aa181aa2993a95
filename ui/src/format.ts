/** How numbers, sizes and times read on every page. */

const UNITS = ["B", "KiB", "MiB", "GiB", "TiB"];

/** 1536 → "1.5 KiB". */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes) || bytes < 0) return "–";
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  return `${unit === 0 ? value : value.toFixed(value < 10 ? 2 : 1)} ${UNITS[unit]}`;
}

/** Seconds as "42 s", "3 min 20 s", "2 h 5 min". */
export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds) || seconds < 0) return "–";
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1) : Math.round(seconds)} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${Math.round(seconds % 60)} s`;
  return `${Math.floor(minutes / 60)} h ${minutes % 60} min`;
}

/** A date as "2 min ago" / "in 5 min" beside now, for lists; "just now" within a second either way. */
export function formatRelative(date: Date | string, now = Date.now()): string {
  const ms = new Date(date).getTime() - now;
  if (!Number.isFinite(ms)) return "–";
  if (Math.abs(ms) < 1000) return "just now";
  const text = formatSeconds(Math.abs(ms) / 1000);
  return ms >= 0 ? `in ${text}` : `${text} ago`;
}

/** 12345.6 → "12,346" (the browser's locale). */
export function formatNumber(value: number, digits = 0): string {
  return Number.isFinite(value) ? value.toLocaleString(undefined, { maximumFractionDigits: digits, minimumFractionDigits: digits }) : "–";
}
