import { formatBytes } from "../domain/byte-size.js";

/** Pure text formatting shared by the CLI's tables and progress displays. */

/** "12.5 MiB/s"; "-" when nothing is moving. */
export function formatSpeed(bytesPerSecond: number | undefined): string {
  return bytesPerSecond === undefined || !Number.isFinite(bytesPerSecond) || bytesPerSecond <= 0 ? "-" : `${formatBytes(bytesPerSecond)}/s`;
}

/** A time left: "45s", "3m10s", "2h05m"; "-" when unknown. */
export function formatEta(seconds: number | null | undefined): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds) || seconds < 0) return "-";
  const s = Math.round(seconds);
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${String(s % 60).padStart(2, "0")}s`;
  return `${Math.floor(s / 3600)}h${String(Math.floor((s % 3600) / 60)).padStart(2, "0")}m`;
}

/** A percentage of `total`, floored, "0%" for an empty total. */
export function percent(completed: number, total: number): string {
  return `${total > 0 ? Math.floor((100 * Math.min(completed, total)) / total) : 0}%`;
}

/** Where a loaded model lives, as `ollama ps` says it: "100% CPU", "100% GPU", "48%/52% CPU/GPU". */
export function processorText(size: number, sizeVram: number): string {
  if (sizeVram <= 0 || size <= 0) return "100% CPU";
  if (sizeVram >= size) return "100% GPU";
  const gpu = Math.round((100 * sizeVram) / size);
  return `${100 - gpu}%/${gpu}% CPU/GPU`;
}

/** Beyond this a model's expiry means "never" (the server says ~292 years). */
const FOREVER_MS = 100 * 365 * 24 * 3600 * 1000;

/** When a loaded model unloads, as `ollama ps` says it: "4 minutes from now", "Forever", "Stopping…". */
export function untilText(expiresAt: Date, now: Date): string {
  const ms = expiresAt.getTime() - now.getTime();
  if (ms <= 0) return "Stopping…";
  if (ms >= FOREVER_MS) return "Forever";
  return `${humanSpan(ms)} from now`;
}

/** "Less than a second", "12 seconds", "About a minute", "4 minutes", "About an hour", "3 hours", "2 days". */
function humanSpan(ms: number): string {
  const seconds = Math.floor(ms / 1000);
  if (seconds < 1) return "Less than a second";
  if (seconds < 60) return seconds === 1 ? "1 second" : `${seconds} seconds`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 2) return "About a minute";
  if (minutes < 60) return `${minutes} minutes`;
  const hours = Math.floor(minutes / 60);
  if (hours < 2) return "About an hour";
  if (hours < 48) return `${hours} hours`;
  return `${Math.floor(hours / 24)} days`;
}

/** A duration in nanoseconds the way Go prints it, to a readable precision: "1.234s", "130.5ms", "850µs". */
export function formatDuration(ns: number): string {
  if (ns >= 60e9) return formatEta(ns / 1e9);
  if (ns >= 1e9) return `${round(ns / 1e9)}s`;
  if (ns >= 1e6) return `${round(ns / 1e6)}ms`;
  if (ns >= 1e3) return `${round(ns / 1e3)}µs`;
  return `${ns}ns`;
}

function round(value: number): string {
  return String(Number(value.toPrecision(4)));
}

/** Left-aligned columns separated by at least three spaces (trailing spaces trimmed), like Go's tabwriter. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? "").length)));
  const line = (cells: string[]): string => cells.map((c, i) => (i < cells.length - 1 ? c.padEnd((widths[i] ?? 0) + 3) : c)).join("").trimEnd();
  return [headers, ...rows].map(line).join("\n") + "\n";
}
