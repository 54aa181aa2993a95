import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { InvalidRequestError } from "../../domain/errors.js";
import { toHealthResponse, toPsModel, toShowResponse, toTagsModel } from "./model-mapping.js";
import { copySchema, deleteSchema, parseBody, requestedModel, showSchema } from "./schemas.js";

/** GET /api/tags: every model in the store, newest first. */
export async function listModels(services: Services, _request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  return reply.send({ models: services.store.list().map(toTagsModel) });
}

/** POST /api/show: one model's details, parameters, template and header metadata. */
export async function showModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseBody(showSchema, request.body);
  const record = services.store.require(requestedModel(body));
  return reply.send(toShowResponse(record, services.store.modelPath(record.modelDigest)));
}

/** GET /api/ps: loaded models, with our `active` / `queued` request counts. */
export async function listRunning(services: Services, _request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const now = new Date();
  return reply.send({ models: services.scheduler.running().map((running) => toPsModel(running, now)) });
}

/**
 * GET /health (our extension): readiness. 200 `{"status": "ok"}` once the start-up preloads are done, 503
 * `{"status": "loading"}` before; with the preload progress, the load in progress, the queue, the memory budget,
 * and failed loads still cooling down (requests for those fail fast with the same reason until `retry_at`).
 */
export async function health(services: Services, _request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const ready = services.preload.done;
  return reply.status(ready ? 200 : 503).send(toHealthResponse(ready, services.preload.progress(), services.scheduler.status(), services.scheduler.running().length));
}

/** POST /api/copy: `destination` becomes another name for `source`. 200 with an empty body. */
export async function copyModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const { source, destination } = parseBody(copySchema, request.body);
  await services.store.copy(source, destination);
  return reply.status(200).send();
}

/** DELETE /api/delete (JSON body): removes the name, unloading the model once its current requests finish. */
export async function deleteModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const name = requestedModel(parseBody(deleteSchema, request.body));
  const target = services.aliases.targetOf(name);
  if (target !== undefined) throw new InvalidRequestError(`"${name}" is an alias of "${target}" (AI_SERVER_ALIASES): remove it there`);
  const record = services.store.require(name);
  await services.scheduler.unload(record);
  await services.store.delete(record.name);
  return reply.status(200).send();
}
