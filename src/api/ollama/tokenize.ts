import type { FastifyReply, FastifyRequest } from "fastify";
import type { Services } from "../../services.js";
import type { Token } from "../../domain/embedding.js";
import { clientSignal } from "../../server/abort.js";
import { effectiveOptions } from "../../inference/model-options.js";
import { onModel, runSpec, type RunSpec } from "../../inference/run-model.js";
import { detokenizeSchema, parseBody, requestedModel, tokenizeSchema, type DetokenizeBody, type TokenizeBody } from "./schemas.js";

/**
 * POST /api/tokenize (ours; Ollama has none): the model's own tokens for `content` (or `text`), as llama-server's
 * /tokenize answers: `{tokens: [ids]}`, or with `with_pieces` `{tokens: [{id, piece}]}`. Special tokens are added
 * (BOS) and special-token text is parsed unless the request says otherwise. The model is loaded to tokenize.
 */
export async function tokenize(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(tokenizeSchema, request.body);
  const spec = specOf(services, body, reply, startedNs);
  const text = body.content ?? body.text ?? "";
  const { result } = await onModel(services.scheduler, spec, (loaded, signal) =>
    loaded.tokenize({ text, addSpecial: body.add_special ?? true, parseSpecial: body.parse_special ?? true }, signal),
  );
  return reply.send({ tokens: body.with_pieces === true ? result.map(toWirePiece) : result.map((token) => token.id) });
}

/** POST /api/detokenize (ours): the text of token ids, `{content}`. An id outside the vocabulary is a 400. */
export async function detokenize(services: Services, request: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> {
  const startedNs = process.hrtime.bigint();
  const body = parseBody(detokenizeSchema, request.body);
  const spec = specOf(services, body, reply, startedNs);
  const { result } = await onModel(services.scheduler, spec, (loaded, signal) => loaded.detokenize(body.tokens, signal));
  return reply.send({ content: result });
}

function specOf(services: Services, body: TokenizeBody | DetokenizeBody, reply: FastifyReply, startedNs: bigint): RunSpec {
  const record = services.store.require(requestedModel(body));
  return runSpec(record, effectiveOptions(record.parameters, body.options), body.keep_alive, clientSignal(reply), startedNs);
}

function toWirePiece({ id, piece }: Token): { id: number; piece: string } {
  return { id, piece };
}
