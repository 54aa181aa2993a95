import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";
import { toAppError } from "../../domain/errors.js";
import { errorBody } from "../../server/error-handler.js";

/**
 * Streams `chunks` as OpenAI's server-sent events: `data: {json}\n\n` each, then `data: [DONE]\n\n`.
 *
 * Nothing is sent until the first chunk exists, so a failure before it (model not loadable, queue full, bad
 * prompt, cancelled) rejects this promise and becomes a normal HTTP error with its status. After the first event,
 * a failure is sent in-band as `data: {"error": {…}}` (OpenAI's error shape, which the SDKs throw on) and the stream
 * ends without `[DONE]`. If the client goes away, the chunk source is closed (its `finally` blocks run: generation
 * stopped, leases released).
 */
export async function sendSse(reply: FastifyReply, url: string, chunks: AsyncIterable<unknown>): Promise<FastifyReply> {
  const iterator = chunks[Symbol.asyncIterator]();
  const first = await iterator.next();
  const onError = (error: unknown): unknown => {
    const appError = toAppError(error);
    if (appError.status >= 500) reply.log.error({ err: error }, appError.message);
    else reply.log.info({ code: appError.code }, appError.message);
    return errorBody(url, appError);
  };
  const body = new PassThrough();
  pump(first, iterator, body, onError).catch((error: unknown) => body.destroy(error instanceof Error ? error : new Error(String(error))));
  return reply.type("text/event-stream").header("cache-control", "no-cache").header("x-accel-buffering", "no").send(body);
}

/**
 * Writes each chunk as one event straight into the response body; ends the body however the source ends; if the
 * client went away first, closes the source so its cleanup runs.
 */
async function pump(first: IteratorResult<unknown>, rest: AsyncIterator<unknown>, out: PassThrough, onError: (error: unknown) => unknown): Promise<void> {
  let finished = first.done === true;
  let closed = false;
  out.once("close", () => (closed = true));
  try {
    if (!finished) out.write(event(first.value));
    while (!closed && !finished) {
      let next: IteratorResult<unknown>;
      try {
        next = await rest.next();
      } catch (error) {
        finished = true;
        out.write(event(onError(error)));
        return;
      }
      if (next.done) finished = true;
      else if (!closed) out.write(event(next.value));
    }
    if (finished) out.write("data: [DONE]\n\n");
  } finally {
    out.end();
    if (!finished) await rest.return?.();
  }
}

function event(value: unknown): string {
  return `data: ${JSON.stringify(value)}\n\n`;
}
