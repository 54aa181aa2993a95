import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import { clientSignal } from "../../server/abort.js";
import {
  checkCapabilities,
  collectGenerate,
  generateDoneChunk,
  generateNeeds,
  generateTextChunk,
  generateThinkingChunk,
  toCompletionRequest,
  type GenerateChunk,
} from "./mapping.js";
import { respond } from "./ndjson.js";
import { just, loadOrUnload, streamOnModel, runSpec, type RunEvent } from "../../inference/run-model.js";
import { effectiveOptions } from "../../inference/model-options.js";
import { generateSchema, parseBody, requestedModel } from "./schemas.js";

/** POST /api/generate: a completion; an empty prompt only loads (or, with keep_alive 0, unloads) the model. */
export async function generate(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(generateSchema, request.body);
  const model = requestedModel(body);
  const record = services.store.require(model);
  checkCapabilities(model, record.metadata.capabilities, generateNeeds(body));
  const options = effectiveOptions(record.parameters, body.options);
  const completion = toCompletionRequest(body, record, options);
  const spec = runSpec(record, options, body.keep_alive, clientSignal(reply), startedNs);
  const stream = body.stream ?? true;

  if (completion.prompt === "" && completion.suffix === undefined) {
    const outcome = await loadOrUnload(services.scheduler, spec);
    return respond(reply, stream, just(generateDoneChunk(model, outcome, false, new Date())), collectGenerate);
  }
  const events = streamOnModel(services, spec, (loaded, signal) => loaded.complete(completion, signal));
  return respond(reply, stream, generateChunks(model, events, !completion.raw), collectGenerate);
}

/** Response and reasoning deltas (text with its log-probabilities when asked), then the final chunk with the metrics. */
async function* generateChunks(model: string, events: AsyncIterable<RunEvent>, withContext: boolean): AsyncGenerator<GenerateChunk> {
  for await (const event of events) {
    if (event.type === "text" && (event.text !== "" || event.logprobs?.length)) yield generateTextChunk(model, event.text, new Date(), event.logprobs);
    else if (event.type === "thinking" && event.text !== "") yield generateThinkingChunk(model, event.text, new Date());
    else if (event.type === "done") yield generateDoneChunk(model, event.outcome, withContext, new Date());
  }
}
