import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { visibleTo } from "../../auth/model-access.js";
import { InvalidRequestError } from "../../domain/errors.js";
import { toPsModel, toShowResponse, toTagsModel } from "./model-mapping.js";
import { copySchema, deleteSchema, parseBody, requestedModel, showSchema } from "./schemas.js";

/** GET /api/tags: every model in the store the request's key may see, newest first. */
export async function listModels(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const models = visibleTo(request.requestContext.principal, services.store.list(), (record) => record.name, services.store);
  return reply.send({ models: models.map(toTagsModel) });
}

/** POST /api/show: one model's details, parameters, template and header metadata. */
export async function showModel(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const body = parseBody(showSchema, request.body);
  const record = services.store.require(requestedModel(body));
  return reply.send(toShowResponse(record, record.upstream ? record.name : services.store.modelPath(record.modelDigest)));
}

/** GET /api/ps: loaded models the request's key may see, with our `active` / `queued` request counts. */
export async function listRunning(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const now = new Date();
  const running = visibleTo(request.requestContext.principal, services.scheduler.running(), (model) => model.record.name, services.store);
  return reply.send({ models: running.map((model) => toPsModel(model, now)) });
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
