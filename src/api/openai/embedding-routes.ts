import type { FastifyPluginAsync, FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { createEmbeddings } from "./embeddings.js";
import { rerank } from "./rerank.js";

type Handler = (services: Services, request: FastifyRequest, reply: FastifyReply) => Promise<FastifyReply>;

/**
 * OpenAI-shaped embeddings (`POST /v1/embeddings`) and reranking (`POST /v1/rerank`, and `/rerank` as llama-server
 * and vLLM also serve it). Errors reach the server's one error handler, which answers them in OpenAI's shape here.
 */
export function openaiEmbeddingRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    const on = (handler: Handler) => (request: FastifyRequest, reply: FastifyReply) => handler(services, request, reply);
    app.post("/v1/embeddings", on(createEmbeddings));
    app.post("/v1/rerank", on(rerank));
    app.post("/rerank", on(rerank));
  };
}
