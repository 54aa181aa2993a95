import type { FastifyPluginAsync } from "fastify";
import type { Services } from "../../services.js";
import { acceptJsonWhateverTheContentType, bindHandlers } from "../route-kit.js";
import { blobExists, downloadBlob, streamRawBodies, uploadBlob } from "./blobs.js";
import { chat } from "./chat.js";
import { createModel } from "./create.js";
import { embed, embeddings } from "./embed.js";
import { generate } from "./generate.js";
import { createJob, deleteJob, getJob, jobEvents, listJobs } from "./jobs.js";
import { copyModel, deleteModel, listModels, listRunning, showModel } from "./models.js";
import { pullModel } from "./pull.js";
import { detokenize, tokenize } from "./tokenize.js";

/** The Ollama release whose API we match; clients gate features on it. */
export const OLLAMA_VERSION = "0.13.5";

/**
 * Ollama's native API. Every GET route also answers HEAD (Fastify's exposeHeadRoutes). Errors thrown by handlers
 * reach the server's one error handler, which answers `{"error": "…"}` with the error's status.
 */
export function ollamaRoutes(services: Services): FastifyPluginAsync {
  return async (app) => {
    acceptJsonWhateverTheContentType(app);
    const on = bindHandlers(services);

    app.get("/", async (_request, reply) => reply.type("text/plain; charset=utf-8").send("Ollama is running"));
    app.get("/api/version", async () => ({ version: OLLAMA_VERSION }));
    app.get("/api/tags", on(listModels));
    app.post("/api/show", on(showModel));
    app.get("/api/ps", on(listRunning));
    app.post("/api/generate", on(generate));
    app.post("/api/chat", on(chat));
    app.post("/api/embed", on(embed));
    app.post("/api/embeddings", on(embeddings));
    app.post("/api/tokenize", on(tokenize));
    app.post("/api/detokenize", on(detokenize));
    app.post("/api/create", on(createModel));
    app.post("/api/copy", on(copyModel));
    app.delete("/api/delete", on(deleteModel));
    app.post("/api/pull", on(pullModel));
    app.post("/api/jobs", on(createJob));
    app.get("/api/jobs", on(listJobs));
    app.get("/api/jobs/:id", on(getJob));
    app.get("/api/jobs/:id/events", on(jobEvents));
    app.delete("/api/jobs/:id", on(deleteJob));
    await app.register(async (raw) => {
      streamRawBodies(raw);
      raw.head("/api/blobs/:digest", on(blobExists));
      raw.post("/api/blobs/:digest", on(uploadBlob));
      // After the HEAD route: Fastify adds no HEAD twin to a GET whose HEAD is taken, so HEAD keeps its own answer.
      raw.get("/api/blobs/:digest", on(downloadBlob));
    });
  };
}
