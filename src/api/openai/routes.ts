import type { FastifyPluginAsync } from "fastify";
import type { Services } from "../../services.js";
import { acceptJsonWhateverTheContentType, bindHandlers } from "../route-kit.js";
import { chatCompletions } from "./chat.js";
import { completions } from "./completions.js";
import { createEmbeddings } from "./embeddings.js";
import { getModel, listModels } from "./models.js";
import { rerank } from "./rerank.js";
import { createResponse, deleteResponse, getResponse } from "./responses.js";

/**
 * OpenAI's API under /v1: chat completions, responses (and stored responses by id), completions, embeddings, the
 * model list, and reranking (`/v1/rerank`, and `/rerank` as llama-server and vLLM also serve it). Errors thrown by
 * handlers reach the server's one error handler, which answers in OpenAI's shape `{"error": {"message", "type",
 * "param", "code"}}` on these routes.
 */
export function openaiRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    acceptJsonWhateverTheContentType(app);
    const on = bindHandlers(services);
    app.post("/v1/chat/completions", on(chatCompletions));
    app.post("/v1/completions", on(completions));
    app.post("/v1/embeddings", on(createEmbeddings));
    app.post("/v1/rerank", on(rerank));
    app.post("/rerank", on(rerank));
    app.get("/v1/models", on(listModels));
    // Model ids hold slashes and colons (hf.co/owner/repo:Q4_K_M), so the id is the rest of the path.
    app.get("/v1/models/*", on(getModel));
    // The Responses API; stored responses by id (the rest of the path, so that a stray slash is a clean 404).
    app.post("/v1/responses", on(createResponse));
    app.get("/v1/responses/*", on(getResponse));
    app.delete("/v1/responses/*", on(deleteResponse));
  };
}
