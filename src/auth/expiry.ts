import { InvalidRequestError } from "../domain/errors.js";

const UNIT_MS: Record<string, number> = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000, y: 365 * 86_400_000 };

/**
 * When a new key expires: a span from `now` ("30d", "12h", "1w", "1d12h"; s, m, h, d, w, y) or a date or time
 * ("2026-01-31", "2026-01-31T12:00:00Z"). It must lie in the future.
 */
export function parseExpiry(value: string, now: Date): Date {
  const text = value.trim();
  let at: Date;
  if (/^(\d+[smhdwy])+$/.test(text)) {
    let ms = 0;
    for (const [, amount, unit] of text.matchAll(/(\d+)([smhdwy])/g)) ms += Number(amount) * (UNIT_MS[unit ?? "s"] ?? 0);
    at = new Date(now.getTime() + ms);
  } else if (/^\d{4}-\d{2}-\d{2}([T ][\d:.]+(Z|[+-]\d{2}:?\d{2})?)?$/.test(text)) {
    at = new Date(text);
  } else {
    throw new InvalidRequestError(`expires: "${value}" is neither a span (30d, 12h, 1w) nor a date (2026-01-31)`);
  }
  if (Number.isNaN(at.getTime())) throw new InvalidRequestError(`expires: "${value}" is not a valid date`);
  if (at.getTime() <= now.getTime()) throw new InvalidRequestError(`expires: "${value}" is not in the future`);
  return at;
}
