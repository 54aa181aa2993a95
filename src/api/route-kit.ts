import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { InvalidRequestError } from "../domain/errors.js";
import type { Services } from "../services.js";

/** What every protocol adapter's route table needs: handlers bound to the services, and lenient JSON bodies. */

/** A route handler of an adapter: it gets the services it may use with the request. */
export type Handler = (services: Services, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/** Binds handlers to the services, for Fastify's route table. */
export function bindHandlers(services: Services): (handler: Handler) => (request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply> {
  return (handler) => (request, reply) => handler(services, request, reply);
}

/**
 * Bodies are JSON whatever the Content-Type says: `curl -d` sends application/x-www-form-urlencoded and Ollama
 * (and most OpenAI-compatible servers) parse it as JSON anyway. Parsing keeps Fastify's body limit and its
 * prototype-poisoning checks. Applies to the plugin it is called in.
 */
export function acceptJsonWhateverTheContentType(app: FastifyInstance): void {
  const parseJson = app.getDefaultJsonParser("error", "error");
  app.removeAllContentTypeParsers();
  app.addContentTypeParser("*", { parseAs: "string" }, (request, raw, done) => {
    const body = typeof raw === "string" ? raw : raw.toString("utf8");
    parseJson(request, body, (error, value) => {
      if (!error) done(null, value);
      else if (body.trim() === "") done(new InvalidRequestError("missing request body"));
      else done(new InvalidRequestError("invalid JSON in request body"));
    });
  });
}
