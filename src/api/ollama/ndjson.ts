import { PassThrough } from "node:stream";
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
  const body = new PassThrough();
  pump(first, iterator, body, onError).catch((error: unknown) => body.destroy(error instanceof Error ? error : new Error(String(error))));
  return reply.type(NDJSON).send(body);
}

/**
 * Writes each chunk as one line straight into the response body (no generator or Readable.from layer between
 * the model and the socket: this runs once per token). Ends the body however the source ends; if the client
 * went away first, closes the source so its cleanup runs (lease released, engine stopped).
 */
async function pump(first: IteratorResult<unknown>, rest: AsyncIterator<unknown>, out: PassThrough, onError: (error: unknown) => string): Promise<void> {
  let finished = first.done === true;
  let closed = false;
  out.once("close", () => (closed = true));
  try {
    if (finished) return;
    out.write(line(first.value));
    while (!closed) {
      let next: IteratorResult<unknown>;
      try {
        next = await rest.next();
      } catch (error) {
        finished = true;
        out.write(line({ error: onError(error) }));
        return;
      }
      if (next.done) {
        finished = true;
        return;
      }
      if (!closed) out.write(line(next.value));
    }
  } finally {
    out.end();
    if (!finished) await rest.return?.();
  }
}

function line(value: unknown): string {
  return JSON.stringify(value) + "\n";
}
