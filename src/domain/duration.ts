import { InvalidRequestError } from "./errors.js";

const UNITS: Record<string, number> = { ns: 1e-6, us: 1e-3, "µs": 1e-3, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/**
 * Parses a duration the way Ollama's keep_alive does, into milliseconds:
 * a Go duration string ("5m", "1h30m", "300ms", "-1m"), or a number (or numeric string) of seconds.
 * Any negative value means "for ever" and is returned as -1.
 */
export function parseDuration(value: string | number): number {
  if (typeof value === "number") return normalise(value * 1000);
  const text = value.trim();
  if (/^[-+]?\d+(\.\d+)?$/.test(text)) return normalise(Number(text) * 1000);
  const match = /^([-+]?)((?:\d+(?:\.\d+)?(?:ns|us|µs|ms|s|m|h))+)$/.exec(text);
  if (!match) throw new InvalidRequestError(`invalid duration "${value}"`);
  let total = 0;
  for (const [, amount, unit] of (match[2] ?? "").matchAll(/(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)/g)) {
    total += Number(amount) * (UNITS[unit ?? "s"] ?? 0);
  }
  return normalise(match[1] === "-" ? -total : total);
}

function normalise(ms: number): number {
  if (!Number.isFinite(ms)) throw new InvalidRequestError("invalid duration");
  return ms < 0 ? -1 : Math.round(ms);
}
