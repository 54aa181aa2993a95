import type { FastifyInstance, FastifyReply, FastifyRequest, onSendHookHandler } from "fastify";
import type { Services } from "../services.js";
import { actionOf, modelNamed, targetFromResponse } from "./actions.js";
import type { AuditEntry } from "./audit-entry.js";
import { bodyText, KeptOutput } from "./content.js";
import { workDone } from "../inference/request-context.js";

/**
 * What is not audited: the probes and scrapes a load balancer or Prometheus calls every few seconds (`/`, `/health`,
 * `/ready`, `/metrics`), the API's description (`/openapi.json`, the same for everyone), every HEAD request (probes,
 * blob existence checks) and CORS preflights (OPTIONS: a browser's question before the real request, which is itself
 * audited). Requests that match no route are not either (their 404 reached nothing).
 */
const UNAUDITED_ROUTES: ReadonlySet<string> = new Set(["/", "/health", "/ready", "/metrics", "/openapi.json"]);

/** Whether a request to this route is recorded. */
export function isAudited(method: string, route: string | undefined): route is string {
  return route !== undefined && method !== "HEAD" && method !== "OPTIONS" && !UNAUDITED_ROUTES.has(route);
}

/** Response bodies kept for the routes whose action's target only the answer knows (a new key's id). */
const responses = new WeakMap<FastifyRequest, unknown>();

/**
 * Records every audited request in the audit log once its response has ended — or its client left: a stream cut
 * short is recorded with the status it was sent (499 if none was) and `aborted`. Install it right after the request
 * context, before any hook that may refuse a request, so that refusals (401, 403, 429, 503) are recorded too.
 *
 * With AI_SERVER_AUDIT_CONTENT=1 the request's context gets an output capture (run-model.ts fills it) and the entry
 * keeps the request body and the generated text, each bounded; otherwise no text is touched.
 */
export function installAudit(http: FastifyInstance, services: Pick<Services, "audit" | "config">): void {
  const { audit, config } = services;
  if (!audit.enabled) return;
  const content = config.auditContent;
  http.addHook("onRoute", (route) => {
    if (![route.method].flat().some((method) => targetFromResponse(method, route.url))) return;
    route.onSend = [...[route.onSend ?? []].flat(), keepResponse];
  });
  http.addHook("onRequest", (request, reply, done) => {
    const route = request.routeOptions.url;
    if (isAudited(request.method, route)) {
      const output = content ? new KeptOutput() : undefined;
      if (output !== undefined) request.requestContext.output = output;
      // Fires once the response is complete, or when the connection goes first (Fastify's onResponse does not then).
      reply.raw.once("close", () => {
        const ended = audit.time();
        // A client that left mid-stream: its generation stops and counts what it spent just after the close.
        void workDone(request.requestContext).then(() => audit.record(entryOf(request, reply, route, ended, output)));
      });
    }
    done();
  });
}

/** The entry of a request whose response ended (or was cut short) at `now`. */
function entryOf(request: FastifyRequest, reply: FastifyReply, route: string, now: number, output: KeptOutput | undefined): AuditEntry {
  const raw = reply.raw;
  const aborted = !raw.writableFinished;
  const status = aborted && !raw.headersSent ? 499 : raw.statusCode;
  const context = request.requestContext;
  const { principal, usage } = context;
  const durationMs = Math.round(reply.elapsedTime * 100) / 100;
  const change = actionOf(request.method, route, status, { params: request.params, body: request.body, response: responses.get(request) });
  const body = output === undefined ? { text: null, truncated: false } : bodyText(request.body);
  return {
    time: Math.round(now - durationMs),
    requestId: context.id,
    keyId: principal.keyId,
    keyName: principal.keyId === null ? null : principal.name,
    clientAddress: principal.clientAddress,
    method: request.method,
    route,
    model: context.model ?? modelNamed(route, request.body) ?? null,
    status,
    promptTokens: usage.promptTokens,
    cachedTokens: usage.cachedTokens,
    completionTokens: usage.completionTokens,
    durationMs,
    action: change?.action ?? null,
    target: change?.target ?? null,
    aborted,
    requestBody: body.text,
    output: output === undefined || output.parts.length === 0 ? null : output.parts,
    contentTruncated: body.truncated || (output?.truncated ?? false),
  };
}

/** onSend of the routes whose target is in their answer: keeps the JSON answer for the entry. */
const keepResponse: onSendHookHandler = (request, _reply, payload, done) => {
  if (typeof payload === "string") {
    try {
      responses.set(request, JSON.parse(payload) as unknown);
    } catch {
      // Not JSON: an error page; there is no target to read.
    }
  }
  done(null, payload);
};
