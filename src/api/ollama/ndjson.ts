import { Readable } from "node:stream";
import type { FastifyReply } from "fastify";
import { toAppError } from "../../domain/errors.js";

export const NDJSON = "application/x-ndjson";

/**
 * Answers with `chunks`, streamed as NDJSON (`stream` true) or collected into one JSON object (`stream` false).
 *
 * Nothing is sent until the first chunk exists, so a failure before it (model not loadable, queue full, bad
 * prompt, cancelled) rejects this promise and becomes a normal HTTP error through the route's error handler.
 * After the first line, a failure is written in-band as one `{"error": "…"}` line and the stream ends; it always
 * ends. If the client goes away, the chunk source is closed (its `finally` blocks run).
 */
export async function respond<T>(reply: FastifyReply, stream: boolean, chunks: AsyncIterable<T>, collect: (all: T[]) => T): Promise<FastifyReply> {
  if (!stream) {
    const all: T[] = [];
    for await (const chunk of chunks) all.push(chunk);
    return reply.type("application/json").send(collect(all));
  }
  return sendNdjson(reply, chunks);
}

/** Streams `chunks` as NDJSON; see `respond` for how errors before and after the first line are reported. */
export async function sendNdjson(reply: FastifyReply, chunks: AsyncIterable<unknown>): Promise<FastifyReply> {
  const iterator = chunks[Symbol.asyncIterator]();
  const first = await iterator.next();
  const onError = (error: unknown): string => {
    const appError = toAppError(error);
    if (appError.status >= 500) reply.log.error({ err: error }, appError.message);
    else reply.log.info({ code: appError.code }, appError.message);
    return appError.message;
  };
  return reply.type(NDJSON).send(Readable.from(lines(first, iterator, onError), { objectMode: false }));
}

async function* lines(first: IteratorResult<unknown>, rest: AsyncIterator<unknown>, onError: (error: unknown) => string): AsyncGenerator<string> {
  let finished = first.done === true;
  try {
    if (finished) return;
    yield line(first.value);
    for (;;) {
      let next: IteratorResult<unknown>;
      try {
        next = await rest.next();
      } catch (error) {
        finished = true;
        yield line({ error: onError(error) });
        return;
      }
      if (next.done) {
        finished = true;
        return;
      }
      yield line(next.value);
    }
  } finally {
    // Closed early (client gone): let the source clean up (release its lease, stop the engine).
    if (!finished) await rest.return?.();
  }
}

function line(value: unknown): string {
  return JSON.stringify(value) + "\n";
}
