import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { clientSignal } from "../../server/abort.js";
import {
  chatDoneChunk,
  chatNeeds,
  chatTextChunk,
  chatThinkingChunk,
  chatToolCallChunk,
  checkCapabilities,
  collectChat,
  toChatRequest,
  type ChatChunk,
} from "./mapping.js";
import { respond } from "./ndjson.js";
import { just, loadOrUnload, streamOnModel, runSpec, type RunEvent } from "../../inference/run-model.js";
import { effectiveOptions } from "../../inference/model-options.js";
import { chatSchema, parseBody, requestedModel } from "./schemas.js";

/** POST /api/chat: answers a conversation; no messages only loads (or, with keep_alive 0, unloads) the model. */
export async function chat(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(chatSchema, request.body);
  const model = requestedModel(body);
  const record = services.store.require(model);
  checkCapabilities(model, record.metadata.capabilities, chatNeeds(body));
  const options = effectiveOptions(record.parameters, body.options);
  const chatRequest = toChatRequest(body, record, options);
  const spec = runSpec(record, options, body.keep_alive, clientSignal(reply), startedNs);
  const stream = body.stream ?? true;

  if (!body.messages?.length) {
    const outcome = await loadOrUnload(services.scheduler, spec);
    return respond(reply, stream, just(chatDoneChunk(model, outcome, new Date())), collectChat);
  }
  const events = streamOnModel(services, spec, (loaded, signal) => loaded.chat(chatRequest, signal));
  return respond(reply, stream, chatChunks(model, events), collectChat);
}

/**
 * Content and reasoning deltas as they come (text with its log-probabilities when asked), each tool call whole in its
 * own chunk, then the final chunk with the metrics.
 */
async function* chatChunks(model: string, events: AsyncIterable<RunEvent>): AsyncGenerator<ChatChunk> {
  let toolCalls = 0;
  for await (const event of events) {
    switch (event.type) {
      case "text":
        if (event.text !== "" || event.logprobs?.length) yield chatTextChunk(model, event.text, new Date(), event.logprobs);
        break;
      case "thinking":
        if (event.text !== "") yield chatThinkingChunk(model, event.text, new Date());
        break;
      case "tool_call":
        yield chatToolCallChunk(model, event.call, toolCalls++, new Date());
        break;
      case "done":
        yield chatDoneChunk(model, event.outcome, new Date());
        break;
      default:
        event satisfies never;
    }
  }
}
