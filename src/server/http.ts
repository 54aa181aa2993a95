import cors from "@fastify/cors";
import Fastify, { type FastifyInstance } from "fastify";
import type { Services } from "../services.js";
import { ollamaRoutes } from "../api/ollama/routes.js";
import { handleError, handleNotFound } from "./error-handler.js";
import { ForbiddenOriginError } from "../domain/errors.js";
import { hostChecker } from "./host-check.js";
import { isAllowedOrigin } from "./origins.js";
import { parseListenAddress } from "../config/load.js";

/** Builds the Fastify instance: logging, CORS, error mapping, then the protocol adapters, in that order. */
export async function createHttpServer(services: Services): Promise<FastifyInstance> {
  const { config } = services;
  const http = Fastify({
    logger: { level: config.logLevel },
    bodyLimit: config.bodyLimitBytes,
    // Streams can run for minutes; the client decides when to give up.
    requestTimeout: 0,
    return503OnClosing: true,
  });
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
  await http.register(cors, {
    origin: (origin, callback) => callback(null, origin === undefined || isAllowedOrigin(origin, config.origins)),
    methods: ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS"],
    allowedHeaders: ["Authorization", "Content-Type", "User-Agent", "Accept", "X-Requested-With", "OpenAI-Beta",
      "x-stainless-arch", "x-stainless-async", "x-stainless-lang", "x-stainless-os", "x-stainless-package-version",
      "x-stainless-retry-count", "x-stainless-runtime", "x-stainless-runtime-version", "x-stainless-timeout",
      "x-stainless-helper-method", "x-stainless-poll-helper", "x-stainless-custom-poll-interval"],
  });
  services.metrics.register(http);
  await http.register(ollamaRoutes(services));
  return http;
}
