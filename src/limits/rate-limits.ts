import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Limits, Principal } from "../auth/principal.js";
import { routeAccess, type RouteAccess } from "../auth/route-access.js";
import type { Config } from "../config/schema.js";
import { RateLimitedError } from "../domain/errors.js";
import type { Services } from "../services.js";
import { durationText, rateLimitHeaders } from "./headers.js";
import type { Admission } from "./limit-counter.js";
import { workDone } from "../inference/request-context.js";

/** The routes whose requests count: those that run models or change the server (not probes, metrics, preflights). */
/** The route accesses whose requests count against the limits (the OpenAPI document lists their 429s from it). */
export const RATE_LIMITED_ACCESS: ReadonlySet<RouteAccess> = new Set(["inference", "admin", "keys"]);

/**
 * Rate limits on every route that does inference or admin work, per principal: an API key's limits (rpm, tpm,
 * max_parallel), or, on an open server, AI_SERVER_OPEN_RPM / _TPM / _MAX_PARALLEL per client address. Install it
 * after authentication (it reads the principal authentication settles).
 *
 * One onRequest hook, before the body is read: the request is admitted by `services.limits` (read per request, so a
 * replacement counter takes effect at once) or refused with a 429 in the route's protocol shape (RateLimitedError,
 * counted in the metrics by limit). An admitted request holds a parallel slot until its response ends: the raw
 * response's `close`, which Node emits after the last byte of a whole or streamed response and also when the client
 * goes away first, so an abandoned stream frees its slot. Then it is charged the tokens its generations counted.
 * A principal with per-minute limits gets the `x-ratelimit-*` headers on every counted response.
 */
export function installRateLimits(http: FastifyInstance, services: Pick<Services, "config" | "limits" | "metrics">): void {
  const open = openLimits(services.config);
  http.addHook("onRequest", async (request, reply) => {
    const url = request.routeOptions.url;
    if (url === undefined || !RATE_LIMITED_ACCESS.has(routeAccess(request.method, url))) return;
    const { principal } = request.requestContext;
    const limits = principal.keyId === null ? open : principal.limits;
    if (limits.rpm === undefined && limits.tpm === undefined && limits.maxParallel === undefined) return;
    const counter = services.limits;
    const id = principalId(principal);
    const admission = await counter.take(id, limits);
    const headers = rateLimitHeaders(admission);
    if (!admission.admitted) {
      services.metrics.rateLimited(admission.limit);
      throw new RateLimitedError(refusalMessage(principal, limits, admission), admission.retryAfterMs, headers);
    }
    void reply.headers(headers);
    const { holder } = admission;
    reply.raw.once("close", () => {
      counter.release(id, holder);
      // A client that left mid-stream: its generation stops and counts what it spent just after the close.
      void workDone(request.requestContext).then(() => counter.charge(id, limits, spentTokens(request)));
    });
  });
}

/** The limits of anonymous clients of an open server, from the settings (0 = unlimited). */
export function openLimits(config: Pick<Config, "openRpm" | "openTpm" | "openMaxParallel">): Limits {
  return {
    ...(config.openRpm > 0 && { rpm: config.openRpm }),
    ...(config.openTpm > 0 && { tpm: config.openTpm }),
    ...(config.openMaxParallel > 0 && { maxParallel: config.openMaxParallel }),
  };
}

/** Whom the limits are counted for: the key, or the client address of an anonymous request. */
export function principalId(principal: Principal): string {
  return principal.keyId === null ? `address:${principal.clientAddress}` : `key:${principal.keyId}`;
}

/** Tokens the request's generations counted: every prompt token (those reused from the cache too) and every generated one. */
function spentTokens(request: FastifyRequest): number {
  const { usage } = request.requestContext;
  return usage.promptTokens + usage.completionTokens;
}

function refusalMessage(principal: Principal, limits: Limits, refusal: Extract<Admission, { admitted: false }>): string {
  const who = principal.keyId === null ? `client ${principal.clientAddress}` : `API key "${principal.keyId}"`;
  if (refusal.limit === "maxParallel") {
    return `${who} already has ${limits.maxParallel} request(s) running, its max_parallel limit; try again when one ends`;
  }
  const what = refusal.limit === "rpm" ? `${limits.rpm} requests per minute` : `${limits.tpm} tokens per minute`;
  return `rate limit of ${what} reached for ${who}; try again in ${durationText(refusal.retryAfterMs)}`;
}
