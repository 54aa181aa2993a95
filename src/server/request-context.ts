import { randomUUID } from "node:crypto";
import type { FastifyInstance, FastifyRequest } from "fastify";
import { runInRequest, type RequestContext } from "../inference/request-context.js";

declare module "fastify" {
  interface FastifyRequest {
    /** This request's context (see RequestContext); set before any other hook runs. */
    requestContext: RequestContext;
  }
}

/** A client-sent request id is kept when it is short and plain (it goes into logs and headers). */
const SANE_ID = /^[\w.:-]{1,128}$/;

/**
 * Gives every request its context first thing (before the other hooks): an id (also Fastify's request id, so it is
 * in every log line, and sent back as `x-request-id`) and an anonymous principal that authentication may replace.
 * The rest of the request runs inside it.
 */
export function installRequestContext(http: FastifyInstance): void {
  http.decorateRequest("requestContext", undefined as unknown as RequestContext);
  http.addHook("onRequest", (request, reply, done) => {
    const context: RequestContext = {
      id: request.id,
      principal: { keyId: null, name: "anonymous", scope: "admin", limits: {}, clientAddress: request.ip },
      usage: { promptTokens: 0, cachedTokens: 0, completionTokens: 0 },
    };
    request.requestContext = context;
    void reply.header("x-request-id", context.id);
    runInRequest(context, done);
  });
}

/** Fastify's `genReqId`: the client's `x-request-id` when sane, else a random UUID. */
export function requestId(request: { headers: FastifyRequest["headers"] }): string {
  const sent = request.headers["x-request-id"];
  return typeof sent === "string" && SANE_ID.test(sent) ? sent : randomUUID();
}
