import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Config } from "../config/schema.js";
import { parseListenAddress } from "../config/load.js";
import { ForbiddenError, ModelNotFoundError, UnauthorizedError } from "../domain/errors.js";
import type { Services } from "../services.js";
import type { ApiKeyRecord, KeyCheck, KeyStore } from "./key-store.js";
import { mayUseModel, namedModels } from "./model-access.js";
import { isLoopbackHost } from "./open-address.js";
import type { Principal } from "./principal.js";
import { routeAccess, type RouteAccess } from "./route-access.js";

/**
 * Authentication on every route, by the table in route-access.ts. Keys are required when AI_SERVER_AUTH=on, when
 * the server listens on a non-loopback address (unless AI_SERVER_ALLOW_OPEN=1), or as soon as one key is in force;
 * otherwise every request is the anonymous admin of today's open server, whatever key a client sends (clients often
 * send a placeholder). An authenticated request's principal (scope, models, limits) replaces the anonymous one.
 *
 * Two hooks: onRequest (install it after CORS, so that a refusal carries CORS headers and preflights pass) checks
 * the key and the scope; preHandler, once the body is parsed, answers 404 for a model the key may not use, as if it
 * did not exist.
 */
export function installAuthentication(http: FastifyInstance, services: Pick<Services, "config" | "keys" | "store">): void {
  const { config, keys, store } = services;
  const forced = keysForced(config);
  http.addHook("onRequest", async (request) => {
    const access = accessOf(request);
    if (access === "open") return;
    if (!forced && !keys.hasActiveKey()) return;
    if (access === "metrics" && config.metricsOpen) return;
    const principal = authenticate(request, keys);
    request.requestContext.principal = principal;
    if ((access === "admin" || access === "keys") && principal.scope !== "admin") {
      throw new ForbiddenError(`key "${principal.keyId}" has the inference scope; ${request.method} ${request.routeOptions.url} needs an admin key`);
    }
    if (access === "keys" && principal.models !== undefined) {
      throw new ForbiddenError(`key "${principal.keyId}" is limited to some models; managing keys needs an admin key without that limit`);
    }
  });
  http.addHook("preHandler", async (request) => {
    const { principal } = request.requestContext;
    if (principal.models === undefined || accessOf(request) === "keys") return;
    for (const name of namedModels(request.body)) if (!mayUseModel(principal, name, store)) throw new ModelNotFoundError(name);
  });
}

/** Whether keys are required even when none is in force: AI_SERVER_AUTH=on, or a public address not allowed open. */
export function keysForced(config: Pick<Config, "auth" | "host" | "allowOpen">): boolean {
  return config.auth === "on" || (!isLoopbackHost(parseListenAddress(config.host).host) && !config.allowOpen);
}

/** Whether a request must carry a key now. */
export function keysRequired(config: Pick<Config, "auth" | "host" | "allowOpen">, keys: Pick<KeyStore, "hasActiveKey">): boolean {
  return keysForced(config) || keys.hasActiveKey();
}

/**
 * The key a request carries: `Authorization: Bearer <key>` (OpenAI's SDKs and most clients) and `x-api-key: <key>`
 * (Anthropic's); both when both are sent, the Bearer one first.
 */
export function presentedKeys(headers: FastifyRequest["headers"]): string[] {
  const keys: string[] = [];
  const bearer = /^Bearer\s+(\S+)\s*$/i.exec(String(headers.authorization ?? ""))?.[1];
  if (bearer !== undefined) keys.push(bearer);
  const apiKey = headers["x-api-key"];
  if (typeof apiKey === "string" && apiKey.trim() !== "" && apiKey.trim() !== bearer) keys.push(apiKey.trim());
  return keys;
}

/** The route's access; a request that matches no route needs a key of any scope (then gets its 404). */
function accessOf(request: FastifyRequest): RouteAccess {
  const url = request.routeOptions.url;
  return url === undefined ? "inference" : routeAccess(request.method, url);
}

function authenticate(request: FastifyRequest, keys: KeyStore): Principal {
  const presented = presentedKeys(request.headers);
  if (presented.length === 0) throw new UnauthorizedError("an API key is required: send it as Authorization: Bearer <key> or x-api-key: <key>");
  let first: KeyCheck | undefined;
  for (const key of presented) {
    const check = keys.check(key);
    if (check.ok) return principalOf(check.record, request.ip);
    first ??= check;
  }
  throw new UnauthorizedError(refusal(first));
}

function refusal(check: KeyCheck | undefined): string {
  if (check?.ok === false && check.reason === "revoked") return `API key "${check.record?.id}" was revoked`;
  if (check?.ok === false && check.reason === "expired") return `API key "${check.record?.id}" expired at ${check.record?.expiresAt?.toISOString()}`;
  return "invalid API key";
}

/** Who an authenticated request is: its key, with the key's scope, models and limits. */
export function principalOf(record: ApiKeyRecord, clientAddress: string): Principal {
  return {
    keyId: record.id,
    name: record.name,
    scope: record.scope,
    ...(record.models !== undefined && { models: record.models }),
    limits: { ...record.limits },
    clientAddress,
  };
}
