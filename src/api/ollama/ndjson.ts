import type { FastifyReply } from "fastify";
import { sendStream, type StreamFraming } from "../stream-out.js";

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

/** Ollama's NDJSON: one JSON object per line; a failure after the first line is one last `{"error": "…"}` line. */
const NDJSON_FRAMING: StreamFraming = {
  contentType: NDJSON,
  chunk: (value) => JSON.stringify(value) + "\n",
  error: (error) => JSON.stringify({ error: error.message }) + "\n",
};

/** Streams `chunks` as NDJSON; see `respond` for how errors before and after the first line are reported. */
export function sendNdjson(reply: FastifyReply, chunks: AsyncIterable<unknown>): Promise<FastifyReply> {
  return sendStream(reply, NDJSON_FRAMING, chunks);
}
