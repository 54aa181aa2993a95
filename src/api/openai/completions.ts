import type { FastifyReply, FastifyRequest } from "fastify";
import { InternalError } from "../../domain/errors.js";
import { streamOnModel } from "../../inference/run-model.js";
import { clientSignal } from "../../server/abort.js";
import type { Services } from "../../services.js";
import { parseBody } from "../validation.js";
import { runChoices } from "./choices.js";
import { toCompletionRequests } from "./completion-request.js";
import { collectCompletion, completionChunks, type CompletionShape } from "./completion-response.js";
import { extrasRunSpec } from "../extras.js";
import { requireModel } from "./models.js";
import { responseHead } from "./response.js";
import { choiceSampling } from "./sampling.js";
import { completionSchema, REFUSED_COMPLETION_FIELDS, refuseFields } from "./schemas.js";
import { sendSse } from "./sse.js";

/**
 * POST /v1/completions: raw text continuation (no chat template), or fill-in-the-middle with `suffix`. Each prompt
 * gets `n` choices (choice `p × n + j` is prompt p's j-th), all generated at once, each on a slot of its own.
 */
export async function completions(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  refuseFields(request.body, REFUSED_COMPLETION_FIELDS);
  const body = parseBody(completionSchema, request.body);
  const record = requireModel(services, body.model);
  const { requests, options, n, echo } = toCompletionRequests(body, record, body.model);
  const signal = clientSignal(reply);
  const spec = extrasRunSpec(record, options, body, signal, startedNs);
  const count = requests.length * n;
  const head = responseHead("cmpl", body.model, record);
  const promptOf = (index: number) => requests[Math.floor(index / n)];
  const shape: CompletionShape = { n, logprobs: body.logprobs !== undefined, ...(echo && { echo: (index: number) => promptOf(index)?.prompt ?? "" }) };

  const events = runChoices(count, signal, (index, choiceSignal) => {
    const prompt = promptOf(index);
    if (!prompt) throw new InternalError(`no prompt for choice ${index}`);
    const choice = { ...prompt, sampling: choiceSampling(prompt.sampling, index % n) };
    return streamOnModel(services, { ...spec, signal: choiceSignal }, (model, modelSignal) => model.complete(choice, modelSignal));
  });
  if (body.stream) return sendSse(reply, completionChunks(events, head, shape, body.stream_options?.include_usage ?? false));
  return reply.send(await collectCompletion(events, head, count, shape));
}
