import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { chatCompletions } from "./chat.js";
import { completions } from "./completions.js";
import { getModel, listModels } from "./models.js";

type Handler = (services: Services, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/**
 * OpenAI's API under /v1: chat completions, completions and the model list. Errors thrown by handlers reach the
 * server's one error handler, which answers in OpenAI's shape `{"error": {"message", "type", "param", "code"}}`
 * on /v1 routes.
 */
export function openaiRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    const on = (handler: Handler) => (request: FastifyRequest, reply: FastifyReply) => handler(services, request, reply);
    app.post("/v1/chat/completions", on(chatCompletions));
    app.post("/v1/completions", on(completions));
    app.get("/v1/models", on(listModels));
    // Model ids hold slashes and colons (hf.co/owner/repo:Q4_K_M), so the id is the rest of the path.
    app.get("/v1/models/*", on(getModel));
  };
}
