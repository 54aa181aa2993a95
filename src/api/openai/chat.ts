import type { FastifyReply, FastifyRequest } from "fastify";
import { streamOnModel } from "../../inference/run-model.js";
import { clientSignal } from "../../server/abort.js";
import type { Services } from "../../services.js";
import { parseBody } from "../validation.js";
import { toChatRequest } from "./chat-request.js";
import { chatChunks, collectChatCompletion } from "./chat-response.js";
import { runChoices } from "./choices.js";
import { extrasRunSpec } from "../extras.js";
import { requireModel } from "./models.js";
import { responseHead } from "./response.js";
import { choiceSampling } from "./sampling.js";
import { chatCompletionSchema, REFUSED_CHAT_FIELDS, refuseFields } from "./schemas.js";
import { sendSse } from "./sse.js";

/**
 * POST /v1/chat/completions. `n` choices are `n` generations started together, each on a slot of its own (so
 * with enough slots they decode in one batch), merged into one answer or one stream.
 */
export async function chatCompletions(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  refuseFields(request.body, REFUSED_CHAT_FIELDS);
  const body = parseBody(chatCompletionSchema, request.body);
  const record = requireModel(services, body.model);
  const { request: chat, options } = toChatRequest(body, record, body.model);
  const signal = clientSignal(reply);
  const spec = extrasRunSpec(record, options, body, signal, startedNs);
  const count = body.n ?? 1;
  const head = responseHead("chatcmpl", body.model, record);

  const events = runChoices(count, signal, (index, choiceSignal) => {
    const choice = { ...chat, sampling: choiceSampling(chat.sampling, index) };
    return streamOnModel(services, { ...spec, signal: choiceSignal }, (model, modelSignal) => model.chat(choice, modelSignal));
  });
  if (body.stream) return sendSse(reply, chatChunks(events, head, count, body.stream_options?.include_usage ?? false));
  return reply.send(await collectChatCompletion(events, head, count, chat.logprobs !== undefined));
}
