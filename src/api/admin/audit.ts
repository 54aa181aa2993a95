import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import { ACTION_NAMES, auditModelName } from "../../audit/actions.js";
import type { StoredAuditEntry } from "../../audit/audit-entry.js";
import type { AuditQuery } from "../../audit/audit-log.js";
import { ForbiddenError, InvalidRequestError } from "../../domain/errors.js";
import type { Services } from "../../services.js";
import { optional, parseBody } from "../validation.js";
import type { WireAuditEntry } from "./wire.js";

export type { WireAuditEntry } from "./wire.js";

/** GET /api/audit (admin): the audit log, newest first, filtered and paged by a cursor. */

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1000;

/** The query string; an unknown parameter is a 400 (a misspelt filter would otherwise silently match everything). */
export const auditQuerySchema = z
  .object({
    key: optional(z.string().min(1).max(256)),
    model: optional(z.string().min(1).max(500)),
    route: optional(z.string().min(1).max(256)),
    status: optional(z.string().regex(/^[1-5](\d\d|xx)$/i, 'expected a status ("404") or a class ("4xx")')),
    action: optional(z.string()),
    since: optional(z.string()),
    until: optional(z.string()),
    limit: optional(z.coerce.number().int().min(1).max(MAX_LIMIT)),
    cursor: optional(z.string().regex(/^\d{1,15}$/, "expected the next_cursor of a previous page")),
  })
  .strict();


/**
 * GET /api/audit: `{entries, next_cursor}`; next_cursor is null on the last page. The log shows every key's requests
 * on every model, so an admin key limited to some models may not read it.
 */
export async function listAudit(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { principal } = request.requestContext;
  if (principal.models !== undefined) {
    throw new ForbiddenError(`key "${principal.keyId}" is limited to some models; the audit log shows every model's requests, so reading it needs an admin key without that limit`);
  }
  const query = toAuditQuery(parseBody(auditQuerySchema, request.query ?? {}), services.audit.time());
  const page = await services.audit.query(query);
  return reply.send({ entries: page.entries.map(toWireEntry), next_cursor: page.nextBefore === undefined ? null : String(page.nextBefore) });
}

/** The query string → the log's query; `since`/`until` as spans count back from `now`. */
export function toAuditQuery(query: z.output<typeof auditQuerySchema>, now: number): AuditQuery {
  if (query.action !== undefined && query.action !== "*" && !ACTION_NAMES.has(query.action)) {
    throw new InvalidRequestError(`action: "${query.action}" is none of *, ${[...ACTION_NAMES].join(", ")}`);
  }
  return {
    ...(query.key !== undefined && { key: query.key }),
    ...(query.model !== undefined && { model: auditModelName(query.model) }),
    ...(query.route !== undefined && { route: query.route }),
    ...(query.status !== undefined && { status: statusRange(query.status) }),
    ...(query.action !== undefined && { action: query.action }),
    ...(query.since !== undefined && { since: parseWhen("since", query.since, now) }),
    ...(query.until !== undefined && { until: parseWhen("until", query.until, now) }),
    limit: query.limit ?? DEFAULT_LIMIT,
    ...(query.cursor !== undefined && { before: Number(query.cursor) }),
  };
}

/** "404" → 404–404, "4xx" → 400–499. */
function statusRange(status: string): { min: number; max: number } {
  if (/xx$/i.test(status)) {
    const min = Number(status[0]) * 100;
    return { min, max: min + 99 };
  }
  return { min: Number(status), max: Number(status) };
}

const SPAN_UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };
const SPAN = /^(\d+(\.\d+)?(ms|s|m|h|d|w))+$/;
const RFC3339 = /^\d{4}-\d{2}-\d{2}([Tt ]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2}))?$/;

/**
 * A point in time (ms): an RFC 3339 time ("2026-01-31T12:00:00Z", "2026-01-31T12:00:00+01:00"; a date alone is its
 * midnight UTC), or a span back from now ("90s", "15m", "1h", "1h30m", "7d", "2w").
 */
export function parseWhen(field: string, value: string, now: number): number {
  const text = value.trim();
  if (SPAN.test(text)) {
    let ms = 0;
    for (const [, amount, , unit] of text.matchAll(/(\d+(\.\d+)?)(ms|s|m|h|d|w)/g)) ms += Number(amount) * (SPAN_UNIT_MS[unit ?? "s"] ?? 0);
    return now - ms;
  }
  const at = RFC3339.test(text) ? Date.parse(text) : Number.NaN;
  if (Number.isNaN(at)) throw new InvalidRequestError(`${field}: "${value}" is neither an RFC 3339 time (2026-01-31T12:00:00Z) nor a span back from now (1h, 7d)`);
  return at;
}

export function toWireEntry(entry: StoredAuditEntry): WireAuditEntry {
  return {
    id: entry.id,
    time: new Date(entry.time).toISOString(),
    request_id: entry.requestId,
    key_id: entry.keyId,
    key_name: entry.keyName,
    client_address: entry.clientAddress,
    method: entry.method,
    route: entry.route,
    model: entry.model,
    status: entry.status,
    prompt_tokens: entry.promptTokens,
    cached_tokens: entry.cachedTokens,
    completion_tokens: entry.completionTokens,
    duration_ms: entry.durationMs,
    action: entry.action,
    target: entry.target,
    aborted: entry.aborted,
    request_body: entry.requestBody,
    output: entry.output,
    content_truncated: entry.contentTruncated,
  };
}
