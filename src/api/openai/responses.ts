import type { FastifyReply, FastifyRequest } from "fastify";
import { InvalidRequestError, ResponseNotFoundError, toAppError } from "../../domain/errors.js";
import { streamOnModel, type RunEvent } from "../../inference/run-model.js";
import { clientSignal } from "../../server/abort.js";
import type { Services } from "../../services.js";
import { parseBody } from "../validation.js";
import { extrasRunSpec } from "../extras.js";
import { requireModel } from "./models.js";
import { ResponseRun, type ResponseEvent } from "./responses-events.js";
import { resolveConversation, type PlacedItem } from "./responses-input.js";
import { responseShell, type ResponseObject } from "./responses-object.js";
import { toResponsesChat } from "./responses-request.js";
import { REFUSED_RESPONSES_FIELDS, responsesSchema, type ResponsesBody } from "./responses-schema.js";
import { sendResponseEvents } from "./responses-sse.js";
import { refuseFields } from "./schemas.js";
import type { ResponseViewer } from "../../store/response-store.js";

/**
 * POST /v1/responses (OpenAI's Responses API). The conversation is resolved first (`previous_response_id`,
 * `item_reference`: a missing one is a 404 before anything runs), then the model generates. Streamed, the
 * `response.created` and `response.in_progress` events go out at once, before the model is leased (loading it, or
 * waiting for a slot, can take long: agents such as Codex see the response begin and keep waiting); any failure
 * after them — the prompt not fitting the context included — is the stream's `response.failed` event with an error
 * code (`context_length_exceeded`). Failures before them are HTTP errors in OpenAI's shape. A completed (or
 * incomplete) response is stored unless `store` is false, before its last event is sent.
 */
export async function createResponse(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  refuseFields(request.body, REFUSED_RESPONSES_FIELDS);
  const body = parseBody(responsesSchema, request.body);
  const record = requireModel(services, body.model);
  const conversation = await resolveConversation(services.responses, body, viewerOf(request));
  const { request: chat, options } = toResponsesChat(body, conversation, record);
  const store = body.store !== false && services.responses.enabled;
  const run = new ResponseRun(responseShell(body, options, store));
  const signal = clientSignal(reply);
  const spec = extrasRunSpec(record, options, body, signal, startedNs);
  const generation = streamOnModel(services, spec, (model, modelSignal) => model.chat(chat, modelSignal));
  const keep = async (response: ResponseObject): Promise<void> => {
    if (store) await saveResponse(services, body, conversation, response, request.requestContext.principal.keyId);
  };

  if (body.stream) {
    const log = (error: unknown): void => {
      const appError = toAppError(error);
      if (appError.status >= 500) reply.log.error({ err: error }, appError.message);
      else reply.log.info({ code: appError.code }, appError.message);
    };
    return sendResponseEvents(reply, responseEvents(run, generation, keep, signal, log), (error) => run.errorEvent(error));
  }
  for await (const event of generation) run.add(event);
  const { response } = run.finish();
  await keep(response);
  return reply.send(response);
}

/** The stream: the response begins, its output items follow as they are generated, then how it ended. */
async function* responseEvents(
  run: ResponseRun,
  generation: AsyncIterable<RunEvent>,
  keep: (response: ResponseObject) => Promise<void>,
  signal: AbortSignal,
  log: (error: unknown) => void,
): AsyncGenerator<ResponseEvent> {
  yield* run.start();
  try {
    for await (const event of generation) yield* run.add(event);
    const end = run.finish();
    yield* end.closing;
    await keep(end.response);
    yield end.final;
  } catch (error) {
    if (signal.aborted) return; // the client went away: there is no one to tell
    log(error);
    yield run.fail(toAppError(error));
  }
}

/** Stores a response: the request's settings, the whole conversation it answered, its output (each item by id). */
async function saveResponse(services: Services, body: ResponsesBody, conversation: readonly PlacedItem[], response: ResponseObject, owner: string | null): Promise<void> {
  const { input: _input, ...settings } = body;
  await services.responses.save(
    {
      id: response.id,
      createdAt: new Date(response.created_at * 1000),
      model: response.model,
      ...(body.previous_response_id !== undefined && { previousResponseId: body.previous_response_id }),
      status: response.status,
      request: settings,
      input: conversation.map(({ item }) => item),
      output: response.output,
      response,
      ...(owner !== null && { owner }),
    },
    response.output.map((item) => ({ id: item.id, item })),
  );
}

/**
 * Stored responses belong to the key that made them: another key (of any scope) finds none, as if they did not
 * exist; an admin key not limited to models sees them all. On an open server (no key) every client is the same one.
 */
function viewerOf(request: FastifyRequest): ResponseViewer {
  const principal = request.requestContext.principal;
  return { keyId: principal.keyId, all: principal.keyId !== null && principal.scope === "admin" && principal.models === undefined };
}

function responseId(request: FastifyRequest): string {
  return (request.params as { "*"?: string })["*"] ?? "";
}

/** GET /v1/responses/{id}: the stored response as it was answered; 404 when not stored, deleted or expired. */
export async function getResponse(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const id = responseId(request);
  if ((request.query as { stream?: unknown } | undefined)?.stream === "true") {
    throw new InvalidRequestError("stream: a stored response is not replayed as events; retrieve it without stream");
  }
  const stored = await services.responses.get(id, viewerOf(request));
  if (!stored) throw new ResponseNotFoundError("response", id);
  return reply.send(stored.response);
}

/** DELETE /v1/responses/{id}: forgets the response and its items; 404 when there is none. */
export async function deleteResponse(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const id = responseId(request);
  if (!(await services.responses.delete(id, viewerOf(request)))) throw new ResponseNotFoundError("response", id);
  return reply.send({ id, object: "response", deleted: true });
}
