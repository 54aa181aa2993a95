import type { FastifyPluginAsync } from "fastify";
import { buildOpenApiDocument } from "./document.js";

/**
 * GET /openapi.json: the OpenAPI 3.1 document of every route, built from the schemas that validate the requests.
 * Built at the first request (every route is registered by then) and kept: the routes never change while the server
 * runs.
 */
export function openapiRoutes(): FastifyPluginAsync {
  return async (app) => {
    let document: string | undefined;
    app.get("/openapi.json", async (_request, reply) => {
      document ??= JSON.stringify(buildOpenApiDocument(app.registeredRoutes));
      return reply.type("application/json; charset=utf-8").send(document);
    });
  };
}
