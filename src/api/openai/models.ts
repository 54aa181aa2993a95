import type { FastifyReply, FastifyRequest } from "fastify";
import { InvalidModelNameError, ModelNotFoundError } from "../../domain/errors.js";
import type { ModelRecord } from "../../domain/model.js";
import { parseModelName } from "../../domain/model-name.js";
import type { Services } from "../../services.js";
import { mayUseModel, visibleTo } from "../../auth/model-access.js";

/** GET /v1/models and /v1/models/{id}: the store's models in OpenAI's shape. */

/** One model in OpenAI's list shape. */
export interface WireModel {
  /** The model's name, as requests use it (may hold slashes and a colon). */
  id: string;
  object: "model";
  /** Unix seconds of its last change. */
  created: number;
  /** Its namespace (a Hugging Face user, an Ollama registry namespace), or "library". */
  owned_by: string;
}

/** A stored model as OpenAI lists it; `created` is when it last changed. */
export function toWireModel(record: ModelRecord): WireModel {
  return {
    id: record.name,
    object: "model",
    created: Math.floor(record.modifiedAt.getTime() / 1000),
    owned_by: parseModelName(record.name).namespace ?? "library",
  };
}

/**
 * The model a request names; a name that cannot exist (not a valid model name) is as unknown as one that does not,
 * as on OpenAI's API: 404.
 */
export function requireModel(services: Services, name: string): ModelRecord {
  try {
    return services.store.require(name);
  } catch (error) {
    if (error instanceof InvalidModelNameError) throw new ModelNotFoundError(name);
    throw error;
  }
}

/** GET /v1/models: every model in the store the request's key may see, most recently changed first. */
export async function listModels(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const models = visibleTo(request.requestContext.principal, services.store.list(), (record) => record.name, services.store);
  return reply.send({ object: "list", data: models.map(toWireModel) });
}

/** GET /v1/models/{id}: one model, by any name that reaches it (an alias included); 404 otherwise, or when the key may not see it. */
export async function getModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const id = (request.params as { "*"?: string })["*"] ?? "";
  if (!mayUseModel(request.requestContext.principal, id, services.store)) throw new ModelNotFoundError(id);
  const record = requireModel(services, id);
  return reply.send({ ...toWireModel(record), id });
}
