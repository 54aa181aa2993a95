import type { FastifyReply, FastifyRequest } from "fastify";
import { InvalidModelNameError, ModelNotFoundError } from "../../domain/errors.js";
import type { ModelRecord } from "../../domain/model.js";
import { onModel, runSpec, streamOnModel } from "../../inference/run-model.js";
import { clientSignal } from "../../server/abort.js";
import type { Services } from "../../services.js";
import { parseBody } from "../validation.js";
import { withHeartbeat } from "./heartbeat.js";
import { toChatRequest } from "./messages-request.js";
import { collectMessage, messageEvents, messageHead } from "./messages-response.js";
import { countTokensSchema, messagesSchema } from "./schemas.js";
import { sendAnthropicSse } from "./sse.js";

/**
 * A stream whose engine has said nothing for this long (the prompt is still being read) starts anyway with
 * `message_start`, then sends a `ping` after every PING_EVERY_MS of silence, so that clients do not time out.
 * Failures after that first event are sent in-band; before it, they are normal HTTP errors.
 */
export const FIRST_EVENT_WAIT_MS = 1000;
export const PING_EVERY_MS = 3000;

/** POST /v1/messages: one generation, answered whole or streamed as Anthropic's server-sent events. */
export async function createMessage(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(messagesSchema, request.body);
  const record = requireModel(services, body.model);
  const { request: chat, options } = toChatRequest(body, record, body.model);
  const spec = runSpec(record, options, body.keep_alive, clientSignal(reply), startedNs);
  const head = messageHead(body.model);
  const events = streamOnModel(services, spec, (model, signal) => model.chat(chat, signal));
  if (body.stream) return sendAnthropicSse(reply, messageEvents(withHeartbeat(events, FIRST_EVENT_WAIT_MS, PING_EVERY_MS), head));
  return reply.send(await collectMessage(events, head));
}

/**
 * POST /v1/messages/count_tokens: `{input_tokens}`, the exact prompt size of the conversation (system prompt,
 * messages and tools, rendered by the model's own template and counted by its tokenizer), as /v1/messages would
 * read it. The model is loaded to count.
 */
export async function countTokens(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(countTokensSchema, request.body);
  const record = requireModel(services, body.model);
  const { request: chat, options } = toChatRequest(body, record, body.model);
  const spec = runSpec(record, options, body.keep_alive, clientSignal(reply), startedNs);
  const { result } = await onModel(services.scheduler, spec, (model, signal) => model.countTokens(chat, signal));
  return reply.send({ input_tokens: result });
}

/** The model a request names; a name that cannot exist is as unknown as one that does not: 404 (not_found_error). */
function requireModel(services: Services, name: string): ModelRecord {
  try {
    return services.store.require(name);
  } catch (error) {
    if (error instanceof InvalidModelNameError) throw new ModelNotFoundError(name);
    throw error;
  }
}
