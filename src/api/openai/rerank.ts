import { randomUUID } from "node:crypto";
import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Services } from "../../services.js";
import type { RerankRequest, RerankResult } from "../../domain/embedding.js";
import { CapabilityError } from "../../domain/errors.js";
import { isReranker } from "../../domain/model.js";
import { onModel } from "../../inference/run-model.js";
import { clientSignal } from "../../server/abort.js";
import { optional, parseBody } from "../validation.js";
import { extraFields, extrasRunSpec, requestOptions } from "../extras.js";

/**
 * POST /v1/rerank and /rerank, in the shape llama-server and vLLM serve (Jina's and Cohere's clients speak it): how
 * relevant each document is to the query, most relevant first, by a model whose header declares rank pooling.
 */

const DOCUMENT_SHAPES = "expected a string or an object with a text field";

export const rerankSchema = z.object({
  model: z.string({ error: "model is required" }).min(1, "model is required"),
  query: z.string({ error: "expected a string" }),
  documents: z
    .array(z.union([z.string(), z.object({ text: z.string() })], { error: DOCUMENT_SHAPES }), { error: "expected an array of documents" })
    .min(1, "must not be empty"),
  /** Keep only the N most relevant (default: all). */
  top_n: optional(z.number().int().positive()),
  /** Echo each result's document text (default false, as llama-server). */
  return_documents: optional(z.boolean()),
  ...extraFields,
});
export type RerankBody = z.output<typeof rerankSchema>;

export interface RerankResponse {
  id: string;
  object: "list";
  model: string;
  results: Array<{ index: number; relevance_score: number; document?: { text: string } }>;
  usage: { prompt_tokens: number; total_tokens: number };
}

export async function rerank(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(rerankSchema, request.body);
  const record = services.store.require(body.model);
  if (!isReranker(record.metadata)) throw new CapabilityError(body.model, "rerank: only a model whose header declares rank pooling (a reranker) scores documents");
  const rerankRequest = toRerankRequest(body);
  const spec = extrasRunSpec(record, requestOptions(record, body), body, clientSignal(reply), startedNs);
  const { result } = await onModel(services.scheduler, spec, (loaded, signal) => loaded.rerank(rerankRequest, signal), (r) => r.promptTokens);
  return reply.send(toRerankResponse(body, rerankRequest, result));
}

export function toRerankRequest(body: RerankBody): RerankRequest {
  return { query: body.query, documents: body.documents.map((d) => (typeof d === "string" ? d : d.text)) };
}

/** Results sorted by relevance, most relevant first (ties in input order), cut to `top_n`. */
export function toRerankResponse(body: RerankBody, request: RerankRequest, result: RerankResult): RerankResponse {
  const ranked = result.scores
    .map((score, index) => ({ index, relevance_score: score }))
    .sort((a, b) => b.relevance_score - a.relevance_score || a.index - b.index)
    .slice(0, body.top_n ?? result.scores.length);
  return {
    id: `rerank-${randomUUID().replaceAll("-", "")}`,
    object: "list",
    model: body.model,
    results: ranked.map((r) => (body.return_documents === true ? { ...r, document: { text: request.documents[r.index] ?? "" } } : r)),
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  };
}
