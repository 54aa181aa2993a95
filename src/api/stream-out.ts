import { PassThrough } from "node:stream";
import type { FastifyReply } from "fastify";
import { toAppError, type AppError } from "../domain/errors.js";

/** How a protocol frames its stream: each chunk, the in-band error, and what a complete stream ends with. */
export interface StreamFraming {
  contentType: string;
  /** Extra response headers (e.g. no caching for server-sent events). */
  headers?: Record<string, string>;
  chunk(value: unknown): string;
  /** The last frame of a stream that failed after its first frame. */
  error(error: AppError): string;
  /** Written after the last chunk of a stream that ended normally (SSE's `data: [DONE]`). */
  end?: string;
}

/**
 * Streams `chunks` in a protocol's framing. Nothing is sent until the first chunk exists, so a failure before it
 * (model not loadable, queue full, bad prompt, cancelled) rejects this promise and becomes a normal HTTP error
 * through the route's error handler. After the first frame, a failure is written in-band as the framing's error
 * frame and the stream ends; it always ends. If the client goes away, the chunk source is closed (its `finally`
 * blocks run: generation stopped, leases released).
 */
export async function sendStream(reply: FastifyReply, framing: StreamFraming, chunks: AsyncIterable<unknown>): Promise<FastifyReply> {
  const iterator = chunks[Symbol.asyncIterator]();
  const first = await iterator.next();
  const onError = (error: unknown): string => {
    const appError = toAppError(error);
    if (appError.status >= 500) reply.log.error({ err: error }, appError.message);
    else reply.log.info({ code: appError.code }, appError.message);
    return framing.error(appError);
  };
  const body = new PassThrough();
  pump(first, iterator, body, framing, onError).catch((error: unknown) => body.destroy(error instanceof Error ? error : new Error(String(error))));
  return reply.type(framing.contentType).headers(framing.headers ?? {}).send(body);
}

/**
 * Writes each chunk straight into the response body (no generator or Readable.from layer between the model and the
 * socket: this runs once per token). Ends the body however the source ends; if the client went away first, closes
 * the source so its cleanup runs.
 */
async function pump(
  first: IteratorResult<unknown>,
  rest: AsyncIterator<unknown>,
  out: PassThrough,
  framing: StreamFraming,
  onError: (error: unknown) => string,
): Promise<void> {
  let finished = first.done === true;
  let closed = false;
  out.once("close", () => (closed = true));
  try {
    if (!finished) out.write(framing.chunk(first.value));
    while (!closed && !finished) {
      let next: IteratorResult<unknown>;
      try {
        next = await rest.next();
      } catch (error) {
        finished = true;
        out.write(onError(error));
        return;
      }
      if (next.done) finished = true;
      else if (!closed) out.write(framing.chunk(next.value));
    }
    if (finished && framing.end !== undefined) out.write(framing.end);
  } finally {
    out.end();
    if (!finished) await rest.return?.();
  }
}
