import type { Admission, LimitState } from "./limit-counter.js";

/**
 * The rate-limit headers of OpenAI's API, which its SDKs expose and users read, on every response of a principal
 * with a per-minute limit: `x-ratelimit-limit-requests`, `x-ratelimit-remaining-requests`,
 * `x-ratelimit-reset-requests` (time until the budget is whole again, `1s`, `6m0s`), and the same with `-tokens`.
 * Only the limits the principal has are sent.
 */
export function rateLimitHeaders(admission: Pick<Admission, "requests" | "tokens">): Record<string, string> {
  const headers: Record<string, string> = {};
  if (admission.requests !== undefined) addHeaders(headers, "requests", admission.requests);
  if (admission.tokens !== undefined) addHeaders(headers, "tokens", admission.tokens);
  return headers;
}

function addHeaders(headers: Record<string, string>, unit: "requests" | "tokens", state: LimitState): void {
  headers[`x-ratelimit-limit-${unit}`] = String(state.limit);
  headers[`x-ratelimit-remaining-${unit}`] = String(state.remaining);
  headers[`x-ratelimit-reset-${unit}`] = durationText(state.resetMs);
}

/**
 * A duration as OpenAI's headers write it (Go's duration format): `0s`, `120ms`, `1s`, `17.339s`, `6m0s`, `1h2m3s`.
 */
export function durationText(ms: number): string {
  const total = Math.max(0, Math.ceil(ms));
  if (total === 0) return "0s";
  if (total < 1000) return `${total}ms`;
  const hours = Math.floor(total / 3_600_000);
  const minutes = Math.floor((total % 3_600_000) / 60_000);
  const secondsMs = total % 60_000;
  const seconds = `${Math.floor(secondsMs / 1000)}${secondsMs % 1000 === 0 ? "" : `.${String(secondsMs % 1000).padStart(3, "0").replace(/0+$/, "")}`}s`;
  if (hours > 0) return `${hours}h${minutes}m${seconds}`;
  if (minutes > 0) return `${minutes}m${seconds}`;
  return seconds;
}
