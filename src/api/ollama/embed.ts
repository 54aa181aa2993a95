import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import type { EmbedRequest, EmbedResult } from "../../domain/embedding.js";
import { clientSignal } from "../../server/abort.js";
import { effectiveOptions } from "../../inference/model-options.js";
import { onModel, runSpec, since } from "../../inference/run-model.js";
import { embeddingsSchema, embedSchema, parseBody, requestedModel, type EmbeddingsBody } from "./schemas.js";

/**
 * POST /api/embed: one L2-normalised vector per input. Any model may embed (chat models too). Empty input only
 * loads the model and answers `embeddings: []`.
 */
export async function embed(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(embedSchema, request.body);
  const model = requestedModel(body);
  const inputs = typeof body.input === "string" ? (body.input === "" ? [] : [body.input]) : (body.input ?? []);
  const embedRequest: EmbedRequest = { inputs, truncate: body.truncate ?? true };
  if (body.dimensions !== undefined) embedRequest.dimensions = body.dimensions;
  const { result, loadDurationNs } = await embedOn(services, model, body, reply, embedRequest);
  return reply.send({
    model,
    embeddings: result.embeddings,
    total_duration: since(startedNs),
    load_duration: loadDurationNs,
    prompt_eval_count: result.promptTokens,
  });
}

/** POST /api/embeddings (legacy): one prompt, answered as `{"embedding": [...]}`. */
export async function embeddings(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseBody(embeddingsSchema, request.body);
  const model = requestedModel(body);
  const inputs = body.prompt ? [body.prompt] : [];
  const { result } = await embedOn(services, model, body, reply, { inputs, truncate: true });
  return reply.send({ embedding: result.embeddings[0] ?? [] });
}

/** The fields /api/embed and /api/embeddings share. */
type EmbedWire = Pick<EmbeddingsBody, "options" | "keep_alive">;

/** Leases the model and embeds; no inputs only loads it. */
async function embedOn(
  services: Services,
  model: string,
  body: EmbedWire,
  reply: FastifyReply,
  embedRequest: EmbedRequest,
): Promise<{ result: EmbedResult; loadDurationNs: number }> {
  const record = services.store.require(model);
  const options = effectiveOptions(record.parameters, body.options);
  const spec = runSpec(record, options, body.keep_alive, clientSignal(reply), process.hrtime.bigint());
  return onModel(services.scheduler, spec, async (loaded, signal) =>
    embedRequest.inputs.length === 0 ? { embeddings: [], promptTokens: 0 } : loaded.embed(embedRequest, signal),
    (result) => result.promptTokens,
  );
}
