import cors from "@fastify/cors";
import Fastify, { type FastifyInstance, type FastifyRequest } from "fastify";
import type { Services } from "../services.js";
import { ollamaRoutes } from "../api/ollama/routes.js";
import { openaiRoutes } from "../api/openai/routes.js";
import { adminRoutes } from "../api/admin/routes.js";
import { installAudit } from "../audit/audit-hook.js";
import { installAuthentication } from "../auth/authenticate.js";
import { recordRoutes } from "../auth/route-access.js";
import { installRateLimits } from "../limits/rate-limits.js";
import { anthropicRoutes } from "../api/anthropic/routes.js";
import { openapiRoutes } from "../api/openapi/routes.js";
import { decodeRequestBodies } from "./body-encoding.js";
import { installBodyTimeout } from "./body-timeout.js";
import { answerClientError } from "./client-errors.js";
import { healthRoutes } from "./health.js";
import { installStateRefresh } from "./fresh-state.js";
import { installRequestContext, requestId } from "./request-context.js";
import { installShutdown } from "./shutdown.js";
import { installSessionAffinity, REPLICA_HEADER } from "./session-affinity.js";
import { readTlsFiles } from "./tls.js";
import { uiRoutes } from "./ui.js";
import { handleError, handleNotFound } from "./error-handler.js";
import { ForbiddenOriginError } from "../domain/errors.js";
import { hostChecker } from "./host-check.js";
import { isAllowedOrigin } from "./origins.js";
import { parseListenAddress } from "../config/load.js";

/** Request headers a browser client may send: the API SDKs' own (OpenAI's, Anthropic's) besides the usual ones. */
const CORS_HEADERS = ["Authorization", "Content-Type", "User-Agent", "Accept", "X-Requested-With", "OpenAI-Beta", "OpenAI-Organization",
  "OpenAI-Project", "x-api-key", "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access", "Idempotency-Key"];

/**
 * The preflight's allowed headers: the fixed list, plus every `x-stainless-*` header the request announces (the
 * OpenAI and Anthropic SDKs add new ones from release to release: retry count, timeouts, runtime, helpers…).
 */
function allowedHeaders(request: FastifyRequest, sessionHeader: string): string[] {
  const announced = String(request.headers["access-control-request-headers"] ?? "").split(",").map((h) => h.trim());
  return [...CORS_HEADERS, ...(sessionHeader === "" ? [] : [sessionHeader]), ...announced.filter((h) => /^x-stainless-[a-z0-9-]+$/i.test(h))];
}

/** Response headers a browser client may read: the request id, the session and replica, the rate-limit budget. */
function exposedHeaders(sessionHeader: string): string[] {
  const budget = ["requests", "tokens"].flatMap((unit) => ["limit", "remaining", "reset"].map((part) => `x-ratelimit-${part}-${unit}`));
  return ["x-request-id", ...(sessionHeader === "" ? [] : [sessionHeader]), REPLICA_HEADER, "retry-after", ...budget];
}

/** Builds the Fastify instance: logging, CORS, error mapping, then the protocol adapters, in that order. */
export async function createHttpServer(services: Services): Promise<FastifyInstance> {
  const { config } = services;
  const tls = readTlsFiles(config);
  const http = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: config.bodyLimitBytes,
    // Streams can run for minutes; the client decides when to give up.
    requestTimeout: 0,
    // While closing, new requests get ServerShuttingDownError in their protocol's shape (installShutdown).
    return503OnClosing: false,
    genReqId: requestId,
    requestIdHeader: false,
    // Requests refused before routing (a bad URL escape; what Node's parser rejects) answer in the protocol's shape.
    frameworkErrors: (error, request, reply) => handleError(error, request, reply),
    clientErrorHandler: answerClientError,
    // HTTPS with AI_SERVER_TLS_CERT/KEY (replaced on SIGHUP, see tls.ts), else HTTP.
    https: tls ?? null,
    // An https.Server offers everything the rest of the code uses of the server (close, closeAllConnections, …).
  }) as unknown as FastifyInstance;
  installRequestContext(http);
  installSessionAffinity(http, { header: config.sessionHeader, replica: config.replicaName });
  // A body that stops arriving ends its request (408): requestTimeout is 0 for the streams' sake.
  installBodyTimeout(http, config.bodyTimeoutMs);
  // Next: every request that reaches a route is audited, refused ones included.
  installAudit(http, services);
  installShutdown(http);
  recordRoutes(http);
  http.setErrorHandler(handleError);
  http.setNotFoundHandler(handleNotFound);
  const checkHost = hostChecker(parseListenAddress(config.host).host);
  http.addHook("onRequest", async (request) => {
    checkHost(request.headers.host);
    const origin = request.headers.origin;
    if (origin !== undefined && !isAllowedOrigin(origin, config.origins)) {
      throw new ForbiddenOriginError(`origin "${origin}" is not allowed (add it to AI_SERVER_ORIGINS)`);
    }
  });
  // Per request (a delegator), so that the allowed headers can follow what the preflight announces.
  await http.register(cors, {
    delegator: async (request: FastifyRequest) => {
      const origin = request.headers.origin;
      return {
        origin: origin === undefined || isAllowedOrigin(origin, config.origins),
        methods: ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
        allowedHeaders: allowedHeaders(request, config.sessionHeader),
        exposedHeaders: exposedHeaders(config.sessionHeader),
      };
    },
  });
  // The models and keys as every replica sees them now, before authentication reads the keys.
  installStateRefresh(http, services);
  // After CORS: preflights are answered first, and refusals carry CORS headers.
  installAuthentication(http, services);
  // After authentication: the limits are the key's (or, open, the client address's).
  installRateLimits(http, services);
  decodeRequestBodies(http);
  services.metrics.register(http);
  await http.register(healthRoutes(services));
  await http.register(ollamaRoutes(services));
  await http.register(openaiRoutes(services));
  await http.register(adminRoutes(services));
  await http.register(anthropicRoutes(services));
  await http.register(openapiRoutes());
  await http.register(uiRoutes(config.uiDir));
  return http;
}
