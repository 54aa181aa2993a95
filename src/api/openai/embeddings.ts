import type { FastifyReply, FastifyRequest } from "fastify";
import { z } from "zod";
import type { Services } from "../../services.js";
import type { EmbedRequest, EmbedResult, TextInput } from "../../domain/embedding.js";
import { InvalidRequestError } from "../../domain/errors.js";
import { onModel } from "../../inference/run-model.js";
import { clientSignal } from "../../server/abort.js";
import { optional, parseBody } from "../validation.js";
import { extraFields, extrasRunSpec, requestOptions } from "../extras.js";

/**
 * POST /v1/embeddings: OpenAI's embeddings. Any model may embed, as on /api/embed (chat models too). Inputs are a
 * string, strings, token ids or lists of token ids. `encoding_format: "base64"` (what the `openai` SDK asks for when
 * its caller names none, and decodes) sends each vector as the base64 of its little-endian float32 bytes. An input
 * longer than the context is an error, as on OpenAI's API, unless the extra field `truncate: true` cuts it.
 */

const tokenIds = z.array(z.number().int().min(0));
const INPUT_SHAPES = "expected a string, an array of strings, an array of token ids or an array of token-id arrays";

export const embeddingsSchema = z.object({
  model: z.string({ error: "model is required" }).min(1, "model is required"),
  input: z.union([z.string(), z.array(z.string()), tokenIds, z.array(tokenIds)], { error: INPUT_SHAPES }),
  encoding_format: optional(z.enum(["float", "base64"], { error: 'expected "float" or "base64"' })),
  dimensions: optional(z.number().int().positive()),
  /** Ours: cut inputs longer than the context instead of failing (default false, as OpenAI). */
  truncate: optional(z.boolean()),
  /** OpenAI's end-user id: accepted and ignored. */
  user: optional(z.string()),
  ...extraFields,
});
export type EmbeddingsBody = z.output<typeof embeddingsSchema>;

export interface EmbeddingsResponse {
  object: "list";
  data: Array<{ object: "embedding"; embedding: number[] | string; index: number }>;
  model: string;
  usage: { prompt_tokens: number; total_tokens: number };
}

export async function createEmbeddings(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(embeddingsSchema, request.body);
  const embedRequest = toEmbedRequest(body);
  const record = services.store.require(body.model);
  const spec = extrasRunSpec(record, requestOptions(record, body), body, clientSignal(reply), startedNs);
  const { result } = await onModel(services.scheduler, spec, (loaded, signal) => loaded.embed(embedRequest, signal), (r) => r.promptTokens);
  return reply.send(toEmbeddingsResponse(body.model, result, body.encoding_format ?? "float"));
}

/** The domain request; every input must hold something (as on OpenAI's API). */
export function toEmbedRequest(body: EmbeddingsBody): EmbedRequest {
  const inputs = toInputs(body.input);
  if (inputs.length === 0) throw new InvalidRequestError("input: must not be empty");
  inputs.forEach((input, i) => {
    if (input.length === 0) throw new InvalidRequestError(`input${Array.isArray(body.input) ? `[${i}]` : ""}: must not be empty`);
  });
  return { inputs, truncate: body.truncate ?? false, ...(body.dimensions !== undefined && { dimensions: body.dimensions }) };
}

function toInputs(input: EmbeddingsBody["input"]): TextInput[] {
  if (typeof input === "string") return [input];
  if (input.length === 0) return [];
  // One list of token ids is one input; a list of strings or of token lists is one input each.
  if (input.every((item): item is number => typeof item === "number")) return [input];
  return input as Array<string | number[]>;
}

export function toEmbeddingsResponse(model: string, result: EmbedResult, format: "float" | "base64"): EmbeddingsResponse {
  return {
    object: "list",
    data: result.embeddings.map((vector, index) => ({ object: "embedding", embedding: format === "base64" ? toBase64(vector) : vector, index })),
    model,
    usage: { prompt_tokens: result.promptTokens, total_tokens: result.promptTokens },
  };
}

/** The vector as little-endian float32 bytes, base64-encoded (what OpenAI sends, and its SDKs decode). */
export function toBase64(vector: readonly number[]): string {
  const bytes = Buffer.alloc(vector.length * 4);
  vector.forEach((value, i) => bytes.writeFloatLE(value, i * 4));
  return bytes.toString("base64");
}
